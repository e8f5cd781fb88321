//! The event-feed follower against a scripted feed on 127.0.0.1: an event
//! the follower cannot decode is never skipped.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use tessera_core::{AccessClaims, Audience, VerifyError};
use tessera_verifier::{RevocationOptions, Revocations, system_now};

/// The feed: events 1..=3, each revoking session `s{seq}`. `published` is
/// how many the polling endpoint shows; opening the stream publishes all.
#[derive(Clone)]
struct Feed {
    published: Arc<AtomicI64>,
}

fn event(seq: i64) -> serde_json::Value {
    let now = system_now().unix();
    serde_json::json!({"seq": seq, "kind": "session", "id": format!("s{seq}"), "at": now, "until": now + 600})
}

#[derive(serde::Deserialize)]
struct After {
    after: i64,
}

async fn page(State(feed): State<Feed>, Query(q): Query<After>) -> axum::Json<serde_json::Value> {
    let last = feed.published.load(Ordering::SeqCst);
    let events: Vec<_> = ((q.after + 1)..=last).map(event).collect();
    axum::Json(serde_json::json!({"events": events, "next": last.max(q.after)}))
}

/// Sends event 2 in a form the follower cannot read, then event 3, then
/// closes. (A real issuer never sends garbage; a proxy that mangles a
/// line, or a newer issuer's format, might.)
async fn stream(State(feed): State<Feed>) -> ([(&'static str, &'static str); 1], String) {
    feed.published.store(3, Ordering::SeqCst);
    let body = format!(
        "id: 2\nevent: revocation\ndata: {{\"seq\": 2, \"kind\": \n\nid: 3\nevent: revocation\ndata: {}\n\n",
        event(3)
    );
    ([("content-type", "text/event-stream")], body)
}

fn claims(sid: &str) -> AccessClaims {
    let now = system_now();
    AccessClaims {
        sid: Some(sid.to_owned()),
        ..AccessClaims::new(
            "https://issuer.test",
            "alice",
            Audience(vec!["api".into()]),
            "app",
            format!("jti-{sid}"),
            now,
            Duration::from_secs(300),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_event_is_fetched_again_never_skipped() {
    let feed = Feed {
        published: Arc::new(AtomicI64::new(1)),
    };
    let app = Router::new()
        .route("/events", get(page))
        .route("/events/stream", get(stream))
        .with_state(feed);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let options = RevocationOptions {
        min_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        ..RevocationOptions::default()
    };
    let revocations = Revocations::subscribe(&format!("{base}/events"), None, options)
        .await
        .expect("subscribe");
    let revoked = |sid: &str| {
        matches!(
            revocations.check_claims(&claims(sid), system_now()),
            Err(VerifyError::Revoked(_))
        )
    };
    assert!(revoked("s1"), "from the first poll");

    let deadline = Instant::now() + Duration::from_secs(5);
    while !(revoked("s2") && revoked("s3")) {
        assert!(
            Instant::now() < deadline,
            "event 2 was skipped: s2 revoked {}, s3 revoked {}, position {:?}",
            revoked("s2"),
            revoked("s3"),
            revocations.last_event_id()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(revocations.last_event_id(), Some(3));
}
