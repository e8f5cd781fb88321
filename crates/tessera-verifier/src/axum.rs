//! axum integration: a tower layer that verifies the bearer token and checks
//! a route's [`Requirements`], and an [`Authenticated`] extractor for handlers.
//!
//! ```no_run
//! # async fn demo(verifier: std::sync::Arc<tessera_verifier::Verifier>) {
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use tessera_verifier::{Requirements, axum::{Authenticated, RequireToken}};
//!
//! async fn me(token: Authenticated) -> String { token.claims.sub.clone() }
//!
//! let app: Router = Router::new()
//!     .route("/me", get(me).layer(RequireToken::new(verifier.clone())))
//!     .route("/admin", get(me).layer(
//!         RequireToken::new(verifier).require(Requirements::new().max_age(Duration::from_secs(300)))));
//! # }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderValue, Request, StatusCode};
use tower::{Layer, Service};

use crate::challenge::Rejection;
use crate::requirements::Requirements;
use crate::verifier::{VerifiedToken, Verifier};

/// The verified token of the current request, put there by [`RequireToken`].
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<VerifiedToken>);

impl Deref for Authenticated {
    type Target = VerifiedToken;
    fn deref(&self) -> &VerifiedToken {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = ChallengeResponse;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Without the layer there is no verified token: refuse, never assume.
        parts
            .extensions
            .get::<Authenticated>()
            .cloned()
            .ok_or(ChallengeResponse {
                rejection: Rejection::Missing,
                realm: None,
                schemes: Schemes::Bearer,
            })
    }
}

/// A [`Rejection`] as an HTTP response with its `WWW-Authenticate` challenge.
#[derive(Debug)]
pub struct ChallengeResponse {
    /// Why.
    pub rejection: Rejection,
    /// The realm to name in the challenge.
    pub realm: Option<Arc<str>>,
    /// How to challenge: `Bearer` only, `DPoP` only (the request used that
    /// scheme), or both (DPoP is accepted and no credentials came).
    pub schemes: Schemes,
}

/// Which `WWW-Authenticate` challenges a refusal carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Schemes {
    /// `Bearer`.
    #[default]
    Bearer,
    /// `DPoP` (with `algs`).
    Dpop,
    /// Both, `Bearer` first.
    Both,
}

impl IntoResponse for ChallengeResponse {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.rejection.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        let realm = self.realm.as_deref();
        let challenges = match self.schemes {
            Schemes::Bearer => vec![self.rejection.www_authenticate(realm)],
            Schemes::Dpop => vec![self.rejection.dpop_challenge(realm)],
            Schemes::Both => vec![
                self.rejection.www_authenticate(realm),
                self.rejection.dpop_challenge(realm),
            ],
        };
        let body = serde_json::json!({
            "error": self.rejection.error_code().unwrap_or("unauthorized"),
            "error_description": self.rejection.to_string(),
        });
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        for challenge in challenges {
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.append(WWW_AUTHENTICATE, value);
            }
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// Layer that admits only requests with a valid bearer token meeting the route's requirements.
#[derive(Debug, Clone)]
pub struct RequireToken {
    verifier: Arc<Verifier>,
    requirements: Arc<Requirements>,
    realm: Option<Arc<str>>,
    /// Set: `Authorization: DPoP` is accepted, proofs checked against this
    /// origin plus the request's path.
    dpop_origin: Option<Arc<str>>,
}

impl RequireToken {
    /// Any valid token.
    pub fn new(verifier: Arc<Verifier>) -> Self {
        RequireToken {
            verifier,
            requirements: Arc::new(Requirements::new()),
            realm: None,
            dpop_origin: None,
        }
    }

    /// Also accept DPoP-bound tokens (`Authorization: DPoP` with a `DPoP`
    /// proof header, RFC 9449 §7). `origin` is this server's public
    /// `https://host[:port]`, as clients address it: proofs name the full URL
    /// (`htu`), which a server behind a proxy cannot see.
    pub fn dpop(mut self, origin: &str) -> Self {
        self.dpop_origin = Some(Arc::from(origin.trim_end_matches('/')));
        self
    }

    /// Also require these scopes / `max_age` / `acr`.
    pub fn require(mut self, requirements: Requirements) -> Self {
        self.requirements = Arc::new(requirements);
        self
    }

    /// Name a realm in challenges.
    pub fn realm(mut self, realm: &str) -> Self {
        self.realm = Some(Arc::from(realm));
        self
    }

    async fn authenticate(
        &self,
        headers: &http::HeaderMap,
        method: &http::Method,
        uri: &http::Uri,
    ) -> Result<VerifiedToken, Refusal> {
        if let Some(origin) = &self.dpop_origin
            && let Some((token, proof)) = dpop_credentials(headers).map_err(Refusal::dpop)?
        {
            let url = format!(
                "{origin}{}",
                uri.path_and_query().map_or("/", |p| p.as_str())
            );
            let verified = self
                .verifier
                .verify_dpop(token, proof, method.as_str(), &url)
                .map_err(|e| Refusal::dpop(Rejection::from_dpop(e)))?;
            self.requirements
                .check(&verified.claims, self.verifier.now())
                .map_err(|e| Refusal::dpop(e.into()))?;
            return Ok(verified);
        }
        let bearer = |rejection: Rejection| Refusal {
            schemes: match (&rejection, self.dpop_origin.is_some()) {
                (Rejection::Missing, true) => Schemes::Both,
                _ => Schemes::Bearer,
            },
            rejection,
        };
        let token = bearer_token(headers).map_err(bearer)?;
        let verified = match self.verifier.verify_with_refetch(token).await {
            Err(tessera_core::VerifyError::DpopBound) => {
                return Err(bearer(Rejection::SenderConstrained));
            }
            other => other.map_err(|e| bearer(e.into()))?,
        };
        self.requirements
            .check(&verified.claims, self.verifier.now())
            .map_err(|e| bearer(e.into()))?;
        Ok(verified)
    }
}

/// A refusal and the scheme to challenge with.
struct Refusal {
    rejection: Rejection,
    schemes: Schemes,
}

impl Refusal {
    fn dpop(rejection: Rejection) -> Self {
        Refusal {
            rejection,
            schemes: Schemes::Dpop,
        }
    }
}

/// The token and proof of a request using the `DPoP` scheme: one
/// `Authorization: DPoP <token>` and one `DPoP` header. `Ok(None)` when the
/// request does not use the scheme.
pub fn dpop_credentials(headers: &http::HeaderMap) -> Result<Option<(&str, &str)>, Rejection> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| Rejection::BadRequest)?;
    let Some((scheme, token)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("dpop") {
        return Ok(None);
    }
    if values.next().is_some() {
        return Err(Rejection::BadRequest);
    }
    let token = token.trim_start_matches(' ');
    if token.is_empty() || token.contains(' ') {
        return Err(Rejection::BadRequest);
    }
    let mut proofs = headers.get_all("dpop").iter();
    let (Some(proof), None) = (proofs.next(), proofs.next()) else {
        // RFC 9449 §7.1: exactly one proof.
        return Err(Rejection::InvalidDpopProof(
            tessera_core::dpop::DpopError::Malformed("exactly one DPoP header is required").into(),
        ));
    };
    let proof = proof.to_str().map_err(|_| Rejection::BadRequest)?;
    Ok(Some((token, proof)))
}

impl RequireToken {}

/// The token of a single `Authorization: Bearer <token>` header (RFC 6750 §2.1).
pub fn bearer_token(headers: &http::HeaderMap) -> Result<&str, Rejection> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Rejection::Missing);
    };
    if values.next().is_some() {
        return Err(Rejection::BadRequest);
    }
    let value = value.to_str().map_err(|_| Rejection::BadRequest)?;
    let (scheme, token) = value.split_once(' ').ok_or(Rejection::BadRequest)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Another scheme (Basic, DPoP, ...) carries no bearer token.
        return Err(Rejection::Missing);
    }
    let token = token.trim_start_matches(' ');
    if token.is_empty() || token.contains(' ') {
        return Err(Rejection::BadRequest);
    }
    Ok(token)
}

impl<S> Layer<S> for RequireToken {
    type Service = RequireTokenService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequireTokenService {
            inner,
            config: self.clone(),
        }
    }
}

/// The service made by [`RequireToken`].
#[derive(Debug, Clone)]
pub struct RequireTokenService<S> {
    inner: S,
    config: RequireToken,
}

impl<S> Service<Request<Body>> for RequireTokenService<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // The clone is not ready; keep the ready one for this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(async move {
            let authenticated = config
                .authenticate(request.headers(), request.method(), request.uri())
                .await;
            match authenticated {
                Ok(verified) => {
                    request
                        .extensions_mut()
                        .insert(Authenticated(Arc::new(verified)));
                    inner.call(request).await
                }
                Err(Refusal { rejection, schemes }) => {
                    tracing::debug!(%rejection, "request refused");
                    Ok(ChallengeResponse {
                        rejection,
                        realm: config.realm.clone(),
                        schemes,
                    }
                    .into_response())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for v in values {
            map.append(AUTHORIZATION, HeaderValue::from_str(v).expect("header"));
        }
        map
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(&headers(&["Bearer abc"])), Ok("abc"));
        assert_eq!(bearer_token(&headers(&["bearer  abc"])), Ok("abc"));
        assert_eq!(bearer_token(&headers(&[])), Err(Rejection::Missing));
        assert_eq!(
            bearer_token(&headers(&["Basic dXNlcjpwdw=="])),
            Err(Rejection::Missing)
        );
        assert_eq!(
            bearer_token(&headers(&["Bearer"])),
            Err(Rejection::BadRequest)
        );
        assert_eq!(
            bearer_token(&headers(&["Bearer "])),
            Err(Rejection::BadRequest)
        );
        assert_eq!(
            bearer_token(&headers(&["Bearer a b"])),
            Err(Rejection::BadRequest)
        );
        assert_eq!(
            bearer_token(&headers(&["Bearer a", "Bearer b"])),
            Err(Rejection::BadRequest)
        );
    }
}
