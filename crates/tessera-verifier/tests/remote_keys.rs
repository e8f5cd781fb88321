//! The remote key source against a real HTTP server on 127.0.0.1.

#![cfg(feature = "remote")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tessera_core::{
    AccessClaims, Algorithm, Audience, JwkSet, NumericDate, PaserkSet, SigningKey, encode,
};
use tessera_verifier::{FetchError, RemoteOptions, Validation, Verifier, VerifyError, system_now};

const AUD: &str = "api";

/// A fake issuer whose published keys, cache header and health the test controls.
struct Issuer {
    base: String,
    keys: std::sync::Mutex<Vec<Arc<SigningKey>>>,
    max_age: AtomicU64,
    down: AtomicBool,
    jwks_requests: AtomicUsize,
    paserk_requests: AtomicUsize,
    /// Delay each JWKS answer, so concurrent callers overlap with the fetch.
    jwks_delay_ms: AtomicU64,
}

impl Issuer {
    async fn start(keys: Vec<SigningKey>) -> Arc<Issuer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let issuer = Arc::new(Issuer {
            base,
            keys: std::sync::Mutex::new(keys.into_iter().map(Arc::new).collect()),
            max_age: AtomicU64::new(300),
            down: AtomicBool::new(false),
            jwks_requests: AtomicUsize::new(0),
            paserk_requests: AtomicUsize::new(0),
            jwks_delay_ms: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/.well-known/jwks.json", get(jwks))
            .route("/.well-known/paserk.json", get(paserk))
            .with_state(issuer.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        issuer
    }

    fn publish(&self, key: SigningKey) -> Arc<SigningKey> {
        let key = Arc::new(key);
        self.keys.lock().expect("lock").push(key.clone());
        key
    }

    fn token(&self, key: &SigningKey) -> String {
        let now = system_now();
        let claims = AccessClaims {
            nbf: Some(now),
            scope: Some("read".into()),
            auth_time: Some(now),
            ..AccessClaims::new(
                &self.base,
                "alice",
                Audience(vec![AUD.into()]),
                "c",
                "t",
                now,
                Duration::from_secs(300),
            )
        };
        encode(&claims, key).expect("encode")
    }

    fn cache_headers(&self) -> [(header::HeaderName, String); 1] {
        [(
            header::CACHE_CONTROL,
            format!("public, max-age={}", self.max_age.load(Ordering::SeqCst)),
        )]
    }
}

async fn metadata(State(issuer): State<Arc<Issuer>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "issuer": issuer.base,
        "jwks_uri": format!("{}/.well-known/jwks.json", issuer.base),
        "paserk_uri": format!("{}/.well-known/paserk.json", issuer.base),
    }))
}

async fn jwks(State(issuer): State<Arc<Issuer>>, _headers: HeaderMap) -> Response {
    issuer.jwks_requests.fetch_add(1, Ordering::SeqCst);
    let delay = issuer.jwks_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if issuer.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let keys: Vec<_> = issuer
        .keys
        .lock()
        .expect("lock")
        .iter()
        .map(|k| k.verification_key().clone())
        .collect();
    (issuer.cache_headers(), Json(JwkSet::from_keys(&keys))).into_response()
}

async fn paserk(State(issuer): State<Arc<Issuer>>) -> Response {
    issuer.paserk_requests.fetch_add(1, Ordering::SeqCst);
    if issuer.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let entries = issuer
        .keys
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|k| PaserkSet::entry(k.verification_key(), None))
        .collect();
    (issuer.cache_headers(), Json(PaserkSet { keys: entries })).into_response()
}

async fn verifier_for(issuer: &Issuer, options: RemoteOptions) -> Arc<Verifier> {
    let validation = Validation::new(issuer.base.clone(), [AUD]).expect("validation");
    Arc::new(
        Verifier::from_issuer(validation, options)
            .await
            .expect("verifier"),
    )
}

fn keys() -> Vec<SigningKey> {
    [Algorithm::EdDsa, Algorithm::Es256, Algorithm::V4Public]
        .into_iter()
        .map(|alg| SigningKey::generate(alg).expect("key"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_keys_verify_without_requests() {
    let issuer = Issuer::start(keys()).await;
    let verifier = verifier_for(&issuer, RemoteOptions::default()).await;
    assert_eq!(issuer.jwks_requests.load(Ordering::SeqCst), 1);
    assert_eq!(issuer.paserk_requests.load(Ordering::SeqCst), 1);

    let keys: Vec<_> = issuer.keys.lock().expect("lock").clone();
    for _ in 0..50 {
        for key in &keys {
            let token = issuer.token(key);
            let verified = verifier.verify(&token).expect("verifies");
            assert_eq!(verified.claims.sub, "alice", "{:?}", key.alg());
        }
    }
    assert_eq!(
        issuer.jwks_requests.load(Ordering::SeqCst),
        1,
        "cache hit needs no request"
    );
    assert_eq!(issuer.paserk_requests.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_refetches_exactly_once_for_100_concurrent_verifications() {
    let issuer = Issuer::start(keys()).await;
    let verifier = verifier_for(&issuer, RemoteOptions::default()).await;
    let new_key = issuer.publish(SigningKey::generate(Algorithm::EdDsa).expect("key"));
    let token = Arc::new(issuer.token(&new_key));

    // Synchronous verify never waits on the network: the new key is unknown.
    assert!(matches!(
        verifier.verify(&token),
        Err(VerifyError::UnknownKey { .. })
    ));

    issuer.jwks_delay_ms.store(100, Ordering::SeqCst);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (verifier, token) = (verifier.clone(), token.clone());
            tokio::spawn(async move { verifier.verify_with_refetch(&token).await })
        })
        .collect();
    for task in tasks {
        let verified = task.await.expect("join").expect("verifies after refetch");
        assert_eq!(verified.claims.sub, "alice");
    }
    assert_eq!(
        issuer.jwks_requests.load(Ordering::SeqCst),
        2,
        "startup + exactly one refetch"
    );

    // A forged kid right after does not trigger another fetch (rate limit).
    let forged = issuer.token(&SigningKey::generate(Algorithm::EdDsa).expect("key"));
    for _ in 0..20 {
        let err = verifier
            .verify_with_refetch(&forged)
            .await
            .expect_err("unknown");
        assert!(matches!(err, VerifyError::UnknownKey { .. }), "{err}");
    }
    assert_eq!(
        issuer.jwks_requests.load(Ordering::SeqCst),
        2,
        "no refetch storm"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_is_respected_and_removed_keys_stop_verifying() {
    let issuer = Issuer::start(keys()).await;
    issuer.max_age.store(1, Ordering::SeqCst);
    let verifier = verifier_for(&issuer, RemoteOptions::default()).await;
    let retiring = issuer.keys.lock().expect("lock")[0].clone();
    let token = issuer.token(&retiring);
    verifier.verify(&token).expect("verifies");

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        issuer.jwks_requests.load(Ordering::SeqCst),
        1,
        "fresh for max-age=1"
    );

    // The issuer unpublishes the key; the next scheduled refresh drops it.
    issuer.keys.lock().expect("lock").remove(0);
    issuer.max_age.store(300, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        issuer.jwks_requests.load(Ordering::SeqCst) >= 2,
        "refetched after max-age"
    );
    assert!(matches!(
        verifier.verify(&token),
        Err(VerifyError::UnknownKey { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_stale_keys_while_the_issuer_is_down_for_a_bounded_time() {
    let issuer = Issuer::start(keys()).await;
    issuer.max_age.store(1, Ordering::SeqCst);
    let options = RemoteOptions {
        stale_if_error: Duration::from_secs(1),
        ..RemoteOptions::default()
    };
    let verifier = verifier_for(&issuer, options).await;
    let key = issuer.keys.lock().expect("lock")[1].clone();
    let token = issuer.token(&key);

    issuer.down.store(true, Ordering::SeqCst);
    // Past max-age (1 s), inside stale-if-error (1 s more): still verifies.
    tokio::time::sleep(Duration::from_millis(1400)).await;
    assert!(
        issuer.jwks_requests.load(Ordering::SeqCst) >= 2,
        "a refresh was attempted"
    );
    verifier.verify(&token).expect("stale keys still serve");

    // Past max-age + stale-if-error: the keys are gone, fail closed.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(matches!(
        verifier.verify(&token),
        Err(VerifyError::UnknownKey { .. })
    ));

    // The issuer comes back; the retrying refresh restores verification.
    issuer.down.store(false, Ordering::SeqCst);
    let mut ok = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if verifier.verify(&token).is_ok() {
            ok = true;
            break;
        }
    }
    assert!(ok, "recovered once the issuer answered again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_rejects_another_issuer_and_dead_hosts() {
    let issuer = Issuer::start(keys()).await;
    let wrong = Validation::new(format!("{}/other", issuer.base), [AUD]).expect("validation");
    // The metadata is fetched from {issuer}/.well-known/..., which 404s here.
    let err = Verifier::from_issuer(wrong, RemoteOptions::default())
        .await
        .expect_err("fails");
    assert!(
        matches!(err, FetchError::Status { status: 404, .. }),
        "{err}"
    );

    let dead = Validation::new("http://127.0.0.1:9", [AUD]).expect("validation");
    let err = Verifier::from_issuer(dead, RemoteOptions::default())
        .await
        .expect_err("fails");
    assert!(matches!(err, FetchError::Http { .. }), "{err}");
}

#[test]
fn time_helper_is_sane() {
    assert!(system_now() > NumericDate::from_unix(1_700_000_000));
}
