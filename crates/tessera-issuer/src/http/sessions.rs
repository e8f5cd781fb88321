//! `/v1/sessions...` and `/v1/audit` (confidential clients, HTTP Basic).
//!
//! Every handler takes a [`Backend`] (authenticated before the body is
//! read) and answers `Result<_, ApiError>`; `errors.rs` gives every error
//! its HTTP face.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_store::{AuditFilter, Permission, Session, Timestamp};

use super::auth::{authenticate, context, require_basic};
use super::errors::{ApiError, no_store};
use super::schema::{ApiErrorBody, AuditPage, SessionList, SessionView, SubjectEnded};
use crate::clients::AuthenticatedClient;
use crate::sessions::{ElevateRequest, OpenRequest};
use crate::{Issuer, IssuerError};

/// The authenticated backend of a request: a confidential client with the
/// `sessions` (or `admin`) permission.
pub(super) struct Backend(Arc<AuthenticatedClient>);

impl FromRequestParts<Arc<Issuer>> for Backend {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        issuer: &Arc<Issuer>,
    ) -> Result<Self, Self::Rejection> {
        let client =
            authenticate(issuer, require_basic(&parts.headers)?, &parts.extensions).await?;
        if client.client.allowed.contains(&Permission::Sessions)
            || client.client.allowed.contains(&Permission::Admin)
        {
            Ok(Backend(client))
        } else {
            Err(IssuerError::NotAllowed("sessions").into())
        }
    }
}

fn view(session: &Session) -> serde_json::Value {
    serde_json::json!({
        "id": session.id,
        "subject": session.subject,
        "client_id": session.client_id,
        "opened_by": session.opened_by,
        "scope": session.scope,
        "audience": session.audience,
        "created_at": session.created_at.unix_seconds(),
        "last_used_at": session.last_used_at.unix_seconds(),
        "expires_at": session.idle_expires_at.min(session.absolute_expires_at).unix_seconds(),
        "absolute_expires_at": session.absolute_expires_at.unix_seconds(),
        "auth_time": session.auth_time,
        "acr": session.acr,
        "amr": session.amr,
        "token_format": session.token_format.as_str(),
        "dpop_jkt": session.dpop_jkt,
        "device": session.device,
        "generation": session.generation,
        "revoked_at": session.revoked_at.map(|t| t.unix_seconds()),
        "revoked_reason": session.revoked_reason.map(|r| r.as_str()),
    })
}

/// Opens a session for a subject the backend has authenticated.
#[utoipa::path(
    post,
    path = "/v1/sessions",
    tag = "sessions",
    request_body(content = crate::sessions::OpenRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The session and its first tokens", body = crate::sessions::TokenPair),
        (status = 409, description = "The subject's session limit is reached (`limit_policy = reject`)", body = ApiErrorBody),
        (status = 400, description = "Bad input", body = ApiErrorBody),
        (status = 401, description = "No or wrong client credentials", body = ApiErrorBody),
        (status = 403, description = "The client lacks the permission", body = ApiErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = ApiErrorBody),
        (status = 503, description = "The store is unavailable; retry", body = ApiErrorBody),
    ),
    security(("client_basic" = []))
)]
pub(super) async fn open(
    State(issuer): State<Arc<Issuer>>,
    Backend(caller): Backend,
    headers: HeaderMap,
    extensions: Extensions,
    body: Result<Json<OpenRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body?;
    let pair = issuer
        .open_session(&caller, request, &context(&headers, &extensions))
        .await?;
    Ok(no_store((StatusCode::CREATED, Json(pair)).into_response()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SubjectQuery {
    subject: Option<String>,
}

impl SubjectQuery {
    fn subject(self) -> Result<String, ApiError> {
        self.subject
            .filter(|s| !s.is_empty())
            .ok_or_else(|| IssuerError::InvalidRequest("subject is required".into()).into())
    }
}

/// A subject's live sessions (those the caller opened; an admin sees all).
#[utoipa::path(
    operation_id = "list_sessions",
    get,
    path = "/v1/sessions",
    tag = "sessions",
    params(("subject" = String, Query, description = "The subject")),
    responses(
        (status = 200, description = "Live sessions", body = SessionList),
        (status = 400, description = "Bad input", body = ApiErrorBody),
        (status = 401, description = "No or wrong client credentials", body = ApiErrorBody),
        (status = 403, description = "The client lacks the permission", body = ApiErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = ApiErrorBody),
        (status = 503, description = "The store is unavailable; retry", body = ApiErrorBody),
    ),
    security(("client_basic" = []))
)]
pub(super) async fn list(
    State(issuer): State<Arc<Issuer>>,
    Backend(caller): Backend,
    query: Result<Query<SubjectQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let subject = query?.0.subject()?;
    let sessions = issuer.managed_sessions(&caller, &subject).await?;
    Ok(
        Json(serde_json::json!({ "sessions": sessions.iter().map(view).collect::<Vec<_>>() }))
            .into_response(),
    )
}

/// One session.
#[utoipa::path(
    operation_id = "show_session",
    get,
    path = "/v1/sessions/{sid}",
    tag = "sessions",
    params(("sid" = String, Path, description = "The session id")),
    responses(
        (status = 200, description = "The session", body = SessionView),
        (status = 404, description = "No such session (or not the caller's)", body = ApiErrorBody),
        (status = 400, description = "Bad input", body = ApiErrorBody),
        (status = 401, description = "No or wrong client credentials", body = ApiErrorBody),
        (status = 403, description = "The client lacks the permission", body = ApiErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = ApiErrorBody),
        (status = 503, description = "The store is unavailable; retry", body = ApiErrorBody),
    ),
    security(("client_basic" = []))
)]
pub(super) async fn show(
    State(issuer): State<Arc<Issuer>>,
    Backend(caller): Backend,
    Path(sid): Path<String>,
) -> Result<Response, ApiError> {
    let session = issuer.managed_session(&caller, &sid).await?;
    Ok(Json(view(&session)).into_response())
}

/// Ends one session (logout): its refresh token stops working and a
/// revocation event reaches verifiers.
#[utoipa::path(
    delete,
    path = "/v1/sessions/{sid}",
    tag = "sessions",
    params(("sid" = String, Path, description = "The session id")),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, description = "No such session (or not the caller's)", body = ApiErrorBody),
        (status = 400, description = "Bad input", body = ApiErrorBody),
        (status = 401, description = "No or wrong client credentials", body = ApiErrorBody),
        (status = 403, description = "The client lacks the permission", body = ApiErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = ApiErrorBody),
        (status = 503, description = "The store is unavailable; retry", body = ApiErrorBody),
    ),
    security(("client_basic" = []))
)]
pub(super) async fn end_one(
    State(issuer): State<Arc<Issuer>>,
    Backend(caller): Backend,
    headers: HeaderMap,
    extensions: Extensions,
    Path(sid): Path<String>,
) -> Result<Response, ApiError> {
    issuer
        .end_session(&caller, &sid, &context(&headers, &extensions))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Ends every live session of a subject (that the caller may manage).
#[utoipa::path(
    delete,
    path = "/v1/sessions",
    tag = "sessions",
    params(("subject" = String, Query, description = "The subject")),
    responses(
        (status = 200, description = "How many sessions ended", body = SubjectEnded),
        (status = 400, description = "Bad input", body = ApiErrorBody),
        (status = 401, description = "No or wrong client credentials", body = ApiErrorBody),
        (status = 403, description = "The client lacks the permission", body = ApiErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = ApiErrorBody),
        (status = 503, description = "The store is unavailable; retry", body = ApiErrorBody),
    ),
    security(("client_basic" = []))
)]
pub(super) async fn end_subject(
    State(issuer): State<Arc<Issuer>>,
    Backend(caller): Backend,
    headers: HeaderMap,
    extensions: Extensions,
    query: Result<Query<SubjectQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let subject = query?.0.subject()?;
    let n = issuer
        .end_subject(&caller, &subject, &context(&headers, &extensions))
        .await?;
    Ok(Json(serde_json::json!({ "revoked": n })).into_response())
}

/// Step-up: records a fresh login on the session and mints an access token
/// with the new `auth_time`/`acr`/`amr`.
#[utoipa::path(
    post,
    path = "/v1/sessions/{sid}/elevate",
    tag = "sessions",
    params(("sid" = String, Path, description = "The session id")),
    request_body(content = crate::sessions::ElevateRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "A new access token", body = crate::sessions::TokenPair),
        (status = 404, description = "No such live session", body = ApiErrorBody),
        (status = 400, description = "Bad input", body = ApiErrorBody),
        (status = 401, description = "No or wrong client credentials", body = ApiErrorBody),
        (status = 403, description = "The client lacks the permission", body = ApiErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = ApiErrorBody),
        (status = 503, description = "The store is unavailable; retry", body = ApiErrorBody),
    ),
    security(("client_basic" = []))
)]
pub(super) async fn elevate(
    State(issuer): State<Arc<Issuer>>,
    Backend(caller): Backend,
    headers: HeaderMap,
    extensions: Extensions,
    Path(sid): Path<String>,
    body: Result<Json<ElevateRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body?;
    let pair = issuer
        .elevate(&caller, &sid, request, &context(&headers, &extensions))
        .await?;
    Ok(no_store(Json(pair).into_response()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    subject: Option<String>,
    session: Option<String>,
    client: Option<String>,
    kind: Option<String>,
    /// RFC 3339 or Unix seconds: records at or after.
    since: Option<String>,
    /// RFC 3339 or Unix seconds: records before.
    until: Option<String>,
    after: Option<i64>,
    limit: Option<u32>,
}

/// An audit query's time bound.
fn time_bound(name: &str, text: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    text.map(|t| {
        Timestamp::parse(t).ok_or_else(|| {
            ApiError::Issuer(IssuerError::InvalidRequest(format!(
                "{name}: {t:?} is not an RFC 3339 time or Unix seconds"
            )))
        })
    })
    .transpose()
}

/// The audit trail of the caller's sessions (an admin's: everything),
/// oldest first, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    params(
        ("subject" = Option<String>, Query, description = "Only this subject's records"),
        ("session" = Option<String>, Query, description = "Only this session's records"),
        ("client" = Option<String>, Query, description = "Only records whose acting client is this one"),
        ("kind" = Option<String>, Query, description = "Only records of this kind (`session.opened`, ...)"),
        ("since" = Option<String>, Query, description = "At or after this time (RFC 3339 or Unix seconds)"),
        ("until" = Option<String>, Query, description = "Before this time (RFC 3339 or Unix seconds)"),
        ("after" = Option<i64>, Query, description = "After this sequence number (the previous page's `next`)"),
        ("limit" = Option<u32>, Query, description = "Page size, at most 1000 (default 100)"),
    ),
    responses(
        (status = 200, description = "A page of records", body = AuditPage),
        (status = 400, description = "Bad input", body = ApiErrorBody),
        (status = 401, description = "No or wrong client credentials", body = ApiErrorBody),
        (status = 403, description = "The client lacks the permission", body = ApiErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = ApiErrorBody),
        (status = 503, description = "The store is unavailable; retry", body = ApiErrorBody),
    ),
    security(("client_basic" = []))
)]
pub(super) async fn audit(
    State(issuer): State<Arc<Issuer>>,
    Backend(caller): Backend,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let after = query.after;
    let filter = AuditFilter {
        since: time_bound("since", query.since.as_deref())?,
        until: time_bound("until", query.until.as_deref())?,
        subject: query.subject,
        session_id: query.session,
        opened_by: None,
        client_id: query.client,
        kind: query.kind,
        after,
        limit: query.limit.unwrap_or(100).min(1000),
    };
    let records = issuer.audit_for(&caller, filter).await?;
    let next = records.last().map(|r| r.seq).or(after).unwrap_or(0);
    Ok(Json(serde_json::json!({ "records": records, "next": next })).into_response())
}
