//! `/v1/clients...` (admin only): register, list, show, change, disable,
//! enable, rotate the secret, delete. The CLI's `tessera clients ...` does
//! the same through [`crate::clients::ClientDirectory`].

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_store::{Client, ClientKind, Permission};

use super::errors::{ApiError, no_store};
use super::schema::{
    ApiErrorBody, ClientCreate, ClientDisable, ClientList, ClientRotate, ClientUpdate, ClientView,
};
use crate::clients::{Actor, AuthenticatedClient, ClientChanges, ClientSpec};
use crate::{Issuer, IssuerError, parse_duration};

/// The JSON face of a client: everything but its secret digests.
pub fn client_view(client: &Client) -> serde_json::Value {
    serde_json::json!({
        "client_id": client.id,
        "name": client.name,
        "kind": match client.kind {
            ClientKind::Confidential => "confidential",
            ClientKind::Public => "public",
        },
        "allowed": client.allowed.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        "scopes": client.scopes,
        "audiences": client.audiences,
        "sessions_for": client.sessions_for,
        "policy": client.policy,
        "enabled": client.is_enabled(),
        "created_at": client.created_at.unix_seconds(),
        "updated_at": client.updated_at.unix_seconds(),
        "disabled_at": client.disabled_at.map(|t| t.unix_seconds()),
        "previous_secret_expires_at": client
            .previous_secret_hash
            .as_ref()
            .and(client.previous_secret_expires_at)
            .map(|t| t.unix_seconds()),
    })
}

/// The authenticated admin client of a request (HTTP Basic, `admin`
/// permission), checked before the body is read.
pub(super) struct Admin(Arc<AuthenticatedClient>);

impl FromRequestParts<Arc<Issuer>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        issuer: &Arc<Issuer>,
    ) -> Result<Self, Self::Rejection> {
        super::authenticate_admin(issuer, &parts.headers, &parts.extensions)
            .await
            .map(Admin)
    }
}

/// A JSON body, or `T::default()` when there is none; a body that cannot
/// be read is the `/v1` rejection answer.
fn body_or_default<T: serde::de::DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ApiError> {
    if body.is_empty() {
        return Ok(T::default());
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::Unreadable {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            part: "body",
            detail: "expected `Content-Type: application/json`".into(),
        });
    }
    serde_json::from_slice(body).map_err(|e| ApiError::Unreadable {
        status: StatusCode::BAD_REQUEST,
        part: "body",
        detail: e.to_string(),
    })
}

/// `POST /v1/clients` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateBody {
    name: String,
    kind: Option<ClientKind>,
    allowed: Vec<Permission>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    sessions_for: Vec<String>,
    #[serde(default)]
    policy: Option<serde_json::Value>,
}

/// `POST /v1/clients/{id}/disable` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DisableBody {
    #[serde(default)]
    end_sessions: bool,
}

/// `POST /v1/clients/{id}/rotate-secret` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RotateBody {
    /// How long the old secret keeps working ("1h"); none by default.
    #[serde(default)]
    overlap: Option<String>,
}

/// A JSON answer that is never cached (it may carry a secret).
fn answer(status: StatusCode, body: serde_json::Value) -> Result<Response, ApiError> {
    Ok(no_store((status, Json(body)).into_response()))
}

/// Every client.
#[utoipa::path(
    operation_id = "list_clients",
    get,
    path = "/v1/clients",
    tag = "clients",
    responses(
        (status = 200, description = "The clients", body = ClientList),
        (status = 400, description = "Bad input", body = ApiErrorBody),
        (status = 401, description = "No or wrong client credentials", body = ApiErrorBody),
        (status = 403, description = "The caller is not an admin", body = ApiErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = ApiErrorBody),
        (status = 503, description = "The store is unavailable; retry", body = ApiErrorBody),
    ),
    security(("client_basic" = []))
)]
pub(super) async fn list(
    State(issuer): State<Arc<Issuer>>,
    _: Admin,
) -> Result<Response, ApiError> {
    let clients = issuer.clients.list().await?;
    answer(
        StatusCode::OK,
        serde_json::json!({ "clients": clients.iter().map(client_view).collect::<Vec<_>>() }),
    )
}

/// Registers a client; a confidential one gets a secret, shown in this answer only.
#[utoipa::path(
    post,
    path = "/v1/clients",
    tag = "clients",
    request_body(content = ClientCreate, content_type = "application/json"),
    responses(
        (status = 201, description = "The client, with `client_secret` once", body = ClientView),
        (status = 415, description = "Not JSON", body = ApiErrorBody),
        (status = 400, description = "Bad input", body = ApiErrorBody),
        (status = 401, description = "No or wrong client credentials", body = ApiErrorBody),
        (status = 403, description = "The caller is not an admin", body = ApiErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = ApiErrorBody),
        (status = 503, description = "The store is unavailable; retry", body = ApiErrorBody),
    ),
    security(("client_basic" = []))
)]
pub(super) async fn create(
    State(issuer): State<Arc<Issuer>>,
    Admin(caller): Admin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if body.is_empty() {
        return Err(ApiError::Unreadable {
            status: StatusCode::BAD_REQUEST,
            part: "body",
            detail: "name and allowed are required".into(),
        });
    }
    let body: CreateBody = body_or_default(&headers, &body)?;
    let spec = ClientSpec {
        name: body.name,
        kind: body.kind.unwrap_or(ClientKind::Confidential),
        allowed: body.allowed,
        scopes: body.scopes,
        audiences: body.audiences,
        sessions_for: body.sessions_for,
        policy: body.policy,
    };
    let (client, secret) = issuer
        .clients
        .register(spec, Actor::Client(&caller.client.id))
        .await?;
    answer(
        StatusCode::CREATED,
        with_secret(client_view(&client), secret.as_deref()),
    )
}

fn with_secret(mut view: serde_json::Value, secret: Option<&String>) -> serde_json::Value {
    if let (Some(secret), Some(map)) = (secret, view.as_object_mut()) {
        map.insert("client_secret".into(), secret.as_str().into());
    }
    view
}

/// One client.
#[utoipa::path(
    operation_id = "show_client",
    get,
    path = "/v1/clients/{id}",
    tag = "clients",
    params(("id" = String, Path, description = "The client id")),
    responses(
        (status = 200, description = "The client", body = ClientView),
        (status = 404, description = "No such client", body = ApiErrorBody),
        (status = 400, description = "Bad input", body = ApiErrorBody),
        (status = 401, description = "No or wrong client credentials", body = ApiErrorBody),
        (status = 403, description = "The caller is not an admin", body = ApiErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = ApiErrorBody),
        (status = 503, description = "The store is unavailable; retry", body = ApiErrorBody),
    ),
    security(("client_basic" = []))
)]
pub(super) async fn show(
    State(issuer): State<Arc<Issuer>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    answer(
        StatusCode::OK,
        client_view(&issuer.clients.show(&id).await?),
    )
}

/// Changes a client's name, permissions, scopes, audiences, `sessions_for` or policy.
#[utoipa::path(
    patch,
    path = "/v1/clients/{id}",
    tag = "clients",
    params(("id" = String, Path, description = "The client id")),
    request_body(content = ClientUpdate, content_type = "application/json"),
    responses(
        (status = 200, description = "The changed client", body = ClientView),
        (status = 404, description = "No such client", body = ApiErrorBody),
        (status = 415, description = "Not JSON", body = ApiErrorBody),
        (status = 400, description = "Bad input", body = ApiErrorBody),
        (status = 401, description = "No or wrong client credentials", body = ApiErrorBody),
        (status = 403, description = "The caller is not an admin", body = ApiErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = ApiErrorBody),
        (status = 503, description = "The store is unavailable; retry", body = ApiErrorBody),
    ),
    security(("client_basic" = []))
)]
pub(super) async fn update(
    State(issuer): State<Arc<Issuer>>,
    Admin(caller): Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let changes: ClientChanges = body_or_default(&headers, &body)?;
    let client = issuer
        .clients
        .update(&id, changes, Actor::Client(&caller.client.id))
        .await?;
    answer(StatusCode::OK, client_view(&client))
}

/// Disables a client: it can no longer authenticate; optionally ends its sessions.
#[utoipa::path(
    post,
    path = "/v1/clients/{id}/disable",
    tag = "clients",
    params(("id" = String, Path, description = "The client id")),
    request_body(content = ClientDisable, content_type = "application/json"),
    responses(
        (status = 200, description = "The disabled client, with `sessions_ended`", body = ClientView),
        (status = 404, description = "No such client", body = ApiErrorBody),
        (status = 400, description = "Bad input", body = ApiErrorBody),
        (status = 401, description = "No or wrong client credentials", body = ApiErrorBody),
        (status = 403, description = "The caller is not an admin", body = ApiErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = ApiErrorBody),
        (status = 503, description = "The store is unavailable; retry", body = ApiErrorBody),
    ),
    security(("client_basic" = []))
)]
pub(super) async fn disable(
    State(issuer): State<Arc<Issuer>>,
    Admin(caller): Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: DisableBody = body_or_default(&headers, &body)?;
    let (client, ended) = issuer
        .clients
        .disable(&id, body.end_sessions, Actor::Client(&caller.client.id))
        .await?;
    let mut view = client_view(&client);
    view["sessions_ended"] = ended.into();
    answer(StatusCode::OK, view)
}

/// Enables a disabled client.
#[utoipa::path(
    post,
    path = "/v1/clients/{id}/enable",
    tag = "clients",
    params(("id" = String, Path, description = "The client id")),
    responses(
        (status = 200, description = "The client", body = ClientView),
        (status = 404, description = "No such client", body = ApiErrorBody),
        (status = 400, description = "Bad input", body = ApiErrorBody),
        (status = 401, description = "No or wrong client credentials", body = ApiErrorBody),
        (status = 403, description = "The caller is not an admin", body = ApiErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = ApiErrorBody),
        (status = 503, description = "The store is unavailable; retry", body = ApiErrorBody),
    ),
    security(("client_basic" = []))
)]
pub(super) async fn enable(
    State(issuer): State<Arc<Issuer>>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let client = issuer
        .clients
        .enable(&id, Actor::Client(&caller.client.id))
        .await?;
    answer(StatusCode::OK, client_view(&client))
}

/// A new secret for a confidential client (shown once); the old one may keep working for `overlap`.
#[utoipa::path(
    post,
    path = "/v1/clients/{id}/rotate-secret",
    tag = "clients",
    params(("id" = String, Path, description = "The client id")),
    request_body(content = ClientRotate, content_type = "application/json"),
    responses(
        (status = 200, description = "The client, with the new `client_secret`", body = ClientView),
        (status = 404, description = "No such client", body = ApiErrorBody),
        (status = 400, description = "Bad input", body = ApiErrorBody),
        (status = 401, description = "No or wrong client credentials", body = ApiErrorBody),
        (status = 403, description = "The caller is not an admin", body = ApiErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = ApiErrorBody),
        (status = 503, description = "The store is unavailable; retry", body = ApiErrorBody),
    ),
    security(("client_basic" = []))
)]
pub(super) async fn rotate_secret(
    State(issuer): State<Arc<Issuer>>,
    Admin(caller): Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: RotateBody = body_or_default(&headers, &body)?;
    let overlap = match body.overlap.as_deref() {
        None => None,
        Some(text) => Some(parse_duration(text).ok_or_else(|| {
            IssuerError::InvalidRequest("overlap must be a duration like \"10m\" or \"1h\"".into())
        })?),
    };
    let (client, secret) = issuer
        .clients
        .rotate_secret(&id, overlap, Actor::Client(&caller.client.id))
        .await?;
    answer(
        StatusCode::OK,
        with_secret(client_view(&client), Some(&*secret)),
    )
}

/// Deletes a disabled client and ends its sessions.
#[utoipa::path(
    delete,
    path = "/v1/clients/{id}",
    tag = "clients",
    params(("id" = String, Path, description = "The client id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "The client is still enabled: disable it first", body = ApiErrorBody),
        (status = 404, description = "No such client", body = ApiErrorBody),
        (status = 400, description = "Bad input", body = ApiErrorBody),
        (status = 401, description = "No or wrong client credentials", body = ApiErrorBody),
        (status = 403, description = "The caller is not an admin", body = ApiErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = ApiErrorBody),
        (status = 503, description = "The store is unavailable; retry", body = ApiErrorBody),
    ),
    security(("client_basic" = []))
)]
pub(super) async fn delete(
    State(issuer): State<Arc<Issuer>>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    issuer
        .clients
        .delete(&id, Actor::Client(&caller.client.id))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
