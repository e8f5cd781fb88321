//! The store suite on SQLite: each test gets a fresh database file in a fresh
//! temporary directory, removed afterwards. Plus what only SQLite has: opening
//! by URL or path, reopening, and rows tampered with behind the store's back.

mod suite;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tessera_store::sqlite::SqliteStore;
use tessera_store::{Store, StoreError};
use tessera_testkit::TempDir;

/// A fresh SQLite file in a fresh temporary directory (removed on drop).
struct Fixture {
    store: SqliteStore,
    _dir: TempDir,
}

impl Fixture {
    async fn new(test: &str) -> Option<Fixture> {
        let dir = TempDir::new(&format!("store-{test}"));
        let store = SqliteStore::open_path(&dir.path().join("tessera.db"))
            .await
            .expect("open store");
        Some(Fixture { store, _dir: dir })
    }

    fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.store.clone())
    }
}

#[tokio::test]
async fn open_by_url_creates_parent_dirs_and_reopens() {
    let dir = TempDir::new("store-open_by_url");
    let file = dir.path().join("a/b/tessera.db");
    let url = format!("sqlite://{}", file.display());

    let store = SqliteStore::open(&url).await.expect("open by url");
    assert!(file.exists(), "database file created");
    assert!(store.secret_or_insert("k", b"first").await.expect("secret") == b"first");
    store.close().await;

    // Reopening runs the (already applied) migrations again and keeps the data.
    let again = SqliteStore::open(&url).await.expect("reopen");
    assert_eq!(
        again
            .secret_or_insert("k", b"second")
            .await
            .expect("secret"),
        b"first"
    );
    again.close().await;
}

#[tokio::test]
async fn every_commit_is_synced_and_files_are_private() {
    let dir = TempDir::new("store-private");
    let file = dir.path().join("data/tessera.db");
    let store = SqliteStore::open_path(&file).await.expect("open");
    // FULL (2): an answered logout or key revocation survives a power loss.
    assert_eq!(store.synchronous().await.expect("pragma"), 2);
    store.secret_or_insert("k", b"v").await.expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("data")), 0o700, "data directory");
        assert_eq!(mode(&file), 0o600, "database");
        let wal = PathBuf::from(format!("{}-wal", file.display()));
        assert_eq!(mode(&wal), 0o600, "write-ahead log");
        store.close().await;

        // A file an earlier build left open to others is tightened.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let again = SqliteStore::open_path(&file).await.expect("reopen");
        assert_eq!(mode(&file), 0o600);
        again.close().await;
    }
}

#[tokio::test]
async fn open_rejects_other_urls() {
    for url in [
        "postgres://localhost/tessera",
        "tessera.db",
        "sqlite://",
        "sqlite:tessera.db",
    ] {
        let err = SqliteStore::open(url).await.expect_err(url);
        assert!(matches!(err, StoreError::Unavailable(_)), "{url}: {err:?}");
    }
}

#[tokio::test]
async fn tampered_rows_are_corrupt_not_panics() {
    let dir = TempDir::new("store-tampered");
    let file = dir.path().join("tessera.db");
    let store = SqliteStore::open_path(&file).await.expect("open store");
    store.ping().await.expect("ping");

    let session = |id: &str| {
        let json = serde_json::json!({});
        tessera_store::Session {
            id: id.to_owned(),
            subject: "alice".to_owned(),
            client_id: "app".to_owned(),
            opened_by: "backend".to_owned(),
            scope: None,
            audience: vec![],
            claims: json,
            auth_time: None,
            acr: None,
            amr: vec![],
            token_format: tessera_store::TokenFormat::Jwt,
            dpop_jkt: None,
            device: tessera_store::Device::default(),
            generation: tessera_store::Generation::FIRST,
            created_at: tessera_store::Timestamp(0),
            last_used_at: tessera_store::Timestamp(0),
            rotated_at: tessera_store::Timestamp(0),
            idle_expires_at: tessera_store::Timestamp(10),
            absolute_expires_at: tessera_store::Timestamp(20),
            revoked_at: None,
            revoked_reason: None,
            status_idx: None,
        }
    };
    let opened = tessera_store::AuditRecord {
        seq: 0,
        at: tessera_store::Timestamp(0),
        kind: "session.opened".into(),
        subject: None,
        session_id: None,
        client_id: None,
        device: tessera_store::Device::default(),
        detail: serde_json::json!({}),
    };
    for id in ["bad-json", "bad-reason", "bad-type", "text-time"] {
        store
            .open_session(&session(id), None, &opened, tessera_store::Timestamp(0))
            .await
            .expect("open_session");
    }

    // Tamper through a separate connection, as an operator with the sqlite3 shell might.
    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display()))
        .await
        .expect("raw connect");
    for sql in [
        "UPDATE sessions SET amr = 'not json' WHERE id = 'bad-json'",
        "UPDATE sessions SET revoked_reason = 'bored', revoked_at = 5 WHERE id = 'bad-reason'",
        "UPDATE sessions SET generation = 'two' WHERE id = 'bad-type'",
        "UPDATE sessions SET created_at = 'yesterday' WHERE id = 'text-time'",
        "UPDATE audit SET detail = '{' WHERE seq = 1",
    ] {
        sqlx::query(sql).execute(&raw).await.expect(sql);
    }
    raw.close().await;

    for id in ["bad-json", "bad-reason", "bad-type", "text-time"] {
        let err = store.session(id).await.expect_err(id);
        assert!(matches!(err, StoreError::Corrupt(_)), "{id}: {err:?}");
    }
    let err = store
        .audit(&tessera_store::AuditFilter::default())
        .await
        .expect_err("bad detail");
    assert!(matches!(err, StoreError::Corrupt(_)), "audit: {err:?}");

    // A key row naming an algorithm or state Tessera does not know is
    // refused when read, so no caller ever sees an untyped one.
    for sql in [
        "UPDATE signing_keys SET alg = 'HS256'",
        "UPDATE signing_keys SET alg = 'EdDSA', state = 'paused'",
    ] {
        let key = tessera_store::StoredKey {
            kid: "k".into(),
            alg: tessera_store::Algorithm::EdDsa,
            state: tessera_store::KeyState::Active,
            public: vec![1; 32],
            sealed_secret: vec![2; 40],
            created_at: tessera_store::Timestamp(0),
            activates_at: tessera_store::Timestamp(0),
            retired_at: None,
            expires_at: None,
        };
        let _ = store.insert_key(&key).await;
        let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display()))
            .await
            .expect("raw connect");
        sqlx::query(sql).execute(&raw).await.expect(sql);
        raw.close().await;
        let err = store.keys().await.expect_err(sql);
        assert!(matches!(err, StoreError::Corrupt(_)), "{sql}: {err:?}");
    }
    store.close().await;
}

/// Group commit on SQLite with a failing and a racing rotation in a batch
/// (see `suite::a_failing_and_a_racing_rotation_in_one_batch`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_or_conflicting_rotation_leaves_its_batch_committed() {
    use suite::{T0, new_session, open};

    let dir = TempDir::new("store-group-commit");
    let path = dir.path().join("tessera.db");
    let store = SqliteStore::open_path(&path).await.expect("open");
    let shared: Arc<dyn Store> = Arc::new(store.clone());
    let sessions: Vec<_> = (0..64)
        .map(|i| new_session(&format!("s{i:02}"), "alice", T0))
        .collect();
    for s in &sessions {
        open(&*shared, s).await;
    }
    // Updates of "s13" abort, behind the store's back.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("second connection");
    sqlx::query(
        "CREATE TRIGGER doomed BEFORE UPDATE OF generation ON sessions \
         WHEN NEW.id = 's13' BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    )
    .execute(&pool)
    .await
    .expect("trigger");
    pool.close().await;
    suite::a_failing_and_a_racing_rotation_in_one_batch(shared, &sessions, || {
        let s = store.rotation_stats();
        (s.batches, s.rotations, s.retried_alone)
    })
    .await;
}
