//! Key administration over HTTP: `GET /v1/keys`, `POST /v1/keys/rotate`,
//! `POST /v1/keys/{kid}/revoke`.
//!
//! Who may call them is not this crate's business: the server passes a
//! [`KeyAdmin`], whose [`KeyAdmin::authorize`] runs as an extractor before
//! any handler (in `tessera serve`: a confidential client with the `admin`
//! permission). Errors are answered by `http.rs`, like the rest of the
//! crate's.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tessera_store::{StoredKey, Timestamp};

use crate::rotation::{KeyManager, KeyOpError};

/// What the key routes need from the server they are mounted in.
#[async_trait::async_trait]
pub trait KeyAdmin: Send + Sync + 'static {
    /// Lets the request through, or answers it (401, 403, 429...).
    async fn authorize(&self, parts: &Parts) -> Result<(), Response>;
    /// Runs after a key was revoked (the signer rereads its keys, so the
    /// replacement signs from the next request on).
    async fn key_revoked(&self);
    /// Now.
    fn now(&self) -> Timestamp;
}

#[derive(Clone)]
struct AdminState {
    manager: Arc<KeyManager>,
    admin: Arc<dyn KeyAdmin>,
}

/// Proof that [`KeyAdmin::authorize`] let the request through.
struct Authorized;

impl FromRequestParts<AdminState> for Authorized {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AdminState,
    ) -> Result<Self, Self::Rejection> {
        state.admin.authorize(parts).await.map(|()| Authorized)
    }
}

/// The key administration routes.
pub fn routes(manager: Arc<KeyManager>, admin: Arc<dyn KeyAdmin>) -> Router {
    openapi_routes(manager, admin).split_for_parts().0
}

/// [`routes`] with their OpenAPI description.
pub fn openapi_routes(
    manager: Arc<KeyManager>,
    admin: Arc<dyn KeyAdmin>,
) -> utoipa_axum::router::OpenApiRouter {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(rotate))
        .routes(routes!(revoke))
        .with_state(AdminState { manager, admin })
}

/// A key as admins see it (never any private part).
pub fn key_json(key: &StoredKey) -> serde_json::Value {
    let secs = |t: Timestamp| t.unix_seconds();
    json!({
        "kid": key.kid,
        "alg": key.alg.as_str(),
        "state": key.state.as_str(),
        "created_at": secs(key.created_at),
        "activates_at": secs(key.activates_at),
        "retired_at": key.retired_at.map(secs),
        "expires_at": key.expires_at.map(secs),
    })
}

/// Every signing key and its lifecycle dates.
#[utoipa::path(
    operation_id = "list_keys",
    get,
    path = "/v1/keys",
    tag = "keys",
    responses(
        (status = 200, description = "The keys", body = crate::schema::KeyList),
        (status = 401, description = "No or wrong client credentials", body = crate::schema::ApiErrorBody),
        (status = 403, description = "The caller is not an admin", body = crate::schema::ApiErrorBody),
        (status = 503, description = "The store is unavailable; retry", body = crate::schema::ApiErrorBody),
    ),
    security(("client_basic" = []))
)]
async fn list(_: Authorized, State(state): State<AdminState>) -> Result<Response, KeyOpError> {
    let keys = state.manager.store().keys().await?;
    let list: Vec<_> = keys.iter().map(key_json).collect();
    Ok(axum::Json(json!({ "keys": list })).into_response())
}

/// Starts a rotation: each algorithm gets a pending key, published now,
/// that signs from `keys.publish_ahead` on.
#[utoipa::path(
    operation_id = "rotate_keys",
    post,
    path = "/v1/keys/rotate",
    tag = "keys",
    responses(
        (status = 202, description = "The pending keys", body = crate::schema::PendingKeys),
        (status = 401, description = "No or wrong client credentials", body = crate::schema::ApiErrorBody),
        (status = 403, description = "The caller is not an admin", body = crate::schema::ApiErrorBody),
        (status = 503, description = "The store is unavailable; retry", body = crate::schema::ApiErrorBody),
    ),
    security(("client_basic" = []))
)]
async fn rotate(_: Authorized, State(state): State<AdminState>) -> Result<Response, KeyOpError> {
    let pending = state.manager.rotate(state.admin.now()).await?;
    let list: Vec<_> = pending.iter().map(key_json).collect();
    Ok((StatusCode::ACCEPTED, axum::Json(json!({ "pending": list }))).into_response())
}

/// Emergency revocation (compromise): the key is unpublished at once, a
/// `key` revocation event refuses its tokens everywhere, and if it was the
/// active key a fresh one signs from the next request.
#[utoipa::path(
    operation_id = "revoke_key",
    post,
    path = "/v1/keys/{kid}/revoke",
    tag = "keys",
    params(("kid" = String, Path, description = "The key id")),
    responses(
        (status = 200, description = "Revoked", body = crate::schema::KeyRevokedView),
        (status = 404, description = "No such key", body = crate::schema::ApiErrorBody),
        (status = 409, description = "Already revoked", body = crate::schema::ApiErrorBody),
        (status = 401, description = "No or wrong client credentials", body = crate::schema::ApiErrorBody),
        (status = 403, description = "The caller is not an admin", body = crate::schema::ApiErrorBody),
        (status = 503, description = "The store is unavailable; retry", body = crate::schema::ApiErrorBody),
    ),
    security(("client_basic" = []))
)]
async fn revoke(
    _: Authorized,
    State(state): State<AdminState>,
    Path(kid): Path<String>,
) -> Result<Response, KeyOpError> {
    if !tessera_core::key::is_valid_kid(&kid) {
        return Err(KeyOpError::NotFound(kid));
    }
    let revoked = state.manager.revoke(&kid, state.admin.now()).await?;
    state.admin.key_revoked().await;
    Ok(axum::Json(json!({
        "revoked": key_json(&revoked.key),
        "replacement": revoked.replacement.as_ref().map(key_json),
    }))
    .into_response())
}
