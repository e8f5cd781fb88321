//! Where settings come from: one table of setting names, from which the
//! file's sections and the environment variables follow, read into one map
//! of raw values (environment over file).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{ConfigError, error, file_error, parse_duration};

/// Every setting, by its name in the file (`section.key`). This is the one
/// list: the file's shape (its sections) and the environment variables
/// (`TESSERA_` + the name in capitals with `.` as `__`) follow from it.
pub(super) const SETTINGS: &[&str] = &[
    "listen",
    "issuer",
    "data_dir",
    "master_key",
    "store.url",
    "store.max_connections",
    "tokens.access_ttl",
    "tokens.format",
    "tokens.jwt_alg",
    "tokens.require_dpop",
    "dpop.require_nonce",
    "sessions.idle_timeout",
    "sessions.absolute_lifetime",
    "sessions.refresh_grace",
    "sessions.max_per_subject",
    "sessions.limit_policy",
    "keys.rotation_period",
    "keys.publish_ahead",
    "keys.jwks_max_age",
    "keys.retire_margin",
    "revocation.status_list_ttl",
    "revocation.max_subscribers",
    "http.max_connections",
    "http.header_read_timeout",
    "http.idle_timeout",
    "http.trusted_proxies",
    "cors.allowed_origins",
    "metrics.listen",
    "rate_limits.enabled",
    "rate_limits.ip_per_second",
    "rate_limits.ip_burst",
    "rate_limits.client_per_second",
    "rate_limits.client_burst",
    "rate_limits.failed_auth_per_minute",
    "rate_limits.failed_auth_burst",
];

/// Variables accepted besides the derived ones: `store.url` is documented as
/// `TESSERA_STORE_URL`.
const EXTRA_ENV: &[(&str, &str)] = &[("store.url", "TESSERA_STORE_URL")];

/// Settings that hold secrets: each also reads from a file named by its
/// variable + `_FILE` (`TESSERA_MASTER_KEY_FILE=/run/secrets/master_key`),
/// so the secret itself need not sit in the environment.
pub(super) const SECRET_SETTINGS: &[&str] = &["master_key", "store.url"];

/// Variables Tessera reads that are not settings (`--config`'s).
const OTHER_ENV: &[&str] = &["TESSERA_CONFIG"];

/// The environment variable of `setting`: `store.max_connections` is
/// `TESSERA_STORE__MAX_CONNECTIONS`.
pub(super) fn env_var(setting: &str) -> String {
    format!(
        "TESSERA_{}",
        setting.replace('.', "__").to_ascii_uppercase()
    )
}

/// The setting a `TESSERA_*` variable names, if any.
fn setting_of_env(var: &str) -> Option<&'static str> {
    EXTRA_ENV
        .iter()
        .find(|(_, name)| *name == var)
        .map(|(setting, _)| *setting)
        .or_else(|| SETTINGS.iter().copied().find(|s| env_var(s) == var))
}

/// The secret setting a `TESSERA_*_FILE` variable names, if any.
fn secret_file_setting(var: &str) -> Option<&'static str> {
    let direct = var.strip_suffix("_FILE")?;
    SECRET_SETTINGS
        .iter()
        .copied()
        .find(|s| setting_of_env(direct) == Some(*s))
}

/// Whether `name` is a section of the file (`[store]`, `[tokens]`, ...).
fn is_section(name: &str) -> bool {
    SETTINGS.iter().any(|s| {
        s.split_once('.')
            .is_some_and(|(section, _)| section == name)
    })
}

fn unknown(name: &str) -> ConfigError {
    error("config file", format!("unknown field `{name}`"))
}

/// One setting's raw value and where it came from (for messages).
pub(super) enum Raw {
    File(toml::Value),
    Env(String),
}

/// The raw values, file first, environment over it.
pub(super) struct Sources(
    pub(super) BTreeMap<&'static str, Raw>,
    /// The files secret settings were read from (`*_FILE` variables).
    pub(super) BTreeMap<&'static str, std::path::PathBuf>,
);

impl Sources {
    /// The raw values of the file's text (if any) and the environment, and
    /// the `TESSERA_*` variables that name no setting.
    pub(super) fn read(
        file: Option<&str>,
        env: &BTreeMap<String, String>,
    ) -> Result<(Sources, Vec<String>), ConfigError> {
        let mut raw = BTreeMap::new();
        let table: toml::Table = match file {
            Some(text) => toml::from_str(text).map_err(|e| file_error(text, &e))?,
            None => toml::Table::new(),
        };
        for (key, value) in table {
            if is_section(&key) {
                let toml::Value::Table(section) = value else {
                    return Err(error(
                        "config file",
                        format!("`{key}` must be a section ([{key}])"),
                    ));
                };
                for (name, value) in section {
                    let setting = format!("{key}.{name}");
                    let known = SETTINGS
                        .iter()
                        .find(|s| **s == setting)
                        .ok_or_else(|| unknown(&name))?;
                    raw.insert(*known, Raw::File(value));
                }
            } else {
                let known = SETTINGS
                    .iter()
                    .find(|s| **s == key)
                    .ok_or_else(|| unknown(&key))?;
                raw.insert(*known, Raw::File(value));
            }
        }
        let mut unknown_env = Vec::new();
        let mut files = BTreeMap::new();
        for (name, value) in env {
            if !name.starts_with("TESSERA_")
                || value.is_empty()
                || OTHER_ENV.contains(&name.as_str())
            {
                continue;
            }
            if let Some(setting) = secret_file_setting(name) {
                let direct = name.trim_end_matches("_FILE");
                if env.get(direct).is_some_and(|v| !v.is_empty()) {
                    return Err(error(
                        setting,
                        format!("both {direct} and {name} are set: keep one"),
                    ));
                }
                let text = std::fs::read_to_string(value)
                    .map_err(|e| error(setting, format!("{name}: cannot read {value:?}: {e}")))?;
                let text = text.trim_end_matches(['\n', '\r']).to_owned();
                if text.is_empty() {
                    return Err(error(setting, format!("{name}: {value:?} is empty")));
                }
                raw.insert(setting, Raw::Env(text));
                files.insert(setting, std::path::PathBuf::from(value));
                continue;
            }
            match setting_of_env(name) {
                Some(setting) => {
                    raw.insert(setting, Raw::Env(value.clone()));
                }
                None => unknown_env.push(name.clone()),
            }
        }
        Ok((Sources(raw, files), unknown_env))
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

    /// `true` or `false` (a TOML boolean or its text), or `default` when unset.
    pub(super) fn flag(&self, setting: &str, default: bool) -> Result<bool, ConfigError> {
        if let Some(Raw::File(toml::Value::Boolean(b))) = self.0.get(setting) {
            return Ok(*b);
        }
        match self.text(setting)?.as_deref().map(str::trim) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(error(setting, format!("{other:?} is not true or false"))),
        }
    }

    /// A whole number from `range`, or `default` when unset.
    pub(super) fn whole_number<T>(
        &self,
        setting: &str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display,
    {
        let Some(text) = self.text(setting)? else {
            return Ok(default);
        };
        text.trim()
            .parse::<T>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                error(
                    setting,
                    format!(
                        "{text:?} is not a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ),
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
