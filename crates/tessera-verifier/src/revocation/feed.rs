//! The event feed: `GET /v1/revocations?after=` pages and the
//! `/stream` of Server-Sent Events, resumed with `Last-Event-ID`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, Weak};
use std::time::Instant;

use serde::Deserialize;

use super::sse::SseParser;
use super::{Mode, RevocationOptions, Revocations};
use crate::remote::{FetchError, RemoteKeys};

/// One event of the feed, as `GET /v1/revocations` and the stream send it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RevocationEvent {
    /// Position in the feed.
    pub seq: i64,
    /// What is revoked.
    pub kind: EventKind,
    /// The session id, subject or key id.
    pub id: String,
    /// When it was revoked (Unix seconds).
    pub at: i64,
    /// When it may be forgotten (Unix seconds).
    pub until: i64,
}

/// What a revocation event revokes. A kind this build does not know (from
/// a newer issuer) is kept as `Other` and ignored, never an error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// One session (`sid`).
    Session,
    /// Every token of a subject issued at or before the event.
    Subject,
    /// Every token signed by a key.
    Key,
    /// A kind this build does not know.
    #[serde(other)]
    Other,
}

impl From<&str> for EventKind {
    fn from(text: &str) -> Self {
        match text {
            "session" => EventKind::Session,
            "subject" => EventKind::Subject,
            "key" => EventKind::Key,
            _ => EventKind::Other,
        }
    }
}

#[derive(Deserialize)]
struct Page {
    events: Vec<RevocationEvent>,
    next: i64,
}

/// What is revoked, by kind; values are `until` (and `at` for subjects).
#[derive(Default)]
pub(super) struct Revoked {
    pub(super) sessions: HashMap<Box<str>, i64>,
    pub(super) subjects: HashMap<Box<str>, (i64, i64)>,
    pub(super) keys: HashMap<Box<str>, i64>,
}

impl Revoked {
    fn apply(&mut self, event: &RevocationEvent) -> bool {
        let id: Box<str> = event.id.as_str().into();
        match event.kind {
            EventKind::Session => {
                self.sessions.insert(id, event.until);
            }
            EventKind::Subject => {
                // A later logout of the same subject covers more tokens.
                let entry = self.subjects.entry(id).or_insert((event.at, event.until));
                entry.0 = entry.0.max(event.at);
                entry.1 = entry.1.max(event.until);
            }
            EventKind::Key => {
                self.keys.insert(id, event.until);
                return true;
            }
            EventKind::Other => tracing::debug!(seq = event.seq, "unknown revocation kind ignored"),
        }
        false
    }

    fn forget_before(&mut self, now: i64) {
        self.sessions.retain(|_, until| *until >= now);
        self.subjects.retain(|_, (_, until)| *until >= now);
        self.keys.retain(|_, until| *until >= now);
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

    fn apply(&self, events: &[RevocationEvent]) {
        if events.is_empty() {
            return;
        }
        let now = self.clock.date().unix();
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
            && let Ok(last) = u64::try_from(last)
        {
            last_seq.fetch_max(last, Ordering::AcqRel);
        }
        for event in events {
            tracing::debug!(seq = event.seq, kind = ?event.kind, "revocation applied");
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
            let response =
                self.http
                    .get(&page_url)
                    .send()
                    .await
                    .map_err(|source| FetchError::Http {
                        url: page_url.clone(),
                        source,
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
            if page.events.is_empty() || !u64::try_from(page.next).is_ok_and(|next| next > after) {
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
        let http_err = |source: reqwest::Error| FetchError::Http {
            url: stream_url.clone(),
            source,
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
                .map_err(|_| FetchError::Quiet {
                    url: stream_url.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
        // A kind from a newer issuer is ignored, not an error.
        assert!(!revoked.apply(&event("tenant", "t1", 10, 300)));
        let parsed: RevocationEvent =
            serde_json::from_str(r#"{"seq":9,"kind":"tenant","id":"t1","at":1,"until":2}"#)
                .expect("unknown kinds still parse");
        assert_eq!(parsed.kind, EventKind::Other);
        assert_eq!(revoked.subjects.get("alice"), Some(&(50, 200)));
        revoked.forget_before(101);
        assert!(!revoked.sessions.contains_key("s1"));
        assert!(revoked.subjects.contains_key("alice"));
        revoked.forget_before(201);
        assert!(revoked.subjects.is_empty());
        assert!(revoked.keys.contains_key("k1"));
    }
}
