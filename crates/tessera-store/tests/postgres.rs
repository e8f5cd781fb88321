//! The store suite on PostgreSQL: each test gets its own database on the
//! server named by `TESSERA_TEST_DATABASE_URL`, dropped afterwards. Without
//! that variable every test says it skipped; with it, an unreachable server
//! fails the test.

mod suite;

use std::sync::Arc;

use tessera_store::Store;
use tessera_store::postgres::{PgSettings, PgStore};
use tessera_testkit::postgres::{TestDatabase, server_url};

/// A fresh database of its own (dropped with the fixture); `None`, with a
/// line saying the test skipped, without `TESSERA_TEST_DATABASE_URL`.
struct Fixture {
    store: PgStore,
    _db: TestDatabase,
}

impl Fixture {
    async fn new(test: &str) -> Option<Fixture> {
        let server = server_url(test)?;
        let db = TestDatabase::create(&server, test).await;
        let store = PgStore::connect(&db.url, &PgSettings::default())
            .await
            .expect("open store");
        Some(Fixture { store, _db: db })
    }

    fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.store.clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_hears_changes_made_through_the_first() {
    let Some(server) = server_url("a_second_instance_hears_changes") else {
        return;
    };
    let db = TestDatabase::create(&server, "listen").await;
    let a = PgStore::connect(&db.url, &PgSettings::default())
        .await
        .expect("a");
    let b = PgStore::connect(&db.url, &PgSettings::default())
        .await
        .expect("b");
    let mut changes = tessera_store::Store::changes(&b);
    changes.borrow_and_update();
    let record = tessera_store::AuditRecord {
        seq: 0,
        at: tessera_store::Timestamp(1),
        kind: "key.revoked".into(),
        subject: None,
        session_id: None,
        client_id: None,
        device: tessera_store::Device::default(),
        detail: serde_json::json!({}),
    };
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
    let store_a: &dyn tessera_store::Store = &a;
    store_a.insert_key(&key).await.expect("insert");
    store_a
        .revoke_key(
            "k",
            tessera_store::Timestamp(1),
            tessera_store::Timestamp(2),
            &record,
        )
        .await
        .expect("revoke");
    let heard = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        loop {
            changes.changed().await.expect("open");
            if changes.borrow_and_update().revocations >= 1 {
                return;
            }
        }
    })
    .await;
    assert!(
        heard.is_ok(),
        "instance B learnt of A's revocation via NOTIFY"
    );
    a.close().await;
    b.close().await;
    db.drop_now().await;
}

/// TLS to PostgreSQL: `sslmode=require` and `verify-full` with a custom CA
/// (`sslrootcert`). Needs `TESSERA_TEST_PG_CA`, the CA that signed the
/// local server's certificate (`scripts/pg-tls-setup.sh` makes one; CI
/// always does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_postgresql_with_require_and_verify_full() {
    use sqlx::{Connection as _, Row as _};
    let Some(server) = server_url("tls_to_postgresql") else {
        return;
    };
    let Some(ca) = std::env::var("TESSERA_TEST_PG_CA")
        .ok()
        .filter(|v| !v.is_empty())
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set TESSERA_TEST_PG_CA (scripts/pg-tls-setup.sh)"
        );
        eprintln!(
            "SKIPPED tls_to_postgresql: TESSERA_TEST_PG_CA is not set (scripts/pg-tls-setup.sh)"
        );
        return;
    };
    let db = TestDatabase::create(&server, "tls").await;
    let name = db.url.rsplit('/').next().expect("db name").to_owned();
    let uses_tls = |url: String| async move {
        let mut conn = sqlx::PgConnection::connect(&url).await?;
        let ssl: bool = sqlx::query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&mut conn)
            .await?
            .try_get(0)?;
        let _ = conn.close().await;
        Ok::<bool, sqlx::Error>(ssl)
    };
    let verified =
        format!("postgres://postgres@localhost:5432/{name}?sslmode=verify-full&sslrootcert={ca}");
    assert!(
        uses_tls(verified.clone())
            .await
            .expect("verify-full with the CA")
    );
    assert!(
        uses_tls(format!(
            "postgres://postgres@127.0.0.1:5432/{name}?sslmode=require"
        ))
        .await
        .expect("require")
    );
    // Without the CA, the server's certificate is not trusted.
    assert!(
        uses_tls(format!(
            "postgres://postgres@localhost:5432/{name}?sslmode=verify-full"
        ))
        .await
        .is_err(),
        "an unknown CA is refused"
    );
    // The store itself, over verified TLS.
    let store = PgStore::connect(&verified, &PgSettings::default())
        .await
        .expect("store over TLS");
    tessera_store::Store::ping(&store).await.expect("ping");
    store.close().await;
    db.drop_now().await;
}

/// Group commit on PostgreSQL with a failing and a racing rotation in a
/// batch (see `suite::a_failing_and_a_racing_rotation_in_one_batch`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_or_conflicting_rotation_leaves_its_batch_committed() {
    use suite::{T0, new_session, open};

    let Some(fixture) = Fixture::new("group_commit_failing_rotation").await else {
        return;
    };
    let shared = fixture.store();
    let sessions: Vec<_> = (0..64)
        .map(|i| new_session(&format!("s{i:02}"), "alice", T0))
        .collect();
    for s in &sessions {
        open(&*shared, s).await;
    }
    // Updates of "s13" fail, behind the store's back.
    let pool = sqlx::PgPool::connect(&fixture._db.url)
        .await
        .expect("connect");
    sqlx::raw_sql(
        "CREATE FUNCTION doomed() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.id = 's13' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$; \
         CREATE TRIGGER doomed BEFORE UPDATE OF generation ON sessions \
         FOR EACH ROW EXECUTE FUNCTION doomed();",
    )
    .execute(&pool)
    .await
    .expect("trigger");
    pool.close().await;
    let store = fixture.store.clone();
    suite::a_failing_and_a_racing_rotation_in_one_batch(shared, &sessions, || {
        let s = store.rotation_stats();
        (s.batches, s.rotations, s.retried_alone)
    })
    .await;
}
