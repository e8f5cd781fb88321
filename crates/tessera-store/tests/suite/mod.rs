//! The store's behaviour, written once against `dyn Store`. Each backend's
//! test file (`tests/sqlite.rs`, `tests/postgres.rs`) includes this module
//! once, beside its own `Fixture` (a fresh, empty store), so every test
//! here runs on every backend: there is no list of names to keep. Nothing
//! here may depend on one backend.

use std::sync::Arc;

use serde_json::json;
use tessera_store::{
    Algorithm, AuditFilter, AuditRecord, Client, ClientDeleted, ClientKind, Device, EndReason,
    Generation, KeyState, LimitPolicy, NumericDate, OpenOutcome, Permission, ProofKey,
    RotateOutcome, Session, SessionLimit, StatusIndex, Store, StoreError, StoredKey, Timestamp,
};

/// A fixed "now" for every test: time is a parameter.
pub(crate) const T0: i64 = 1_700_000_000_000;
pub(crate) const MINUTE: i64 = 60_000;
pub(crate) const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const CLIENT: &str = "web-app";
/// The backend that opens the suite's sessions.
const BACKEND: &str = "backend-a";
/// How long eviction events are remembered in these tests (the issuer passes
/// `now + access TTL + margin`).
const EVICT_UNTIL: i64 = T0 + 3 * HOUR;

/// A small loop index as milliseconds.
fn n(i: usize) -> i64 {
    i64::try_from(i).expect("a small index")
}

pub(crate) fn ts(ms: i64) -> Timestamp {
    Timestamp(ms)
}

/// Whole seconds of `ms` (as `auth_time` is kept).
fn secs(ms: i64) -> NumericDate {
    NumericDate::from_unix(ms / 1000)
}

fn idx(n: u64) -> StatusIndex {
    StatusIndex::new(n)
}

pub(crate) fn new_session(id: &str, subject: &str, at: i64) -> Session {
    Session {
        id: id.to_owned(),
        subject: subject.to_owned(),
        client_id: CLIENT.to_owned(),
        opened_by: BACKEND.to_owned(),
        scope: Some("openid profile".to_owned()),
        audience: vec![
            "https://api.example".to_owned(),
            "https://other.example".to_owned(),
        ],
        claims: json!({ "tenant": "acme", "roles": ["reader"] }),
        auth_time: Some(secs(at)),
        acr: Some("urn:acr:pwd".to_owned()),
        amr: vec!["pwd".to_owned()],
        token_format: tessera_store::TokenFormat::Jwt,
        dpop_jkt: None,
        device: Device {
            ip: Some("192.0.2.7".to_owned()),
            user_agent: Some("Firefox".to_owned()),
            label: None,
        },
        generation: tessera_store::Generation::FIRST,
        created_at: ts(at),
        last_used_at: ts(at),
        rotated_at: ts(at),
        idle_expires_at: ts(at + HOUR),
        absolute_expires_at: ts(at + DAY),
        revoked_at: None,
        revoked_reason: None,
        status_idx: None,
    }
}

pub(crate) fn record(kind: &str, session: &Session, at: i64) -> AuditRecord {
    AuditRecord {
        seq: 0,
        at: ts(at),
        kind: kind.into(),
        subject: Some(session.subject.clone()),
        session_id: Some(session.id.clone()),
        client_id: Some(session.client_id.clone()),
        device: session.device.clone(),
        detail: json!({}),
    }
}

fn client_record(kind: &str) -> AuditRecord {
    AuditRecord {
        seq: 0,
        at: ts(T0),
        kind: kind.into(),
        subject: None,
        session_id: None,
        client_id: None,
        device: Device::default(),
        detail: json!({ "actor": "suite" }),
    }
}

pub(crate) async fn open(store: &dyn Store, session: &Session) {
    let outcome = store
        .open_session(
            session,
            None,
            &record("session.opened", session, session.created_at.0),
            ts(EVICT_UNTIL),
        )
        .await
        .expect("open_session");
    assert!(
        matches!(outcome, OpenOutcome::Opened { ref evicted, .. } if evicted.is_empty()),
        "opening {}: {outcome:?}",
        session.id
    );
}

pub(crate) async fn must_get(store: &dyn Store, id: &str) -> Session {
    store
        .session(id)
        .await
        .expect("session")
        .unwrap_or_else(|| panic!("session {id} missing"))
}

fn session_filter(id: &str) -> AuditFilter {
    AuditFilter {
        session_id: Some(id.to_owned()),
        limit: 1000,
        ..AuditFilter::default()
    }
}

pub(crate) async fn audit_kinds(store: &dyn Store, session_id: &str) -> Vec<String> {
    store
        .audit(&session_filter(session_id))
        .await
        .expect("audit")
        .into_iter()
        .map(|r| r.kind.to_string())
        .collect()
}

async fn all_revocations(store: &dyn Store) -> Vec<tessera_store::RevocationEvent> {
    store
        .revocations_after(0, 10_000)
        .await
        .expect("revocations_after")
}

async fn rotate(
    store: &dyn Store,
    s: &Session,
    expected: u64,
    now: i64,
    idle: i64,
) -> RotateOutcome {
    store
        .rotate(
            &s.id,
            &s.client_id,
            Generation::new(expected),
            ts(now),
            ts(idle),
            ProofKey::default(),
            &record("session.refreshed", s, now),
        )
        .await
        .expect("rotate")
}

fn key(kid: &str, created_at: i64) -> StoredKey {
    StoredKey {
        kid: kid.to_owned(),
        alg: Algorithm::EdDsa,
        state: KeyState::Pending,
        public: vec![7; 32],
        sealed_secret: vec![0, 1, 2, 255, 254],
        created_at: ts(created_at),
        activates_at: ts(created_at + HOUR),
        retired_at: None,
        expires_at: Some(ts(created_at + 30 * DAY)),
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping() {
    let Some(fixture) = super::Fixture::new("ping").await else {
        return;
    };
    let store = fixture.store();
    store.ping().await.expect("ping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_insert_get_conflict() {
    let Some(fixture) = super::Fixture::new("clients_insert_get_conflict").await else {
        return;
    };
    let store = fixture.store();
    let confidential = Client {
        id: "backend".to_owned(),
        name: "Backend".to_owned(),
        kind: ClientKind::Confidential,
        secret_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned()),
        allowed: vec![
            Permission::Sessions,
            Permission::Introspect,
            Permission::Admin,
        ],
        scopes: vec!["read".to_owned(), "write".to_owned()],
        audiences: vec!["api".to_owned()],
        sessions_for: vec!["spa".to_owned()],
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        policy: json!({ "sessions.max_per_subject": 3 }),
        created_at: ts(T0),
        updated_at: ts(T0),
        disabled_at: None,
    };
    let public = Client {
        id: "spa".to_owned(),
        name: "Single page app".to_owned(),
        kind: ClientKind::Public,
        secret_hash: None,
        allowed: vec![Permission::RefreshToken, Permission::ClientCredentials],
        scopes: vec![],
        audiences: vec![],
        sessions_for: vec![],
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        policy: json!({}),
        created_at: ts(T0 + 1),
        updated_at: ts(T0 + 1),
        disabled_at: Some(ts(T0 + 2)),
    };
    store
        .insert_client(&confidential, &client_record("client.created"))
        .await
        .expect("insert confidential");
    store
        .insert_client(&public, &client_record("client.created"))
        .await
        .expect("insert public");

    assert_eq!(
        store.client("backend").await.expect("client"),
        Some(confidential.clone())
    );
    assert_eq!(store.client("spa").await.expect("client"), Some(public));
    assert_eq!(store.client("nobody").await.expect("client"), None);

    let again = Client {
        name: "Impostor".to_owned(),
        ..confidential.clone()
    };
    let err = store
        .insert_client(&again, &client_record("client.created"))
        .await
        .expect_err("duplicate id must fail");
    assert!(
        matches!(err, StoreError::Conflict(_)),
        "duplicate client: {err:?}"
    );
    assert_eq!(
        store.client("backend").await.expect("client"),
        Some(confidential),
        "first one kept"
    );
}

fn plain_client(id: &str, at: i64) -> Client {
    Client {
        id: id.to_owned(),
        name: id.to_owned(),
        kind: ClientKind::Confidential,
        secret_hash: Some("sha256:AAAA".to_owned()),
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        allowed: vec![Permission::Sessions],
        scopes: vec![],
        audiences: vec![],
        sessions_for: vec![],
        policy: json!({}),
        created_at: ts(at),
        updated_at: ts(at),
        disabled_at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_update_is_a_compare_and_swap() {
    let Some(fixture) = super::Fixture::new("clients_update_is_a_compare_and_swap").await else {
        return;
    };
    let store = fixture.store();
    let original = plain_client("c1", T0);
    store
        .insert_client(&original, &client_record("client.created"))
        .await
        .expect("insert");
    let mut changed = Client {
        scopes: vec!["read".to_owned()],
        previous_secret_hash: Some("sha256:BBBB".to_owned()),
        previous_secret_expires_at: Some(ts(T0 + HOUR)),
        updated_at: ts(T0 + 5),
        ..original.clone()
    };
    assert!(
        store
            .update_client(&changed, ts(T0), &client_record("client.updated"))
            .await
            .expect("update"),
        "the expected version matches"
    );
    assert_eq!(
        store.client("c1").await.expect("read"),
        Some(changed.clone())
    );

    // A writer that read the old version loses, and changes nothing.
    let stale = Client {
        disabled_at: None,
        name: "stale".to_owned(),
        updated_at: ts(T0 + 6),
        ..original.clone()
    };
    assert!(
        !store
            .update_client(&stale, ts(T0), &client_record("client.updated"))
            .await
            .expect("update"),
        "a stale version must not overwrite"
    );
    assert_eq!(
        store.client("c1").await.expect("read"),
        Some(changed.clone())
    );

    changed.id = "nobody".to_owned();
    assert!(
        !store
            .update_client(&changed, ts(T0 + 5), &client_record("client.updated"))
            .await
            .expect("update"),
        "unknown client"
    );
    let kinds: Vec<String> = store
        .audit(&AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .expect("audit")
        .into_iter()
        .map(|r| r.kind.to_string())
        .collect();
    assert_eq!(
        kinds,
        ["client.created", "client.updated"],
        "only what was written is audited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_delete_needs_disabled_and_moves_the_mark() {
    let Some(fixture) =
        super::Fixture::new("clients_delete_needs_disabled_and_moves_the_mark").await
    else {
        return;
    };
    let store = fixture.store();
    let before = store.change_marks().await.expect("marks").clients;
    let client = plain_client("c1", T0);
    store
        .insert_client(&client, &client_record("client.created"))
        .await
        .expect("insert");
    let inserted = store.change_marks().await.expect("marks").clients;
    assert!(inserted > before, "insert moves the clients mark");

    assert_eq!(
        store
            .delete_client("c1", &client_record("client.deleted"))
            .await
            .expect("delete"),
        ClientDeleted::NotDisabled
    );
    assert!(
        store.client("c1").await.expect("read").is_some(),
        "still there"
    );
    let disabled = Client {
        disabled_at: Some(ts(T0 + 1)),
        updated_at: ts(T0 + 1),
        ..client
    };
    assert!(
        store
            .update_client(&disabled, ts(T0), &client_record("client.disabled"))
            .await
            .expect("disable")
    );
    let after_disable = store.change_marks().await.expect("marks").clients;
    assert!(after_disable > inserted, "an update moves the clients mark");
    assert_eq!(
        store
            .delete_client("c1", &client_record("client.deleted"))
            .await
            .expect("delete"),
        ClientDeleted::Deleted
    );
    assert_eq!(store.client("c1").await.expect("read"), None);
    assert!(
        store.change_marks().await.expect("marks").clients > after_disable,
        "a delete moves the clients mark"
    );
    assert_eq!(
        store
            .delete_client("c1", &client_record("client.deleted"))
            .await
            .expect("delete"),
        ClientDeleted::NotFound
    );
    let kinds: Vec<String> = store
        .audit(&AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .expect("audit")
        .into_iter()
        .map(|r| r.kind.to_string())
        .collect();
    assert_eq!(
        kinds,
        ["client.created", "client.disabled", "client.deleted"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_scoped_to_their_backend() {
    let Some(fixture) = super::Fixture::new("sessions_are_scoped_to_their_backend").await else {
        return;
    };
    let store = fixture.store();
    let a1 = new_session("a1", "alice", T0);
    let a2 = new_session("a2", "alice", T0 + 1);
    let b1 = Session {
        opened_by: "backend-b".to_owned(),
        ..new_session("b1", "alice", T0 + 2)
    };
    for s in [&a1, &a2, &b1] {
        open(&*store, s).await;
    }
    let ids = |sessions: Vec<Session>| {
        let mut ids: Vec<String> = sessions.into_iter().map(|s| s.id).collect();
        ids.sort();
        ids
    };
    let now = ts(T0 + MINUTE);
    assert_eq!(
        ids(store
            .live_sessions("alice", now, Some(BACKEND))
            .await
            .expect("live")),
        ["a1", "a2"]
    );
    assert_eq!(
        ids(store
            .live_sessions("alice", now, Some("backend-b"))
            .await
            .expect("live")),
        ["b1"]
    );
    assert_eq!(
        ids(store.live_sessions("alice", now, None).await.expect("live")),
        ["a1", "a2", "b1"]
    );
    assert_eq!(must_get(&*store, "b1").await.opened_by, "backend-b");

    // Backend B's audit view holds only its own session's records.
    let b_view = store
        .audit(&AuditFilter {
            opened_by: Some("backend-b".to_owned()),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .expect("audit");
    assert_eq!(
        b_view
            .iter()
            .map(|r| r.session_id.as_deref())
            .collect::<Vec<_>>(),
        [Some("b1")]
    );
    let a_view_of_b1 = store
        .audit(&AuditFilter {
            opened_by: Some(BACKEND.to_owned()),
            session_id: Some("b1".to_owned()),
            subject: Some("alice".to_owned()),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .expect("audit");
    assert!(a_view_of_b1.is_empty(), "{a_view_of_b1:?}");

    // Backend A logs alice out of its sessions only: one `session` event per
    // session, no `subject` event that would refuse B's tokens too.
    let before = all_revocations(&*store).await.len();
    let template = AuditRecord {
        subject: Some("alice".to_owned()),
        session_id: None,
        ..record("session.revoked", &a1, T0 + MINUTE)
    };
    let mut ended = store
        .end_subject("alice", now, ts(T0 + DAY), &template, Some(BACKEND))
        .await
        .expect("end_subject");
    ended.sort();
    assert_eq!(ended, ["a1", "a2"]);
    assert_eq!(
        must_get(&*store, "b1").await.revoked_at,
        None,
        "B's session untouched"
    );
    let events = all_revocations(&*store).await;
    let new: Vec<(&str, &str)> = events[before..]
        .iter()
        .map(|e| (e.kind.as_str(), e.id.as_str()))
        .collect();
    assert_eq!(new, [("session", "a1"), ("session", "a2")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_client_sessions_ends_what_it_refreshes_or_opened() {
    let Some(fixture) =
        super::Fixture::new("end_client_sessions_ends_what_it_refreshes_or_opened").await
    else {
        return;
    };
    let store = fixture.store();
    let refreshed = new_session("r1", "alice", T0); // client web-app, opened by backend-a
    let opened_for_other = Session {
        client_id: "mobile".to_owned(),
        ..new_session("o1", "bob", T0)
    };
    let unrelated = Session {
        client_id: "mobile".to_owned(),
        opened_by: "backend-b".to_owned(),
        ..new_session("u1", "carol", T0)
    };
    for s in [&refreshed, &opened_for_other, &unrelated] {
        open(&*store, s).await;
    }
    let now = ts(T0 + MINUTE);
    let template = AuditRecord {
        subject: None,
        session_id: None,
        ..record("session.revoked", &refreshed, T0 + MINUTE)
    };
    // web-app refreshes r1 only.
    let ended = store
        .end_client_sessions(CLIENT, now, ts(T0 + DAY), &template)
        .await
        .expect("end");
    assert_eq!(ended, ["r1"]);
    // backend-a opened o1 (r1 has ended already).
    let ended = store
        .end_client_sessions(BACKEND, now, ts(T0 + DAY), &template)
        .await
        .expect("end");
    assert_eq!(ended, ["o1"]);
    assert_eq!(must_get(&*store, "u1").await.revoked_at, None);
    let records = store.audit(&session_filter("o1")).await.expect("audit");
    assert_eq!(
        records.last().map(|r| r.subject.as_deref()),
        Some(Some("bob"))
    );
    let events = all_revocations(&*store).await;
    assert_eq!(
        events
            .iter()
            .map(|e| (e.kind.as_str(), e.id.as_str(), e.until))
            .collect::<Vec<_>>(),
        [
            ("session", "r1", ts(T0 + DAY)),
            ("session", "o1", ts(T0 + DAY))
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_count_per_client() {
    let Some(fixture) = super::Fixture::new("limits_count_per_client").await else {
        return;
    };
    let store = fixture.store();
    // alice at another client, and at web-app through another backend: not
    // counted, never evicted by this backend's opens at web-app.
    let other = Session {
        client_id: "mobile".to_owned(),
        ..new_session("m1", "alice", T0)
    };
    open(&*store, &other).await;
    let other_backend = Session {
        opened_by: "backend-b".to_owned(),
        ..new_session("b1", "alice", T0)
    };
    open(&*store, &other_backend).await;
    let limit = Some(SessionLimit {
        max: 1,
        policy: LimitPolicy::EvictOldest,
    });
    for (i, id) in ["w1", "w2"].into_iter().enumerate() {
        let s = new_session(id, "alice", T0 + 1 + n(i));
        store
            .open_session(
                &s,
                limit,
                &record("session.opened", &s, s.created_at.0),
                ts(EVICT_UNTIL),
            )
            .await
            .expect("open");
    }
    assert_eq!(
        must_get(&*store, "m1").await.revoked_at,
        None,
        "other client untouched"
    );
    assert_eq!(
        must_get(&*store, "b1").await.revoked_at,
        None,
        "other backend's session untouched"
    );
    assert_eq!(
        must_get(&*store, "w1").await.revoked_reason,
        Some(EndReason::Evicted),
        "same client evicted"
    );
    assert_eq!(must_get(&*store, "w2").await.revoked_at, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_session_and_read_back() {
    let Some(fixture) = super::Fixture::new("open_session_and_read_back").await else {
        return;
    };
    let store = fixture.store();
    let mut first = new_session("s1", "alice", T0);
    first.dpop_jkt = Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".to_owned());
    first.device.label = Some("Alice's phone".to_owned());
    first.scope = None;
    first.acr = None;
    first.auth_time = None;
    first.amr = vec![];
    let second = new_session("s2", "alice", T0 + MINUTE);
    let other = new_session("s3", "bob", T0);
    open(&*store, &first).await;
    open(&*store, &second).await;
    open(&*store, &other).await;
    // Status indices are handed out in order, from 0.
    first.status_idx = Some(idx(0));
    let second = Session {
        status_idx: Some(idx(1)),
        ..second
    };

    assert_eq!(
        must_get(&*store, "s1").await,
        first,
        "every field round-trips"
    );
    assert_eq!(must_get(&*store, "s2").await, second);
    assert_eq!(store.session("missing").await.expect("session"), None);

    let live = store
        .live_sessions("alice", ts(T0 + 2 * MINUTE), None)
        .await
        .expect("live_sessions");
    let ids: Vec<&str> = live.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["s2", "s1"], "newest first, only alice's");

    // s1 idles out first; then none are live past the absolute lifetime.
    let live = store
        .live_sessions("alice", ts(T0 + HOUR), None)
        .await
        .expect("live_sessions");
    assert_eq!(
        live.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["s2"],
        "s1 idle-expired"
    );
    assert!(
        store
            .live_sessions("alice", ts(T0 + 2 * DAY), None)
            .await
            .expect("live")
            .is_empty()
    );
    assert!(
        store
            .live_sessions("carol", ts(T0), None)
            .await
            .expect("live")
            .is_empty()
    );

    // Ended sessions are not live.
    store
        .end_session(
            "s2",
            EndReason::Revoked,
            ts(T0 + 2 * MINUTE),
            ts(T0 + DAY),
            &record("session.revoked", &second, T0),
        )
        .await
        .expect("end_session");
    let live = store
        .live_sessions("alice", ts(T0 + 3 * MINUTE), None)
        .await
        .expect("live_sessions");
    assert_eq!(
        live.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["s1"]
    );

    let dup = new_session("s1", "mallory", T0 + 5);
    let err = store
        .open_session(
            &dup,
            None,
            &record("session.opened", &dup, T0 + 5),
            ts(EVICT_UNTIL),
        )
        .await
        .expect_err("duplicate session id");
    assert!(
        matches!(err, StoreError::Conflict(_)),
        "duplicate session: {err:?}"
    );
    assert_eq!(
        must_get(&*store, "s1").await,
        first,
        "failed open changed nothing"
    );
    assert_eq!(
        audit_kinds(&*store, "s1").await,
        ["session.opened"],
        "failed open wrote no audit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_compare_and_swap() {
    let Some(fixture) = super::Fixture::new("rotate_compare_and_swap").await else {
        return;
    };
    let store = fixture.store();
    let s = new_session("s1", "alice", T0);
    open(&*store, &s).await;

    let now = T0 + 10 * MINUTE;
    let RotateOutcome::Rotated(rotated) = rotate(&*store, &s, 1, now, now + HOUR).await else {
        panic!("expected 1 must win");
    };
    assert_eq!(rotated.generation.get(), 2);
    assert_eq!(rotated.last_used_at, ts(now));
    assert_eq!(rotated.rotated_at, ts(now));
    assert_eq!(rotated.idle_expires_at, ts(now + HOUR));
    assert_eq!(
        rotated.created_at, s.created_at,
        "only rotation fields change"
    );
    assert_eq!(rotated.absolute_expires_at, s.absolute_expires_at);
    assert_eq!(
        must_get(&*store, "s1").await,
        rotated,
        "answer is the stored row"
    );
    assert_eq!(
        audit_kinds(&*store, "s1").await,
        ["session.opened", "session.refreshed"]
    );

    // The same (now old) generation again: stale, nothing changes.
    let later = now + MINUTE;
    assert_eq!(
        rotate(&*store, &s, 1, later, later + HOUR).await,
        RotateOutcome::Stale(rotated.clone())
    );
    // A generation from the future is stale too.
    assert_eq!(
        rotate(&*store, &s, 3, later, later + HOUR).await,
        RotateOutcome::Stale(rotated.clone())
    );
    // The right generation from another client does not rotate.
    let outcome = store
        .rotate(
            "s1",
            "other-client",
            Generation::new(2),
            ts(later),
            ts(later + HOUR),
            ProofKey::default(),
            &record("session.refreshed", &s, later),
        )
        .await
        .expect("rotate");
    assert_eq!(
        outcome,
        RotateOutcome::Stale(rotated.clone()),
        "wrong client"
    );
    assert_eq!(must_get(&*store, "s1").await, rotated);
    assert_eq!(
        audit_kinds(&*store, "s1").await,
        ["session.opened", "session.refreshed"],
        "losers write nothing"
    );

    // The current generation wins again.
    let RotateOutcome::Rotated(third) = rotate(&*store, &s, 2, later, later + HOUR).await else {
        panic!("expected 2 must win");
    };
    assert_eq!(third.generation.get(), 3);

    let missing = new_session("nope", "alice", T0);
    assert_eq!(
        rotate(&*store, &missing, 1, later, later + HOUR).await,
        RotateOutcome::NotFound
    );
    assert!(audit_kinds(&*store, "nope").await.is_empty());
}

async fn rotate_with(
    store: &dyn Store,
    s: &Session,
    expected: u64,
    now: i64,
    proof: ProofKey<'_>,
) -> RotateOutcome {
    store
        .rotate(
            &s.id,
            &s.client_id,
            Generation::new(expected),
            ts(now),
            ts(now + HOUR),
            proof,
            &record("session.refreshed", s, now),
        )
        .await
        .expect("rotate")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_keeps_a_dpop_bound_session_to_its_key() {
    let Some(fixture) = super::Fixture::new("rotate_keeps_a_dpop_bound_session_to_its_key").await
    else {
        return;
    };
    let store = fixture.store();
    let mut bound = new_session("bound", "alice", T0);
    bound.dpop_jkt = Some("key-a".into());
    open(&*store, &bound).await;
    let key_a = ProofKey {
        jkt: Some("key-a"),
        bind: None,
    };
    let key_b = ProofKey {
        jkt: Some("key-b"),
        bind: Some("key-b"),
    };

    // Without a proof, or with another key (even one asking to bind): stale,
    // nothing written.
    for (proof, what) in [(ProofKey::default(), "no proof"), (key_b, "another key")] {
        let now = must_get(&*store, "bound").await;
        assert_eq!(
            rotate_with(&*store, &bound, 1, T0 + MINUTE, proof).await,
            RotateOutcome::Stale(now.clone()),
            "{what}"
        );
        assert_eq!(must_get(&*store, "bound").await, now, "{what}: unchanged");
    }
    assert_eq!(audit_kinds(&*store, "bound").await, ["session.opened"]);
    // The session's key rotates it and keeps it bound.
    let RotateOutcome::Rotated(rotated) = rotate_with(&*store, &bound, 1, T0 + MINUTE, key_a).await
    else {
        panic!("the bound key must rotate");
    };
    assert_eq!(rotated.generation.get(), 2);
    assert_eq!(rotated.dpop_jkt.as_deref(), Some("key-a"));

    // An unbound session rotates without a proof and stays unbound; a proof
    // that binds binds it, and from then on only that key rotates it.
    let open_session = new_session("unbound", "alice", T0);
    open(&*store, &open_session).await;
    let RotateOutcome::Rotated(plain) =
        rotate_with(&*store, &open_session, 1, T0 + MINUTE, ProofKey::default()).await
    else {
        panic!("unbound, no proof");
    };
    assert_eq!(plain.dpop_jkt, None);
    let RotateOutcome::Rotated(unbound) = rotate_with(
        &*store,
        &open_session,
        2,
        T0 + MINUTE,
        ProofKey {
            jkt: Some("key-c"),
            bind: None,
        },
    )
    .await
    else {
        panic!("unbound, a proof that does not bind (a confidential client)");
    };
    assert_eq!(unbound.dpop_jkt, None, "not bound without bind");
    let RotateOutcome::Rotated(now_bound) =
        rotate_with(&*store, &open_session, 3, T0 + MINUTE, key_b).await
    else {
        panic!("unbound, a proof that binds");
    };
    assert_eq!(now_bound.dpop_jkt.as_deref(), Some("key-b"));
    assert_eq!(
        rotate_with(&*store, &open_session, 4, T0 + MINUTE, key_a).await,
        RotateOutcome::Stale(now_bound.clone()),
        "bound now: another key is stale"
    );
    assert!(matches!(
        rotate_with(&*store, &open_session, 4, T0 + MINUTE, key_b).await,
        RotateOutcome::Rotated(s) if s.generation.get() == 5
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_are_remembered_once_until_they_expire() {
    let Some(fixture) = super::Fixture::new("proofs_are_remembered_once_until_they_expire").await
    else {
        return;
    };
    let store = fixture.store();
    assert!(
        store
            .remember_proof("p1", ts(T0), ts(T0 + MINUTE))
            .await
            .expect("first")
    );
    assert!(
        !store
            .remember_proof("p1", ts(T0 + 1), ts(T0 + 2 * MINUTE))
            .await
            .expect("replay")
    );
    assert!(
        store
            .remember_proof("p2", ts(T0 + 1), ts(T0 + MINUTE))
            .await
            .expect("another id")
    );
    // A read records nothing: seen while live, not after, never for others.
    for (id, at, seen) in [
        ("p1", T0 + 1, true),
        ("p2", T0 + 1, true),
        ("p1", T0 + MINUTE, false),
        ("p3", T0 + 1, false),
        ("p3", T0 + 2, false),
    ] {
        assert_eq!(
            store.is_remembered(id, ts(at)).await.expect("read"),
            seen,
            "{id} at {at}"
        );
    }
    // Once expired, the id may be recorded again (the proof's iat window has
    // closed by then, so this is never the same proof accepted twice).
    assert!(
        store
            .remember_proof("p1", ts(T0 + MINUTE), ts(T0 + 2 * MINUTE))
            .await
            .expect("expired")
    );
    assert!(
        !store
            .remember_proof("p1", ts(T0 + MINUTE + 1), ts(T0 + 3 * MINUTE))
            .await
            .expect("replay again")
    );
    assert_eq!(
        store.prune_proofs(ts(T0 + MINUTE)).await.expect("prune"),
        1,
        "p2 only"
    );
    assert_eq!(store.prune_proofs(ts(T0 + MINUTE)).await.expect("prune"), 0);
    assert!(
        !store
            .remember_proof("p1", ts(T0 + MINUTE + 2), ts(T0 + 3 * MINUTE))
            .await
            .expect("kept")
    );
    // Racing inserts of one id: exactly one wins.
    let mut racers = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            store
                .remember_proof("raced", ts(T0), ts(T0 + MINUTE))
                .await
                .expect("race")
        }));
    }
    let mut won = 0;
    for racer in racers {
        won += usize::from(racer.await.expect("join"));
    }
    assert_eq!(won, 1, "one of the racing inserts records the proof");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_refuses_sessions_that_are_not_live() {
    let Some(fixture) = super::Fixture::new("rotate_refuses_sessions_that_are_not_live").await
    else {
        return;
    };
    let store = fixture.store();
    let revoked = new_session("revoked", "alice", T0);
    let idle = new_session("idle", "alice", T0);
    let mut absolute = new_session("absolute", "alice", T0);
    absolute.idle_expires_at = ts(T0 + HOUR);
    absolute.absolute_expires_at = ts(T0 + HOUR);
    for s in [&revoked, &idle, &absolute] {
        open(&*store, s).await;
    }
    store
        .end_session(
            "revoked",
            EndReason::Revoked,
            ts(T0 + 1),
            ts(T0 + DAY),
            &record("session.revoked", &revoked, T0 + 1),
        )
        .await
        .expect("end_session");

    let revoked_now = must_get(&*store, "revoked").await;
    assert_eq!(
        rotate(&*store, &revoked, 1, T0 + 2, T0 + HOUR).await,
        RotateOutcome::Stale(revoked_now)
    );

    // Exactly at the idle deadline the session is over.
    let at = idle.idle_expires_at.0;
    assert_eq!(
        rotate(&*store, &idle, 1, at, at + HOUR).await,
        RotateOutcome::Stale(must_get(&*store, "idle").await)
    );

    // Past the absolute lifetime (idle deadline pushed out does not help).
    let at = absolute.absolute_expires_at.0;
    assert_eq!(
        rotate(&*store, &absolute, 1, at, at + HOUR).await,
        RotateOutcome::Stale(must_get(&*store, "absolute").await)
    );

    for id in ["revoked", "idle", "absolute"] {
        assert_eq!(
            must_get(&*store, id).await.generation.get(),
            1,
            "{id}: generation unchanged"
        );
        assert!(
            !audit_kinds(&*store, id)
                .await
                .contains(&"session.refreshed".to_owned()),
            "{id}: no refreshed record"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_clamps_idle_to_absolute() {
    let Some(fixture) = super::Fixture::new("rotate_clamps_idle_to_absolute").await else {
        return;
    };
    let store = fixture.store();
    let mut s = new_session("s1", "alice", T0);
    s.absolute_expires_at = ts(T0 + 2 * HOUR);
    open(&*store, &s).await;
    let now = T0 + 30 * MINUTE;
    let RotateOutcome::Rotated(rotated) = rotate(&*store, &s, 1, now, now + 8 * HOUR).await else {
        panic!("live session must rotate");
    };
    assert_eq!(
        rotated.idle_expires_at, s.absolute_expires_at,
        "idle never past absolute"
    );
    assert_eq!(
        must_get(&*store, "s1").await.idle_expires_at,
        s.absolute_expires_at
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_concurrent_has_one_winner() {
    let Some(fixture) = super::Fixture::new("rotate_concurrent_has_one_winner").await else {
        return;
    };
    let store = fixture.store();
    let s = new_session("s1", "alice", T0);
    open(&*store, &s).await;
    let now = T0 + MINUTE;
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let store = Arc::clone(&store);
            let s = s.clone();
            tokio::spawn(async move { rotate(&*store, &s, 1, now, now + HOUR).await })
        })
        .collect();
    let (mut rotated, mut stale) = (0, 0);
    for task in tasks {
        match task.await.expect("task") {
            RotateOutcome::Rotated(session) => {
                rotated += 1;
                assert_eq!(session.generation.get(), 2);
            }
            RotateOutcome::Stale(session) => {
                stale += 1;
                assert_eq!(
                    session.generation.get(),
                    2,
                    "a loser sees the winner's generation"
                );
            }
            RotateOutcome::NotFound => panic!("session exists"),
        }
    }
    assert_eq!((rotated, stale), (1, 31));
    assert_eq!(must_get(&*store, "s1").await.generation.get(), 2);
    assert_eq!(
        audit_kinds(&*store, "s1").await,
        ["session.opened", "session.refreshed"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touch_marks_use() {
    let Some(fixture) = super::Fixture::new("touch_marks_use").await else {
        return;
    };
    let store = fixture.store();
    let s = new_session("s1", "alice", T0);
    open(&*store, &s).await;
    store.touch("s1", ts(T0 + MINUTE)).await.expect("touch");
    let touched = must_get(&*store, "s1").await;
    assert_eq!(touched.last_used_at, ts(T0 + MINUTE));
    assert_eq!(touched.generation.get(), 1, "touch does not rotate");
    assert_eq!(touched.rotated_at, s.rotated_at);
    assert_eq!(touched.idle_expires_at, s.idle_expires_at);

    store.touch("s1", ts(T0 + 1)).await.expect("touch");
    assert_eq!(
        must_get(&*store, "s1").await.last_used_at,
        ts(T0 + MINUTE),
        "never moves backwards"
    );

    let err = store
        .touch("missing", ts(T0))
        .await
        .expect_err("unknown session");
    assert!(
        matches!(err, StoreError::NotFound),
        "touch missing: {err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_reject_writes_nothing() {
    let Some(fixture) = super::Fixture::new("limit_reject_writes_nothing").await else {
        return;
    };
    let store = fixture.store();
    let limit = Some(SessionLimit {
        max: 2,
        policy: LimitPolicy::Reject,
    });
    // Ended and expired sessions do not count.
    let ended = new_session("ended", "alice", T0 - 2 * DAY);
    open(&*store, &ended).await;
    let expired = new_session("expired", "alice", T0 - 2 * HOUR);
    open(&*store, &expired).await;
    store
        .end_session(
            "ended",
            EndReason::Revoked,
            ts(T0 - DAY),
            ts(T0),
            &record("session.revoked", &ended, T0 - DAY),
        )
        .await
        .expect("end_session");

    for (i, id) in ["a", "b"].into_iter().enumerate() {
        let s = new_session(id, "alice", T0 + n(i));
        let outcome = store
            .open_session(
                &s,
                limit,
                &record("session.opened", &s, s.created_at.0),
                ts(EVICT_UNTIL),
            )
            .await
            .expect("open under the limit");
        assert!(
            matches!(outcome, OpenOutcome::Opened { ref evicted, .. } if evicted.is_empty()),
            "{id}: {outcome:?}"
        );
    }
    let events_before = all_revocations(&*store).await;

    let c = new_session("c", "alice", T0 + 10);
    let outcome = store
        .open_session(
            &c,
            limit,
            &record("session.opened", &c, T0 + 10),
            ts(EVICT_UNTIL),
        )
        .await
        .expect("open at the limit");
    assert_eq!(outcome, OpenOutcome::LimitReached);
    assert_eq!(
        store.session("c").await.expect("session"),
        None,
        "rejected session not stored"
    );
    assert!(
        audit_kinds(&*store, "c").await.is_empty(),
        "rejected session not audited"
    );
    assert_eq!(
        all_revocations(&*store).await,
        events_before,
        "no revocation events"
    );
    for id in ["a", "b"] {
        assert_eq!(
            must_get(&*store, id).await.revoked_at,
            None,
            "{id} untouched"
        );
    }

    // Another subject has its own count.
    let bob = new_session("bob-1", "bob", T0 + 10);
    let outcome = store
        .open_session(
            &bob,
            limit,
            &record("session.opened", &bob, T0 + 10),
            ts(EVICT_UNTIL),
        )
        .await
        .expect("open for bob");
    assert!(
        matches!(outcome, OpenOutcome::Opened { ref evicted, .. } if evicted.is_empty()),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_evict_oldest() {
    let Some(fixture) = super::Fixture::new("limit_evict_oldest").await else {
        return;
    };
    let store = fixture.store();
    // Five live sessions opened without a limit; "s3" and "s1" are least recently used.
    let ids = ["s0", "s1", "s2", "s3", "s4"];
    let mut sessions = Vec::new();
    for (i, id) in ids.into_iter().enumerate() {
        let s = new_session(id, "alice", T0 + n(i) * MINUTE);
        open(&*store, &s).await;
        sessions.push(s);
    }
    let now = T0 + 10 * MINUTE;
    store.touch("s0", ts(now - 2)).await.expect("touch");
    store.touch("s2", ts(now - 1)).await.expect("touch");
    // Use order, oldest first: s1 (T0+1m), s3 (T0+3m), s4 (T0+4m), s0, s2.

    let limit = Some(SessionLimit {
        max: 3,
        policy: LimitPolicy::EvictOldest,
    });
    let mut new = new_session("new", "alice", now);
    new.device = Device {
        ip: Some("198.51.100.1".to_owned()),
        user_agent: Some("Safari".to_owned()),
        label: Some("Laptop".to_owned()),
    };
    let opened = AuditRecord {
        client_id: Some("backend".to_owned()),
        ..record("session.opened", &new, now)
    };
    let outcome = store
        .open_session(&new, limit, &opened, ts(EVICT_UNTIL))
        .await
        .expect("open_session");
    let OpenOutcome::Opened { mut evicted, .. } = outcome else {
        panic!("evict_oldest must open: {outcome:?}");
    };
    evicted.sort();
    assert_eq!(
        evicted,
        ["s1", "s3", "s4"],
        "least recently used, so that 3 remain with the new one"
    );

    let live = store
        .live_sessions("alice", ts(now), None)
        .await
        .expect("live_sessions");
    let mut live_ids: Vec<&str> = live.iter().map(|s| s.id.as_str()).collect();
    live_ids.sort();
    assert_eq!(live_ids, ["new", "s0", "s2"]);

    let events = all_revocations(&*store).await;
    assert_eq!(events.len(), 3, "one event per evicted session: {events:?}");
    for id in ["s1", "s3", "s4"] {
        let ended = must_get(&*store, id).await;
        assert_eq!(ended.revoked_at, Some(ts(now)), "{id}");
        assert_eq!(ended.revoked_reason, Some(EndReason::Evicted), "{id}");

        let records = store.audit(&session_filter(id)).await.expect("audit");
        let kinds: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds, ["session.opened", "session.evicted"], "{id}");
        let evicted_record = &records[1];
        assert_eq!(evicted_record.subject.as_deref(), Some("alice"), "{id}");
        assert_eq!(
            evicted_record.client_id.as_deref(),
            Some("backend"),
            "{id}: acting client"
        );
        assert_eq!(
            evicted_record.device, new.device,
            "{id}: device of the opening request"
        );
        assert_eq!(evicted_record.at, ts(now), "{id}");

        let event = events
            .iter()
            .find(|e| e.id == id)
            .unwrap_or_else(|| panic!("no event for {id}"));
        assert_eq!(event.kind, "session", "{id}");
        assert_eq!(event.at, ts(now), "{id}");
        assert_eq!(
            event.until,
            ts(EVICT_UNTIL),
            "{id}: as long as every other session event (not until its absolute expiry {:?})",
            ended.absolute_expires_at
        );
    }
    assert_eq!(audit_kinds(&*store, "new").await, ["session.opened"]);

    // At the limit again: exactly one more eviction (s0 is now the least recently used).
    let newer = new_session("newer", "alice", now + 1);
    let outcome = store
        .open_session(
            &newer,
            limit,
            &record("session.opened", &newer, now + 1),
            ts(EVICT_UNTIL),
        )
        .await
        .expect("open_session");
    assert!(
        matches!(&outcome, OpenOutcome::Opened { evicted, .. } if evicted == &["s0".to_owned()]),
        "{outcome:?}"
    );
    assert_eq!(
        store
            .live_sessions("alice", ts(now + 1), None)
            .await
            .expect("live")
            .len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_holds_under_concurrency() {
    let Some(fixture) = super::Fixture::new("limit_holds_under_concurrency").await else {
        return;
    };
    let store = fixture.store();
    let limit = Some(SessionLimit {
        max: 4,
        policy: LimitPolicy::Reject,
    });
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let s = new_session(&format!("s{i:02}"), "alice", T0);
                store
                    .open_session(
                        &s,
                        limit,
                        &record("session.opened", &s, T0),
                        ts(EVICT_UNTIL),
                    )
                    .await
                    .expect("open_session")
            })
        })
        .collect();
    let mut opened = 0;
    for task in tasks {
        if matches!(task.await.expect("task"), OpenOutcome::Opened { .. }) {
            opened += 1;
        }
    }
    assert_eq!(opened, 4, "the count and the insert are one transaction");
    assert_eq!(
        store
            .live_sessions("alice", ts(T0), None)
            .await
            .expect("live")
            .len(),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_session_once() {
    let Some(fixture) = super::Fixture::new("end_session_once").await else {
        return;
    };
    let store = fixture.store();
    let s = new_session("s1", "alice", T0);
    open(&*store, &s).await;
    let now = T0 + MINUTE;
    let until = T0 + 5 * MINUTE;
    let rec = record(EndReason::ReuseDetected.audit_kind().as_str(), &s, now);
    assert!(
        store
            .end_session("s1", EndReason::ReuseDetected, ts(now), ts(until), &rec)
            .await
            .expect("end")
    );
    assert!(
        !store
            .end_session("s1", EndReason::Revoked, ts(now + 1), ts(until + 1), &rec)
            .await
            .expect("end again"),
        "second call must not end it again"
    );
    assert!(
        !store
            .end_session("missing", EndReason::Revoked, ts(now), ts(until), &rec)
            .await
            .expect("end missing"),
        "unknown session"
    );

    let ended = must_get(&*store, "s1").await;
    assert_eq!(ended.revoked_at, Some(ts(now)), "first call's time kept");
    assert_eq!(
        ended.revoked_reason,
        Some(EndReason::ReuseDetected),
        "first call's reason kept"
    );
    assert!(!ended.is_live(ts(now)));

    let events = all_revocations(&*store).await;
    assert_eq!(events.len(), 1, "one revocation event: {events:?}");
    assert_eq!(
        (events[0].kind.as_str(), events[0].id.as_str()),
        ("session", "s1")
    );
    assert_eq!((events[0].at, events[0].until), (ts(now), ts(until)));
    assert_eq!(
        audit_kinds(&*store, "s1").await,
        ["session.opened", "session.reuse_detected"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_subject_ends_live_sessions() {
    let Some(fixture) = super::Fixture::new("end_subject_ends_live_sessions").await else {
        return;
    };
    let store = fixture.store();
    let a1 = new_session("a1", "alice", T0);
    let a2 = new_session("a2", "alice", T0 + 1);
    let a_ended = new_session("a3", "alice", T0 + 2);
    let b1 = new_session("b1", "bob", T0);
    for s in [&a1, &a2, &a_ended, &b1] {
        open(&*store, s).await;
    }
    store
        .end_session(
            "a3",
            EndReason::Revoked,
            ts(T0 + 3),
            ts(T0 + DAY),
            &record("session.revoked", &a_ended, T0 + 3),
        )
        .await
        .expect("end_session");
    let before = all_revocations(&*store).await;

    let now = T0 + MINUTE;
    let template = AuditRecord {
        seq: 0,
        at: ts(now),
        kind: "session.revoked".into(),
        subject: Some("alice".to_owned()),
        session_id: None,
        client_id: Some("admin-cli".to_owned()),
        device: Device::default(),
        detail: json!({ "why": "password changed" }),
    };
    let mut ended = store
        .end_subject("alice", ts(now), ts(now + DAY), &template, None)
        .await
        .expect("end_subject");
    ended.sort();
    assert_eq!(ended, ["a1", "a2"], "only the live ones");

    for id in ["a1", "a2"] {
        let s = must_get(&*store, id).await;
        assert_eq!(
            (s.revoked_at, s.revoked_reason),
            (Some(ts(now)), Some(EndReason::Revoked)),
            "{id}"
        );
        let records = store.audit(&session_filter(id)).await.expect("audit");
        assert_eq!(records.len(), 2, "{id}: opened + revoked");
        let expected = AuditRecord {
            seq: records[1].seq,
            session_id: Some(id.to_owned()),
            ..template.clone()
        };
        assert_eq!(records[1], expected, "{id}: built from the template");
    }
    let a3 = must_get(&*store, "a3").await;
    assert_eq!(
        a3.revoked_at,
        Some(ts(T0 + 3)),
        "already ended session untouched"
    );
    assert_eq!(
        audit_kinds(&*store, "a3").await,
        ["session.opened", "session.revoked"]
    );
    assert_eq!(
        must_get(&*store, "b1").await.revoked_at,
        None,
        "other subject untouched"
    );

    let events = all_revocations(&*store).await;
    let new_events = &events[before.len()..];
    assert_eq!(new_events.len(), 1, "one subject event: {new_events:?}");
    assert_eq!(
        (new_events[0].kind.as_str(), new_events[0].id.as_str()),
        ("subject", "alice")
    );
    assert_eq!(
        (new_events[0].at, new_events[0].until),
        (ts(now), ts(now + DAY))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elevate_live_only() {
    let Some(fixture) = super::Fixture::new("elevate_live_only").await else {
        return;
    };
    let store = fixture.store();
    let s = new_session("s1", "alice", T0);
    let gone = new_session("s2", "alice", T0);
    open(&*store, &s).await;
    open(&*store, &gone).await;
    store
        .end_session(
            "s2",
            EndReason::Revoked,
            ts(T0 + 1),
            ts(T0 + DAY),
            &record("session.revoked", &gone, T0 + 1),
        )
        .await
        .expect("end_session");

    let now = T0 + MINUTE;
    let amr = vec!["pwd".to_owned(), "otp".to_owned()];
    let elevated = store
        .elevate(
            "s1",
            secs(now),
            Some("urn:acr:mfa"),
            &amr,
            ts(now),
            &record("session.elevated", &s, now),
        )
        .await
        .expect("elevate")
        .expect("live session elevates");
    assert_eq!(elevated.auth_time, Some(secs(now)));
    assert_eq!(elevated.acr.as_deref(), Some("urn:acr:mfa"));
    assert_eq!(elevated.amr, amr);
    assert_eq!(elevated.generation, s.generation, "no rotation");
    assert_eq!(must_get(&*store, "s1").await, elevated);
    assert_eq!(
        audit_kinds(&*store, "s1").await,
        ["session.opened", "session.elevated"]
    );

    // acr can be cleared.
    let cleared = store
        .elevate(
            "s1",
            secs(now),
            None,
            &[],
            ts(now),
            &record("session.elevated", &s, now),
        )
        .await
        .expect("elevate")
        .expect("live");
    assert_eq!((cleared.acr, cleared.amr), (None, vec![]));

    let rec = record("session.elevated", &gone, now);
    assert_eq!(
        store
            .elevate(
                "s2",
                NumericDate::from_unix(1),
                Some("x"),
                &amr,
                ts(now),
                &rec
            )
            .await
            .expect("elevate"),
        None,
        "ended"
    );
    assert_eq!(
        store
            .elevate("nope", NumericDate::from_unix(1), None, &amr, ts(now), &rec)
            .await
            .expect("elevate"),
        None,
        "missing"
    );
    let idle_out = s.idle_expires_at;
    assert_eq!(
        store
            .elevate(
                "s1",
                NumericDate::from_unix(1),
                None,
                &amr,
                idle_out,
                &record("session.elevated", &s, idle_out.0)
            )
            .await
            .expect("elevate"),
        None,
        "idle-expired"
    );
    assert_eq!(
        audit_kinds(&*store, "s2").await,
        ["session.opened", "session.revoked"],
        "refusal writes nothing"
    );
    assert_eq!(audit_kinds(&*store, "s1").await.len(), 3);
    assert_eq!(
        must_get(&*store, "s2").await.acr,
        gone.acr,
        "ended session unchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_filters() {
    let Some(fixture) = super::Fixture::new("audit_filters").await else {
        return;
    };
    let store = fixture.store();
    let mut appended = Vec::new();
    for i in 0..12_i64 {
        let subject = if i % 2 == 0 { "alice" } else { "bob" };
        let session = format!("s{}", i % 3);
        let r = AuditRecord {
            seq: 0,
            at: ts(T0 + i),
            kind: format!("test.{i}").into(),
            subject: Some(subject.to_owned()),
            session_id: Some(session),
            client_id: None,
            device: Device::default(),
            detail: json!({ "i": i, "nested": { "list": [1, 2] } }),
        };
        store.append_audit(&r).await.expect("append_audit");
        appended.push(r);
    }
    let unscoped = AuditRecord {
        seq: 0,
        at: ts(T0 + 100),
        kind: "key.created".into(),
        subject: None,
        session_id: None,
        client_id: None,
        device: Device::default(),
        detail: serde_json::Value::Null,
    };
    store.append_audit(&unscoped).await.expect("append_audit");
    appended.push(unscoped);

    let all = store.audit(&AuditFilter::default()).await.expect("audit");
    assert_eq!(all.len(), 13);
    for (got, want) in all.iter().zip(&appended) {
        assert_eq!(
            *got,
            AuditRecord {
                seq: got.seq,
                ..want.clone()
            },
            "round trip"
        );
    }
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "oldest first");

    let kinds = |records: Vec<AuditRecord>| records.into_iter().map(|r| r.kind).collect::<Vec<_>>();
    let alice = AuditFilter {
        subject: Some("alice".to_owned()),
        ..AuditFilter::default()
    };
    assert_eq!(
        kinds(store.audit(&alice).await.expect("audit")),
        ["test.0", "test.2", "test.4", "test.6", "test.8", "test.10"]
    );
    let s1 = AuditFilter {
        session_id: Some("s1".to_owned()),
        ..AuditFilter::default()
    };
    assert_eq!(
        kinds(store.audit(&s1).await.expect("audit")),
        ["test.1", "test.4", "test.7", "test.10"]
    );
    let both = AuditFilter {
        subject: Some("alice".to_owned()),
        session_id: Some("s1".to_owned()),
        ..AuditFilter::default()
    };
    assert_eq!(
        kinds(store.audit(&both).await.expect("audit")),
        ["test.4", "test.10"]
    );
    let after = AuditFilter {
        subject: Some("alice".to_owned()),
        after: Some(all[4].seq),
        limit: 2,
        ..AuditFilter::default()
    };
    assert_eq!(
        kinds(store.audit(&after).await.expect("audit")),
        ["test.6", "test.8"],
        "after + limit"
    );
    let paged = AuditFilter {
        after: Some(all[11].seq),
        ..AuditFilter::default()
    };
    assert_eq!(
        kinds(store.audit(&paged).await.expect("audit")),
        ["key.created"]
    );
    let none = AuditFilter {
        subject: Some("carol".to_owned()),
        ..AuditFilter::default()
    };
    assert!(store.audit(&none).await.expect("audit").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_limit_defaults_and_cap() {
    let Some(fixture) = super::Fixture::new("audit_limit_defaults_and_cap").await else {
        return;
    };
    let store = fixture.store();
    for i in 0..1005_i64 {
        let r = AuditRecord {
            seq: 0,
            at: ts(T0 + i),
            kind: "test.bulk".into(),
            subject: Some("alice".to_owned()),
            session_id: None,
            client_id: None,
            device: Device::default(),
            detail: json!({}),
        };
        store.append_audit(&r).await.expect("append_audit");
    }
    let default = store.audit(&AuditFilter::default()).await.expect("audit");
    assert_eq!(default.len(), 100, "limit 0 means 100");
    assert_eq!(default[0].at, ts(T0), "oldest first");
    let capped = AuditFilter {
        limit: u32::MAX,
        ..AuditFilter::default()
    };
    assert_eq!(
        store.audit(&capped).await.expect("audit").len(),
        1000,
        "capped at 1000"
    );
    let seven = AuditFilter {
        limit: 7,
        ..AuditFilter::default()
    };
    assert_eq!(store.audit(&seven).await.expect("audit").len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_feed_order_and_limit() {
    let Some(fixture) = super::Fixture::new("revocations_feed_order_and_limit").await else {
        return;
    };
    let store = fixture.store();
    let mut ids = Vec::new();
    for i in 0..5_i64 {
        let s = new_session(&format!("s{i}"), "alice", T0);
        open(&*store, &s).await;
        let now = T0 + i;
        store
            .end_session(
                &s.id,
                EndReason::Revoked,
                ts(now),
                ts(now + HOUR),
                &record("session.revoked", &s, now),
            )
            .await
            .expect("end_session");
        ids.push(s.id);
    }
    let ended = store
        .end_subject(
            "bob",
            ts(T0 + 10),
            ts(T0 + DAY),
            &record("session.revoked", &new_session("x", "bob", T0), T0),
            None,
        )
        .await
        .expect("end_subject");
    assert!(ended.is_empty(), "bob has no sessions");

    let all = all_revocations(&*store).await;
    let got: Vec<(&str, &str)> = all
        .iter()
        .map(|e| (e.kind.as_str(), e.id.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("session", "s0"),
            ("session", "s1"),
            ("session", "s2"),
            ("session", "s3"),
            ("session", "s4"),
            ("subject", "bob")
        ]
    );
    assert!(
        all.windows(2).all(|w| w[0].seq < w[1].seq),
        "oldest first, increasing seq"
    );
    for (i, event) in all.iter().take(5).enumerate() {
        assert_eq!(event.at, ts(T0 + n(i)));
        assert_eq!(event.until, ts(T0 + n(i) + HOUR));
    }

    let page = store
        .revocations_after(all[1].seq, 2)
        .await
        .expect("revocations_after");
    assert_eq!(page, all[2..4].to_vec(), "after + limit");
    let tail = store
        .revocations_after(all[4].seq, 100)
        .await
        .expect("revocations_after");
    assert_eq!(tail, all[5..].to_vec());
    assert!(
        store
            .revocations_after(all[5].seq, 100)
            .await
            .expect("revocations_after")
            .is_empty()
    );
    assert!(
        store
            .revocations_after(0, 0)
            .await
            .expect("revocations_after")
            .is_empty(),
        "limit 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_insert_list_conflict() {
    let Some(fixture) = super::Fixture::new("keys_insert_list_conflict").await else {
        return;
    };
    let store = fixture.store();
    let older = key("kid-older", T0);
    let mut newer = key("kid-newer", T0 + HOUR);
    newer.alg = Algorithm::Es256;
    newer.public = (0..64).collect();
    newer.state = KeyState::Active;
    newer.retired_at = Some(ts(T0 + DAY));
    newer.expires_at = None;
    store.insert_key(&newer).await.expect("insert newer");
    store.insert_key(&older).await.expect("insert older");

    assert_eq!(
        store.keys().await.expect("keys"),
        [older.clone(), newer],
        "oldest first, fields round-trip"
    );

    let clash = StoredKey {
        sealed_secret: vec![9; 9],
        ..older.clone()
    };
    let err = store.insert_key(&clash).await.expect_err("duplicate kid");
    assert!(
        matches!(err, StoreError::Conflict(_)),
        "duplicate kid: {err:?}"
    );
    assert_eq!(
        store.keys().await.expect("keys")[0],
        older,
        "first one kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_or_insert_keeps_first() {
    let Some(fixture) = super::Fixture::new("secret_or_insert_keeps_first").await else {
        return;
    };
    let store = fixture.store();
    let first = store
        .secret_or_insert("refresh-mac", &[1, 2, 3])
        .await
        .expect("secret");
    assert_eq!(first, [1, 2, 3]);
    let second = store
        .secret_or_insert("refresh-mac", &[9, 9, 9])
        .await
        .expect("secret");
    assert_eq!(second, [1, 2, 3], "the first value wins");
    let other = store
        .secret_or_insert("other", &[0, 255])
        .await
        .expect("secret");
    assert_eq!(other, [0, 255]);

    // Concurrent first starts agree on one value.
    let tasks: Vec<_> = (0..8_u8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .secret_or_insert("race", &[i; 4])
                    .await
                    .expect("secret")
            })
        })
        .collect();
    let mut values = Vec::new();
    for task in tasks {
        values.push(task.await.expect("task"));
    }
    assert!(
        values.windows(2).all(|w| w[0] == w[1]),
        "everyone sees one value: {values:?}"
    );
}

/// Every operation that takes an audit record writes it, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutation_is_audited() {
    let Some(fixture) = super::Fixture::new("every_mutation_is_audited").await else {
        return;
    };
    let store = fixture.store();
    let s = new_session("s1", "alice", T0);
    open(&*store, &s).await;
    let now = T0 + MINUTE;
    assert!(matches!(
        rotate(&*store, &s, 1, now, now + HOUR).await,
        RotateOutcome::Rotated(_)
    ));
    store
        .elevate(
            "s1",
            secs(now),
            Some("mfa"),
            &[],
            ts(now),
            &record("session.elevated", &s, now),
        )
        .await
        .expect("elevate")
        .expect("live");
    store
        .end_session(
            "s1",
            EndReason::ExpiredIdle,
            ts(now),
            ts(now + HOUR),
            &record("session.expired_idle", &s, now),
        )
        .await
        .expect("end_session");
    assert_eq!(
        audit_kinds(&*store, "s1").await,
        [
            "session.opened",
            "session.refreshed",
            "session.elevated",
            "session.expired_idle"
        ]
    );

    let t = new_session("s2", "alice", now);
    open(&*store, &t).await;
    let template = AuditRecord {
        session_id: None,
        ..record("session.revoked", &t, now)
    };
    store
        .end_subject("alice", ts(now + 1), ts(now + DAY), &template, None)
        .await
        .expect("end_subject");
    assert_eq!(
        audit_kinds(&*store, "s2").await,
        ["session.opened", "session.revoked"]
    );

    let refused = AuditRecord {
        detail: json!({ "reason": "invalid_grant" }),
        ..record("token.refused", &t, now + 2)
    };
    store.append_audit(&refused).await.expect("append_audit");
    let last = store.audit(&session_filter("s2")).await.expect("audit");
    assert_eq!(last.last().map(|r| r.kind.as_str()), Some("token.refused"));
    assert_eq!(last.last().map(|r| &r.detail), Some(&refused.detail));

    let alice = AuditFilter {
        subject: Some("alice".to_owned()),
        limit: 1000,
        ..AuditFilter::default()
    };
    assert_eq!(store.audit(&alice).await.expect("audit").len(), 7);
}

fn stored_key(kid: &str, alg: &str, state: &str, at: i64) -> StoredKey {
    StoredKey {
        kid: kid.to_owned(),
        alg: Algorithm::from_name(alg).expect("a known algorithm"),
        state: KeyState::parse(state).expect("a known state"),
        public: vec![1; 32],
        sealed_secret: vec![2; 60],
        created_at: ts(at),
        activates_at: ts(at),
        retired_at: None,
        expires_at: None,
    }
}

fn key_audit(kind: &str, at: i64) -> AuditRecord {
    AuditRecord {
        seq: 0,
        at: ts(at),
        kind: kind.into(),
        subject: None,
        session_id: None,
        client_id: None,
        device: Device::default(),
        detail: json!({}),
    }
}

async fn key_state(store: &dyn Store, kid: &str) -> Option<StoredKey> {
    store
        .keys()
        .await
        .expect("keys")
        .into_iter()
        .find(|k| k.kid == kid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_lifecycle_activate_retire_remove() {
    let Some(fixture) = super::Fixture::new("key_lifecycle_activate_retire_remove").await else {
        return;
    };
    let store = fixture.store();
    store
        .insert_key(&stored_key("old", "EdDSA", "active", T0))
        .await
        .expect("insert");
    store
        .insert_key(&stored_key("paseto", "v4.public", "active", T0))
        .await
        .expect("insert");
    store
        .insert_key(&stored_key("new", "EdDSA", "pending", T0 + MINUTE))
        .await
        .expect("insert");
    let at = T0 + 2 * MINUTE;
    let until = ts(at + 10 * MINUTE);
    assert!(
        store
            .activate_key("new", ts(at), until, &key_audit("key.activated", at))
            .await
            .expect("activate")
    );
    // Compare-and-swap: a second activation (another instance) does nothing.
    assert!(
        !store
            .activate_key("new", ts(at + 1), until, &key_audit("key.activated", at))
            .await
            .expect("activate again")
    );
    assert!(
        !store
            .activate_key("missing", ts(at), until, &key_audit("key.activated", at))
            .await
            .expect("activate missing")
    );
    let old = key_state(&*store, "old").await.expect("old kept");
    assert_eq!(
        (old.state.as_str(), old.retired_at, old.expires_at),
        ("retired", Some(ts(at)), Some(until))
    );
    let new = key_state(&*store, "new").await.expect("new");
    assert_eq!((new.state.as_str(), new.activates_at), ("active", ts(at)));
    let other = key_state(&*store, "paseto").await.expect("other algorithm");
    assert_eq!(other.state, "active", "other algorithms are untouched");

    // Removal only once the retired key's tokens have expired.
    assert!(
        store
            .remove_expired_keys(ts(until.0 - 1))
            .await
            .expect("remove")
            .is_empty()
    );
    assert_eq!(
        store.remove_expired_keys(until).await.expect("remove"),
        ["old"]
    );
    assert!(key_state(&*store, "old").await.is_none());
    let kinds: Vec<String> = store
        .audit(&AuditFilter {
            limit: 1000,
            ..AuditFilter::default()
        })
        .await
        .expect("audit")
        .into_iter()
        .map(|r| r.kind.to_string())
        .collect();
    assert_eq!(kinds, ["key.activated", "key.removed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_revocation_is_an_event() {
    let Some(fixture) = super::Fixture::new("key_revocation_is_an_event").await else {
        return;
    };
    let store = fixture.store();
    store
        .insert_key(&stored_key("k1", "EdDSA", "active", T0))
        .await
        .expect("insert");
    let before = store.change_marks().await.expect("marks");
    let until = ts(T0 + HOUR);
    let outcome = store
        .revoke_key("k1", ts(T0), until, &key_audit("key.revoked", T0))
        .await
        .expect("revoke");
    assert!(
        matches!(&outcome, tessera_store::KeyRevoked::Revoked(k) if k.state == "active"),
        "{outcome:?}"
    );
    assert_eq!(
        store
            .revoke_key("k1", ts(T0), until, &key_audit("key.revoked", T0))
            .await
            .expect("again"),
        tessera_store::KeyRevoked::AlreadyRevoked
    );
    assert_eq!(
        store
            .revoke_key("nope", ts(T0), until, &key_audit("key.revoked", T0))
            .await
            .expect("missing"),
        tessera_store::KeyRevoked::NotFound
    );
    let events = store.revocations_after(0, 10).await.expect("feed");
    assert_eq!(events.len(), 1);
    assert_eq!(
        (
            events[0].kind.as_str(),
            events[0].id.as_str(),
            events[0].until
        ),
        ("key", "k1", until)
    );
    let after = store.change_marks().await.expect("marks");
    assert!(after.keys > before.keys, "key changes move the keys mark");
    assert_eq!(after.revocations, events[0].seq);
    // The handle's watch follows (at once for its own writes).
    let mut changes = store.changes();
    let seen = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        loop {
            if *changes.borrow_and_update() == after {
                return;
            }
            changes.changed().await.expect("watch open");
        }
    })
    .await;
    assert!(seen.is_ok(), "changes() reached the stored marks");
    // Revoked keys go once their event may be forgotten.
    assert_eq!(
        store.remove_expired_keys(until).await.expect("remove"),
        ["k1"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_indices_and_pruning() {
    let Some(fixture) = super::Fixture::new("status_indices_and_pruning").await else {
        return;
    };
    let store = fixture.store();
    assert_eq!(store.max_status_index().await.expect("max"), None);
    for i in 0..5 {
        let s = new_session(&format!("s{i}"), "alice", T0 + i);
        let outcome = store
            .open_session(
                &s,
                None,
                &record("session.opened", &s, T0 + i),
                ts(EVICT_UNTIL),
            )
            .await
            .expect("open");
        assert!(
            matches!(outcome, OpenOutcome::Opened { status_idx, .. } if status_idx == idx(u64::try_from(i).expect("small"))),
            "{outcome:?}"
        );
    }
    assert_eq!(store.max_status_index().await.expect("max"), Some(idx(4)));
    for (id, until) in [("s1", T0 + MINUTE), ("s3", T0 + HOUR)] {
        let s = must_get(&*store, id).await;
        assert!(
            store
                .end_session(
                    id,
                    EndReason::Revoked,
                    ts(T0 + 10),
                    ts(until),
                    &record("session.revoked", &s, T0 + 10)
                )
                .await
                .expect("end")
        );
    }
    assert_eq!(
        store
            .ended_status_indices(idx(0), idx(5))
            .await
            .expect("ended"),
        [idx(1), idx(3)]
    );
    assert_eq!(
        store
            .ended_status_indices(idx(2), idx(3))
            .await
            .expect("ended"),
        Vec::<StatusIndex>::new()
    );
    // Events past `until` are pruned, but the newest always stays (the
    // feed position never goes back).
    assert_eq!(
        store
            .prune_revocations(ts(T0 + 2 * HOUR))
            .await
            .expect("prune"),
        1
    );
    let left = store.revocations_after(0, 10).await.expect("feed");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, "s3");
    // A new session never reuses an index, even after others ended.
    let s = new_session("s5", "bob", T0 + 20);
    let outcome = store
        .open_session(
            &s,
            None,
            &record("session.opened", &s, T0 + 20),
            ts(EVICT_UNTIL),
        )
        .await
        .expect("open");
    assert!(matches!(outcome, OpenOutcome::Opened { status_idx, .. } if status_idx == idx(5)));
}

/// Group commit: rotations that arrive together share one statement, yet
/// each gets its own verdict. The caller has made updates of session "s13"
/// fail (a trigger behind the store's back) and opened `sessions`. A
/// rotation that fails sends its batch back to one rotation at a time:
/// every other rotation is committed and correct, the racing pair of one
/// session has exactly one winner, and the failed one changed nothing.
/// Rounds repeat until a batch really held the failing rotation.
pub(crate) async fn a_failing_and_a_racing_rotation_in_one_batch(
    shared: Arc<dyn Store>,
    sessions: &[Session],
    stats: impl Fn() -> (u64, u64, u64),
) {
    let mut round = 0_u64;
    loop {
        round += 1;
        let now = T0 + i64::try_from(round).expect("small") * MINUTE;
        let before = stats();
        // Every session once, and s07 twice with the same generation.
        let mut jobs = Vec::new();
        for s in sessions.iter().chain(std::iter::once(&sessions[7])) {
            jobs.push((s.clone(), must_get(&*shared, &s.id).await.generation));
        }
        let mut tasks = Vec::new();
        for (s, expected) in jobs {
            let store = shared.clone();
            tasks.push(tokio::spawn(async move {
                let outcome = store
                    .rotate(
                        &s.id,
                        &s.client_id,
                        expected,
                        ts(now),
                        ts(now + HOUR),
                        ProofKey::default(),
                        &record("session.refreshed", &s, now),
                    )
                    .await;
                (s.id, expected, outcome)
            }));
        }
        let mut s07_wins = 0;
        for task in tasks {
            let (id, expected, outcome) = task.await.expect("join");
            match (id.as_str(), outcome) {
                ("s13", outcome) => assert!(outcome.is_err(), "s13 must fail: {outcome:?}"),
                ("s07", Ok(RotateOutcome::Rotated(s))) => {
                    s07_wins += 1;
                    assert_eq!(s.generation, expected.next());
                }
                ("s07", Ok(RotateOutcome::Stale(_))) => {}
                (id, Ok(RotateOutcome::Rotated(s))) => {
                    assert_eq!(s.generation, expected.next(), "{id}");
                    assert_eq!(s.last_used_at, ts(now), "{id}");
                }
                (id, other) => panic!("{id}: {other:?}"),
            }
        }
        assert_eq!(s07_wins, 1, "one winner of the racing pair");
        // What is stored agrees with the answers.
        assert_eq!(
            must_get(&*shared, "s13").await.generation,
            Generation::FIRST
        );
        assert_eq!(
            must_get(&*shared, "s00").await.generation.get(),
            1 + round,
            "committed"
        );
        let kinds = audit_kinds(&*shared, "s00").await;
        assert_eq!(
            kinds.len(),
            1 + usize::try_from(round).expect("small"),
            "one audit record per rotation"
        );
        assert_eq!(audit_kinds(&*shared, "s13").await, ["session.opened"]);
        let after = stats();
        // (batches, rotations, batches retried one rotation at a time)
        let batched = after.1 - before.1 > after.0 - before.0;
        if batched && after.2 > before.2 {
            break; // a batch with the failing rotation in it was seen
        }
        assert!(
            round < 20,
            "in 20 rounds no batch ever held the failing rotation: {after:?}"
        );
    }
}
