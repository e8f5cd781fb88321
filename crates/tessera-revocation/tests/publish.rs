//! Key creation and publication against a real SQLite store, through
//! `Router::oneshot`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode, header};
use serde_json::Value;
use tessera_core::{Algorithm, MasterKey, SigningKey};
use tessera_revocation::keys::{self, KeyState};
use tessera_revocation::publish::{self, JWKS_PATH, PASERK_PATH};
use tessera_store::sqlite::SqliteStore;
use tessera_store::{AuditFilter, Store, StoreError, StoredKey, Timestamp};
use tower::ServiceExt as _;

const NOW: Timestamp = Timestamp(1_700_000_000_000);

/// A store in a fresh directory; the directory lives as long as the
/// returned guard.
async fn store(name: &str) -> (Arc<dyn Store>, tessera_testkit::TempDir) {
    let dir = tessera_testkit::TempDir::new(&format!("revocation-{name}"));
    let store = SqliteStore::open_path(&dir.path().join("t.db"))
        .await
        .expect("open store");
    (Arc::new(store), dir)
}

async fn get(
    app: &axum::Router,
    path: &str,
    if_none_match: Option<&str>,
) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let mut request = Request::get(path);
    if let Some(tag) = if_none_match {
        request = request.header(header::IF_NONE_MATCH, tag);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, headers, body.to_vec())
}

fn now() -> std::sync::Arc<dyn tessera_core::time::Clock> {
    std::sync::Arc::new(tessera_core::time::ManualClock::new(NOW))
}

#[tokio::test]
async fn first_start_creates_one_active_key_per_algorithm_and_only_once() {
    let (store, _dir) = store("ensure").await;
    let master = MasterKey::generate().expect("master");
    let algs = [Algorithm::EdDsa, Algorithm::V4Public];
    let first = keys::ensure_signing_keys(&*store, &master, &algs, NOW)
        .await
        .expect("create");
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].alg, "EdDSA");
    assert_eq!(first[1].alg, "v4.public");
    for key in &first {
        assert_eq!(key.state, "active");
        assert_eq!(key.activates_at, NOW);
        let opened = keys::signing_key(key, &master).expect("sealed under the master key");
        assert_eq!(opened.kid(), key.kid);
    }
    let again = keys::ensure_signing_keys(&*store, &master, &algs, Timestamp(NOW.0 + 1000))
        .await
        .expect("again");
    assert_eq!(again, first, "a second start reuses the keys");
    assert_eq!(store.keys().await.expect("keys").len(), 2);

    let audit = store
        .audit(&AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .expect("audit");
    let created: Vec<_> = audit.iter().filter(|r| r.kind == "key.created").collect();
    assert_eq!(created.len(), 2);
    assert_eq!(created[0].detail["kid"], first[0].kid.as_str());
    assert_eq!(created[0].detail["alg"], "EdDSA");
    let text = serde_json::to_string(&audit).expect("json");
    assert!(
        !text.contains("sealed"),
        "no secret material in audit records"
    );
}

fn stored(
    alg: Algorithm,
    state: KeyState,
    master: &MasterKey,
    expires_at: Option<Timestamp>,
) -> StoredKey {
    let key = SigningKey::generate(alg).expect("generate");
    let secret = key.to_secret_bytes().expect("export");
    StoredKey {
        kid: key.kid().to_owned(),
        alg,
        state,
        public: keys::public_bytes(key.verification_key()),
        sealed_secret: master
            .seal(&keys::sealing_name(key.kid()), &secret)
            .expect("seal"),
        created_at: NOW,
        activates_at: NOW,
        retired_at: None,
        expires_at,
    }
}

#[tokio::test]
async fn documents_publish_pending_active_retired_never_revoked_or_expired() {
    let (store, _dir) = store("publish").await;
    let master = MasterKey::generate().expect("master");
    let past = Some(Timestamp(NOW.0 - 1));
    let future = Some(Timestamp(NOW.0 + 60_000));
    let rows = [
        (
            "pending",
            stored(Algorithm::EdDsa, KeyState::Pending, &master, None),
            true,
        ),
        (
            "active",
            stored(Algorithm::EdDsa, KeyState::Active, &master, None),
            true,
        ),
        (
            "active es256",
            stored(Algorithm::Es256, KeyState::Active, &master, None),
            true,
        ),
        (
            "retired",
            stored(Algorithm::EdDsa, KeyState::Retired, &master, future),
            true,
        ),
        (
            "retired, expired",
            stored(Algorithm::EdDsa, KeyState::Retired, &master, past),
            false,
        ),
        (
            "revoked",
            stored(Algorithm::EdDsa, KeyState::Revoked, &master, None),
            false,
        ),
        (
            "paseto active",
            stored(Algorithm::V4Public, KeyState::Active, &master, None),
            true,
        ),
        (
            "paseto retired",
            stored(Algorithm::V4Public, KeyState::Retired, &master, None),
            true,
        ),
        (
            "paseto revoked",
            stored(Algorithm::V4Public, KeyState::Revoked, &master, None),
            false,
        ),
    ];
    for (_, row, _) in &rows {
        store.insert_key(row).await.expect("insert");
    }
    let app = publish::routes_with_clock(store.clone(), Duration::from_secs(123), now());

    let (status, headers, body) = get(&app, JWKS_PATH, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=123");
    let jwks: Value = serde_json::from_slice(&body).expect("json");
    let published: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid"))
        .collect();
    for (case, row, expected) in &rows {
        let is_jwt = row.alg != "v4.public";
        assert_eq!(
            published.contains(&row.kid.as_str()),
            is_jwt && *expected,
            "jwks: {case}"
        );
    }
    for jwk in jwks["keys"].as_array().expect("keys") {
        assert_eq!(jwk["use"], "sig");
        assert!(jwk["alg"] == "EdDSA" || jwk["alg"] == "ES256", "{jwk}");
        assert!(jwk.get("d").is_none(), "never a private part");
    }
    let set = tessera_core::KeySet::from_document(&body).expect("a verifier reads it");
    assert_eq!(set.len(), 4);

    let (status, headers, body) = get(&app, PASERK_PATH, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=123");
    let paserk: Value = serde_json::from_slice(&body).expect("json");
    let entries = paserk["keys"].as_array().expect("keys");
    assert_eq!(entries.len(), 2, "{paserk}");
    for (case, row, expected) in &rows {
        if row.alg != "v4.public" {
            continue;
        }
        let entry = entries.iter().find(|e| e["kid"] == row.kid.as_str());
        assert_eq!(entry.is_some(), *expected, "paserk: {case}");
        if let Some(entry) = entry {
            assert_eq!(entry["status"], row.state.as_str(), "{case}");
            assert!(
                entry["paserk"]
                    .as_str()
                    .expect("paserk")
                    .starts_with("k4.public.")
            );
        }
    }
    assert_eq!(
        tessera_core::KeySet::from_document(&body)
            .expect("readable")
            .len(),
        2
    );
}

#[tokio::test]
async fn etag_revalidates_with_304_and_changes_with_the_keys() {
    let (store, _dir) = store("etag").await;
    let master = MasterKey::generate().expect("master");
    keys::ensure_signing_keys(
        &*store,
        &master,
        &[Algorithm::EdDsa, Algorithm::V4Public],
        NOW,
    )
    .await
    .expect("keys");
    let app = publish::routes_with_clock(store.clone(), Duration::from_secs(300), now());

    for path in [JWKS_PATH, PASERK_PATH] {
        let (_, headers, _) = get(&app, path, None).await;
        let etag = headers[header::ETAG].to_str().expect("ascii").to_owned();
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"),
            "strong: {etag}"
        );

        let (status, headers, body) = get(&app, path, Some(&etag)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(body.is_empty());
        assert_eq!(headers[header::ETAG], etag.as_str());
        assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=300");

        let (status, _, body) = get(&app, path, Some("\"stale\"")).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!body.is_empty());
    }

    let (_, before, _) = get(&app, JWKS_PATH, None).await;
    store
        .insert_key(&stored(Algorithm::EdDsa, KeyState::Pending, &master, None))
        .await
        .expect("insert");
    // The documents are rebuilt when the store's key mark moves (at once
    // for a write through this handle, within a poll for another process).
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let after = loop {
        let (_, after, _) = get(&app, JWKS_PATH, None).await;
        if after[header::ETAG] != before[header::ETAG] || std::time::Instant::now() > deadline {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_ne!(
        before[header::ETAG],
        after[header::ETAG],
        "a new key changes the ETag"
    );
    let (status, _, _) = get(
        &app,
        JWKS_PATH,
        Some(before[header::ETAG].to_str().expect("ascii")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the old ETag no longer matches");
}

#[tokio::test]
async fn documents_are_served_from_memory_not_read_per_request() {
    let dir = tessera_testkit::TempDir::new("revocation-memory");
    let sqlite = SqliteStore::open_path(&dir.path().join("t.db"))
        .await
        .expect("open store");
    let store: Arc<dyn Store> = Arc::new(sqlite.clone());
    let master = MasterKey::generate().expect("master");
    keys::ensure_signing_keys(
        &*store,
        &master,
        &[Algorithm::EdDsa, Algorithm::V4Public],
        NOW,
    )
    .await
    .expect("keys");
    let app = publish::routes_with_clock(store, Duration::from_secs(300), now());
    let mut first = Vec::new();
    for path in [JWKS_PATH, PASERK_PATH] {
        let (status, headers, _) = get(&app, path, None).await;
        assert_eq!(status, StatusCode::OK);
        first.push(headers[header::ETAG].clone());
    }
    // With the store gone, every request is still answered: nothing is read.
    sqlite.close().await;
    for _ in 0..100 {
        for (path, etag) in [JWKS_PATH, PASERK_PATH].into_iter().zip(&first) {
            let (status, headers, body) = get(&app, path, None).await;
            assert_eq!(status, StatusCode::OK, "{path} from memory");
            assert_eq!(&headers[header::ETAG], etag);
            assert!(!body.is_empty());
        }
    }
}

/// A store that is down.
struct DownStore;

#[async_trait::async_trait]
impl Store for DownStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Err(down())
    }
    async fn insert_client(
        &self,
        _: &tessera_store::Client,
        _: &tessera_store::AuditRecord,
    ) -> Result<(), StoreError> {
        Err(down())
    }
    async fn clients(&self) -> Result<Vec<tessera_store::Client>, StoreError> {
        Err(down())
    }
    async fn update_client(
        &self,
        _: &tessera_store::Client,
        _: Timestamp,
        _: &tessera_store::AuditRecord,
    ) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn delete_client(
        &self,
        _: &str,
        _: &tessera_store::AuditRecord,
    ) -> Result<tessera_store::ClientDeleted, StoreError> {
        Err(down())
    }
    async fn end_client_sessions(
        &self,
        _: &str,
        _: Timestamp,
        _: Timestamp,
        _: &tessera_store::AuditRecord,
    ) -> Result<Vec<String>, StoreError> {
        Err(down())
    }
    async fn client(&self, _: &str) -> Result<Option<tessera_store::Client>, StoreError> {
        Err(down())
    }
    async fn open_session(
        &self,
        _: &tessera_store::NewSession,
        _: Option<tessera_store::SessionLimit>,
        _: &tessera_store::AuditRecord,
        _: Timestamp,
    ) -> Result<tessera_store::OpenOutcome, StoreError> {
        Err(down())
    }
    async fn session(&self, _: &str) -> Result<Option<tessera_store::Session>, StoreError> {
        Err(down())
    }
    async fn live_sessions(
        &self,
        _: &str,
        _: Timestamp,
        _: Option<&str>,
    ) -> Result<Vec<tessera_store::Session>, StoreError> {
        Err(down())
    }
    async fn rotate(
        &self,
        _: &str,
        _: &str,
        _: tessera_store::Generation,
        _: Timestamp,
        _: Timestamp,
        _: tessera_store::ProofKey<'_>,
        _: &tessera_store::AuditRecord,
    ) -> Result<tessera_store::RotateOutcome, StoreError> {
        Err(down())
    }
    async fn touch(&self, _: &str, _: Timestamp) -> Result<(), StoreError> {
        Err(down())
    }
    async fn end_session(
        &self,
        _: &str,
        _: tessera_store::EndReason,
        _: Timestamp,
        _: Timestamp,
        _: &tessera_store::AuditRecord,
    ) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn end_subject(
        &self,
        _: &str,
        _: Timestamp,
        _: Timestamp,
        _: &tessera_store::AuditRecord,
        _: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        Err(down())
    }
    async fn elevate(
        &self,
        _: &str,
        _: tessera_core::NumericDate,
        _: Option<&str>,
        _: &[String],
        _: Timestamp,
        _: &tessera_store::AuditRecord,
    ) -> Result<Option<tessera_store::Session>, StoreError> {
        Err(down())
    }
    async fn append_audit(&self, _: &tessera_store::AuditRecord) -> Result<(), StoreError> {
        Err(down())
    }
    async fn audit(&self, _: &AuditFilter) -> Result<Vec<tessera_store::AuditRecord>, StoreError> {
        Err(down())
    }
    async fn revocations_after(
        &self,
        _: i64,
        _: u32,
    ) -> Result<Vec<tessera_store::RevocationEvent>, StoreError> {
        Err(down())
    }
    async fn insert_key(&self, _: &StoredKey) -> Result<(), StoreError> {
        Err(down())
    }
    async fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        Err(down())
    }
    async fn secret_or_insert(&self, _: &str, _: &[u8]) -> Result<Vec<u8>, StoreError> {
        Err(down())
    }
    async fn activate_key(
        &self,
        _: &str,
        _: Timestamp,
        _: Timestamp,
        _: &tessera_store::AuditRecord,
    ) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn revoke_key(
        &self,
        _: &str,
        _: Timestamp,
        _: Timestamp,
        _: &tessera_store::AuditRecord,
    ) -> Result<tessera_store::KeyRevoked, StoreError> {
        Err(down())
    }
    async fn insert_key_unless_state(&self, _: &StoredKey) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn remove_expired_keys(&self, _: Timestamp) -> Result<Vec<String>, StoreError> {
        Err(down())
    }
    async fn ended_status_indices(
        &self,
        _: tessera_store::StatusIndex,
        _: tessera_store::StatusIndex,
    ) -> Result<Vec<tessera_store::StatusIndex>, StoreError> {
        Err(down())
    }
    async fn max_status_index(&self) -> Result<Option<tessera_store::StatusIndex>, StoreError> {
        Err(down())
    }
    async fn prune_revocations(&self, _: Timestamp) -> Result<u64, StoreError> {
        Err(down())
    }
    async fn remember_proof(
        &self,
        _: &str,
        _: Timestamp,
        _: Timestamp,
    ) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn is_remembered(&self, _: &str, _: Timestamp) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn prune_proofs(&self, _: Timestamp) -> Result<u64, StoreError> {
        Err(down())
    }
    async fn change_marks(&self) -> Result<tessera_store::ChangeMarks, StoreError> {
        Err(down())
    }
    fn changes(&self) -> tokio::sync::watch::Receiver<tessera_store::ChangeMarks> {
        tokio::sync::watch::Sender::new(tessera_store::ChangeMarks::default()).subscribe()
    }
}

fn down() -> StoreError {
    StoreError::Unavailable("database is locked at /secret/path".into())
}

#[tokio::test]
async fn a_store_failure_is_a_503_json_error_not_a_panic() {
    let app = publish::routes(Arc::new(DownStore), Duration::from_secs(300));
    for path in [JWKS_PATH, PASERK_PATH] {
        let (status, headers, body) = get(&app, path, None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(headers.get(header::ETAG).is_none());
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body["error"], "unavailable");
        assert!(
            !body["message"]
                .as_str()
                .expect("message")
                .contains("/secret/path"),
            "no internals"
        );
    }
    let master = MasterKey::generate().expect("master");
    let err = keys::ensure_signing_keys(&DownStore, &master, &[Algorithm::EdDsa], NOW)
        .await
        .expect_err("down");
    assert!(matches!(
        err,
        keys::KeysError::Store(StoreError::Unavailable(_))
    ));
}
