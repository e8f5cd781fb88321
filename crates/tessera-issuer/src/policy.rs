//! Token and session policy: global defaults (API.md), per-client overrides.

use std::time::Duration;

use tessera_core::{Algorithm, TokenFormat};
use tessera_store::LimitPolicy;

/// Policy in force for one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `tokens.access_ttl`: access-token lifetime.
    pub access_ttl: Duration,
    /// `tokens.format`: format when a session does not ask for one.
    pub default_format: TokenFormat,
    /// `tokens.jwt_alg`: what signs JWT access tokens, `EdDSA` or `ES256`
    /// (for resource servers whose JOSE stack lacks EdDSA).
    pub jwt_alg: Algorithm,
    /// `tokens.require_dpop`: every token this client gets is DPoP-bound
    /// (sessions must be opened with `dpop_jkt`, token requests must carry
    /// a proof).
    pub require_dpop: bool,
    /// `sessions.idle_timeout`: a session unused this long ends.
    pub idle_timeout: Duration,
    /// `sessions.absolute_lifetime`: no refresh extends a session past this age.
    pub absolute_lifetime: Duration,
    /// `sessions.refresh_grace`: the previous refresh token may be retried this long (0 disables).
    pub refresh_grace: Duration,
    /// `sessions.max_per_subject`: concurrent-session limit.
    pub max_per_subject: Option<u32>,
    /// `sessions.limit_policy`.
    pub limit_policy: LimitPolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            access_ttl: Duration::from_secs(300),
            default_format: TokenFormat::Jwt,
            jwt_alg: Algorithm::EdDsa,
            require_dpop: false,
            idle_timeout: Duration::from_secs(14 * 86_400),
            absolute_lifetime: Duration::from_secs(30 * 86_400),
            refresh_grace: Duration::from_secs(10),
            max_per_subject: None,
            limit_policy: LimitPolicy::EvictOldest,
        }
    }
}

/// A per-client override that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("client policy {key}: {problem}")]
pub struct PolicyError {
    /// The setting, e.g. `sessions.idle_timeout`.
    pub key: String,
    /// What is wrong.
    pub problem: String,
}

/// Longest per-client `sessions.refresh_grace`.
pub const MAX_REFRESH_GRACE: Duration = Duration::from_secs(60);

/// Margin added to access-token lifetimes when saying how long a revocation
/// must be remembered (covers verifiers' clock leeway).
pub const REVOCATION_MARGIN: Duration = Duration::from_secs(120);

impl Policy {
    /// The algorithm that signs an access token of `format`.
    pub fn algorithm(&self, format: TokenFormat) -> Algorithm {
        match format {
            TokenFormat::Jwt => self.jwt_alg,
            TokenFormat::Paseto => Algorithm::V4Public,
        }
    }
    /// Until when a revocation made at `now` must be remembered: every
    /// access token it covers has expired by then.
    pub fn revocation_until(&self, now: tessera_store::Timestamp) -> tessera_store::Timestamp {
        now.plus(self.access_ttl + REVOCATION_MARGIN)
    }

    /// This policy with a client's overrides applied. `overrides` is a JSON
    /// object of `"section.key": value` (or nested `{"section": {"key": value}}`)
    /// using the names of the global settings.
    pub fn with_overrides(&self, overrides: &serde_json::Value) -> Result<Policy, PolicyError> {
        let mut policy = self.clone();
        let Some(map) = overrides.as_object() else {
            return if overrides.is_null() {
                Ok(policy)
            } else {
                Err(PolicyError {
                    key: "policy".into(),
                    problem: "must be a JSON object".into(),
                })
            };
        };
        let mut flat = Vec::new();
        for (key, value) in map {
            match value.as_object() {
                Some(inner) => flat.extend(inner.iter().map(|(k, v)| (format!("{key}.{k}"), v))),
                None => flat.push((key.clone(), value)),
            }
        }
        for (key, value) in flat {
            policy.apply(&key, value)?;
        }
        Ok(policy)
    }

    fn apply(&mut self, key: &str, value: &serde_json::Value) -> Result<(), PolicyError> {
        let bad = |problem: &str| PolicyError {
            key: key.to_owned(),
            problem: problem.to_owned(),
        };
        let duration = || {
            value
                .as_str()
                .and_then(parse_duration)
                .ok_or_else(|| bad("must be a duration like \"10s\", \"5m\", \"30d\""))
        };
        match key {
            "tokens.access_ttl" => {
                // Retired signing keys stay published for the global TTL
                // (plus leeway): a longer per-client TTL would outlive its key.
                let ttl = duration()?;
                if ttl > self.access_ttl {
                    return Err(bad(
                        "may only shorten the global tokens.access_ttl (retired keys are kept that long)",
                    ));
                }
                self.access_ttl = ttl;
            }
            "tokens.format" => {
                self.default_format = value
                    .as_str()
                    .and_then(TokenFormat::parse)
                    .ok_or_else(|| bad("must be \"jwt\" or \"paseto\""))?;
            }
            "tokens.jwt_alg" => {
                self.jwt_alg = value
                    .as_str()
                    .and_then(parse_jwt_alg)
                    .ok_or_else(|| bad("must be \"EdDSA\" or \"ES256\""))?;
            }
            "tokens.require_dpop" => {
                self.require_dpop = value
                    .as_bool()
                    .ok_or_else(|| bad("must be true or false"))?;
            }
            "sessions.idle_timeout" => self.idle_timeout = duration()?,
            "sessions.absolute_lifetime" => self.absolute_lifetime = duration()?,
            "sessions.refresh_grace" => {
                let grace = duration()?;
                if grace > MAX_REFRESH_GRACE {
                    return Err(bad(
                        "may be at most 60s (a longer grace lets a stolen token be replayed unnoticed)",
                    ));
                }
                self.refresh_grace = grace;
            }
            "sessions.max_per_subject" => {
                self.max_per_subject = match value {
                    serde_json::Value::Null => None,
                    v => Some(
                        v.as_u64()
                            .and_then(|n| u32::try_from(n).ok())
                            .filter(|n| *n > 0)
                            .ok_or_else(|| bad("must be a positive integer"))?,
                    ),
                }
            }
            "sessions.limit_policy" => {
                self.limit_policy = match value.as_str() {
                    Some("evict_oldest") => LimitPolicy::EvictOldest,
                    Some("reject") => LimitPolicy::Reject,
                    _ => return Err(bad("must be \"evict_oldest\" or \"reject\"")),
                }
            }
            _ => {
                return Err(bad(
                    "unknown setting (only tokens.* and sessions.* can be overridden)",
                ));
            }
        }
        Ok(())
    }
}

/// A JWT signing algorithm Tessera issues with: `EdDSA` or `ES256`.
pub fn parse_jwt_alg(name: &str) -> Option<Algorithm> {
    Algorithm::from_jws_name(name).filter(|alg| matches!(alg, Algorithm::EdDsa | Algorithm::Es256))
}

/// Parses a duration: whole numbers with units `ms`, `s`, `m`, `h`, `d`,
/// optionally compound (`"500ms"`, `"10s"`, `"5m"`, `"30d"`, `"1h30m"`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let n: u64 = number.parse().ok()?;
        let millis_per = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return None,
        };
        total = total.checked_add(Duration::from_millis(n.checked_mul(millis_per)?))?;
        rest = tail;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations() {
        for (text, ms) in [
            ("500ms", 500),
            ("10s", 10_000),
            ("5m", 300_000),
            ("2h", 7_200_000),
            ("30d", 2_592_000_000),
            ("0s", 0),
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
            "99999999999999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn overrides_flat_and_nested() {
        let base = Policy::default();
        let p = base
            .with_overrides(&json!({"tokens.access_ttl": "1m", "sessions": {"max_per_subject": 3, "limit_policy": "reject"}}))
            .expect("valid");
        assert_eq!(p.access_ttl, Duration::from_secs(60));
        assert_eq!(p.max_per_subject, Some(3));
        assert_eq!(p.limit_policy, LimitPolicy::Reject);
        assert_eq!(p.idle_timeout, base.idle_timeout);
        assert_eq!(
            base.with_overrides(&serde_json::Value::Null),
            Ok(base.clone())
        );
    }

    #[test]
    fn bad_overrides_name_the_setting() {
        let base = Policy::default();
        for (bad, key) in [
            (json!({"tokens.access_ttl": "soon"}), "tokens.access_ttl"),
            // Longer than the global TTL: would outlive retired keys.
            (json!({"tokens.access_ttl": "1h"}), "tokens.access_ttl"),
            (
                json!({"sessions.max_per_subject": 0}),
                "sessions.max_per_subject",
            ),
            (
                json!({"keys.rotation_period": "1d"}),
                "keys.rotation_period",
            ),
            (json!({"tokens": {"format": "saml"}}), "tokens.format"),
        ] {
            assert_eq!(base.with_overrides(&bad).expect_err("invalid").key, key);
        }
        assert!(base.with_overrides(&json!([1])).is_err());
    }
}
