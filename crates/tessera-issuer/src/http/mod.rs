//! The issuer's HTTP routes. Handlers stay thin: extract, call the
//! [`Issuer`], map errors through `errors.rs`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use client_ip::{Cidr, client_ip};
pub use clients::client_view;

use crate::{Issuer, IssuerError};

mod auth;
mod client_ip;
mod clients;
mod errors;
mod oauth;
pub mod schema;
mod sessions;

pub use errors::{ApiError, OAuthError};

/// All issuer routes, with the issuer as state.
pub fn router(issuer: Arc<Issuer>) -> Router {
    routes(issuer).split_for_parts().0
}

/// All issuer routes with their OpenAPI description: each route is
/// registered together with its handler's `#[utoipa::path]`, so the
/// document cannot miss a served route.
pub fn routes(issuer: Arc<Issuer>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(
            sessions::open,
            sessions::list,
            sessions::end_subject
        ))
        .routes(routes!(sessions::show, sessions::end_one))
        .routes(routes!(sessions::elevate))
        .routes(routes!(sessions::audit))
        .routes(routes!(clients::list, clients::create))
        .routes(routes!(clients::show, clients::update, clients::delete))
        .routes(routes!(clients::disable))
        .routes(routes!(clients::enable))
        .routes(routes!(clients::rotate_secret))
        .routes(routes!(oauth::token))
        .routes(routes!(oauth::revoke))
        .routes(routes!(oauth::introspect))
        .with_state(issuer)
}

/// Parses a token-endpoint form body as `/oauth/token` does (its fields
/// are read by the endpoint; others are ignored). For fuzzing.
#[doc(hidden)]
pub fn parse_token_form(body: &[u8]) -> bool {
    serde_urlencoded::from_bytes::<oauth::TokenForm>(body).is_ok()
}

/// The client's address (after `http.trusted_proxies`), put on each
/// request by [`limit_requests`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub std::net::IpAddr);

/// Middleware for the whole application: resolves the client's address
/// (trusted proxies only) for the handlers and audit records, and answers
/// 429 with `Retry-After` to a client IP over its limit on `/oauth/*`,
/// `/v1/*` and `/statuslists/*`, before anything runs.
pub async fn limit_requests(
    State(issuer): State<Arc<Issuer>>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(peer) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
    {
        let ip = client_ip(peer, request.headers(), &issuer.config.trusted_proxies);
        request.extensions_mut().insert(ClientIp(ip));
        let path = request.uri().path();
        let oauth = path.starts_with("/oauth/");
        if (oauth
            || path.starts_with("/v1/")
            || path.starts_with("/statuslists/")
            // Console sign-in only: a signed-in admin is never locked out
            // by failed logins from a shared address.
            || path.starts_with("/admin/login"))
            && let Err(limited) = issuer.limits.request(ip)
        {
            let error = rate_limited(limited);
            return if oauth {
                OAuthError::Issuer(error).into_response()
            } else {
                ApiError::Issuer(error).into_response()
            };
        }
    }
    next.run(request).await
}

/// What a request's access-log line learns while the request runs: the
/// route it matched and the client it authenticated as. The binary's
/// access-log middleware puts one on each request and reads it afterwards.
#[derive(Clone, Default)]
pub struct RequestNotes(Arc<Notes>);

#[derive(Default)]
struct Notes {
    route: std::sync::OnceLock<axum::extract::MatchedPath>,
    client_id: std::sync::OnceLock<String>,
}

impl RequestNotes {
    /// The route template the request matched (`/v1/sessions/{sid}`), if any.
    pub fn route(&self) -> Option<&str> {
        self.0.route.get().map(axum::extract::MatchedPath::as_str)
    }

    /// The client the request authenticated as, if it did.
    pub fn client_id(&self) -> Option<&str> {
        self.0.client_id.get().map(String::as_str)
    }

    /// Notes the matched route (the first one set stays).
    pub fn set_route(&self, route: axum::extract::MatchedPath) {
        let _ = self.0.route.set(route);
    }

    /// Notes the client the request authenticated as (the first one set stays).
    pub fn set_client_id(&self, id: &str) {
        let _ = self.0.client_id.set(id.to_owned());
    }
}

/// Who made a request, for its audit records: the client's address (after
/// `http.trusted_proxies`) and user agent, as the API's handlers record them.
pub fn request_context(
    headers: &axum::http::HeaderMap,
    extensions: &axum::http::Extensions,
) -> crate::sessions::RequestContext {
    auth::context(headers, extensions)
}

/// Route middleware (`Router::route_layer`): notes the matched route on the
/// request's [`RequestNotes`].
pub async fn note_route(request: Request, next: Next) -> Response {
    if let (Some(notes), Some(route)) = (
        request.extensions().get::<RequestNotes>(),
        request.extensions().get::<axum::extract::MatchedPath>(),
    ) {
        notes.set_route(route.clone());
    }
    next.run(request).await
}

/// The error for a refusal by a limiter.
pub(crate) fn rate_limited(
    (kind, retry_after): (crate::limits::LimitKind, std::time::Duration),
) -> IssuerError {
    crate::metrics::rate_limited(kind.as_str());
    IssuerError::RateLimited {
        limit: kind.as_str(),
        // Whole seconds, rounded up, at least 1.
        retry_after_secs: retry_after
            .as_secs()
            .saturating_add(u64::from(retry_after.subsec_nanos() > 0))
            .max(1),
    }
}

/// Authenticates an admin caller (HTTP Basic, a confidential client with the
/// `admin` permission), for admin routes served beside the issuer's.
pub async fn authenticate_admin(
    issuer: &Issuer,
    headers: &axum::http::HeaderMap,
    extensions: &axum::http::Extensions,
) -> Result<Arc<crate::clients::AuthenticatedClient>, ApiError> {
    let client = auth::authenticate(issuer, auth::require_basic(headers)?, extensions).await?;
    client.require(tessera_store::Permission::Admin)?;
    Ok(client)
}
