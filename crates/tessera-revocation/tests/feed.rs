//! Status lists on a real SQLite file: a flood of requests for a list that
//! changed builds it once.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::{Algorithm, MasterKey};
use tessera_revocation::{Feed, FeedSettings, ensure_signing_keys};
use tessera_store::sqlite::SqliteStore;
use tessera_store::{AuditRecord, Device, EndReason, Session, Store, Timestamp};

const NOW: Timestamp = Timestamp(1_700_000_000_000);

fn now() -> std::sync::Arc<dyn tessera_core::time::Clock> {
    std::sync::Arc::new(tessera_core::time::ManualClock::new(NOW))
}

fn session(id: &str) -> Session {
    Session {
        id: id.to_owned(),
        subject: "alice".to_owned(),
        client_id: "app".to_owned(),
        opened_by: "backend".to_owned(),
        scope: None,
        audience: vec!["api".to_owned()],
        claims: serde_json::json!({}),
        auth_time: None,
        acr: None,
        amr: vec![],
        token_format: tessera_store::TokenFormat::Jwt,
        dpop_jkt: None,
        device: Device::default(),
        generation: tessera_store::Generation::FIRST,
        created_at: NOW,
        last_used_at: NOW,
        rotated_at: NOW,
        idle_expires_at: NOW.plus(Duration::from_secs(3600)),
        absolute_expires_at: NOW.plus(Duration::from_secs(7200)),
        revoked_at: None,
        revoked_reason: None,
        status_idx: None,
    }
}

fn record(kind: &str, id: &str) -> AuditRecord {
    AuditRecord {
        seq: 0,
        at: NOW,
        kind: kind.into(),
        subject: Some("alice".to_owned()),
        session_id: Some(id.to_owned()),
        client_id: None,
        device: Device::default(),
        detail: serde_json::json!({}),
    }
}

async fn flood(feed: &Arc<Feed>) {
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let feed = feed.clone();
            tokio::spawn(async move { feed.status_list_token(0).await.map(|t| t.len()) })
        })
        .collect();
    for task in tasks {
        assert!(task.await.expect("task").expect("token") > 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_requests_build_a_changed_list_once() {
    let dir = tessera_testkit::TempDir::new("feed");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open_path(&dir.path().join("t.db"))
            .await
            .expect("store"),
    );
    let master = Arc::new(MasterKey::generate().expect("master"));
    ensure_signing_keys(&*store, &master, &[Algorithm::EdDsa], NOW)
        .await
        .expect("keys");
    for id in ["s1", "s2"] {
        store
            .open_session(&session(id), None, &record("session.opened", id), NOW)
            .await
            .expect("open");
    }
    let settings = FeedSettings::new("https://issuer.test", Duration::from_secs(600));
    let feed = Feed::new(store.clone(), master, settings, now());

    flood(&feed).await;
    assert_eq!(feed.status_list_builds(), 1, "one build for 50 requests");

    // A session ends: the change mark moves, and the list is built once more.
    let before = store.change_marks().await.expect("marks");
    store
        .end_session(
            "s1",
            EndReason::Revoked,
            NOW,
            NOW,
            &record("session.revoked", "s1"),
        )
        .await
        .expect("end");
    let mut changes = store.changes();
    tokio::time::timeout(
        Duration::from_secs(2),
        changes.wait_for(|marks| *marks != before),
    )
    .await
    .expect("the mark moves")
    .expect("watch");
    flood(&feed).await;
    assert_eq!(
        feed.status_list_builds(),
        2,
        "one more build after the change"
    );
}

/// Reads the stream until `want` events arrived, it ends, or 3 s passed;
/// answers the event ids seen and whether it ended.
async fn read_events(
    body: &mut (impl futures_util::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Unpin),
    want: usize,
) -> (Vec<i64>, bool) {
    use futures_util::StreamExt as _;
    let mut ids = Vec::new();
    let mut text = String::new();
    // Heartbeats keep a stream busy: bound the whole read, not each chunk.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        if ids.len() >= want {
            return (ids, false);
        }
        match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(Some(Ok(chunk))) => {
                text.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = text.find("\n\n") {
                    let block: String = text.drain(..end + 2).collect();
                    if let Some(id) = block.lines().find_map(|l| l.strip_prefix("id: ")) {
                        ids.push(id.trim().parse().expect("numeric id"));
                    }
                }
            }
            Ok(Some(Err(e))) => panic!("body: {e}"),
            Ok(None) => return (ids, true),
            Err(_) => return (ids, false),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_falls_behind_is_disconnected_and_resumes_without_a_gap() {
    use axum::body::Body;
    use http::Request;
    use tower::ServiceExt as _;

    let dir = tessera_testkit::TempDir::new("feed-slow");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open_path(&dir.path().join("t.db"))
            .await
            .expect("store"),
    );
    let master = Arc::new(MasterKey::generate().expect("master"));
    let settings = FeedSettings {
        max_subscribers: 1,
        stream_buffer: 4,
        ..FeedSettings::new("https://issuer.test", Duration::from_secs(60))
    };
    let feed = Feed::new(store.clone(), master, settings, now());
    let app = feed.routes();
    let open = |last: Option<i64>| {
        let mut request = Request::get("/v1/revocations/stream");
        if let Some(last) = last {
            request = request.header("last-event-id", last.to_string());
        }
        app.clone()
            .oneshot(request.body(Body::empty()).expect("request"))
    };

    let response = open(None).await.expect("infallible");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body().into_data_stream();
    // Caught up (nothing yet): the first heartbeat arrives.
    let (ids, ended) = read_events(&mut body, 1).await;
    assert!(ids.is_empty() && !ended);

    // The cap: a second stream is refused with Retry-After.
    let refused = open(None).await.expect("infallible");
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");

    // 20 events while this subscriber reads nothing: it falls more than its
    // buffer (4) behind.
    let template = record("session.revoked", "x");
    for n in 0..20 {
        store
            .end_subject(&format!("user-{n}"), NOW, NOW, &template, None)
            .await
            .expect("event");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while feed.fan_out_reads() == 0 {
        assert!(std::time::Instant::now() < deadline, "fanned out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (seen, ended) = read_events(&mut body, 20).await;
    assert!(
        ended,
        "disconnected rather than silently skipping: saw {seen:?}"
    );
    // Whatever it got is a gap-free prefix...
    let last = seen.last().copied().unwrap_or(0);
    assert_eq!(seen, (1..=last).collect::<Vec<_>>());
    drop(body);

    // ...and resuming from its last event id brings the rest.
    let response = open(Some(last)).await.expect("infallible");
    assert_eq!(response.status(), 200, "the slot was freed");
    let mut body = response.into_body().into_data_stream();
    let (rest, _) = read_events(&mut body, usize::try_from(20 - last).expect("small")).await;
    assert_eq!(rest, ((last + 1)..=20).collect::<Vec<_>>());
}
