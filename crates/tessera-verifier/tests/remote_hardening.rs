//! What the verifier fetches, and from where: no redirects, `https` only
//! (loopback aside), older status lists never replace newer ones, and a
//! failing issuer costs one timeout, not one per request.

#![cfg(feature = "remote")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tessera_core::statuslist::{StatusList, StatusListInfo, sign_status_list};
use tessera_core::{
    AccessClaims, Algorithm, Audience, JwkSet, SigningKey, Status, StatusListRef, VerifyError,
};
use tessera_verifier::{
    FetchError, RemoteKeys, RemoteOptions, RevocationOptions, Revocations, system_now,
};

struct Fake {
    base: String,
    key: SigningKey,
    /// The Status List Token `/statuslists/1` answers.
    list: Mutex<String>,
    slow_requests: AtomicUsize,
}

async fn jwks(State(fake): State<Arc<Fake>>) -> Response {
    let set = JwkSet::from_keys(&[fake.key.verification_key().clone()]);
    axum::Json(set).into_response()
}

async fn moved(State(fake): State<Arc<Fake>>) -> Response {
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("{}/jwks", fake.base))],
    )
        .into_response()
}

async fn list(State(fake): State<Arc<Fake>>) -> Response {
    let token = fake.list.lock().expect("lock").clone();
    (
        [(header::CONTENT_TYPE, "application/statuslist+jwt")],
        token,
    )
        .into_response()
}

async fn huge() -> Response {
    // 5 MiB: past every cap (documents 256 KiB, lists and pages 4 MiB).
    (
        [(header::CONTENT_TYPE, "application/statuslist+jwt")],
        "a".repeat(5 << 20),
    )
        .into_response()
}

async fn slow(State(fake): State<Arc<Fake>>) -> Response {
    fake.slow_requests.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    StatusCode::SERVICE_UNAVAILABLE.into_response()
}

async fn start() -> Arc<Fake> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let fake = Arc::new(Fake {
        base,
        key: SigningKey::generate(Algorithm::EdDsa).expect("key"),
        list: Mutex::new(String::new()),
        slow_requests: AtomicUsize::new(0),
    });
    let app = Router::new()
        .route("/jwks", get(jwks))
        .route("/moved", get(moved))
        .route("/statuslists/1", get(list))
        .route("/statuslists/2", get(slow))
        .route("/statuslists/3", get(huge))
        .route("/huge", get(huge))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    fake
}

impl Fake {
    /// Publishes a list issued at `iat` with bit 5 set or not.
    fn publish(&self, iat: i64, revoked: bool) {
        let mut list = StatusList::new(64);
        if revoked {
            list.set(5);
        }
        let info = StatusListInfo {
            uri: format!("{}/statuslists/1", self.base),
            iat,
            exp: None,
            ttl: Some(1),
            iss: None,
        };
        *self.list.lock().expect("lock") = sign_status_list(&list, &info, &self.key).expect("sign");
    }
}

fn claims(uri: String) -> AccessClaims {
    AccessClaims {
        status: Some(Status {
            status_list: StatusListRef { idx: 5, uri },
        }),
        ..AccessClaims::new(
            "https://issuer.test",
            "alice",
            Audience(vec!["api".into()]),
            "app",
            "jti-1".to_owned(),
            system_now(),
            Duration::from_secs(300),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    let fake = start().await;
    let url = format!("{}/moved", fake.base);
    let err = RemoteKeys::start(url.clone(), None, RemoteOptions::default())
        .await
        .expect_err("a redirect is not followed");
    assert!(
        matches!(err, FetchError::Status { status: 302, .. }),
        "{err:?}"
    );

    // A caller's own client that follows redirects: the answer from another
    // URL is refused all the same.
    let options = RemoteOptions {
        http_client: Some(reqwest::Client::new()),
        ..RemoteOptions::default()
    };
    let err = RemoteKeys::start(url, None, options)
        .await
        .expect_err("redirected answer refused");
    assert!(matches!(err, FetchError::Insecure { .. }), "{err:?}");

    // The same client works for a direct URL.
    let options = RemoteOptions {
        http_client: Some(reqwest::Client::new()),
        ..RemoteOptions::default()
    };
    RemoteKeys::start(format!("{}/jwks", fake.base), None, options)
        .await
        .expect("a custom client is used");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_refused_except_to_loopback() {
    for url in [
        "http://issuer.example.invalid/jwks",
        "http://192.0.2.1/jwks",
        "ftp://issuer.example.invalid/jwks",
    ] {
        let started = Instant::now();
        let err = RemoteKeys::start(url.to_owned(), None, RemoteOptions::default())
            .await
            .expect_err("refused");
        assert!(matches!(err, FetchError::Insecure { .. }), "{url}: {err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "refused before any connection"
        );
    }
    let err = Revocations::subscribe(
        "http://192.0.2.1/v1/revocations",
        None,
        RevocationOptions::default(),
    )
    .await
    .expect_err("the event feed too");
    assert!(matches!(err, FetchError::Insecure { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_status_list_never_replaces_a_newer_one() {
    let fake = start().await;
    let keys = RemoteKeys::start(
        format!("{}/jwks", fake.base),
        None,
        RemoteOptions::default(),
    )
    .await
    .expect("keys");
    let lists = Revocations::status_lists(
        &format!("{}/statuslists/", fake.base),
        &keys,
        RevocationOptions::default(),
    )
    .expect("lists");
    let now = system_now().unix();
    let token = claims(format!("{}/statuslists/1", fake.base));
    fake.publish(now, true);
    lists.prepare(&token).await;
    assert!(matches!(
        lists.check_claims(&token, system_now()),
        Err(VerifyError::Revoked(_))
    ));

    // An attacker (or a stale cache in between) replays an older list in
    // which the session was not yet revoked.
    fake.publish(now - 120, false);
    tokio::time::sleep(Duration::from_millis(2_100)).await; // past its 1 s ttl
    lists.prepare(&token).await;
    assert!(
        matches!(
            lists.check_claims(&token, system_now()),
            Err(VerifyError::Revoked(_))
        ),
        "the older list was refused; the revocation holds"
    );

    // A newer list is taken.
    fake.publish(now + 1, false);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    lists.prepare(&token).await;
    assert!(lists.check_claims(&token, system_now()).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_issuer_costs_one_timeout_not_one_per_request() {
    let fake = start().await;
    let keys = RemoteKeys::start(
        format!("{}/jwks", fake.base),
        None,
        RemoteOptions::default(),
    )
    .await
    .expect("keys");
    let options = RevocationOptions {
        http_timeout: Duration::from_millis(300),
        failure_backoff: Duration::from_secs(5),
        ..RevocationOptions::default()
    };
    let lists = Revocations::status_lists(&format!("{}/statuslists/", fake.base), &keys, options)
        .expect("lists");
    let token = claims(format!("{}/statuslists/2", fake.base));
    let started = Instant::now();
    lists.prepare(&token).await;
    let first = started.elapsed();
    assert!(
        first >= Duration::from_millis(250),
        "the first waits its timeout: {first:?}"
    );
    let started = Instant::now();
    for _ in 0..20 {
        lists.prepare(&token).await;
        assert!(matches!(
            lists.check_claims(&token, system_now()),
            Err(VerifyError::RevocationStale { .. })
        ));
    }
    let rest = started.elapsed();
    assert!(
        rest < Duration::from_millis(250),
        "20 more requests answered at once: {rest:?}"
    );
    assert_eq!(
        fake.slow_requests.load(Ordering::SeqCst),
        1,
        "one request to the failing issuer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_answers_are_refused_not_read_whole() {
    let fake = start().await;
    let err = RemoteKeys::start(
        format!("{}/huge", fake.base),
        None,
        RemoteOptions::default(),
    )
    .await
    .expect_err("a 5 MiB key document");
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err:?}");
    let err = Revocations::subscribe(
        &format!("{}/huge", fake.base),
        None,
        RevocationOptions::default(),
    )
    .await
    .expect_err("a 5 MiB feed page");
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err:?}");

    let keys = RemoteKeys::start(
        format!("{}/jwks", fake.base),
        None,
        RemoteOptions::default(),
    )
    .await
    .expect("keys");
    let lists = Revocations::status_lists(
        &format!("{}/statuslists/", fake.base),
        &keys,
        RevocationOptions::default(),
    )
    .expect("lists");
    let token = claims(format!("{}/statuslists/3", fake.base));
    lists.prepare(&token).await;
    assert!(matches!(
        lists.check_claims(&token, system_now()),
        Err(VerifyError::RevocationStale { .. })
    ));
}
