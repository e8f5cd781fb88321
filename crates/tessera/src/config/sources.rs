//! Where settings come from: the TOML file's shape and every setting's name
//! and environment variable, read into one map of raw values.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, error, file_error, parse_duration};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
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
pub(super) const SETTINGS: &[(&str, &str)] = &[
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
pub(super) const ALIASES: &[(&str, &str)] = &[("store.url", "TESSERA_STORE__URL")];

/// One setting's raw value and where it came from (for messages).
pub(super) enum Raw {
    File(toml::Value),
    Env(String),
}

/// The raw values, file first, environment over it.
pub(super) struct Sources(pub(super) BTreeMap<&'static str, Raw>);

impl Sources {
    /// The raw values of the file's text (if any) and the environment, and
    /// the `TESSERA_*` variables that name no setting.
    pub(super) fn read(
        file: Option<&str>,
        env: &BTreeMap<String, String>,
    ) -> Result<(Sources, Vec<String>), ConfigError> {
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
        Ok((Sources(raw), unknown_env))
    }

    pub(super) fn text(&self, setting: &str) -> Result<Option<String>, ConfigError> {
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

    pub(super) fn duration(
        &self,
        setting: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
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

    pub(super) fn positive_duration(
        &self,
        setting: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let value = self.duration(setting, default)?;
        if value.is_zero() {
            return Err(error(setting, "must be longer than zero"));
        }
        Ok(value)
    }
}
