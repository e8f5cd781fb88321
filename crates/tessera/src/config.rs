//! Settings (README "Configuration"): a TOML file overridden by
//! `TESSERA_*` environment variables, with the documented defaults.
//!
//! [`Config::load`] is a pure function of the file's text and the
//! environment, so every rule is a table test. A bad setting is an error
//! that names it; unknown keys in the file are errors too.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use tessera_issuer::parse_duration;

use serde::Deserialize;
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
    /// Start even when `data_dir/master.key` is readable by others
    /// (`--allow-readable-master-key`; never from a file or the environment).
    pub allow_readable_master_key: bool,
    /// `tokens.access_ttl`.
    pub access_ttl: Duration,
    /// `tokens.format`.
    pub token_format: TokenFormat,
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
    /// `rate_limits.*`.
    pub rate_limits: tessera_issuer::limits::RateLimitSettings,
    /// `TESSERA_*` variables that name no setting (reported, not fatal:
    /// the environment is shared with other tools).
    pub unknown_env: Vec<String>,
}

/// `store.url`: used as a `&str` (through `Deref`), shown with any password
/// replaced, so a `Debug` of the config or a message never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreUrl(String);

impl StoreUrl {
    /// The URL with any password replaced, for messages.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl std::ops::Deref for StoreUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl PartialEq<&str> for StoreUrl {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// `url` with any password replaced, for messages: the userinfo's (up to
/// the last `@` of the authority) and a `password=` query parameter's.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest
        .find(['/', '?'])
        .map_or((rest, ""), |at| rest.split_at(at));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

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

// ---- the file, as written

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: Option<toml::Value>,
    issuer: Option<toml::Value>,
    data_dir: Option<toml::Value>,
    master_key: Option<toml::Value>,
    #[serde(default)]
    store: StoreSection,
    #[serde(default)]
    tokens: TokensSection,
    #[serde(default)]
    sessions: SessionsSection,
    #[serde(default)]
    keys: KeysSection,
    #[serde(default)]
    revocation: RevocationSection,
    #[serde(default)]
    http: HttpSection,
    #[serde(default)]
    rate_limits: RateLimitsSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpSection {
    max_connections: Option<toml::Value>,
    header_read_timeout: Option<toml::Value>,
    idle_timeout: Option<toml::Value>,
    trusted_proxies: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitsSection {
    enabled: Option<toml::Value>,
    ip_per_second: Option<toml::Value>,
    ip_burst: Option<toml::Value>,
    client_per_second: Option<toml::Value>,
    client_burst: Option<toml::Value>,
    failed_auth_per_minute: Option<toml::Value>,
    failed_auth_burst: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    url: Option<toml::Value>,
    max_connections: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensSection {
    access_ttl: Option<toml::Value>,
    format: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionsSection {
    idle_timeout: Option<toml::Value>,
    absolute_lifetime: Option<toml::Value>,
    refresh_grace: Option<toml::Value>,
    max_per_subject: Option<toml::Value>,
    limit_policy: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysSection {
    rotation_period: Option<toml::Value>,
    publish_ahead: Option<toml::Value>,
    jwks_max_age: Option<toml::Value>,
    retire_margin: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevocationSection {
    status_list_ttl: Option<toml::Value>,
    max_subscribers: Option<toml::Value>,
}

/// Every setting's name and its environment variable.
const SETTINGS: &[(&str, &str)] = &[
    ("listen", "TESSERA_LISTEN"),
    ("issuer", "TESSERA_ISSUER"),
    ("data_dir", "TESSERA_DATA_DIR"),
    ("store.url", "TESSERA_STORE_URL"),
    ("store.max_connections", "TESSERA_STORE__MAX_CONNECTIONS"),
    ("master_key", "TESSERA_MASTER_KEY"),
    ("tokens.access_ttl", "TESSERA_TOKENS__ACCESS_TTL"),
    ("tokens.format", "TESSERA_TOKENS__FORMAT"),
    ("sessions.idle_timeout", "TESSERA_SESSIONS__IDLE_TIMEOUT"),
    (
        "sessions.absolute_lifetime",
        "TESSERA_SESSIONS__ABSOLUTE_LIFETIME",
    ),
    ("sessions.refresh_grace", "TESSERA_SESSIONS__REFRESH_GRACE"),
    (
        "sessions.max_per_subject",
        "TESSERA_SESSIONS__MAX_PER_SUBJECT",
    ),
    ("sessions.limit_policy", "TESSERA_SESSIONS__LIMIT_POLICY"),
    ("keys.rotation_period", "TESSERA_KEYS__ROTATION_PERIOD"),
    ("keys.publish_ahead", "TESSERA_KEYS__PUBLISH_AHEAD"),
    ("keys.jwks_max_age", "TESSERA_KEYS__JWKS_MAX_AGE"),
    ("keys.retire_margin", "TESSERA_KEYS__RETIRE_MARGIN"),
    (
        "revocation.status_list_ttl",
        "TESSERA_REVOCATION__STATUS_LIST_TTL",
    ),
    (
        "revocation.max_subscribers",
        "TESSERA_REVOCATION__MAX_SUBSCRIBERS",
    ),
    ("http.max_connections", "TESSERA_HTTP__MAX_CONNECTIONS"),
    (
        "http.header_read_timeout",
        "TESSERA_HTTP__HEADER_READ_TIMEOUT",
    ),
    ("http.idle_timeout", "TESSERA_HTTP__IDLE_TIMEOUT"),
    ("http.trusted_proxies", "TESSERA_HTTP__TRUSTED_PROXIES"),
    ("rate_limits.enabled", "TESSERA_RATE_LIMITS__ENABLED"),
    (
        "rate_limits.ip_per_second",
        "TESSERA_RATE_LIMITS__IP_PER_SECOND",
    ),
    ("rate_limits.ip_burst", "TESSERA_RATE_LIMITS__IP_BURST"),
    (
        "rate_limits.client_per_second",
        "TESSERA_RATE_LIMITS__CLIENT_PER_SECOND",
    ),
    (
        "rate_limits.client_burst",
        "TESSERA_RATE_LIMITS__CLIENT_BURST",
    ),
    (
        "rate_limits.failed_auth_per_minute",
        "TESSERA_RATE_LIMITS__FAILED_AUTH_PER_MINUTE",
    ),
    (
        "rate_limits.failed_auth_burst",
        "TESSERA_RATE_LIMITS__FAILED_AUTH_BURST",
    ),
];

/// Also accepted: the section form of `store.url`.
const ALIASES: &[(&str, &str)] = &[("store.url", "TESSERA_STORE__URL")];

/// One setting's raw value and where it came from (for messages).
enum Raw {
    File(toml::Value),
    Env(String),
}

/// The raw values, file first, environment over it.
struct Sources(BTreeMap<&'static str, Raw>);

impl Sources {
    fn text(&self, setting: &str) -> Result<Option<String>, ConfigError> {
        match self.0.get(setting) {
            None => Ok(None),
            Some(Raw::Env(text)) => Ok(Some(text.clone())),
            Some(Raw::File(toml::Value::String(text))) => Ok(Some(text.clone())),
            Some(Raw::File(toml::Value::Integer(n))) => Ok(Some(n.to_string())),
            Some(Raw::File(other)) => Err(error(
                setting,
                format!("expected a string, found a {}", other.type_str()),
            )),
        }
    }

    fn duration(&self, setting: &str, default: Duration) -> Result<Duration, ConfigError> {
        let Some(text) = self.text(setting)? else {
            return Ok(default);
        };
        parse_duration(&text).ok_or_else(|| {
            error(
                setting,
                format!("{text:?} is not a duration (write e.g. \"500ms\", \"10s\", \"5m\", \"2h\", \"30d\")"),
            )
        })
    }

    fn positive_duration(&self, setting: &str, default: Duration) -> Result<Duration, ConfigError> {
        let value = self.duration(setting, default)?;
        if value.is_zero() {
            return Err(error(setting, "must be longer than zero"));
        }
        Ok(value)
    }
}

impl Config {
    /// Resolves the settings from the config file's text (if any) and the
    /// environment (`TESSERA_*` variables; others are ignored). Empty
    /// variables count as unset.
    pub fn load(file: Option<&str>, env: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let file: File = match file {
            Some(text) => toml::from_str(text).map_err(|e| file_error(text, &e))?,
            None => File::default(),
        };
        let mut raw = BTreeMap::new();
        let file_values = [
            ("listen", file.listen),
            ("issuer", file.issuer),
            ("data_dir", file.data_dir),
            ("master_key", file.master_key),
            ("store.url", file.store.url),
            ("store.max_connections", file.store.max_connections),
            ("tokens.access_ttl", file.tokens.access_ttl),
            ("tokens.format", file.tokens.format),
            ("sessions.idle_timeout", file.sessions.idle_timeout),
            (
                "sessions.absolute_lifetime",
                file.sessions.absolute_lifetime,
            ),
            ("sessions.refresh_grace", file.sessions.refresh_grace),
            ("sessions.max_per_subject", file.sessions.max_per_subject),
            ("sessions.limit_policy", file.sessions.limit_policy),
            ("keys.rotation_period", file.keys.rotation_period),
            ("keys.publish_ahead", file.keys.publish_ahead),
            ("keys.jwks_max_age", file.keys.jwks_max_age),
            ("keys.retire_margin", file.keys.retire_margin),
            (
                "revocation.status_list_ttl",
                file.revocation.status_list_ttl,
            ),
            (
                "revocation.max_subscribers",
                file.revocation.max_subscribers,
            ),
            ("http.max_connections", file.http.max_connections),
            ("http.header_read_timeout", file.http.header_read_timeout),
            ("http.idle_timeout", file.http.idle_timeout),
            ("http.trusted_proxies", file.http.trusted_proxies),
            ("rate_limits.enabled", file.rate_limits.enabled),
            ("rate_limits.ip_per_second", file.rate_limits.ip_per_second),
            ("rate_limits.ip_burst", file.rate_limits.ip_burst),
            (
                "rate_limits.client_per_second",
                file.rate_limits.client_per_second,
            ),
            ("rate_limits.client_burst", file.rate_limits.client_burst),
            (
                "rate_limits.failed_auth_per_minute",
                file.rate_limits.failed_auth_per_minute,
            ),
            (
                "rate_limits.failed_auth_burst",
                file.rate_limits.failed_auth_burst,
            ),
        ];
        for (setting, value) in file_values {
            if let Some(value) = value {
                raw.insert(setting, Raw::File(value));
            }
        }
        let mut unknown_env = Vec::new();
        for (name, value) in env {
            if !name.starts_with("TESSERA_") || value.is_empty() {
                continue;
            }
            let setting = SETTINGS
                .iter()
                .chain(ALIASES)
                .find(|(_, var)| var == name)
                .map(|(setting, _)| *setting);
            match setting {
                Some(setting) => {
                    raw.insert(setting, Raw::Env(value.clone()));
                }
                None => unknown_env.push(name.clone()),
            }
        }
        Config::resolve(&Sources(raw), unknown_env)
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
        let max_connections = match raw.text("store.max_connections")? {
            None => 16,
            Some(text) => text
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (2..=1000).contains(n))
                .ok_or_else(|| {
                    error(
                        "store.max_connections",
                        format!("{text:?} is not a whole number from 2 to 1000"),
                    )
                })?,
        };
        let master_key = match raw.text("master_key")? {
            Some(text) => Some(MasterKey::from_base64(&text).map_err(|_| {
                error(
                    "master_key",
                    "must be 32 bytes of base64url (the value is not shown)",
                )
            })?),
            None => None,
        };

        let access_ttl = raw.positive_duration("tokens.access_ttl", Duration::from_secs(300))?;
        let token_format = match raw.text("tokens.format")?.as_deref() {
            None | Some("jwt") => TokenFormat::Jwt,
            Some("paseto") => TokenFormat::Paseto,
            Some(other) => {
                return Err(error(
                    "tokens.format",
                    format!("{other:?} is not \"jwt\" or \"paseto\""),
                ));
            }
        };
        let idle_timeout = raw.positive_duration("sessions.idle_timeout", days(14))?;
        let absolute_lifetime = raw.positive_duration("sessions.absolute_lifetime", days(30))?;
        let refresh_grace = raw.duration("sessions.refresh_grace", Duration::from_secs(10))?;
        if refresh_grace >= idle_timeout {
            return Err(error(
                "sessions.refresh_grace",
                "must be shorter than sessions.idle_timeout",
            ));
        }
        let max_per_subject = match raw.text("sessions.max_per_subject")?.as_deref() {
            None | Some("none") => None,
            Some(text) => Some(text.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                error(
                    "sessions.max_per_subject",
                    format!("{text:?} is not a positive whole number (or \"none\")"),
                )
            })?),
        };
        let limit_policy = match raw.text("sessions.limit_policy")?.as_deref() {
            None | Some("evict_oldest") => LimitPolicy::EvictOldest,
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
        let max_subscribers = match raw.text("revocation.max_subscribers")? {
            None => 1000,
            Some(text) => text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=100_000).contains(n))
                .ok_or_else(|| {
                    error(
                        "revocation.max_subscribers",
                        format!("{text:?} is not a whole number from 1 to 100000"),
                    )
                })?,
        };
        let http_max_connections = match raw.text("http.max_connections")? {
            None => 2048,
            Some(text) => text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| {
                    error(
                        "http.max_connections",
                        format!("{text:?} is not a whole number from 1 to 1000000"),
                    )
                })?,
        };
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
            allow_readable_master_key: false,
            access_ttl,
            token_format,
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
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        for (url, shown) in [
            (
                "postgres://tessera:s3cret@db/tessera",
                "postgres://tessera:***@db/tessera",
            ),
            (
                "postgres://tessera:p@ss@db:5432/t?sslmode=require",
                "postgres://tessera:***@db:5432/t?sslmode=require",
            ),
            (
                "postgres://db/t?user=x&password=s3cret",
                "postgres://db/t?user=x&password=***",
            ),
            ("postgres://tessera@db/t", "postgres://tessera@db/t"),
            ("sqlite://data/tessera.db", "sqlite://data/tessera.db"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn debug_of_the_config_shows_no_secret() {
        let env = BTreeMap::from([
            (
                "TESSERA_STORE_URL".to_owned(),
                "postgres://tessera:s3cret@db/tessera?password=s3cret".to_owned(),
            ),
            (
                "TESSERA_MASTER_KEY".to_owned(),
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8".to_owned(),
            ),
        ]);
        let config = Config::load(None, &env).expect("config");
        let debug = format!("{config:?}");
        for secret in ["s3cret", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(
            debug.contains("postgres://tessera:***@db/tessera?password=***"),
            "{debug}"
        );
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn load(file: Option<&str>, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load(file, &env(vars))
    }

    #[test]
    fn durations() {
        for (text, ms) in [
            ("500ms", 500),
            ("10s", 10_000),
            ("5m", 300_000),
            ("2h", 7_200_000),
            ("30d", 2_592_000_000),
            ("0s", 0),
            ("1h30m", 5_400_000),
            (" 10s ", 10_000),
        ] {
            assert_eq!(
                parse_duration(text),
                Some(Duration::from_millis(ms)),
                "{text}"
            );
        }
        for bad in [
            "",
            "10",
            "s",
            "10 s",
            "1.5s",
            "-1s",
            "10w",
            "abc",
            "5mm",
            "m5",
            "99999999999999999999d",
            "999999999999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = load(None, &[]).expect("defaults");
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert_eq!(c.issuer, None);
        assert_eq!(
            c.issuer_for("127.0.0.1:8080".parse().expect("addr")),
            "http://127.0.0.1:8080"
        );
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.store_url, "sqlite://./data/tessera.db");
        assert!(c.master_key.is_none());
        assert_eq!(c.master_key_path(), PathBuf::from("./data/master.key"));
        assert_eq!(c.access_ttl, Duration::from_secs(300));
        assert_eq!(c.token_format, TokenFormat::Jwt);
        assert_eq!(c.idle_timeout, days(14));
        assert_eq!(c.absolute_lifetime, days(30));
        assert_eq!(c.refresh_grace, Duration::from_secs(10));
        assert_eq!(c.max_per_subject, None);
        assert_eq!(c.limit_policy, LimitPolicy::EvictOldest);
        assert_eq!(c.rotation_period, days(30));
        assert_eq!(c.jwks_max_age, Duration::from_secs(300));
        assert_eq!(c.publish_ahead, Duration::from_secs(300) + PUBLISH_MARGIN);
        assert_eq!(c.status_list_ttl, Duration::from_secs(60));
    }

    const FILE: &str = r#"
        listen = "0.0.0.0:9000"
        issuer = "https://auth.example"
        data_dir = "/var/lib/tessera"
        master_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

        [store]
        url = "sqlite:///tmp/t.db"

        [tokens]
        access_ttl = "2m"
        format = "paseto"

        [sessions]
        idle_timeout = "1d"
        absolute_lifetime = "7d"
        refresh_grace = "5s"
        max_per_subject = 3
        limit_policy = "reject"

        [keys]
        rotation_period = "7d"
        publish_ahead = "20m"
        jwks_max_age = "10m"

        [revocation]
        status_list_ttl = "30s"
    "#;

    #[test]
    fn every_setting_from_the_file() {
        let c = load(Some(FILE), &[]).expect("file");
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.issuer.as_deref(), Some("https://auth.example"));
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/tessera"));
        assert_eq!(c.store_url, "sqlite:///tmp/t.db");
        assert!(c.master_key.is_some());
        assert_eq!(c.access_ttl, Duration::from_secs(120));
        assert_eq!(c.token_format, TokenFormat::Paseto);
        assert_eq!(c.idle_timeout, days(1));
        assert_eq!(c.absolute_lifetime, days(7));
        assert_eq!(c.refresh_grace, Duration::from_secs(5));
        assert_eq!(c.max_per_subject, Some(3));
        assert_eq!(c.limit_policy, LimitPolicy::Reject);
        assert_eq!(c.rotation_period, days(7));
        assert_eq!(c.publish_ahead, Duration::from_secs(1200));
        assert_eq!(c.jwks_max_age, Duration::from_secs(600));
        assert_eq!(c.status_list_ttl, Duration::from_secs(30));
    }

    #[test]
    fn environment_overrides_the_file() {
        let c = load(
            Some(FILE),
            &[
                ("TESSERA_LISTEN", "127.0.0.1:0"),
                ("TESSERA_ISSUER", "http://localhost:1"),
                ("TESSERA_DATA_DIR", "/tmp/d"),
                ("TESSERA_STORE_URL", "sqlite:///tmp/other.db"),
                ("TESSERA_TOKENS__ACCESS_TTL", "90s"),
                ("TESSERA_TOKENS__FORMAT", "jwt"),
                ("TESSERA_SESSIONS__IDLE_TIMEOUT", "30m"),
                ("TESSERA_SESSIONS__MAX_PER_SUBJECT", "none"),
                ("TESSERA_SESSIONS__LIMIT_POLICY", "evict_oldest"),
                ("TESSERA_KEYS__JWKS_MAX_AGE", "1m"),
                ("TESSERA_KEYS__PUBLISH_AHEAD", "2m"),
                ("TESSERA_REVOCATION__STATUS_LIST_TTL", "15s"),
                ("TESSERA_SESSIONS__ABSOLUTE_LIFETIME", ""), // empty: unset
                ("TESSERA_SOMETHING_ELSE", "x"),
                ("PATH", "/bin"),
            ],
        )
        .expect("merged");
        assert_eq!(c.listen, "127.0.0.1:0");
        assert_eq!(c.issuer.as_deref(), Some("http://localhost:1"));
        assert_eq!(c.data_dir, PathBuf::from("/tmp/d"));
        assert_eq!(c.store_url, "sqlite:///tmp/other.db");
        assert_eq!(c.access_ttl, Duration::from_secs(90));
        assert_eq!(c.token_format, TokenFormat::Jwt);
        assert_eq!(c.idle_timeout, Duration::from_secs(1800));
        assert_eq!(
            c.absolute_lifetime,
            days(7),
            "empty variable leaves the file value"
        );
        assert_eq!(c.max_per_subject, None);
        assert_eq!(c.limit_policy, LimitPolicy::EvictOldest);
        assert_eq!(c.jwks_max_age, Duration::from_secs(60));
        assert_eq!(c.publish_ahead, Duration::from_secs(120));
        assert_eq!(c.status_list_ttl, Duration::from_secs(15));
        assert_eq!(c.unknown_env, vec!["TESSERA_SOMETHING_ELSE".to_owned()]);
    }

    #[test]
    fn store_url_follows_data_dir_and_accepts_the_section_alias() {
        let c = load(None, &[("TESSERA_DATA_DIR", "/srv/t")]).expect("ok");
        assert_eq!(c.store_url, "sqlite:///srv/t/tessera.db");
        let c = load(None, &[("TESSERA_STORE__URL", "sqlite://x.db")]).expect("ok");
        assert_eq!(c.store_url, "sqlite://x.db");
        let c = load(None, &[("TESSERA_KEYS__JWKS_MAX_AGE", "10m")]).expect("ok");
        assert_eq!(c.publish_ahead, Duration::from_secs(600) + PUBLISH_MARGIN);
    }

    /// File text, environment, the setting named, a fragment of the message.
    type BadCase<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a str, &'a str);

    #[test]
    fn bad_settings_are_named() {
        let cases: &[BadCase] = &[
            (
                None,
                &[("TESSERA_SESSIONS__IDLE_TIMEOUT", "abc")],
                "sessions.idle_timeout",
                "\"abc\" is not a duration",
            ),
            (
                Some("[sessions]\nidle_timeout = \"abc\""),
                &[],
                "sessions.idle_timeout",
                "\"abc\" is not a duration",
            ),
            (
                Some("[tokens]\naccess_ttl = 300"),
                &[],
                "tokens.access_ttl",
                "is not a duration",
            ),
            (
                Some("[tokens]\naccess_ttl = true"),
                &[],
                "tokens.access_ttl",
                "expected a string",
            ),
            (
                None,
                &[("TESSERA_TOKENS__ACCESS_TTL", "0s")],
                "tokens.access_ttl",
                "longer than zero",
            ),
            (
                None,
                &[("TESSERA_TOKENS__FORMAT", "saml")],
                "tokens.format",
                "saml",
            ),
            (
                None,
                &[("TESSERA_SESSIONS__MAX_PER_SUBJECT", "0")],
                "sessions.max_per_subject",
                "positive",
            ),
            (
                None,
                &[("TESSERA_SESSIONS__MAX_PER_SUBJECT", "-2")],
                "sessions.max_per_subject",
                "positive",
            ),
            (
                None,
                &[("TESSERA_SESSIONS__LIMIT_POLICY", "lru")],
                "sessions.limit_policy",
                "lru",
            ),
            (
                None,
                &[("TESSERA_SESSIONS__REFRESH_GRACE", "20d")],
                "sessions.refresh_grace",
                "shorter",
            ),
            (
                None,
                &[("TESSERA_KEYS__PUBLISH_AHEAD", "1m")],
                "keys.publish_ahead",
                "jwks_max_age",
            ),
            (
                None,
                &[("TESSERA_KEYS__ROTATION_PERIOD", "5m")],
                "keys.publish_ahead",
                "rotation_period",
            ),
            (
                None,
                &[("TESSERA_LISTEN", "nowhere")],
                "listen",
                "HOST:PORT",
            ),
            (
                None,
                &[("TESSERA_LISTEN", "127.0.0.1:99999")],
                "listen",
                "HOST:PORT",
            ),
            (
                None,
                &[("TESSERA_ISSUER", "auth.example")],
                "issuer",
                "http(s)",
            ),
            (
                None,
                &[("TESSERA_ISSUER", "https://a.example/?x=1")],
                "issuer",
                "query",
            ),
            (
                None,
                &[("TESSERA_STORE_URL", "mysql://x")],
                "store.url",
                "sqlite://",
            ),
            (
                None,
                &[("TESSERA_MASTER_KEY", "c2hvcnQ")],
                "master_key",
                "32 bytes",
            ),
            (
                Some("colour = \"blue\""),
                &[],
                "config file",
                "unknown field `colour`",
            ),
            (
                Some("[sessions]\nidle = \"1d\""),
                &[],
                "config file",
                "unknown field `idle`",
            ),
            (
                Some("[cache]\nsize = 1"),
                &[],
                "config file",
                "unknown field `cache`",
            ),
            (Some("listen = "), &[], "config file", "line 1"),
        ];
        for (file, vars, setting, fragment) in cases {
            let err = load(*file, vars).expect_err(&format!("{setting} {vars:?} {file:?}"));
            assert_eq!(err.setting, *setting, "{err}");
            assert!(
                err.to_string().contains(fragment),
                "{err} should contain {fragment:?}"
            );
            assert!(err.to_string().starts_with(setting), "{err}");
        }
    }

    #[test]
    fn secrets_are_never_echoed() {
        let secret = "not-a-valid-key-but-a-secret-all-the-same";
        let err = load(None, &[("TESSERA_MASTER_KEY", secret)]).expect_err("bad key");
        assert!(!err.to_string().contains(secret));
        let err =
            load(Some(&format!("master_key = \"{secret}\"\nbogus = 1")), &[]).expect_err("unknown");
        assert!(!err.to_string().contains(secret), "{err}");
        let err = load(None, &[("TESSERA_STORE_URL", "mysql://u:hunter2@h")]).expect_err("url");
        assert!(!err.to_string().contains("hunter2"));
        let c = load(
            None,
            &[(
                "TESSERA_MASTER_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            )],
        )
        .expect("ok");
        assert!(!format!("{c:?}").contains("AAAAAAAA"));
    }
}
