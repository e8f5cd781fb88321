//! `/openapi.json`: the OpenAPI 3.1 description of every route `tessera
//! serve` answers on its API address. It is assembled from the handlers'
//! `#[utoipa::path]` annotations as the routes are registered
//! (`utoipa_axum::routes!`), so a route cannot be served without being
//! described; this module adds the document's info, the HTTP Basic scheme
//! clients authenticate with, and the shapes of the discovery answers.

#![allow(dead_code)] // The schema structs are read by the OpenAPI derive only.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::ToSchema;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// RFC 8414 authorization server metadata with Tessera's extensions.
#[derive(ToSchema)]
pub struct Metadata {
    issuer: String,
    token_endpoint: String,
    jwks_uri: String,
    revocation_endpoint: String,
    introspection_endpoint: String,
    response_types_supported: Vec<String>,
    grant_types_supported: Vec<String>,
    token_endpoint_auth_methods_supported: Vec<String>,
    revocation_endpoint_auth_methods_supported: Vec<String>,
    introspection_endpoint_auth_methods_supported: Vec<String>,
    dpop_signing_alg_values_supported: Vec<String>,
    /// `POST` here opens sessions (backends).
    sessions_endpoint: String,
    /// PASERK `k4.public` keys for PASETO tokens.
    paserk_uri: String,
    /// Revocation events; `/stream` for Server-Sent Events.
    revocation_events_endpoint: String,
    /// Token Status Lists live under this prefix.
    status_list_uri_prefix: String,
}

/// `/readyz` when ready.
#[derive(ToSchema)]
pub struct Ready {
    /// `ready`.
    status: String,
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document (JSON)"))
)]
pub(crate) async fn document(State(ops): State<crate::serve::Ops>) -> Response {
    let body = ops.document.get().cloned().unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The collected paths and schemas, with the document's info and the
/// `client_basic` security scheme, as JSON text.
pub(crate) fn finish(mut api: OpenApi) -> String {
    api.info.title = "Tessera".to_owned();
    api.info.version = env!("CARGO_PKG_VERSION").to_owned();
    api.info.description = Some(
        "Signed-token service for API sessions: backends open sessions, clients trade rotating \
         refresh tokens for short-lived access tokens (JWT or PASETO), resource servers verify \
         them offline and follow revocations. `/v1/*` errors are `{\"error\", \"message\"}`; \
         `/oauth/*` errors follow RFC 6749 §5.2."
            .to_owned(),
    );
    api.info.license = Some(utoipa::openapi::License::new("Apache-2.0"));
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "client_basic",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Basic)
                .description(Some(
                    "A confidential client's id and secret (RFC 6749 §2.3.1)",
                ))
                .build(),
        ),
    );
    api.to_pretty_json().unwrap_or_else(|_| "{}".to_owned())
}
