//! The HTTP layers of `tessera serve` around the routes: request ids and
//! the access log, request metrics, CORS for the browser-facing endpoints,
//! and the Prometheus `/metrics` page.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tessera_issuer::http::RequestNotes;

/// The request-id header: kept when the caller sent a usable one, made up
/// otherwise, and always on the response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming request id kept (a longer one is replaced).
const MAX_REQUEST_ID: usize = 128;

/// Request ids made here: a per-process random prefix and a counter.
struct IdSource {
    prefix: u64,
    next: AtomicU64,
}

fn id_source() -> &'static IdSource {
    static SOURCE: std::sync::OnceLock<IdSource> = std::sync::OnceLock::new();
    SOURCE.get_or_init(|| {
        use std::hash::{BuildHasher as _, Hasher as _};
        // std's per-process random hash keys: unpredictable enough for ids,
        // which are correlation handles, not secrets.
        let prefix = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        IdSource {
            prefix,
            next: AtomicU64::new(1),
        }
    })
}

/// The caller's `x-request-id` if it is one short printable token, else a new one.
fn request_id(headers: &HeaderMap) -> HeaderValue {
    let mut sent = headers.get_all(&REQUEST_ID).iter();
    if let (Some(value), None) = (sent.next(), sent.next())
        && (1..=MAX_REQUEST_ID).contains(&value.len())
        && value
            .as_bytes()
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
    {
        return value.clone();
    }
    let source = id_source();
    let n = source.next.fetch_add(1, Ordering::Relaxed);
    HeaderValue::from_str(&format!("{:016x}-{n:x}", source.prefix))
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Outermost middleware: gives the request an id (echoed on the response),
/// times it into `tessera_http_request_duration_seconds{route, method,
/// status}` and writes one access-log line (target `tessera::access`, level
/// info): id, method, route template, status, latency and the client the
/// request authenticated as. Never a token, a secret or a query string:
/// the route is the template (`/v1/sessions/{sid}`), not the path.
pub async fn observe(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(request.headers());
    let notes = RequestNotes::default();
    let method = method_label(request.method());
    request.extensions_mut().insert(notes.clone());
    request.headers_mut().insert(REQUEST_ID, id.clone());
    // A span per request only when spans are exported (the `otlp` feature
    // with an endpoint): the access line below carries the same fields.
    let span = crate::otlp::exporting().then(|| {
        tracing::info_span!(
            "request",
            otel.kind = "server",
            http.request.method = method,
            http.route = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
            tessera.client_id = tracing::field::Empty,
            tessera.request_id = id.to_str().unwrap_or_default(),
        )
    });
    let mut response = match &span {
        Some(span) => {
            use tracing::Instrument as _;
            next.run(request).instrument(span.clone()).await
        }
        None => next.run(request).await,
    };
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let route = notes.route().unwrap_or("unmatched");
    metrics::histogram!(
        "tessera_http_request_duration_seconds",
        "route" => route.to_owned(),
        "method" => method,
        "status" => status.to_string(),
    )
    .record(elapsed.as_secs_f64());
    tracing::info!(
        target: "tessera::access",
        request_id = id.to_str().unwrap_or_default(),
        method,
        route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        client_id = notes.client_id().unwrap_or("-"),
        "request"
    );
    if let Some(span) = &span {
        span.record("http.route", route);
        span.record("http.response.status_code", status);
        if let Some(client) = notes.client_id() {
            span.record("tessera.client_id", client);
        }
    }
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

/// `cors.allowed_origins`: which web origins may call the browser-facing
/// endpoints (token, revocation, discovery, key sets).
#[derive(Debug, Clone, Default)]
pub struct Cors {
    /// Exact origins (`https://app.example`), normalised. Empty: CORS off.
    pub allowed_origins: Vec<String>,
}

/// The methods a cross-origin page may use on `path`, if any.
fn cors_methods(path: &str) -> Option<&'static str> {
    match path {
        "/oauth/token" | "/oauth/revoke" => Some("POST"),
        "/.well-known/oauth-authorization-server"
        | "/.well-known/openid-configuration"
        | "/.well-known/jwks.json"
        | "/.well-known/paserk.json" => Some("GET"),
        _ => None,
    }
}

/// Request headers a page may send (`Authorization` for a confidential
/// client, `DPoP` for proofs).
const CORS_ALLOW_HEADERS: &str = "authorization, content-type, dpop";
/// Response headers a page may read.
const CORS_EXPOSE_HEADERS: &str = "dpop-nonce, www-authenticate, retry-after, x-request-id";
/// How long a browser may cache a preflight answer.
const CORS_MAX_AGE: &str = "600";

/// CORS for the endpoints [`cors_methods`] names, for the origins listed in
/// `cors.allowed_origins` (none by default). Preflights from a listed origin
/// for an allowed method are answered `204` here; other requests go on and
/// get `Access-Control-Allow-Origin` echoing the listed origin (never `*`,
/// never credentials: no endpoint here reads cookies). Requests from other
/// origins go on untouched, so the browser refuses them; every answer on
/// these paths says `Vary: Origin` for caches.
pub async fn cors(State(cors): State<Arc<Cors>>, request: Request, next: Next) -> Response {
    let Some(methods) = cors_methods(request.uri().path()) else {
        return next.run(request).await;
    };
    if cors.allowed_origins.is_empty() {
        return next.run(request).await;
    }
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .filter(|o| {
            o.to_str()
                .is_ok_and(|o| cors.allowed_origins.iter().any(|a| a == o))
        })
        .cloned();
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if let Some(origin) = &origin
        && preflight
    {
        let asked = request
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|m| m.to_str().ok())
            .unwrap_or_default();
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::VARY,
            HeaderValue::from_static(
                "origin, access-control-request-method, access-control-request-headers",
            ),
        );
        if asked == methods {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(methods),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(CORS_ALLOW_HEADERS),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(CORS_MAX_AGE),
            );
        }
        return response;
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(CORS_EXPOSE_HEADERS),
        );
    }
    response
}

/// Parses one `cors.allowed_origins` entry: `http(s)://host[:port]`, no
/// path, query or wildcard. Answers it normalised (lowercase scheme and host).
pub fn parse_origin(text: &str) -> Option<String> {
    let text = text.trim();
    let (scheme, rest) = text.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    if rest.is_empty()
        || rest
            .bytes()
            .any(|b| matches!(b, b'/' | b'?' | b'#' | b'*' | b'@') || !b.is_ascii_graphic())
    {
        return None;
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || rest.starts_with('[') => {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                // `[::1]` alone has colons but no port.
                if rest.starts_with('[') && rest.ends_with(']') {
                    (rest, None)
                } else {
                    return None;
                }
            } else {
                port.parse::<u16>().ok()?;
                (host, Some(port))
            }
        }
        _ => (rest, None),
    };
    if host.is_empty() {
        return None;
    }
    let host = host.to_ascii_lowercase();
    // Browsers omit a default port from `Origin`: so must the list.
    let port = port.filter(|p| !matches!((scheme.as_str(), *p), ("https", "443") | ("http", "80")));
    Some(match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

/// The Prometheus text page: the exporter's counters and histograms, then
/// gauges read now (event-stream subscribers, key counts and ages by state).
#[derive(Clone)]
pub struct MetricsPage {
    pub handle: metrics_exporter_prometheus::PrometheusHandle,
    pub store: Arc<dyn tessera_store::Store>,
    pub feed: Arc<tessera_revocation::Feed>,
    pub clock: Arc<dyn tessera_core::time::Clock>,
    /// The keys as last read, with the store's key mark then: a scrape
    /// reads the store only after the keys changed.
    pub keys: Arc<std::sync::Mutex<Option<KeysSeen>>>,
}

/// The store's key mark and the keys read at that mark.
pub type KeysSeen = (i64, Arc<[tessera_store::StoredKey]>);

impl MetricsPage {
    /// The store's keys, from the cache unless they changed since.
    async fn keys(&self) -> Result<Arc<[tessera_store::StoredKey]>, tessera_store::StoreError> {
        let mark = self.store.changes().borrow().keys;
        if let Some((seen, keys)) = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            && *seen == mark
        {
            return Ok(keys.clone());
        }
        let keys: Arc<[tessera_store::StoredKey]> = self.store.keys().await?.into();
        *self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((mark, keys.clone()));
        Ok(keys)
    }
}

/// Prometheus metrics (text exposition format 0.0.4).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Counters, histograms and gauges", content_type = "text/plain; version=0.0.4", body = String))
)]
pub async fn metrics_page(State(page): State<MetricsPage>) -> Response {
    use std::fmt::Write as _;
    let mut text = page.handle.render();
    let _ = writeln!(
        text,
        "# HELP tessera_revocation_stream_subscribers Open revocation event streams on this instance.\n\
         # TYPE tessera_revocation_stream_subscribers gauge\n\
         tessera_revocation_stream_subscribers {}",
        page.feed.subscribers()
    );
    match page.keys().await {
        Ok(keys) => {
            let now = page.clock.now();
            let mut counts = std::collections::BTreeMap::new();
            let mut newest = std::collections::BTreeMap::new();
            for key in keys.iter() {
                let at = (key.alg.as_str(), key.state.as_str());
                *counts.entry(at).or_insert(0u64) += 1;
                let age = now.since(key.created_at).as_secs();
                let youngest = newest.entry(at).or_insert(age);
                *youngest = (*youngest).min(age);
            }
            text.push_str(
                "# HELP tessera_keys Signing keys in the store, by algorithm and state.\n\
                 # TYPE tessera_keys gauge\n",
            );
            for ((alg, state), n) in &counts {
                let _ = writeln!(text, "tessera_keys{{alg=\"{alg}\",state=\"{state}\"}} {n}");
            }
            text.push_str(
                "# HELP tessera_key_age_seconds Age of the newest key of each algorithm and state, since it was created.\n\
                 # TYPE tessera_key_age_seconds gauge\n",
            );
            for ((alg, state), age) in &newest {
                let _ = writeln!(
                    text,
                    "tessera_key_age_seconds{{alg=\"{alg}\",state=\"{state}\"}} {age}"
                );
            }
        }
        Err(error) => tracing::warn!(%error, "metrics: cannot read keys"),
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// Buckets of the latency histograms, in seconds: 0.5 ms to 10 s.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the process's Prometheus recorder (once) and answers its handle.
/// A task drains histogram samples every 5 s, so memory stays bounded when
/// nobody scrapes.
pub fn install_metrics() -> anyhow::Result<metrics_exporter_prometheus::PrometheusHandle> {
    use anyhow::Context as _;
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&LATENCY_BUCKETS)
        .context("metrics: histogram buckets")?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|_| anyhow::anyhow!("metrics: a recorder is installed already"))?;
    tessera_issuer::metrics::describe();
    tessera_revocation::metrics::describe();
    metrics::describe_histogram!(
        "tessera_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request latency, by route template, method and status."
    );
    metrics::describe_histogram!(
        "tessera_store_operation_duration_seconds",
        metrics::Unit::Seconds,
        "Store operation latency, by operation and result."
    );
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_parsed_strictly_and_normalised() {
        for (text, want) in [
            ("https://app.example", "https://app.example"),
            ("HTTPS://App.Example:8443", "https://app.example:8443"),
            ("https://app.example:443", "https://app.example"),
            ("http://app.example:80", "http://app.example"),
            ("http://app.example:443", "http://app.example:443"),
            ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
            (" http://localhost ", "http://localhost"),
            ("http://[::1]:8080", "http://[::1]:8080"),
            ("http://[::1]", "http://[::1]"),
        ] {
            assert_eq!(parse_origin(text).as_deref(), Some(want), "{text}");
        }
        for bad in [
            "*",
            "https://*.example",
            "app.example",
            "ftp://app.example",
            "https://app.example/",
            "https://app.example/path",
            "https://app.example?x",
            "https://user@app.example",
            "https://app.example:",
            "https://app.example:99999",
            "https://",
            "null",
        ] {
            assert_eq!(parse_origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn request_ids_are_kept_when_sane_and_made_otherwise() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("abc-123_x.y:z"));
        assert_eq!(request_id(&headers), "abc-123_x.y:z");
        for bad in ["has space", "semi;colon", ""] {
            let mut headers = HeaderMap::new();
            headers.insert(REQUEST_ID, HeaderValue::from_str(bad).expect("header"));
            assert_ne!(request_id(&headers), bad);
        }
        let long = "a".repeat(MAX_REQUEST_ID + 1);
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_str(&long).expect("header"));
        assert_ne!(request_id(&headers), long.as_str());
        // Two headers: neither is believed.
        let mut headers = HeaderMap::new();
        headers.append(REQUEST_ID, HeaderValue::from_static("a"));
        headers.append(REQUEST_ID, HeaderValue::from_static("b"));
        let made = request_id(&headers);
        assert!(made != "a" && made != "b");
        // Made-up ids differ.
        assert_ne!(request_id(&HeaderMap::new()), request_id(&HeaderMap::new()));
    }
}
