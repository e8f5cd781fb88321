//! The issuer's Prometheus counters, through the `metrics` facade: the
//! binary installs the exporter (`/metrics`); without one every call here is
//! a cheap no-op. Labels are fixed words, never ids or tokens, so every
//! counter has a small, bounded set of series.

use metrics::{Unit, counter, describe_counter};

/// Outcomes of a refresh exchange (`tessera_refreshes_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refresh {
    /// Rotated: a new refresh token.
    Ok,
    /// The previous token again within the grace window: the same next token.
    GraceRetry,
    /// An older token: theft assumed, the session ended.
    ReuseDetected,
    /// Refused: no or a forged refresh token, failed client authentication
    /// or DPoP proof, an ended or expired session, another client's token,
    /// a scope beyond the grant, a client over its rate limit.
    Invalid,
    /// Not answered because of a fault (the store unavailable, no signing
    /// key): the client may retry.
    Error,
}

impl Refresh {
    /// The outcome a refusal counts as.
    pub(crate) fn of_error(error: &crate::IssuerError) -> Refresh {
        use crate::IssuerError as E;
        match error {
            E::Store(_) | E::Busy | E::NoSigningKey(_) | E::Key(_) => Refresh::Error,
            _ => Refresh::Invalid,
        }
    }
}

impl Refresh {
    fn as_str(self) -> &'static str {
        match self {
            Refresh::Ok => "ok",
            Refresh::GraceRetry => "grace_retry",
            Refresh::ReuseDetected => "reuse_detected",
            Refresh::Invalid => "invalid",
            Refresh::Error => "error",
        }
    }
}

pub(crate) fn session_opened() {
    counter!("tessera_sessions_opened_total").increment(1);
}

/// `reason`: an [`tessera_store::EndReason`]'s name, or `client_disabled` /
/// `client_deleted` for the sessions a client's end took with it.
pub(crate) fn sessions_ended(reason: &'static str, count: usize) {
    if count > 0 {
        counter!("tessera_sessions_ended_total", "reason" => reason)
            .increment(u64::try_from(count).unwrap_or(u64::MAX));
    }
}

pub(crate) fn refresh(outcome: Refresh) {
    counter!("tessera_refreshes_total", "outcome" => outcome.as_str()).increment(1);
}

/// `outcome`: `ok`, `invalid_client` or `rate_limited`.
pub(crate) fn client_authentication(outcome: &'static str) {
    counter!("tessera_client_authentications_total", "outcome" => outcome).increment(1);
}

/// `limit`: `ip`, `client` or `failed_auth`.
pub(crate) fn rate_limited(limit: &'static str) {
    counter!("tessera_rate_limited_total", "limit" => limit).increment(1);
}

/// Registers the help text of every issuer counter (once, at start).
pub fn describe() {
    describe_counter!(
        "tessera_sessions_opened_total",
        Unit::Count,
        "Sessions opened (POST /v1/sessions)."
    );
    describe_counter!(
        "tessera_sessions_ended_total",
        Unit::Count,
        "Sessions ended, by reason (revoked, reuse_detected, evicted, expired_idle, expired_absolute, client_disabled, client_deleted)."
    );
    describe_counter!(
        "tessera_refreshes_total",
        Unit::Count,
        "Refresh-token exchanges at /oauth/token, by outcome (ok, grace_retry, reuse_detected, invalid, error); requests refused by the per-IP limit before they are read are in tessera_rate_limited_total."
    );
    describe_counter!(
        "tessera_client_authentications_total",
        Unit::Count,
        "Client authentications, by outcome (ok, invalid_client, rate_limited)."
    );
    describe_counter!(
        "tessera_rate_limited_total",
        Unit::Count,
        "Requests refused by a rate limit, by limit (ip, client, failed_auth)."
    );
}
