//! Publication of verification keys: `GET /.well-known/jwks.json` (RFC 7517)
//! and `GET /.well-known/paserk.json`.
//!
//! Every `pending`, `active` and `retired` key is published; `revoked` keys
//! and keys past their `expires_at` never are, nor is any private part. Both
//! documents are cacheable (`Cache-Control: public, max-age`) and carry a
//! strong `ETag` (a hash of the exact body), so verifiers can revalidate with
//! `If-None-Match` for a `304`.
//!
//! Both documents are served from memory: they are rendered once, and again
//! only when the store's `keys` change mark moves or a published key reaches
//! its `expires_at`. Requests that find them out of date wait for one
//! rebuild (single-flight); a flood of requests reads the store once.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::paserk::PublishedStatus;
use tessera_core::time::{Clock, SystemClock};
use tessera_core::{Algorithm, JwkSet, PaserkSet, VerificationKey};
use tessera_store::{Store, StoreError, StoredKey, Timestamp};

use crate::keys::{KeyState, verification_key};

/// Path of the JWK Set.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// Path of the PASERK set.
pub const PASERK_PATH: &str = "/.well-known/paserk.json";

#[derive(Clone)]
struct Publisher {
    store: Arc<dyn Store>,
    cache_control: HeaderValue,
    clock: Arc<dyn Clock>,
    marks: tokio::sync::watch::Receiver<tessera_store::ChangeMarks>,
    /// The rendered documents; the lock makes a rebuild single-flight.
    docs: Arc<tokio::sync::Mutex<Option<Arc<Docs>>>>,
}

/// Both documents as they were rendered, and when they go out of date.
struct Docs {
    /// The `keys` change mark they were rendered at.
    mark: i64,
    /// The earliest `expires_at` of a published key: rendered again then.
    valid_until: Option<Timestamp>,
    jwks: Rendered,
    paserk: Rendered,
}

struct Rendered {
    body: axum::body::Bytes,
    etag: String,
}

/// The key-publication routes, reading keys from `store` on each request and
/// telling caches to keep the documents for `jwks_max_age`.
pub fn routes(store: Arc<dyn Store>, jwks_max_age: Duration) -> Router {
    routes_with_clock(store, jwks_max_age, Arc::new(SystemClock))
}

/// [`routes`] with an explicit clock (for tests that drive time).
pub fn routes_with_clock(
    store: Arc<dyn Store>,
    jwks_max_age: Duration,
    clock: Arc<dyn Clock>,
) -> Router {
    let cache_control =
        HeaderValue::from_str(&format!("public, max-age={}", jwks_max_age.as_secs()))
            .unwrap_or_else(|_| HeaderValue::from_static("public, max-age=300"));
    let publisher = Publisher {
        marks: store.changes(),
        store,
        cache_control,
        clock,
        docs: Arc::default(),
    };
    openapi_routes_with(publisher).split_for_parts().0
}

/// [`routes`] with their OpenAPI description.
pub fn openapi_routes(
    store: Arc<dyn Store>,
    jwks_max_age: Duration,
) -> utoipa_axum::router::OpenApiRouter {
    let cache_control =
        HeaderValue::from_str(&format!("public, max-age={}", jwks_max_age.as_secs()))
            .unwrap_or_else(|_| HeaderValue::from_static("public, max-age=300"));
    openapi_routes_with(Publisher {
        marks: store.changes(),
        store,
        cache_control,
        clock: Arc::new(SystemClock),
        docs: Arc::default(),
    })
}

fn openapi_routes_with(publisher: Publisher) -> utoipa_axum::router::OpenApiRouter {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(jwks))
        .routes(routes!(paserk))
        .with_state(publisher)
}

/// Why a key document could not be served (only the store can fail).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The store could not be read.
    #[error("the key store is unavailable")]
    Store(#[from] StoreError),
    /// A document could not be encoded.
    #[error("a key document could not be encoded: {0}")]
    Encode(String),
}

/// The published keys with their states, in store order (oldest first), so
/// the same keys always give the same document and the same `ETag`; and the
/// earliest `expires_at` among them.
async fn published_keys(
    store: &dyn Store,
    now: Timestamp,
) -> Result<(Vec<(VerificationKey, KeyState)>, Option<Timestamp>), PublishError> {
    let stored = store.keys().await?;
    let valid_until = stored
        .iter()
        .filter(|row| publishable_state(row, now))
        .filter_map(|row| row.expires_at)
        .min();
    Ok((
        stored
            .iter()
            .filter_map(|row| publishable(row, now))
            .collect(),
        valid_until,
    ))
}

fn publishable_state(row: &StoredKey, now: Timestamp) -> bool {
    row.state.is_published() && row.expires_at.is_none_or(|exp| exp > now)
}

impl Publisher {
    /// The current documents: from memory, or rendered once more (one
    /// store read, whoever else is waiting) when the keys changed.
    async fn docs(&self) -> Result<Arc<Docs>, PublishError> {
        let mark = self.marks.borrow().keys;
        let now = self.clock.now();
        let mut slot = self.docs.lock().await;
        if let Some(docs) = slot.as_ref()
            && docs.mark == mark
            && docs.valid_until.is_none_or(|until| now < until)
        {
            return Ok(docs.clone());
        }
        let (keys, valid_until) = published_keys(self.store.as_ref(), now).await?;
        let jwks = JwkSet::from_keys(
            keys.iter()
                .filter(|(k, _)| matches!(k.alg(), Algorithm::EdDsa | Algorithm::Es256))
                .map(|(k, _)| k),
        );
        let paserk = PaserkSet {
            keys: keys
                .iter()
                .filter_map(|(key, state)| PaserkSet::entry(key, Some(published_status(*state))))
                .collect(),
        };
        let docs = Arc::new(Docs {
            mark,
            valid_until,
            jwks: render(&jwks)?,
            paserk: render(&paserk)?,
        });
        *slot = Some(docs.clone());
        Ok(docs)
    }
}

fn render(document: &impl serde::Serialize) -> Result<Rendered, PublishError> {
    let body = serde_json::to_vec(document).map_err(|e| PublishError::Encode(e.to_string()))?;
    Ok(Rendered {
        etag: entity_tag(&body),
        body: body.into(),
    })
}

fn publishable(row: &StoredKey, now: Timestamp) -> Option<(VerificationKey, KeyState)> {
    if !publishable_state(row, now) {
        return None;
    }
    let state = row.state;
    match verification_key(row) {
        Ok(key) => Some((key, state)),
        Err(e) => {
            // Publishing the others keeps every healthy key verifiable.
            tracing::error!(kid = %row.kid, error = %e, "stored key left out of publication");
            None
        }
    }
}

/// The public keys that verify JWT access tokens (RFC 7517): pending,
/// active and retired keys. Cacheable (`keys.jwks_max_age`), with an ETag.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "keys",
    responses(
        (status = 200, description = "The key set", body = crate::schema::JwkSetView),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 503, description = "The store is unavailable", body = crate::schema::ApiErrorBody),
    )
)]
async fn jwks(State(publisher): State<Publisher>, request: HeaderMap) -> Response {
    match publisher.docs().await {
        Ok(docs) => cacheable(&publisher, &request, &docs.jwks),
        Err(e) => e.into_response(),
    }
}

/// The public keys that verify PASETO `v4.public` access tokens, as PASERK.
#[utoipa::path(
    get,
    path = "/.well-known/paserk.json",
    tag = "keys",
    responses(
        (status = 200, description = "The key set", body = crate::schema::PaserkSetView),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 503, description = "The store is unavailable", body = crate::schema::ApiErrorBody),
    )
)]
async fn paserk(State(publisher): State<Publisher>, request: HeaderMap) -> Response {
    match publisher.docs().await {
        Ok(docs) => cacheable(&publisher, &request, &docs.paserk),
        Err(e) => e.into_response(),
    }
}

fn published_status(state: KeyState) -> PublishedStatus {
    match state {
        KeyState::Pending => PublishedStatus::Pending,
        KeyState::Active => PublishedStatus::Active,
        // Only published states reach here.
        _ => PublishedStatus::Retired,
    }
}

/// A `200` with the JSON body, cache headers and its `ETag`, or a bodiless
/// `304` when the request's `If-None-Match` already names that `ETag`.
fn cacheable(publisher: &Publisher, request: &HeaderMap, document: &Rendered) -> Response {
    let etag_value =
        HeaderValue::from_str(&document.etag).unwrap_or_else(|_| HeaderValue::from_static("\"\""));
    let common = [
        (header::CACHE_CONTROL, publisher.cache_control.clone()),
        (header::ETAG, etag_value),
    ];
    if none_match(request, &document.etag) {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        StatusCode::OK,
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document.body.clone(),
    )
        .into_response()
}

/// A strong entity tag: the quoted base64url SHA-256 of the body.
fn entity_tag(body: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body);
    format!("\"{}\"", tessera_core::b64::encode(digest.as_ref()))
}

/// RFC 9110 §13.1.2: `If-None-Match` uses the weak comparison, so `W/"x"`
/// matches `"x"`; `*` matches any current representation.
fn none_match(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(value).expect("header"),
        );
        map
    }

    #[test]
    fn if_none_match_comparison() {
        let etag = entity_tag(b"{}");
        assert!(etag.starts_with('"') && etag.ends_with('"'));
        assert_eq!(etag, entity_tag(b"{}"), "stable");
        assert_ne!(etag, entity_tag(b"{ }"));
        for (value, matches) in [
            (etag.clone(), true),
            (format!("W/{etag}"), true),
            (format!("\"other\", {etag}"), true),
            ("*".to_owned(), true),
            ("\"other\"".to_owned(), false),
            (etag.trim_matches('"').to_owned(), false),
        ] {
            assert_eq!(none_match(&headers(&value), &etag), matches, "{value}");
        }
        assert!(!none_match(&HeaderMap::new(), &etag));
    }
}
