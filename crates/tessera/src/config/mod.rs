//! Settings (README "Configuration"): a TOML file overridden by
//! `TESSERA_*` environment variables, with the documented defaults.
//!
//! [`Config::load`] is a pure function of the file's text and the
//! environment, so every rule is a table test. A bad setting is an error
//! that names it; unknown keys in the file are errors too.

mod sources;
mod store_url;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use tessera_issuer::parse_duration;

use tessera_core::{MasterKey, TokenFormat};
use tessera_store::LimitPolicy;

/// Added to `keys.jwks_max_age` for the default `keys.publish_ahead`, so a
/// verifier that fetched the JWKS just before a new key appeared has
/// refreshed it, with a margin for clock skew, before that key signs.
pub const PUBLISH_MARGIN: Duration = Duration::from_secs(60);

/// Every setting, resolved.
#[derive(Debug)]
pub struct Config {
    /// `listen`: the socket address to bind (port 0 picks one).
    pub listen: String,
    /// `issuer`: the public base URL; `None` means `http://` + the bound address.
    pub issuer: Option<String>,
    /// `data_dir`.
    pub data_dir: PathBuf,
    /// `store.url` (its `Debug` and `Display` hide any password).
    pub store_url: StoreUrl,
    /// `store.max_connections`: PostgreSQL pool size per instance. Default 16.
    pub max_connections: u32,
    /// `master_key`, when given; otherwise it lives in `data_dir/master.key`.
    pub master_key: Option<MasterKey>,
    /// The file `master_key` was read from (`TESSERA_MASTER_KEY_FILE`), if any.
    pub master_key_file: Option<PathBuf>,
    /// Start even when `data_dir/master.key` is readable by others
    /// (`--allow-readable-master-key`; never from a file or the environment).
    pub allow_readable_master_key: bool,
    /// `tokens.access_ttl`.
    pub access_ttl: Duration,
    /// `tokens.format`.
    pub token_format: TokenFormat,
    /// `tokens.jwt_alg`: `EdDSA` (default) or `ES256`.
    pub jwt_alg: tessera_core::Algorithm,
    /// `tokens.require_dpop`: every client's tokens must be DPoP-bound
    /// (also per client). Default false.
    pub require_dpop: bool,
    /// `dpop.require_nonce`: DPoP proofs at the token endpoint must carry a
    /// server nonce (RFC 9449 §8). Default false.
    pub dpop_require_nonce: bool,
    /// `sessions.idle_timeout`.
    pub idle_timeout: Duration,
    /// `sessions.absolute_lifetime`.
    pub absolute_lifetime: Duration,
    /// `sessions.refresh_grace`.
    pub refresh_grace: Duration,
    /// `sessions.max_per_subject`.
    pub max_per_subject: Option<u32>,
    /// `sessions.limit_policy`.
    pub limit_policy: LimitPolicy,
    /// `keys.rotation_period`.
    pub rotation_period: Duration,
    /// `keys.publish_ahead`.
    pub publish_ahead: Duration,
    /// `keys.jwks_max_age`.
    pub jwks_max_age: Duration,
    /// `keys.retire_margin`: how long past `tokens.access_ttl` a retired key
    /// stays published (the verifiers' clock leeway). Default 120 s.
    pub retire_margin: Duration,
    /// `revocation.status_list_ttl`.
    pub status_list_ttl: Duration,
    /// `revocation.max_subscribers`: open event streams at most. Default 1000.
    pub max_subscribers: usize,
    /// `http.max_connections`: connections served at once. Default 2048.
    pub http_max_connections: usize,
    /// `http.header_read_timeout`: a request's headers (and the next
    /// request on a kept-alive connection) must arrive within this. Default 10 s.
    pub http_header_read_timeout: Duration,
    /// `http.idle_timeout`: a connection with no traffic is closed after
    /// this. Default 60 s.
    pub http_idle_timeout: Duration,
    /// `http.trusted_proxies`: CIDRs whose `X-Forwarded-For` is
    /// believed. Default none.
    pub trusted_proxies: Vec<tessera_issuer::http::Cidr>,
    /// `cors.allowed_origins`: web origins that may call the token,
    /// revocation, discovery and key-set endpoints. Default none.
    pub cors_allowed_origins: Vec<String>,
    /// `metrics.listen`: a separate address for `/metrics`; `None` serves
    /// it on `listen` beside the API.
    pub metrics_listen: Option<String>,
    /// `rate_limits.*`.
    pub rate_limits: tessera_issuer::limits::RateLimitSettings,
    /// `TESSERA_*` variables that name no setting (reported, not fatal:
    /// the environment is shared with other tools).
    pub unknown_env: Vec<String>,
}

pub use store_url::StoreUrl;

/// A setting that cannot be used, named as in API.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// `sessions.idle_timeout`, `config file`, ...
    pub setting: String,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.setting, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// Rate limits off is allowed (a gateway in front may limit already), but
/// never quietly.
fn true_or_warn_disabled() {
    tracing::warn!(
        "rate_limits.enabled = false: no rate limit applies (UNSAFE unless a gateway limits requests)"
    );
}

fn error(setting: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.to_owned(),
        problem: problem.into(),
    }
}

use sources::Sources;

impl Config {
    /// Resolves the settings from the config file's text (if any) and the
    /// environment (`TESSERA_*` variables; others are ignored). Empty
    /// variables count as unset.
    pub fn load(file: Option<&str>, env: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let (raw, unknown_env) = Sources::read(file, env)?;
        Config::resolve(&raw, unknown_env)
    }

    fn resolve(raw: &Sources, unknown_env: Vec<String>) -> Result<Config, ConfigError> {
        let listen = raw
            .text("listen")?
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        check_listen(&listen)?;
        let issuer = raw.text("issuer")?;
        if let Some(issuer) = &issuer {
            check_issuer(issuer)?;
        }
        let data_dir = PathBuf::from(raw.text("data_dir")?.unwrap_or_else(|| "./data".to_owned()));
        if data_dir.as_os_str().is_empty() {
            return Err(error("data_dir", "must not be empty"));
        }
        let store_url = match raw.text("store.url")? {
            Some(url) => url,
            None => format!("sqlite://{}", data_dir.join("tessera.db").display()),
        };
        if !["sqlite://", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| store_url.starts_with(scheme) && store_url.len() > scheme.len())
        {
            return Err(error(
                "store.url",
                "must be sqlite://PATH or postgres://... (the value is not shown: it may hold a password)",
            ));
        }
        let max_connections = raw.whole_number::<u32>("store.max_connections", 16, 2..=1000)?;
        let master_key = match raw.text("master_key")? {
            Some(text) => Some(MasterKey::from_base64(&text).map_err(|_| {
                error(
                    "master_key",
                    "must be 32 bytes of base64url (the value is not shown)",
                )
            })?),
            None => None,
        };

        // Session and token defaults are the issuer's own.
        let policy = tessera_issuer::Policy::default();
        let access_ttl = raw.positive_duration("tokens.access_ttl", policy.access_ttl)?;
        let token_format = match raw.text("tokens.format")? {
            None => policy.default_format,
            Some(text) => TokenFormat::parse(&text).ok_or_else(|| {
                error(
                    "tokens.format",
                    format!("{text:?} is not \"jwt\" or \"paseto\""),
                )
            })?,
        };
        let jwt_alg = match raw.text("tokens.jwt_alg")? {
            None => policy.jwt_alg,
            Some(text) => tessera_issuer::parse_jwt_alg(text.trim()).ok_or_else(|| {
                error(
                    "tokens.jwt_alg",
                    format!("{text:?} is not \"EdDSA\" or \"ES256\""),
                )
            })?,
        };
        let require_dpop = raw.flag("tokens.require_dpop", policy.require_dpop)?;
        let dpop_require_nonce = raw.flag("dpop.require_nonce", false)?;
        let idle_timeout = raw.positive_duration("sessions.idle_timeout", policy.idle_timeout)?;
        let absolute_lifetime =
            raw.positive_duration("sessions.absolute_lifetime", policy.absolute_lifetime)?;
        let refresh_grace = raw.duration("sessions.refresh_grace", policy.refresh_grace)?;
        if refresh_grace >= idle_timeout {
            return Err(error(
                "sessions.refresh_grace",
                "must be shorter than sessions.idle_timeout",
            ));
        }
        let max_per_subject = match raw.text("sessions.max_per_subject")?.as_deref() {
            None => policy.max_per_subject,
            Some("none") => None,
            Some(text) => Some(text.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                error(
                    "sessions.max_per_subject",
                    format!("{text:?} is not a positive whole number (or \"none\")"),
                )
            })?),
        };
        let limit_policy = match raw.text("sessions.limit_policy")?.as_deref() {
            None => policy.limit_policy,
            Some("evict_oldest") => LimitPolicy::EvictOldest,
            Some("reject") => LimitPolicy::Reject,
            Some(other) => {
                return Err(error(
                    "sessions.limit_policy",
                    format!("{other:?} is not \"evict_oldest\" or \"reject\""),
                ));
            }
        };

        let rotation_period = raw.positive_duration("keys.rotation_period", days(30))?;
        let jwks_max_age = raw.duration("keys.jwks_max_age", Duration::from_secs(300))?;
        let publish_ahead = raw.duration("keys.publish_ahead", jwks_max_age + PUBLISH_MARGIN)?;
        if publish_ahead < jwks_max_age {
            return Err(error(
                "keys.publish_ahead",
                "must be at least keys.jwks_max_age, or verifiers with a cached JWKS would meet unknown keys",
            ));
        }
        if publish_ahead >= rotation_period {
            return Err(error(
                "keys.publish_ahead",
                "must be shorter than keys.rotation_period",
            ));
        }
        let retire_margin = raw.duration("keys.retire_margin", Duration::from_secs(120))?;
        let status_list_ttl =
            raw.positive_duration("revocation.status_list_ttl", Duration::from_secs(60))?;
        let max_subscribers =
            raw.whole_number::<usize>("revocation.max_subscribers", 1000, 1..=100_000)?;
        let http_max_connections =
            raw.whole_number::<usize>("http.max_connections", 2048, 1..=1_000_000)?;
        let http_header_read_timeout =
            raw.positive_duration("http.header_read_timeout", Duration::from_secs(10))?;
        let http_idle_timeout =
            raw.positive_duration("http.idle_timeout", Duration::from_secs(60))?;
        if http_idle_timeout <= Duration::from_secs(2) {
            // Event streams send a heartbeat every second.
            return Err(error("http.idle_timeout", "must be longer than 2s"));
        }
        let trusted_proxies = match raw.text("http.trusted_proxies")? {
            None => Vec::new(),
            Some(text) => text
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| {
                    tessera_issuer::http::Cidr::parse(t).ok_or_else(|| {
                        error(
                            "http.trusted_proxies",
                            format!(
                                "{t:?} is not an address or CIDR range (10.0.0.0/8, 2001:db8::/32)"
                            ),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let cors_allowed_origins = match raw.text("cors.allowed_origins")? {
            None => Vec::new(),
            Some(text) => text
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| {
                    crate::web::parse_origin(t).ok_or_else(|| {
                        error(
                            "cors.allowed_origins",
                            format!(
                                "{t:?} is not an origin: write each as scheme://host[:port] \
                                 (https://app.example), with no path and no wildcard"
                            ),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let metrics_listen = match raw.text("metrics.listen")? {
            None => None,
            Some(text) => {
                let text = text.trim().to_owned();
                text.parse::<std::net::SocketAddr>().map_err(|_| {
                    error(
                        "metrics.listen",
                        format!("{text:?} is not an address and port (127.0.0.1:9090)"),
                    )
                })?;
                Some(text)
            }
        };
        let defaults = tessera_issuer::limits::RateLimitSettings::default();
        let rate = |key: &str, default: f64| -> Result<f64, ConfigError> {
            match raw.text(key)? {
                None => Ok(default),
                Some(text) => text
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n > 0.0 && *n <= 1e9)
                    // A bucket smaller than one token could never admit anyone.
                    .filter(|n| !key.ends_with("_burst") || *n >= 1.0)
                    .ok_or_else(|| {
                        error(
                            key,
                            format!("{text:?} is not a positive number (bursts at least 1)"),
                        )
                    }),
            }
        };
        let enabled = match raw.text("rate_limits.enabled")?.as_deref().map(str::trim) {
            None | Some("true") => true,
            Some("false") => {
                true_or_warn_disabled();
                false
            }
            Some(other) => {
                return Err(error(
                    "rate_limits.enabled",
                    format!("{other:?} is not true or false"),
                ));
            }
        };
        let rate_limits = tessera_issuer::limits::RateLimitSettings {
            enabled,
            per_ip: tessera_issuer::limits::Rate {
                per_second: rate("rate_limits.ip_per_second", defaults.per_ip.per_second)?,
                burst: rate("rate_limits.ip_burst", defaults.per_ip.burst)?,
            },
            per_client: tessera_issuer::limits::Rate {
                per_second: rate(
                    "rate_limits.client_per_second",
                    defaults.per_client.per_second,
                )?,
                burst: rate("rate_limits.client_burst", defaults.per_client.burst)?,
            },
            failed_auth: tessera_issuer::limits::Rate {
                per_second: rate(
                    "rate_limits.failed_auth_per_minute",
                    defaults.failed_auth.per_second * 60.0,
                )? / 60.0,
                burst: rate("rate_limits.failed_auth_burst", defaults.failed_auth.burst)?,
            },
        };

        Ok(Config {
            listen,
            issuer,
            data_dir,
            store_url: StoreUrl(store_url),
            max_connections,
            master_key,
            master_key_file: raw.1.get("master_key").cloned(),
            allow_readable_master_key: false,
            access_ttl,
            token_format,
            jwt_alg,
            require_dpop,
            dpop_require_nonce,
            idle_timeout,
            absolute_lifetime,
            refresh_grace,
            max_per_subject,
            limit_policy,
            rotation_period,
            publish_ahead,
            jwks_max_age,
            retire_margin,
            status_list_ttl,
            max_subscribers,
            http_max_connections,
            http_header_read_timeout,
            http_idle_timeout,
            trusted_proxies,
            cors_allowed_origins,
            metrics_listen,
            rate_limits,
            unknown_env,
        })
    }

    /// The issuer URL: the configured one, or `http://` + the bound address.
    pub fn issuer_for(&self, bound: std::net::SocketAddr) -> String {
        self.issuer
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
    }

    /// Where the generated master key lives when none is configured.
    pub fn policy(&self) -> tessera_issuer::Policy {
        tessera_issuer::Policy {
            access_ttl: self.access_ttl,
            default_format: self.token_format,
            jwt_alg: self.jwt_alg,
            require_dpop: self.require_dpop,
            idle_timeout: self.idle_timeout,
            absolute_lifetime: self.absolute_lifetime,
            refresh_grace: self.refresh_grace,
            max_per_subject: self.max_per_subject,
            limit_policy: self.limit_policy,
        }
    }

    /// Where the generated master key lives (when `master_key` is not set).
    pub fn master_key_path(&self) -> PathBuf {
        self.data_dir.join("master.key")
    }
}

fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

/// A TOML error without the offending source line (it may hold a secret):
/// the message and where.
fn file_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let location = e
        .span()
        .map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            format!(" (line {line})")
        })
        .unwrap_or_default();
    error(
        "config file",
        format!("{}{location}", e.message().trim_end()),
    )
}

fn check_listen(listen: &str) -> Result<(), ConfigError> {
    let bad = || error("listen", format!("{listen:?} is not HOST:PORT"));
    let (host, port) = listen.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(())
}

fn check_issuer(issuer: &str) -> Result<(), ConfigError> {
    let rest = issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"))
        .ok_or_else(|| error("issuer", format!("{issuer:?} is not an http(s) URL")))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(error("issuer", format!("{issuer:?} has no host")));
    }
    if rest.contains(['?', '#']) || rest.chars().any(char::is_whitespace) {
        return Err(error(
            "issuer",
            format!("{issuer:?} must not have a query, fragment or spaces (RFC 8414)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
