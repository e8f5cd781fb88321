//! What verifiers read to distrust: the revocation event feed
//! (`GET /v1/revocations?after=SEQ`, and the same as Server-Sent Events at
//! `GET /v1/revocations/stream`, resumable with `Last-Event-ID`) and the
//! Token Status Lists (`GET /statuslists/{id}`).
//!
//! Both follow the store's change marks ([`Store::changes`]): an event
//! written by this process reaches open streams at once, one written by
//! another process (a CLI) within the store's poll interval.
//!
//! **Streams at scale.** One reader per instance reads each new event from
//! the store once and fans it out to every stream through a bounded
//! broadcast channel, so subscribers do not multiply store reads. A stream
//! reads the store only to catch up when it connects (from `Last-Event-ID`).
//! A subscriber too slow to keep up (the channel overtook it) is
//! disconnected, and resumes from its last event id: it never silently
//! misses an event. Subscribers are capped (`max_subscribers`); beyond the
//! cap a stream request is answered 503 with `Retry-After`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tessera_core::statuslist::{
    ENTRIES_PER_LIST, STATUS_LIST_MEDIA_TYPE, StatusList, StatusListInfo, sign_status_list,
};
use tessera_core::{Algorithm, SigningKey};
use tessera_store::{ChangeMarks, RevocationEvent, Store, StoreError};

use crate::keys::{KeyState, signing_key};
use tessera_core::statuslist::StatusIndex;
use tessera_core::time::Clock;

/// Most events in one page or one stream batch.
const PAGE: u32 = 1000;
/// A comment line is sent on a quiet stream this often, so followers can
/// tell a quiet feed from a dead one.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Settings of the feed and the status lists.
#[derive(Debug, Clone)]
pub struct FeedSettings {
    /// The issuer's base URL (status list URIs and `iss`).
    pub issuer: String,
    /// `ttl` of Status List Tokens (`revocation.status_list_ttl`).
    pub status_list_ttl: Duration,
    /// Most open event streams (`revocation.max_subscribers`).
    pub max_subscribers: usize,
    /// Events a stream may fall behind before it is disconnected (to
    /// resume from its last event id).
    pub stream_buffer: usize,
}

impl FeedSettings {
    /// Settings with the default limits (1,000 subscribers, 4,096 events of buffer).
    pub fn new(issuer: impl Into<String>, status_list_ttl: Duration) -> Self {
        FeedSettings {
            issuer: issuer.into(),
            status_list_ttl,
            max_subscribers: 1000,
            stream_buffer: 4096,
        }
    }
}

struct CachedList {
    marks: ChangeMarks,
    made: Instant,
    token: Arc<str>,
}

/// The feed and status-list service.
pub struct Feed {
    store: Arc<dyn Store>,
    master: Arc<tessera_core::MasterKey>,
    settings: FeedSettings,
    clock: Arc<dyn Clock>,
    lists: Mutex<HashMap<u64, CachedList>>,
    /// Held while a list is rebuilt: requests that find it out of date wait
    /// for that one rebuild instead of each reading the store.
    rebuilding: tokio::sync::Mutex<()>,
    builds: std::sync::atomic::AtomicU64,
    signer: Mutex<Option<(i64, Arc<SigningKey>)>>,
    closing: tokio::sync::watch::Sender<bool>,
    /// New events, read once from the store and fanned out to every stream.
    events: tokio::sync::broadcast::Sender<Arc<RevocationEvent>>,
    /// One permit per open stream.
    subscribers: Arc<tokio::sync::Semaphore>,
    /// Store reads made by the fan-out reader.
    fan_out_reads: AtomicU64,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

pub use tessera_core::statuslist::status_list_uri;

impl Feed {
    /// A feed over `store`; status lists are signed with the active EdDSA
    /// key, opened with `master`.
    pub fn new(
        store: Arc<dyn Store>,
        master: Arc<tessera_core::MasterKey>,
        settings: FeedSettings,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        let (events, _) = tokio::sync::broadcast::channel(settings.stream_buffer.max(1));
        let feed = Arc::new(Feed {
            store,
            master,
            subscribers: Arc::new(tokio::sync::Semaphore::new(settings.max_subscribers)),
            settings,
            clock,
            lists: Mutex::default(),
            rebuilding: tokio::sync::Mutex::new(()),
            builds: std::sync::atomic::AtomicU64::new(0),
            signer: Mutex::default(),
            closing: tokio::sync::watch::Sender::new(false),
            events,
            fan_out_reads: AtomicU64::new(0),
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(fan_out(Arc::downgrade(&feed), feed.store.changes()));
        }
        feed
    }

    /// Store reads made to fan new events out to the streams, since start
    /// (one per batch of events, however many streams are open).
    pub fn fan_out_reads(&self) -> u64 {
        self.fan_out_reads.load(Ordering::Relaxed)
    }

    /// Event streams open now.
    pub fn subscribers(&self) -> usize {
        self.settings.max_subscribers - self.subscribers.available_permits()
    }

    /// Ends every open event stream (before a graceful shutdown, which
    /// would otherwise wait for them).
    pub fn close(&self) {
        let _ = self.closing.send(true);
    }

    /// `GET /v1/revocations`, `GET /v1/revocations/stream`, `GET /statuslists/{id}`.
    pub fn routes(self: &Arc<Self>) -> Router {
        self.openapi_routes().split_for_parts().0
    }

    /// [`Feed::routes`] with their OpenAPI description.
    pub fn openapi_routes(self: &Arc<Self>) -> utoipa_axum::router::OpenApiRouter {
        use utoipa_axum::routes;
        utoipa_axum::router::OpenApiRouter::new()
            .routes(routes!(page))
            .routes(routes!(stream))
            .routes(routes!(status_list))
            .with_state(self.clone())
    }

    async fn signer(&self, marks: ChangeMarks) -> Result<Arc<SigningKey>, FeedError> {
        if let Some((seen, key)) = self
            .signer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            && *seen == marks.keys
        {
            return Ok(key.clone());
        }
        let keys = self.store.keys().await?;
        let row = keys
            .iter()
            .rev()
            .find(|k| k.alg == Algorithm::EdDsa && k.state == KeyState::Active)
            .ok_or(FeedError::NoKey)?;
        let key = Arc::new(signing_key(row, &self.master).map_err(|e| {
            tracing::error!(error = %e, kid = %row.kid, "cannot open the status-list signing key");
            FeedError::NoKey
        })?);
        *self.signer.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((marks.keys, key.clone()));
        Ok(key)
    }

    /// How many Status List Tokens were built since start (each is a store
    /// read and a signature).
    pub fn status_list_builds(&self) -> u64 {
        self.builds.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn cached_list(&self, id: u64, marks: ChangeMarks) -> Option<Arc<str>> {
        let fresh_for = self.settings.status_list_ttl / 2;
        self.lists
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .filter(|cached| cached.marks == marks && cached.made.elapsed() < fresh_for)
            .map(|cached| cached.token.clone())
    }

    /// The Status List Token of list `id`, from the cache while nothing
    /// changed and it is younger than half its `ttl`; otherwise built once
    /// (single-flight) for every request waiting on it.
    pub async fn status_list_token(&self, id: u64) -> Result<Arc<str>, FeedError> {
        let marks = *self.store.changes().borrow();
        if let Some(token) = self.cached_list(id, marks) {
            return Ok(token);
        }
        let _rebuilding = self.rebuilding.lock().await;
        // Another request may have built it while this one waited.
        if let Some(token) = self.cached_list(id, marks) {
            return Ok(token);
        }
        self.builds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let max = self.store.max_status_index().await?;
        let highest_list = max.map(StatusIndex::list);
        if highest_list.is_none_or(|h| id > h) {
            return Err(FeedError::NoSuchList);
        }
        let from = id * ENTRIES_PER_LIST;
        let to = from + ENTRIES_PER_LIST;
        let ended = self
            .store
            .ended_status_indices(StatusIndex::new(from), StatusIndex::new(to))
            .await?;
        let entries = usize::try_from(ENTRIES_PER_LIST).unwrap_or(usize::MAX);
        let mut list = StatusList::new(entries);
        for idx in ended {
            // Only indices in [from, to) come back, so `local` fits a list.
            let local = idx
                .get()
                .checked_sub(from)
                .and_then(|local| usize::try_from(local).ok());
            if let Some(local) = local {
                list.set(local);
            }
        }
        let now = self.clock.now().unix_seconds();
        let ttl = self.settings.status_list_ttl.as_secs().max(1);
        let info = StatusListInfo {
            uri: status_list_uri(&self.settings.issuer, id),
            iat: now,
            // Long enough to ride out an issuer outage of a few ttl; verifiers
            // refetch per `ttl` and bound staleness themselves.
            exp: Some(now + i64::try_from(ttl.saturating_mul(10).max(600)).unwrap_or(600)),
            ttl: Some(ttl),
            iss: Some(self.settings.issuer.clone()),
        };
        let key = self.signer(marks).await?;
        let token: Arc<str> = sign_status_list(&list, &info, &key)
            .map_err(|e| {
                tracing::error!(error = %e, "cannot sign a status list");
                FeedError::NoKey
            })?
            .into();
        self.lists
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                id,
                CachedList {
                    marks,
                    made: Instant::now(),
                    token: token.clone(),
                },
            );
        Ok(token)
    }
}

/// Why a feed request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// The store failed.
    #[error("the store is unavailable")]
    Store(#[from] StoreError),
    /// No active EdDSA key to sign status lists with.
    #[error("no active signing key")]
    NoKey,
    /// The status list does not exist (yet).
    #[error("no such status list")]
    NoSuchList,
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// Every event-stream slot is taken.
    #[error("too many event streams are open; retry shortly")]
    TooManySubscribers,
}

fn event_json(event: &RevocationEvent) -> serde_json::Value {
    json!({
        "seq": event.seq,
        "kind": event.kind,
        "id": event.id,
        "at": event.at.unix_seconds(),
        "until": event.until.unix_seconds(),
    })
}

/// A non-negative decimal without sign or leading zeros, as feed positions are written.
fn parse_seq(text: &str, what: &str) -> Result<i64, FeedError> {
    let canonical = !text.is_empty()
        && text.len() <= 18
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    match canonical.then(|| text.parse::<i64>().ok()).flatten() {
        Some(seq) => Ok(seq),
        None => Err(FeedError::BadRequest(format!(
            "{what} must be a non-negative integer"
        ))),
    }
}

fn after_param(query: &HashMap<String, String>) -> Result<i64, FeedError> {
    if let Some(unknown) = query.keys().find(|k| k.as_str() != "after") {
        return Err(FeedError::BadRequest(format!(
            "unknown query parameter {unknown:?}"
        )));
    }
    query
        .get("after")
        .map_or(Ok(0), |after| parse_seq(after, "after"))
}

/// Revocation events after `after`, oldest first (at most 1,000).
#[utoipa::path(
    get,
    path = "/v1/revocations",
    tag = "revocation",
    params(("after" = Option<i64>, Query, description = "Only events after this sequence number")),
    responses(
        (status = 200, description = "A page of events", body = crate::schema::RevocationPage),
        (status = 400, description = "Bad `after`", body = crate::schema::ApiErrorBody),
        (status = 503, description = "The store is unavailable", body = crate::schema::ApiErrorBody),
    )
)]
async fn page(
    State(feed): State<Arc<Feed>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, FeedError> {
    let after = after_param(&query)?;
    let events = feed.store.revocations_after(after, PAGE).await?;
    let next = events.last().map_or(after, |e| e.seq);
    let body = json!({
        "events": events.iter().map(event_json).collect::<Vec<_>>(),
        "next": next,
    });
    Ok((
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(body),
    )
        .into_response())
}

/// The one reader: whenever the revocation mark moves, reads the new events
/// once and sends them to every stream. Ends with the feed.
async fn fan_out(weak: Weak<Feed>, mut changes: tokio::sync::watch::Receiver<ChangeMarks>) {
    let mut after = changes.borrow_and_update().revocations;
    loop {
        let Some(feed) = weak.upgrade() else { return };
        let mut closing = feed.closing.subscribe();
        loop {
            match feed.store.revocations_after(after, PAGE).await {
                Ok(events) if !events.is_empty() => {
                    let reads = feed.fan_out_reads.fetch_add(1, Ordering::Relaxed) + 1;
                    let count = events.len();
                    for event in events {
                        after = event.seq;
                        crate::metrics::revocation_event(event.kind);
                        // No receiver is fine: nobody is streaming.
                        let _ = feed.events.send(Arc::new(event));
                    }
                    tracing::info!(
                        events = count,
                        last_seq = after,
                        subscribers = feed.events.receiver_count(),
                        store_reads = reads,
                        "revocation events fanned out"
                    );
                }
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "revocation fan-out: store read failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
            }
        }
        drop(feed);
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = closing.changed() => return,
            // Only to notice a dropped feed (and retry after a failed read).
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

struct StreamState {
    feed: Arc<Feed>,
    events: tokio::sync::broadcast::Receiver<Arc<RevocationEvent>>,
    closing: tokio::sync::watch::Receiver<bool>,
    /// The last event sent (or the position the client resumed from).
    after: i64,
    /// Still reading the store up to the head (right after connecting).
    catching_up: bool,
    queue: std::collections::VecDeque<RevocationEvent>,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

/// The same events as Server-Sent Events (`event: revocation`, `id: SEQ`,
/// `data:` one event), live, with a heartbeat comment every second;
/// resumable with `Last-Event-ID` or `?after=`.
#[utoipa::path(
    get,
    path = "/v1/revocations/stream",
    tag = "revocation",
    params(
        ("after" = Option<i64>, Query, description = "Start after this sequence number"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event"),
    ),
    responses(
        (status = 200, description = "An event stream; each `data:` is a RevocationEventView", content_type = "text/event-stream", body = String),
        (status = 400, description = "Bad `after` or `Last-Event-ID`", body = crate::schema::ApiErrorBody),
        (status = 503, description = "Too many open streams (Retry-After) or the store is unavailable", body = crate::schema::ApiErrorBody),
    )
)]
async fn stream(
    State(feed): State<Arc<Feed>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, FeedError> {
    let mut after = after_param(&query)?;
    if let Some(last) = headers.get("last-event-id") {
        let text = last
            .to_str()
            .map_err(|_| FeedError::BadRequest("Last-Event-ID must be an integer".into()))?;
        after = after.max(parse_seq(text.trim(), "Last-Event-ID")?);
    }
    let slot = feed
        .subscribers
        .clone()
        .try_acquire_owned()
        .map_err(|_| FeedError::TooManySubscribers)?;
    // Subscribe before catching up from the store: whatever is published
    // meanwhile is in the channel, and duplicates are dropped by `seq`.
    let state = StreamState {
        events: feed.events.subscribe(),
        closing: feed.closing.subscribe(),
        feed,
        after,
        catching_up: true,
        queue: std::collections::VecDeque::new(),
        _slot: slot,
    };
    let events = futures_util::stream::unfold(state, next_event);
    let mut response = Sse::new(events).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn sse(event: &RevocationEvent) -> Event {
    Event::default()
        .id(event.seq.to_string())
        .event("revocation")
        .data(event_json(event).to_string())
}

async fn next_event(mut s: StreamState) -> Option<(Result<Event, Infallible>, StreamState)> {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        if *s.closing.borrow() {
            return None;
        }
        if let Some(event) = s.queue.pop_front() {
            if event.seq <= s.after {
                continue;
            }
            s.after = event.seq;
            return Some((Ok(sse(&event)), s));
        }
        if s.catching_up {
            match s.feed.store.revocations_after(s.after, PAGE).await {
                Ok(events) if !events.is_empty() => s.queue.extend(events),
                Ok(_) => s.catching_up = false,
                Err(error) => {
                    tracing::warn!(%error, "revocation stream: store read failed; closing the stream");
                    return None;
                }
            }
            continue;
        }
        tokio::select! {
            received = s.events.recv() => match received {
                Ok(event) => {
                    if event.seq > s.after {
                        s.after = event.seq;
                        return Some((Ok(sse(&event)), s));
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    // Too slow: end the stream; the follower resumes from
                    // its last event id and reads what it missed.
                    tracing::info!(missed, last_sent = s.after, "revocation stream too slow; disconnecting it");
                    return None;
                }
                Err(RecvError::Closed) => return None,
            },
            _ = s.closing.changed() => return None,
            () = tokio::time::sleep(HEARTBEAT) => {
                return Some((Ok(Event::default().comment("heartbeat")), s));
            }
        }
    }
}

/// A Token Status List (draft-ietf-oauth-status-list) as a signed JWT:
/// every access token names its list and index in `status.status_list`.
#[utoipa::path(
    get,
    path = "/statuslists/{id}",
    tag = "revocation",
    params(("id" = u64, Path, description = "The list number")),
    responses(
        (status = 200, description = "The status list token", content_type = "application/statuslist+jwt", body = String),
        (status = 404, description = "No such list", body = crate::schema::ApiErrorBody),
        (status = 503, description = "The store is unavailable", body = crate::schema::ApiErrorBody),
    )
)]
async fn status_list(
    State(feed): State<Arc<Feed>>,
    Path(id): Path<String>,
) -> Result<Response, FeedError> {
    let id = parse_seq(&id, "the status list id")
        .ok()
        .and_then(|id| u64::try_from(id).ok())
        .ok_or(FeedError::NoSuchList)?;
    let token = feed.status_list_token(id).await?;
    let ttl = feed.settings.status_list_ttl.as_secs().max(1);
    let cache = HeaderValue::from_str(&format!("public, max-age={ttl}"))
        .unwrap_or_else(|_| HeaderValue::from_static("public, max-age=60"));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(STATUS_LIST_MEDIA_TYPE),
            ),
            (header::CACHE_CONTROL, cache),
        ],
        token.to_string(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_positions_are_canonical_integers() {
        for ok in ["0", "7", "123456789"] {
            assert!(parse_seq(ok, "after").is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-1",
            "01",
            "1e3",
            " 1",
            "+1",
            "9999999999999999999",
            "x",
        ] {
            assert!(parse_seq(bad, "after").is_err(), "{bad:?}");
        }
    }
}
