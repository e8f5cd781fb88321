//! `/v1/sessions...` and `/v1/audit` (confidential clients, HTTP Basic).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_store::{AuditFilter, Permission, Session};

use super::auth::{authenticate, context, require_basic};
use super::errors::{ApiError, json_rejection, no_store, query_rejection};
use crate::clients::AuthenticatedClient;
use crate::sessions::{ElevateRequest, OpenRequest};
use crate::{Issuer, IssuerError};

async fn backend(
    issuer: &Issuer,
    headers: &HeaderMap,
    extensions: &Extensions,
) -> Result<Arc<AuthenticatedClient>, ApiError> {
    let client = authenticate(issuer, require_basic(headers)?, extensions).await?;
    if client.client.allowed.contains(&Permission::Sessions)
        || client.client.allowed.contains(&Permission::Admin)
    {
        Ok(client)
    } else {
        Err(IssuerError::NotAllowed("sessions").into())
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
        "device": session.device,
        "generation": session.generation,
        "revoked_at": session.revoked_at.map(|t| t.unix_seconds()),
        "revoked_reason": session.revoked_reason.map(|r| r.as_str()),
    })
}

pub(super) async fn open(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    extensions: Extensions,
    body: Result<Json<OpenRequest>, JsonRejection>,
) -> Response {
    let caller = match backend(&issuer, &headers, &extensions).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let Json(request) = match body {
        Ok(b) => b,
        Err(rejection) => return json_rejection(rejection),
    };
    match issuer
        .open_session(&caller, request, &context(&headers, &extensions))
        .await
    {
        Ok(pair) => no_store((StatusCode::CREATED, Json(pair)).into_response()),
        Err(e) => ApiError(e).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SubjectQuery {
    subject: Option<String>,
}

pub(super) async fn list(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    extensions: Extensions,
    query: Result<Query<SubjectQuery>, QueryRejection>,
) -> Response {
    let caller = match backend(&issuer, &headers, &extensions).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let Query(query) = match query {
        Ok(q) => q,
        Err(rejection) => return query_rejection(rejection),
    };
    let Some(subject) = query.subject.filter(|s| !s.is_empty()) else {
        return ApiError(IssuerError::InvalidRequest("subject is required".into())).into_response();
    };
    match issuer.managed_sessions(&caller, &subject).await {
        Ok(sessions) => {
            Json(serde_json::json!({ "sessions": sessions.iter().map(view).collect::<Vec<_>>() }))
                .into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}

pub(super) async fn show(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(sid): Path<String>,
) -> Response {
    let caller = match backend(&issuer, &headers, &extensions).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    match issuer.managed_session(&caller, &sid).await {
        Ok(session) => Json(view(&session)).into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}

pub(super) async fn end_one(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(sid): Path<String>,
) -> Response {
    let caller = match backend(&issuer, &headers, &extensions).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    match issuer
        .end_session(&caller, &sid, &context(&headers, &extensions))
        .await
    {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}

pub(super) async fn end_subject(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    extensions: Extensions,
    query: Result<Query<SubjectQuery>, QueryRejection>,
) -> Response {
    let caller = match backend(&issuer, &headers, &extensions).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let Query(query) = match query {
        Ok(q) => q,
        Err(rejection) => return query_rejection(rejection),
    };
    let Some(subject) = query.subject.filter(|s| !s.is_empty()) else {
        return ApiError(IssuerError::InvalidRequest("subject is required".into())).into_response();
    };
    match issuer
        .end_subject(&caller, &subject, &context(&headers, &extensions))
        .await
    {
        Ok(n) => Json(serde_json::json!({ "revoked": n })).into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}

pub(super) async fn elevate(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(sid): Path<String>,
    body: Result<Json<ElevateRequest>, JsonRejection>,
) -> Response {
    let caller = match backend(&issuer, &headers, &extensions).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let Json(request) = match body {
        Ok(b) => b,
        Err(rejection) => return json_rejection(rejection),
    };
    match issuer
        .elevate(&caller, &sid, request, &context(&headers, &extensions))
        .await
    {
        Ok(pair) => no_store(Json(pair).into_response()),
        Err(e) => ApiError(e).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    subject: Option<String>,
    session: Option<String>,
    after: Option<i64>,
    limit: Option<u32>,
}

pub(super) async fn audit(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    extensions: Extensions,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Response {
    let caller = match backend(&issuer, &headers, &extensions).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let Query(query) = match query {
        Ok(q) => q,
        Err(rejection) => return query_rejection(rejection),
    };
    let after = query.after;
    let filter = AuditFilter {
        subject: query.subject,
        session_id: query.session,
        opened_by: None,
        after,
        limit: query.limit.unwrap_or(100).min(1000),
    };
    match issuer.audit_for(&caller, filter).await {
        Ok(records) => {
            let next = records.last().map(|r| r.seq).or(after).unwrap_or(0);
            Json(serde_json::json!({ "records": records, "next": next })).into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}
