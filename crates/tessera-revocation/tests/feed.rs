//! Status lists on a real SQLite file: a flood of requests for a list that
//! changed builds it once.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::{Algorithm, MasterKey};
use tessera_revocation::{Feed, FeedSettings, ensure_signing_keys};
use tessera_store::sqlite::SqliteStore;
use tessera_store::{AuditRecord, Device, EndReason, Session, Store, Timestamp};

const NOW: Timestamp = Timestamp(1_700_000_000_000);

fn now() -> Timestamp {
    NOW
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
        token_format: "jwt".to_owned(),
        dpop_jkt: None,
        device: Device::default(),
        generation: 1,
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
        kind: kind.to_owned(),
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
    let dir = std::env::temp_dir().join(format!("tessera-feed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open_path(&dir.join("t.db"))
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
    let settings = FeedSettings {
        issuer: "https://issuer.test".to_owned(),
        status_list_ttl: Duration::from_secs(600),
    };
    let feed = Feed::new(store.clone(), master, settings, now);

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
    let _ = std::fs::remove_dir_all(&dir);
}
