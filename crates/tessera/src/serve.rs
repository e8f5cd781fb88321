//! `tessera serve`: opens the store, makes sure signing keys exist, builds
//! the issuer and publication routers, and serves them with limits,
//! timeouts and tracing until SIGTERM or Ctrl-C.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use clap::ValueEnum;
use serde_json::json;
use tessera_core::{Algorithm, MasterKey};
use tessera_store::Store;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::Config;

/// Largest request body accepted (every endpoint takes small JSON or forms).
const BODY_LIMIT: usize = 64 * 1024;
/// Longest a request may take before it is answered `408`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// After a shutdown signal, how long open connections (event streams) may
/// keep the process alive.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// The algorithms that get a key on first start.
/// Every algorithm Tessera keeps an active key for: EdDSA JWTs, ES256 JWTs
/// (`tokens.jwt_alg`, globally or per client) and PASETO `v4.public`.
pub const DEFAULT_ALGORITHMS: [Algorithm; 3] =
    [Algorithm::EdDsa, Algorithm::Es256, Algorithm::V4Public];

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber: `RUST_LOG` (default `default_level`) in
/// `format`; with `export`, also the OpenTelemetry exporter when built with
/// the `otlp` feature and an OTLP endpoint is set (its guard flushes at
/// exit: keep it until the runtime has ended). Call outside the runtime.
pub fn init_tracing(
    format: LogFormat,
    default_level: &str,
    export: bool,
) -> anyhow::Result<Option<crate::otlp::Guard>> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let (otel, guard) = match if export { crate::otlp::layer()? } else { None } {
        Some((layer, guard)) => (Some(layer), Some(guard)),
        None => (None, None),
    };
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => registry.with(fmt).try_init(),
        LogFormat::Json => registry.with(fmt.json()).try_init(),
    };
    if guard.is_some() {
        tracing::info!("OpenTelemetry: exporting request spans over OTLP");
    }
    Ok(guard)
}

/// Opens the configured store: PostgreSQL for `postgres://` URLs, else the
/// SQLite file (creating `data_dir` for the default one).
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    if config.store_url.starts_with("postgres") {
        let settings = tessera_store::postgres::PgSettings {
            max_connections: config.max_connections,
        };
        let store = tessera_store::postgres::PgStore::connect(&config.store_url, &settings)
            .await
            .context("store.url: cannot open the PostgreSQL store")?;
        return Ok(Arc::new(store));
    }
    private_data_dir(&config.data_dir)?;
    let store = tessera_store::sqlite::SqliteStore::open(&config.store_url)
        .await
        .context("store.url: cannot open the store")?;
    Ok(Arc::new(store))
}

/// Creates `data_dir` with mode 0700, or tightens an existing one that
/// others could read (it holds the database and, by default, the master key).
pub(crate) fn private_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
        builder.mode(0o700);
        builder
            .create(dir)
            .with_context(|| format!("data_dir: cannot create {}", dir.display()))?;
        let mode = std::fs::metadata(dir)
            .with_context(|| format!("data_dir: {}", dir.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            // Tighten a directory that holds only Tessera's files; one shared
            // with other things (`.`, a home directory) is the operator's to
            // change, so say so instead.
            let only_ours = std::fs::read_dir(dir)
                .map(|entries| {
                    entries.filter_map(Result::ok).all(|e| {
                        let name = e.file_name();
                        let name = name.to_string_lossy();
                        name.starts_with("tessera.db") || name == "master.key"
                    })
                })
                .unwrap_or(false);
            if only_ours {
                tracing::warn!(data_dir = %dir.display(), "data_dir was open to others; now 0700");
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .with_context(|| format!("data_dir: cannot chmod {}", dir.display()))?;
            } else {
                tracing::warn!(data_dir = %dir.display(), "data_dir is open to other users and holds other files; make it 0700 (chmod 700) or give Tessera a directory of its own");
            }
        }
    }
    #[cfg(not(unix))]
    builder
        .create(dir)
        .with_context(|| format!("data_dir: cannot create {}", dir.display()))?;
    Ok(())
}

/// The store an admin command works on: it must exist already, with a
/// master key beside it. Unlike `serve`, an admin command never creates a
/// database or a master key: run from the wrong directory, it says where it
/// looked instead of quietly starting an empty store.
pub async fn open_admin_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let looked = || {
        format!(
            "looked at data_dir {} and store.url {}",
            config.data_dir.display(),
            config.store_url.redacted()
        )
    };
    if config.master_key.is_none() && !config.master_key_path().exists() {
        anyhow::bail!(
            "no master key: TESSERA_MASTER_KEY is not set and {} does not exist ({}); \
             run this where `tessera serve` runs, with the same --config or TESSERA_* settings",
            config.master_key_path().display(),
            looked()
        );
    }
    if config.store_url.starts_with("postgres") {
        let settings = tessera_store::postgres::PgSettings {
            max_connections: config.max_connections.min(4),
        };
        return match tessera_store::postgres::PgStore::connect_existing(
            &config.store_url,
            &settings,
        )
        .await
        {
            Ok(store) => Ok(Arc::new(store)),
            Err(tessera_store::StoreError::NotFound) => anyhow::bail!(
                "no Tessera store in that PostgreSQL database ({}); start `tessera serve` on it first",
                looked()
            ),
            Err(e) => Err(e).context("store.url: cannot open the PostgreSQL store"),
        };
    }
    let path = config
        .store_url
        .strip_prefix("sqlite://")
        .unwrap_or_default();
    if path.is_empty() || !std::path::Path::new(path).exists() {
        anyhow::bail!(
            "no Tessera store: {path:?} does not exist ({}); run this where `tessera serve` runs, \
             with the same --config or TESSERA_* settings",
            looked()
        );
    }
    let store = tessera_store::sqlite::SqliteStore::open(&config.store_url)
        .await
        .context("store.url: cannot open the store")?;
    Ok(Arc::new(store))
}

/// Runs the server until a shutdown signal.
pub async fn run(mut config: Config) -> anyhow::Result<()> {
    for name in &config.unknown_env {
        tracing::warn!(variable = %name, "environment variable names no Tessera setting; ignored");
    }
    // The master key first: a start refused for it leaves nothing behind.
    let master: Arc<MasterKey> = Arc::new(crate::master_key::load(&mut config)?);
    let metrics = crate::web::install_metrics()?;
    let store: Arc<dyn Store> = Arc::new(crate::metered::Metered(open_store(&config).await?));
    let clock = Arc::new(tessera_issuer::SystemClock);
    {
        use tessera_issuer::Clock as _;
        tessera_revocation::ensure_signing_keys(&*store, &master, &DEFAULT_ALGORITHMS, clock.now())
            .await
            .context("creating signing keys")?;
    }

    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("listen: cannot bind {}", config.listen))?;
    let bound = listener.local_addr().context("listen: no local address")?;
    let issuer_url = config.issuer_for(bound);

    let issuer_config = tessera_issuer::IssuerConfig {
        rate_limits: config.rate_limits,
        trusted_proxies: config.trusted_proxies.clone(),
        dpop_require_nonce: config.dpop_require_nonce,
        ..tessera_issuer::IssuerConfig::new(issuer_url.clone(), config.policy())
    };
    let issuer = tessera_issuer::Issuer::new(issuer_config, store.clone(), master.clone(), clock)
        .await
        .context("starting the issuer")?;

    match issuer.clients().legacy_secret_hashes().await {
        Ok(ids) if !ids.is_empty() => tracing::warn!(
            clients = ?ids,
            "these clients still have argon2id secret hashes from an earlier build: each is \
             upgraded at its next successful login, but wrong guesses against them cost a slow \
             hash; rotate their secrets (tessera clients rotate-secret ID --overlap 1h)"
        ),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "could not list clients"),
    }

    let manager = Arc::new(tessera_revocation::KeyManager::new(
        store.clone(),
        master.clone(),
        crate::keys::settings(&config),
    ));
    manager.spawn_schedule(
        schedule_interval(config.publish_ahead),
        Arc::new(tessera_core::time::SystemClock),
    );
    let console = Arc::new(crate::console::Console::new(
        issuer.clone(),
        manager.clone(),
        store.clone(),
        &master,
        &issuer_url,
    ));
    let feed = tessera_revocation::Feed::new(
        store.clone(),
        master,
        tessera_revocation::FeedSettings {
            max_subscribers: config.max_subscribers,
            ..tessera_revocation::FeedSettings::new(issuer_url.clone(), config.status_list_ttl)
        },
        Arc::new(tessera_core::time::SystemClock),
    );

    let routes = issuer
        .openapi_router()
        .merge(tessera_revocation::admin::openapi_routes(
            manager,
            Arc::new(crate::keys::IssuerKeyAdmin(issuer.clone())),
        ))
        .merge(feed.openapi_routes())
        .merge(crate::console::routes(console));
    let metrics_page = crate::web::MetricsPage {
        handle: metrics,
        store: store.clone(),
        feed: feed.clone(),
        clock: Arc::new(tessera_core::time::SystemClock),
        keys: Arc::default(),
    };
    let metrics_router = utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(crate::web::metrics_page))
        .with_state(metrics_page);
    let (routes, metrics_apart) = match &config.metrics_listen {
        None => (routes.merge(metrics_router), None),
        Some(_) => (routes, Some(metrics_router.split_for_parts().0)),
    };
    let cors = Arc::new(crate::web::Cors {
        allowed_origins: config.cors_allowed_origins.clone(),
    });
    let app = app(routes, store, &issuer_url, config.jwks_max_age)
        .layer(axum::middleware::from_fn_with_state(
            issuer.clone(),
            tessera_issuer::http::limit_requests,
        ))
        .layer(axum::middleware::from_fn_with_state(cors, crate::web::cors))
        .layer(axum::middleware::from_fn(crate::web::observe));

    tracing::info!(
        access_ttl = ?config.access_ttl,
        token_format = config.token_format.as_str(),
        idle_timeout = ?config.idle_timeout,
        absolute_lifetime = ?config.absolute_lifetime,
        refresh_grace = ?config.refresh_grace,
        max_per_subject = ?config.max_per_subject,
        limit_policy = ?config.limit_policy,
        rotation_period = ?config.rotation_period,
        publish_ahead = ?config.publish_ahead,
        retire_margin = ?config.retire_margin,
        jwks_max_age = ?config.jwks_max_age,
        status_list_ttl = ?config.status_list_ttl,
        "settings"
    );
    println!("listening on {bound}");
    let _ = std::io::stdout().flush();
    tracing::info!(addr = %bound, issuer = %issuer_url, "tessera serving");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let limits = crate::connections::Limits {
        max_connections: config.http_max_connections,
        header_read_timeout: config.http_header_read_timeout,
        idle_timeout: config.http_idle_timeout,
    };
    let stats = Arc::new(crate::connections::Stats::default());
    if let (Some(router), Some(addr)) = (metrics_apart, &config.metrics_listen) {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("metrics.listen: cannot bind {addr}"))?;
        let bound = listener
            .local_addr()
            .context("metrics.listen: no local address")?;
        println!("metrics on {bound}");
        tracing::info!(addr = %bound, "metrics served apart");
        let router = router
            .route_layer(axum::middleware::from_fn(tessera_issuer::http::note_route))
            .layer(axum::middleware::from_fn(crate::web::observe));
        tokio::spawn(crate::connections::serve(
            listener,
            router,
            crate::connections::Limits {
                max_connections: 64,
                ..limits
            },
            Arc::new(crate::connections::Stats::default()),
            stop_rx.clone(),
        ));
    }
    let mut server = tokio::spawn(crate::connections::serve(
        listener,
        app,
        limits,
        stats,
        stop_rx.clone(),
    ));
    tokio::select! {
        result = &mut server => {
            result.context("server task")?;
            anyhow::bail!("the accept loop ended by itself");
        }
        () = shutdown_signal() => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
    feed.close();
    let _ = stop_tx.send(true);
    match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
        Ok(result) => result.context("server task")?,
        Err(_) => {
            tracing::warn!("connections still open after the grace period; closing them");
            server.abort();
        }
    }
    drop(stop_rx);
    tracing::info!("stopped");
    Ok(())
}

/// How often the key schedule looks for due steps: a quarter of
/// `publish_ahead`, between 100 ms and 10 s (a step done late only keeps a
/// pending key published longer).
fn schedule_interval(publish_ahead: Duration) -> Duration {
    (publish_ahead / 4).clamp(Duration::from_millis(100), Duration::from_secs(10))
}

/// The whole application: issuer routes, key publication, discovery,
/// health and `/openapi.json` (the description of all of them), under the
/// body-limit, timeout and trace layers.
pub fn app(
    issuer_routes: utoipa_axum::router::OpenApiRouter,
    store: Arc<dyn Store>,
    issuer: &str,
    jwks_max_age: Duration,
) -> Router {
    use utoipa_axum::routes;
    let document = Arc::new(std::sync::OnceLock::new());
    let ops = utoipa_axum::router::OpenApiRouter::new()
        // The same document serves both paths: `openid-configuration` is
        // where OpenID Connect stacks (.NET, Go, Java) look for `jwks_uri`.
        .routes(routes!(discovery))
        .routes(routes!(openid_configuration))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(crate::openapi::document))
        .with_state(Ops {
            document: document.clone(),
            store: store.clone(),
            metadata: Arc::new(metadata(issuer)),
            cache_control: HeaderValue::from_str(&format!(
                "public, max-age={}",
                jwks_max_age.as_secs()
            ))
            .unwrap_or_else(|_| HeaderValue::from_static("public, max-age=300")),
        });
    let (router, api) = issuer_routes
        .merge(tessera_revocation::publish::openapi_routes(
            store,
            jwks_max_age,
        ))
        .merge(ops)
        .split_for_parts();
    let _ = document.set(crate::openapi::finish(api));
    router
        .route_layer(axum::middleware::from_fn(tessera_issuer::http::note_route))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(TraceLayer::new_for_http())
}

#[derive(Clone)]
pub(crate) struct Ops {
    /// `/openapi.json`, set once the routes are assembled.
    pub(crate) document: Arc<std::sync::OnceLock<String>>,
    store: Arc<dyn Store>,
    metadata: Arc<serde_json::Value>,
    cache_control: HeaderValue,
}

/// RFC 8414 metadata, with Tessera's extensions.
pub fn metadata(issuer: &str) -> serde_json::Value {
    let base = issuer.trim_end_matches('/');
    json!({
        "issuer": issuer,
        "token_endpoint": format!("{base}/oauth/token"),
        "jwks_uri": format!("{base}{}", tessera_revocation::publish::JWKS_PATH),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "introspection_endpoint": format!("{base}/oauth/introspect"),
        "response_types_supported": [],
        "grant_types_supported": ["refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
        "dpop_signing_alg_values_supported": ["EdDSA", "ES256"],
        "sessions_endpoint": format!("{base}/v1/sessions"),
        "paserk_uri": format!("{base}{}", tessera_revocation::publish::PASERK_PATH),
        "revocation_events_endpoint": format!("{base}/v1/revocations"),
        "status_list_uri_prefix": tessera_core::statuslist::status_list_uri_prefix(base),
    })
}

/// Authorization server metadata (RFC 8414), with Tessera's extensions
/// (`sessions_endpoint`, `paserk_uri`, `revocation_events_endpoint`,
/// `status_list_uri_prefix`).
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "discovery",
    responses((status = 200, description = "The metadata", body = crate::openapi::Metadata))
)]
async fn discovery(State(ops): State<Ops>) -> Response {
    metadata_answer(&ops)
}

/// The same metadata, where OpenID Connect libraries look for it.
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = "discovery",
    responses((status = 200, description = "The metadata", body = crate::openapi::Metadata))
)]
async fn openid_configuration(State(ops): State<Ops>) -> Response {
    metadata_answer(&ops)
}

fn metadata_answer(ops: &Ops) -> Response {
    (
        [(header::CACHE_CONTROL, ops.cache_control.clone())],
        axum::Json(ops.metadata.as_ref().clone()),
    )
        .into_response()
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain"))
)]
async fn healthz() -> &'static str {
    "ok"
}

/// Ready to serve: the store answers and an active signing key exists.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = crate::openapi::Ready),
        (status = 503, description = "Not ready", body = tessera_issuer::http::schema::ApiErrorBody),
    )
)]
async fn readyz(State(ops): State<Ops>) -> Response {
    let unavailable = |message: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"error": "unavailable", "message": message})),
        )
            .into_response()
    };
    if let Err(e) = ops.store.ping().await {
        tracing::warn!(error = %e, "readiness: store unreachable");
        return unavailable("the store is unreachable");
    }
    match ops.store.keys().await {
        Ok(keys)
            if keys
                .iter()
                .any(|k| k.state == tessera_revocation::KeyState::Active) =>
        {
            axum::Json(json!({"status": "ready"})).into_response()
        }
        Ok(_) => unavailable("no active signing key"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: cannot read keys");
            unavailable("the store is unreachable")
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_points_everywhere_from_the_issuer() {
        let m = metadata("https://auth.example");
        assert_eq!(m["issuer"], "https://auth.example");
        for (field, url) in [
            ("token_endpoint", "https://auth.example/oauth/token"),
            ("jwks_uri", "https://auth.example/.well-known/jwks.json"),
            ("revocation_endpoint", "https://auth.example/oauth/revoke"),
            (
                "introspection_endpoint",
                "https://auth.example/oauth/introspect",
            ),
            ("sessions_endpoint", "https://auth.example/v1/sessions"),
            ("paserk_uri", "https://auth.example/.well-known/paserk.json"),
            (
                "revocation_events_endpoint",
                "https://auth.example/v1/revocations",
            ),
            (
                "status_list_uri_prefix",
                "https://auth.example/statuslists/",
            ),
        ] {
            assert_eq!(m[field], url, "{field}");
        }
        assert_eq!(
            m["grant_types_supported"],
            json!(["refresh_token", "client_credentials"])
        );
        assert_eq!(
            m["token_endpoint_auth_methods_supported"],
            json!(["client_secret_basic", "none"])
        );
        assert_eq!(
            m["dpop_signing_alg_values_supported"],
            json!(["EdDSA", "ES256"])
        );
    }
}
