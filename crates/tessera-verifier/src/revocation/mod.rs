//! Revocation for offline verifiers: tokens whose session, subject or signing
//! key was revoked after they were issued are refused, within about a second.
//!
//! Two sources, chosen per verifier:
//!
//! * **The event feed** ([`Revocations::subscribe`]): a Server-Sent Events
//!   stream from `revocation_events_endpoint/stream`, resumed with
//!   `Last-Event-ID` after any break (reconnect with backoff, polling
//!   `?after=` meanwhile). Revoked session ids, subjects-before-a-time and key
//!   ids stay in memory until the event's `until`, after which every token
//!   they cover has expired anyway.
//! * **Token Status Lists** ([`Revocations::status_lists`]): the standard way
//!   (draft-ietf-oauth-status-list). A token's `status.status_list` names a
//!   list under the issuer's `status_list_uri_prefix`; the signed list is
//!   fetched, verified with the issuer's keys and refetched per its `ttl`.
//!
//! Both have a freshness bound: revocation data not confirmed current for
//! longer than [`RevocationOptions::max_staleness`] makes the verifier fail
//! closed ([`VerifyError::RevocationStale`]), or, if so configured, open
//! (with a warning in the log).
//!
//! The per-token check is a few hash lookups under an uncontended read lock;
//! nothing on the verification path waits on the network.

mod feed;
mod sse;
mod status_list;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use tessera_core::time::{Clock, SystemClock};
use tessera_core::{AccessClaims, NumericDate, RevokedBy, VerifyError};

use crate::remote::{FetchError, RemoteKeys};
use feed::Revoked;
pub use feed::{EventKind, RevocationEvent};
#[doc(hidden)]
pub use sse::sse_events;
use status_list::Lists;

/// Tuning of revocation checking.
#[derive(Debug, Clone)]
pub struct RevocationOptions {
    /// Revocation data older than this (no event, heartbeat or successful
    /// poll for this long) is stale. Default 30 s.
    pub max_staleness: Duration,
    /// With stale data, accept tokens anyway (logged) instead of refusing them.
    /// Default false: fail closed.
    pub fail_open: bool,
    /// First reconnect delay after the stream breaks; doubles up to
    /// `max_backoff`. Default 100 ms.
    pub min_backoff: Duration,
    /// Longest reconnect delay. Default 5 s.
    pub max_backoff: Duration,
    /// A stream that sends nothing (not even a heartbeat) for this long is
    /// dropped and reopened. Default 10 s.
    pub read_timeout: Duration,
    /// Timeout of each plain request (polls, status lists). Default 5 s.
    pub http_timeout: Duration,
    /// Largest accepted status list, decompressed. Default 16 MiB.
    pub max_status_list_bytes: usize,
    /// Largest accepted answer body (a feed page, a Status List Token).
    /// Default 4 MiB.
    pub max_response_bytes: usize,
    /// After a status list could not be fetched, how long requests use what
    /// is cached (or fail closed) instead of each waiting out a timeout.
    /// Default 5 s.
    pub failure_backoff: Duration,
    /// Accept `http://` to hosts other than loopback. Default false.
    pub allow_insecure_http: bool,
    /// The HTTP client to use (custom CA, proxy, mTLS); it should follow no
    /// redirects, and answers from another URL are refused anyway. Default:
    /// Tessera's own, without redirects.
    pub http_client: Option<reqwest::Client>,
    /// Where "now" is read (tests drive time). Default: the system clock.
    pub clock: Arc<dyn Clock>,
}

impl Default for RevocationOptions {
    fn default() -> Self {
        RevocationOptions {
            max_staleness: Duration::from_secs(30),
            fail_open: false,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            read_timeout: Duration::from_secs(10),
            http_timeout: Duration::from_secs(5),
            max_status_list_bytes: 16 * 1024 * 1024,
            max_response_bytes: 4 * 1024 * 1024,
            failure_backoff: Duration::from_secs(5),
            allow_insecure_http: false,
            http_client: None,
            clock: Arc::new(SystemClock),
        }
    }
}

/// `fresh_at` before any data was confirmed current.
const NEVER: i64 = i64::MIN;

enum Mode {
    Feed { url: String, last_seq: AtomicU64 },
    Lists(Lists),
}

/// A verifier's revocation state and the task that keeps it current.
pub struct Revocations {
    mode: Mode,
    revoked: RwLock<Revoked>,
    /// Unix seconds at which the data was last confirmed current
    /// ([`NEVER`]: not yet). Seconds, compared with the `now` verification
    /// already read: the hot path reads no clock of its own.
    fresh_at: AtomicI64,
    clock: Arc<dyn Clock>,
    options: RevocationOptions,
    http: reqwest::Client,
    stream_http: reqwest::Client,
    keys: Weak<RemoteKeys>,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match &self.mode {
            Mode::Feed { url, .. } => format!("feed {url}"),
            Mode::Lists(lists) => format!("status lists {}", lists.prefix),
        };
        f.debug_struct("Revocations")
            .field("mode", &mode)
            .finish_non_exhaustive()
    }
}

impl Revocations {
    fn new(
        mode: Mode,
        keys: Option<&Arc<RemoteKeys>>,
        options: RevocationOptions,
    ) -> Result<Self, FetchError> {
        let (http, stream_http) = match &options.http_client {
            Some(client) => (client.clone(), client.clone()),
            None => (
                crate::remote::build_client(Some(options.http_timeout))?,
                crate::remote::build_client(None)?,
            ),
        };
        Ok(Revocations {
            mode,
            revoked: RwLock::default(),
            fresh_at: AtomicI64::new(NEVER),
            clock: options.clock.clone(),
            http,
            stream_http,
            keys: keys.map(Arc::downgrade).unwrap_or_default(),
            options,
        })
    }

    /// How long since the revocation data was last confirmed current, in
    /// whole seconds (`None`: never).
    pub fn age(&self) -> Option<Duration> {
        self.age_at(self.clock.date())
    }

    fn age_at(&self, now: NumericDate) -> Option<Duration> {
        match self.fresh_at.load(Ordering::Acquire) {
            NEVER => None,
            at => Some(now.since(NumericDate::from_unix(at))),
        }
    }

    /// The last event applied (feed mode).
    pub fn last_event_id(&self) -> Option<u64> {
        match &self.mode {
            Mode::Feed { last_seq, .. } => Some(last_seq.load(Ordering::Acquire)),
            Mode::Lists(_) => None,
        }
    }

    fn mark_fresh(&self) {
        let now = self.clock.date().unix().max(NEVER + 1);
        self.fresh_at.store(now, Ordering::Release);
    }

    fn is_stale(&self, max: Duration, now: NumericDate) -> Result<(), VerifyError> {
        match self.age_at(now) {
            Some(age) if age <= max => Ok(()),
            age => {
                let age_secs = age.map(|a| a.as_secs());
                if self.options.fail_open {
                    tracing::warn!(
                        ?age_secs,
                        "revocation data is stale; accepting the token (fail_open)"
                    );
                    Ok(())
                } else {
                    Err(VerifyError::RevocationStale { age_secs })
                }
            }
        }
    }

    /// Refuses a token signed by a revoked key (before its signature is checked).
    pub fn check_key(&self, kid: &str) -> Result<(), VerifyError> {
        let revoked = self.revoked.read().unwrap_or_else(PoisonError::into_inner);
        if revoked.keys.contains_key(kid) {
            return Err(VerifyError::Revoked(RevokedBy::Key));
        }
        Ok(())
    }

    /// Refuses verified `claims` whose session or subject was revoked, or
    /// whose status-list bit is set; and any token when the data is stale at
    /// `now` and the verifier fails closed.
    pub fn check_claims(&self, claims: &AccessClaims, now: NumericDate) -> Result<(), VerifyError> {
        match &self.mode {
            Mode::Feed { .. } => {
                self.is_stale(self.options.max_staleness, now)?;
                let revoked = self.revoked.read().unwrap_or_else(PoisonError::into_inner);
                if let Some(sid) = &claims.sid
                    && revoked.sessions.contains_key(sid.as_str())
                {
                    return Err(VerifyError::Revoked(RevokedBy::Session));
                }
                if let Some((at, _)) = revoked.subjects.get(claims.sub.as_str())
                    && claims.iat.unix() <= *at
                {
                    return Err(VerifyError::Revoked(RevokedBy::Subject));
                }
                Ok(())
            }
            Mode::Lists(lists) => self.check_list(lists, claims, now),
        }
    }
}
