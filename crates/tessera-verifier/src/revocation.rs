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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tessera_core::statuslist::{STATUS_LIST_MEDIA_TYPE, StatusList, verify_status_list};
use tessera_core::{AccessClaims, NumericDate, RevokedBy, VerifyError};

use crate::remote::{FetchError, RemoteKeys};

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
        }
    }
}

/// One event of the feed, as `GET /v1/revocations` and the stream send it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RevocationEvent {
    /// Position in the feed.
    pub seq: i64,
    /// `session`, `subject` or `key`.
    pub kind: String,
    /// The session id, subject or key id.
    pub id: String,
    /// When it was revoked (Unix seconds).
    pub at: i64,
    /// When it may be forgotten (Unix seconds).
    pub until: i64,
}

#[derive(Deserialize)]
struct Page {
    events: Vec<RevocationEvent>,
    next: i64,
}

/// What is revoked, by kind; values are `until` (and `at` for subjects).
#[derive(Default)]
struct Revoked {
    sessions: HashMap<Box<str>, i64>,
    subjects: HashMap<Box<str>, (i64, i64)>,
    keys: HashMap<Box<str>, i64>,
}

impl Revoked {
    fn apply(&mut self, event: &RevocationEvent) -> bool {
        let id: Box<str> = event.id.as_str().into();
        match event.kind.as_str() {
            "session" => {
                self.sessions.insert(id, event.until);
            }
            "subject" => {
                // A later logout of the same subject covers more tokens.
                let entry = self.subjects.entry(id).or_insert((event.at, event.until));
                entry.0 = entry.0.max(event.at);
                entry.1 = entry.1.max(event.until);
            }
            "key" => {
                self.keys.insert(id, event.until);
                return true;
            }
            other => tracing::debug!(kind = other, "unknown revocation kind ignored"),
        }
        false
    }

    fn forget_before(&mut self, now: i64) {
        self.sessions.retain(|_, until| *until >= now);
        self.subjects.retain(|_, (_, until)| *until >= now);
        self.keys.retain(|_, until| *until >= now);
    }
}

struct CachedList {
    list: StatusList,
    /// Unix seconds.
    fetched: i64,
    /// The list's own `iat`: an older list never replaces it.
    iat: i64,
    ttl: Duration,
}

impl CachedList {
    fn age(&self, now: i64) -> Duration {
        Duration::from_secs(u64::try_from(now - self.fetched).unwrap_or(0))
    }
}

/// Status-list mode: where lists may come from and what is cached.
struct Lists {
    prefix: String,
    keys: Weak<RemoteKeys>,
    cache: RwLock<HashMap<String, Arc<CachedList>>>,
    /// When a fetch of each list last failed (Unix seconds).
    failed: RwLock<HashMap<String, i64>>,
    fetch_lock: tokio::sync::Mutex<()>,
}

/// Most lists whose last failure is remembered.
const MAX_FAILED_LISTS: usize = 1024;

enum Mode {
    Feed { url: String, last_seq: AtomicU64 },
    Lists(Lists),
}

/// A verifier's revocation state and the task that keeps it current.
pub struct Revocations {
    mode: Mode,
    revoked: RwLock<Revoked>,
    /// Unix seconds at which the data was last confirmed current (0: never).
    /// Seconds, compared with the `now` verification already read: the hot
    /// path reads no clock of its own.
    fresh_at: AtomicU64,
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
    /// Follows the event feed at `events_url` (the issuer's
    /// `revocation_events_endpoint`). Reads every current event first (and
    /// fails if it cannot), then streams. `keys`, when given, is refreshed at
    /// once whenever a key is revoked. Needs a Tokio runtime.
    pub async fn subscribe(
        events_url: &str,
        keys: Option<&Arc<RemoteKeys>>,
        options: RevocationOptions,
    ) -> Result<Arc<Self>, FetchError> {
        let this = Arc::new(Self::new(
            Mode::Feed {
                url: events_url.trim_end_matches('/').to_owned(),
                last_seq: AtomicU64::new(0),
            },
            keys,
            options,
        )?);
        this.poll_feed().await?;
        tokio::spawn(follow_feed(Arc::downgrade(&this)));
        Ok(this)
    }

    /// Checks tokens against the Token Status Lists they reference, which
    /// must live under `prefix` (the issuer's `status_list_uri_prefix`) and
    /// be signed by one of `keys`. Needs a Tokio runtime.
    pub fn status_lists(
        prefix: &str,
        keys: &Arc<RemoteKeys>,
        options: RevocationOptions,
    ) -> Result<Arc<Self>, FetchError> {
        let this = Arc::new(Self::new(
            Mode::Lists(Lists {
                prefix: prefix.to_owned(),
                keys: Arc::downgrade(keys),
                cache: RwLock::default(),
                failed: RwLock::default(),
                fetch_lock: tokio::sync::Mutex::new(()),
            }),
            Some(keys),
            options,
        )?);
        tokio::spawn(refresh_lists(Arc::downgrade(&this)));
        Ok(this)
    }

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
            fresh_at: AtomicU64::new(0),
            http,
            stream_http,
            keys: keys.map(Arc::downgrade).unwrap_or_default(),
            options,
        })
    }

    /// How long since the revocation data was last confirmed current, in
    /// whole seconds (`None`: never).
    pub fn age(&self) -> Option<Duration> {
        self.age_at(crate::verifier::system_now().unix())
    }

    fn age_at(&self, now: i64) -> Option<Duration> {
        match self.fresh_at.load(Ordering::Acquire) {
            0 => None,
            at => Some(Duration::from_secs(
                u64::try_from(now).unwrap_or(0).saturating_sub(at),
            )),
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
        let now = u64::try_from(crate::verifier::system_now().unix()).unwrap_or(0);
        self.fresh_at.store(now.max(1), Ordering::Release);
    }

    fn is_stale(&self, max: Duration, now: i64) -> Result<(), VerifyError> {
        match self.age_at(now) {
            Some(age) if age <= max => Ok(()),
            age => {
                let age_secs = age.map_or(u64::MAX, |a| a.as_secs());
                if self.options.fail_open {
                    tracing::warn!(
                        age_secs,
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
                self.is_stale(self.options.max_staleness, now.unix())?;
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
            Mode::Lists(lists) => self.check_list(lists, claims, now.unix()),
        }
    }

    fn check_list(
        &self,
        lists: &Lists,
        claims: &AccessClaims,
        now: i64,
    ) -> Result<(), VerifyError> {
        // A token without a status reference (a client-credentials token) has
        // no session to revoke.
        let Some(status) = &claims.status else {
            return Ok(());
        };
        let reference = &status.status_list;
        let cached = lists
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(reference.uri.as_str())
            .cloned();
        let fresh_for = |list: &CachedList| list.ttl + self.options.max_staleness;
        match cached {
            Some(list) if list.age(now) <= fresh_for(&list) => {
                let idx = usize::try_from(reference.idx).unwrap_or(usize::MAX);
                match list.list.get(idx) {
                    Some(false) => Ok(()),
                    Some(true) => Err(VerifyError::Revoked(RevokedBy::StatusList)),
                    // Past the end: the issuer never publishes a list shorter
                    // than its indices, so this list is older than the token.
                    None => self.unknown_status(),
                }
            }
            _ => self.unknown_status(),
        }
    }

    fn unknown_status(&self) -> Result<(), VerifyError> {
        if self.options.fail_open {
            tracing::warn!("status list unavailable; accepting the token (fail_open)");
            Ok(())
        } else {
            Err(VerifyError::RevocationStale { age_secs: u64::MAX })
        }
    }

    /// Status-list mode: makes sure the list `claims` reference is cached and
    /// current, fetching it now if not. Feed mode: nothing to do.
    pub async fn prepare(&self, claims: &AccessClaims) {
        let Mode::Lists(lists) = &self.mode else {
            return;
        };
        let Some(status) = &claims.status else { return };
        let uri = status.status_list.uri.as_str();
        let idx = usize::try_from(status.status_list.idx).unwrap_or(usize::MAX);
        let now = crate::verifier::system_now().unix();
        let usable = lists
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(uri)
            .is_some_and(|l| l.age(now) < l.ttl && l.list.get(idx).is_some());
        // While the issuer is failing, answer from what is held (or fail
        // closed) at once instead of making every request wait a timeout.
        let failed_recently = lists
            .failed
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(uri)
            .is_some_and(|at| {
                // `now` is whole seconds; round the backoff up.
                let backoff = self.options.failure_backoff.as_millis().div_ceil(1000);
                now.saturating_sub(*at) < i64::try_from(backoff).unwrap_or(i64::MAX)
            });
        if usable || failed_recently {
            return;
        }
        match self.fetch_list(lists, uri).await {
            Ok(()) => {
                lists
                    .failed
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(uri);
            }
            Err(error) => {
                tracing::warn!(%error, uri, "status list fetch failed");
                let mut failed = lists.failed.write().unwrap_or_else(PoisonError::into_inner);
                if failed.len() >= MAX_FAILED_LISTS {
                    failed.clear();
                }
                failed.insert(uri.to_owned(), now);
            }
        }
    }

    async fn fetch_list(&self, lists: &Lists, uri: &str) -> Result<(), FetchError> {
        let bad = |reason: String| FetchError::Document {
            url: uri.to_owned(),
            reason,
        };
        // Only the issuer's own lists: a token cannot make us fetch elsewhere.
        if !uri.starts_with(&lists.prefix) || uri[lists.prefix.len()..].contains(['/', '?', '#']) {
            return Err(bad("not under the issuer's status_list_uri_prefix".into()));
        }
        crate::remote::check_url(uri, self.options.allow_insecure_http)?;
        let asked_at = crate::verifier::system_now().unix();
        let _guard = lists.fetch_lock.lock().await;
        // Another request may have fetched it while this one waited.
        if lists
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(uri)
            .is_some_and(|l| l.fetched >= asked_at && l.age(asked_at) < l.ttl)
        {
            return Ok(());
        }
        let response = self
            .http
            .get(uri)
            .header(reqwest::header::ACCEPT, STATUS_LIST_MEDIA_TYPE)
            .send()
            .await
            .map_err(|e| FetchError::Http {
                url: uri.to_owned(),
                reason: e.to_string(),
            })?;
        crate::remote::check_final_url(uri, &response)?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(FetchError::Status {
                url: uri.to_owned(),
                status,
            });
        }
        let body =
            crate::remote::read_capped(uri, response, self.options.max_response_bytes).await?;
        let body = String::from_utf8(body).map_err(|_| bad("not UTF-8".into()))?;
        let keys = lists.keys.upgrade();
        let now = crate::verifier::system_now().unix();
        let (list, info) = verify_status_list(
            body.trim(),
            uri,
            now,
            self.options.max_status_list_bytes,
            |kid| keys.as_ref().and_then(|k| k.get(kid)).map(|k| (*k).clone()),
        )
        .map_err(|e| bad(e.to_string()))?;
        let ttl = Duration::from_secs(info.ttl.unwrap_or(60).clamp(1, 86_400));
        let mut cache = lists.cache.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = cache.get(uri)
            && held.iat > info.iat
        {
            // A replayed (or stale cached) older list would un-revoke sessions.
            return Err(bad(format!(
                "issued at {}, before the list held (issued at {})",
                info.iat, held.iat
            )));
        }
        cache.insert(
            uri.to_owned(),
            Arc::new(CachedList {
                list,
                fetched: now,
                iat: info.iat,
                ttl,
            }),
        );
        drop(cache);
        self.mark_fresh();
        Ok(())
    }

    fn apply(&self, events: &[RevocationEvent]) {
        if events.is_empty() {
            return;
        }
        let now = crate::verifier::system_now().unix();
        let mut key_revoked = false;
        {
            let mut revoked = self.revoked.write().unwrap_or_else(PoisonError::into_inner);
            for event in events {
                key_revoked |= revoked.apply(event);
            }
            revoked.forget_before(now);
        }
        if let Mode::Feed { last_seq, .. } = &self.mode
            && let Some(last) = events.iter().map(|e| e.seq).max()
        {
            last_seq.fetch_max(u64::try_from(last).unwrap_or(0), Ordering::AcqRel);
        }
        for event in events {
            tracing::debug!(seq = event.seq, kind = %event.kind, "revocation applied");
        }
        if key_revoked && let Some(keys) = self.keys.upgrade() {
            // Drop the revoked key and learn its replacement now, not at the
            // next max-age.
            tokio::spawn(async move {
                if let Err(error) = keys.refresh_now().await {
                    tracing::warn!(%error, "key refresh after a key revocation failed");
                }
            });
        }
    }

    /// Feed mode: reads every event after the last one seen, page by page.
    async fn poll_feed(&self) -> Result<(), FetchError> {
        let Mode::Feed { url, last_seq } = &self.mode else {
            return Ok(());
        };
        loop {
            let after = last_seq.load(Ordering::Acquire);
            let page_url = format!("{url}?after={after}");
            crate::remote::check_url(&page_url, self.options.allow_insecure_http)?;
            let response = self
                .http
                .get(&page_url)
                .send()
                .await
                .map_err(|e| FetchError::Http {
                    url: page_url.clone(),
                    reason: e.to_string(),
                })?;
            crate::remote::check_final_url(&page_url, &response)?;
            let status = response.status().as_u16();
            if status != 200 {
                return Err(FetchError::Status {
                    url: page_url,
                    status,
                });
            }
            let body =
                crate::remote::read_capped(&page_url, response, self.options.max_response_bytes)
                    .await?;
            let page: Page = serde_json::from_slice(&body).map_err(|e| FetchError::Document {
                url: page_url.clone(),
                reason: e.to_string(),
            })?;
            self.apply(&page.events);
            self.mark_fresh();
            if page.events.is_empty() || page.next <= i64::try_from(after).unwrap_or(i64::MAX) {
                return Ok(());
            }
        }
    }

    /// Feed mode: one connection to the stream, until it breaks or goes quiet.
    async fn stream_once(self: &Arc<Self>) -> Result<(), FetchError> {
        let Mode::Feed { url, last_seq } = &self.mode else {
            return Ok(());
        };
        let stream_url = format!("{url}/stream");
        crate::remote::check_url(&stream_url, self.options.allow_insecure_http)?;
        let http_err = |e: reqwest::Error| FetchError::Http {
            url: stream_url.clone(),
            reason: e.to_string(),
        };
        let mut response = self
            .stream_http
            .get(&stream_url)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .header(
                "Last-Event-ID",
                last_seq.load(Ordering::Acquire).to_string(),
            )
            .send()
            .await
            .map_err(http_err)?;
        crate::remote::check_final_url(&stream_url, &response)?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(FetchError::Status {
                url: stream_url,
                status,
            });
        }
        // Fresh only once data (an event or a heartbeat) was read whole: a
        // stream that reconnects and fails on the same event goes stale.
        let mut parser = SseParser::default();
        loop {
            let chunk = tokio::time::timeout(self.options.read_timeout, response.chunk())
                .await
                .map_err(|_| FetchError::Http {
                    url: stream_url.clone(),
                    reason: "no data or heartbeat within the read timeout".into(),
                })?
                .map_err(http_err)?;
            let Some(chunk) = chunk else {
                return Ok(());
            };
            let mut events = Vec::new();
            for data in parser.feed(&chunk) {
                match serde_json::from_str::<RevocationEvent>(&data) {
                    Ok(event) => events.push(event),
                    Err(error) => {
                        // Never skip an event: apply what came before it,
                        // then reconnect and resume from the last good one
                        // (`Last-Event-ID`, and the `?after=` poll). Events
                        // after it would move the position past it.
                        self.apply(&events);
                        return Err(FetchError::Document {
                            url: stream_url,
                            reason: format!("undecodable revocation event: {error}"),
                        });
                    }
                }
            }
            self.apply(&events);
            self.mark_fresh();
        }
    }
}

/// Keeps the feed flowing: stream, and when the stream breaks, poll once
/// and reconnect with exponential backoff.
async fn follow_feed(weak: Weak<Revocations>) {
    let (min, max) = match weak.upgrade() {
        Some(this) => (this.options.min_backoff, this.options.max_backoff),
        None => return,
    };
    let mut backoff = min;
    loop {
        let Some(this) = weak.upgrade() else { return };
        let started = Instant::now();
        match this.stream_once().await {
            Ok(()) => tracing::info!("revocation stream closed by the issuer; reconnecting"),
            Err(error) => tracing::warn!(%error, "revocation stream broke; reconnecting"),
        }
        // A stream that lived a while was healthy: start backing off afresh.
        if started.elapsed() > max {
            backoff = min;
        }
        if let Err(error) = this.poll_feed().await {
            tracing::debug!(%error, "revocation poll failed");
        }
        drop(this);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(max);
    }
}

/// Refetches cached status lists as their `ttl` runs out.
async fn refresh_lists(weak: Weak<Revocations>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(this) = weak.upgrade() else { return };
        let Mode::Lists(lists) = &this.mode else {
            return;
        };
        let now = crate::verifier::system_now().unix();
        let due: Vec<String> = lists
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, l)| l.age(now) >= l.ttl)
            .map(|(uri, _)| uri.clone())
            .collect();
        for uri in due {
            if let Err(error) = this.fetch_list(lists, &uri).await {
                tracing::warn!(%error, uri, "status list refresh failed; keeping the cached one");
            }
        }
    }
}

/// A minimal `text/event-stream` reader: collects `data:` lines per event
/// and yields each event's data at its blank line. Lines end with CRLF, LF
/// or a bare CR, as the SSE specification allows. Comments (heartbeats) and
/// other fields are skipped; the caller counts any bytes as liveness.
#[derive(Default)]
struct SseParser {
    line: Vec<u8>,
    data: String,
    /// The last byte ended a line with CR: an LF right after it belongs to
    /// that line end.
    after_cr: bool,
}

/// The events' data the stream reader yields for `chunks`, fed in order
/// (for fuzzing: a stream cut anywhere must read the same).
#[doc(hidden)]
pub fn sse_events(chunks: &[&[u8]]) -> Vec<String> {
    let mut parser = SseParser::default();
    chunks.iter().flat_map(|chunk| parser.feed(chunk)).collect()
}

/// Longest event line accepted; longer lines are dropped.
const MAX_SSE_LINE: usize = 64 * 1024;

impl SseParser {
    fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
            if b == b'\n' && after_cr {
                continue;
            }
            if b != b'\n' && b != b'\r' {
                if self.line.len() < MAX_SSE_LINE {
                    self.line.push(b);
                }
                continue;
            }
            if self.line.is_empty() {
                if !self.data.is_empty() {
                    out.push(std::mem::take(&mut self.data));
                }
            } else if let Some(rest) = self.line.strip_prefix(b"data:") {
                let rest = rest.strip_prefix(b" ").unwrap_or(rest);
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(&String::from_utf8_lossy(rest));
            }
            self.line.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_parser_splits_events_across_chunks() {
        let mut parser = SseParser::default();
        assert!(parser.feed(b": heartbeat\n\nid: 1\nevent: revo").is_empty());
        let got = parser.feed(b"cation\ndata: {\"a\":1}\r\n\r\ndata: x\ndata: y\n\n");
        assert_eq!(got, vec!["{\"a\":1}".to_owned(), "x\ny".to_owned()]);
    }

    #[test]
    fn sse_lines_may_end_with_a_bare_cr() {
        let mut parser = SseParser::default();
        assert_eq!(
            parser.feed(b"data: a\r\rdata: b\r\n\r\ndata: c\n\n"),
            vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]
        );
        // A CRLF split across chunks is one line end, not two.
        assert!(parser.feed(b"data: x\r").is_empty());
        assert_eq!(parser.feed(b"\ndata: y\r\n\r\n"), vec!["x\ny".to_owned()]);
    }

    #[test]
    fn revoked_entries_expire_and_subjects_keep_the_latest_logout() {
        let mut revoked = Revoked::default();
        let event = |kind: &str, id: &str, at, until| RevocationEvent {
            seq: 1,
            kind: kind.into(),
            id: id.into(),
            at,
            until,
        };
        revoked.apply(&event("session", "s1", 10, 100));
        revoked.apply(&event("subject", "alice", 50, 200));
        revoked.apply(&event("subject", "alice", 20, 150));
        assert!(revoked.apply(&event("key", "k1", 10, 300)));
        assert_eq!(revoked.subjects.get("alice"), Some(&(50, 200)));
        revoked.forget_before(101);
        assert!(!revoked.sessions.contains_key("s1"));
        assert!(revoked.subjects.contains_key("alice"));
        revoked.forget_before(201);
        assert!(revoked.subjects.is_empty());
        assert!(revoked.keys.contains_key("k1"));
    }
}
