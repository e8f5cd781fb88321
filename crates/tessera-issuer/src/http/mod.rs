//! The issuer's HTTP routes. Handlers stay thin: extract, call the
//! [`Issuer`], map errors through `errors.rs`.

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

pub use clients::client_view;

use crate::Issuer;

mod auth;
mod clients;
mod errors;
mod oauth;
mod sessions;

pub use errors::{ApiError, OAuthError};

/// All issuer routes, with the issuer as state.
pub fn router(issuer: Arc<Issuer>) -> Router {
    Router::new()
        .route(
            "/v1/sessions",
            post(sessions::open)
                .get(sessions::list)
                .delete(sessions::end_subject),
        )
        .route(
            "/v1/sessions/{sid}",
            get(sessions::show).delete(sessions::end_one),
        )
        .route("/v1/sessions/{sid}/elevate", post(sessions::elevate))
        .route("/v1/audit", get(sessions::audit))
        .route("/v1/clients", get(clients::list).post(clients::create))
        .route(
            "/v1/clients/{id}",
            get(clients::show)
                .patch(clients::update)
                .delete(clients::delete),
        )
        .route("/v1/clients/{id}/disable", post(clients::disable))
        .route("/v1/clients/{id}/enable", post(clients::enable))
        .route(
            "/v1/clients/{id}/rotate-secret",
            post(clients::rotate_secret),
        )
        .route("/oauth/token", post(oauth::token))
        .route("/oauth/revoke", post(oauth::revoke))
        .route("/oauth/introspect", post(oauth::introspect))
        .with_state(issuer)
}

/// Authenticates an admin caller (HTTP Basic, a confidential client with the
/// `admin` permission), for admin routes served beside the issuer's.
pub async fn authenticate_admin(
    issuer: &Issuer,
    headers: &axum::http::HeaderMap,
) -> Result<Arc<crate::clients::AuthenticatedClient>, ApiError> {
    let client = issuer
        .clients()
        .authenticate(auth::require_basic(headers)?)
        .await?;
    client.require(tessera_store::Permission::Admin)?;
    Ok(client)
}
