//! The verified-token cache and `verify_batch`, against real keys and a
//! scripted revocation feed on 127.0.0.1: a revoked token (its session or
//! its key) is refused on a cache hit, an expired entry is never served, a
//! forged token never enters, the cache stays within its bound, and
//! `verify_batch` agrees with `verify` token by token.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use tessera_core::time::{Clock, ManualClock};
use tessera_core::{
    AccessClaims, Algorithm, Audience, Confirmation, KeySet, NumericDate, SigningKey, Validation,
    VerifyError, encode,
};
use tessera_verifier::{RevocationOptions, Revocations, Verifier, system_now};

const ISSUER: &str = "https://issuer.test";

fn claims(sid: &str, now: NumericDate) -> AccessClaims {
    AccessClaims {
        sid: Some(sid.to_owned()),
        ..AccessClaims::new(
            ISSUER,
            "alice",
            Audience(vec!["api".into()]),
            "app",
            format!("jti-{sid}"),
            now,
            Duration::from_secs(300),
        )
    }
}

fn validation() -> Validation {
    Validation::new(ISSUER, ["api"]).expect("validation")
}

/// The feed: `published` events; event 1 ends session `s-revoked`, event 2
/// revokes key `kid`.
#[derive(Clone)]
struct Feed {
    published: Arc<AtomicI64>,
    kid: String,
}

#[derive(serde::Deserialize)]
struct After {
    after: i64,
}

async fn page(State(feed): State<Feed>, Query(q): Query<After>) -> axum::Json<serde_json::Value> {
    let now = system_now().unix();
    let last = feed.published.load(Ordering::SeqCst);
    let events: Vec<_> = ((q.after + 1)..=last)
        .map(|seq| {
            let (kind, id) = if seq == 1 {
                ("session", "s-revoked".to_owned())
            } else {
                ("key", feed.kid.clone())
            };
            serde_json::json!({"seq": seq, "kind": kind, "id": id, "at": now, "until": now + 600})
        })
        .collect();
    axum::Json(serde_json::json!({"events": events, "next": last.max(q.after)}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_session_or_key_is_refused_on_a_cache_hit() {
    let key = SigningKey::generate(Algorithm::EdDsa).expect("key");
    let feed = Feed {
        published: Arc::new(AtomicI64::new(0)),
        kid: key.kid().to_owned(),
    };
    let published = feed.published.clone();
    let app = Router::new().route("/events", get(page)).with_state(feed);
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
    // Polling only (no stream endpoint): the follower polls every backoff.
    let revocations = Revocations::subscribe(&format!("{base}/events"), None, options)
        .await
        .expect("subscribe");
    let verifier = Verifier::with_keys(validation(), KeySet::new([key.verification_key().clone()]))
        .with_revocations(revocations);
    let now = system_now();
    let revoked = encode(&claims("s-revoked", now), &key).expect("encode");
    let kept = encode(&claims("s-kept", now), &key).expect("encode");
    for token in [&revoked, &kept] {
        verifier.verify(token).expect("valid before any event");
    }
    let cache = verifier.token_cache().expect("on by default");
    assert_eq!(cache.len(), 2);
    let hits = cache.hits();
    verifier.verify(&revoked).expect("a hit");
    assert_eq!(cache.hits(), hits + 1, "answered from the cache");

    // The session ends: refused on the very next hit.
    published.store(1, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match verifier.verify(&revoked) {
            Err(VerifyError::Revoked(_)) => break,
            Ok(_) => assert!(Instant::now() < deadline, "never refused"),
            Err(other) => panic!("unexpected {other}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(cache.len(), 2, "still cached: the refusal came on a hit");
    verifier
        .verify(&kept)
        .expect("another session is unaffected");

    // The key is revoked: every cached token it signed is refused.
    published.store(2, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(5);
    while verifier.verify(&kept).is_ok() {
        assert!(Instant::now() < deadline, "key revocation never applied");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(matches!(
        verifier.verify(&kept),
        Err(VerifyError::Revoked(_))
    ));
}

#[test]
fn an_expired_entry_is_not_served_and_forged_tokens_never_enter() {
    let key = SigningKey::generate(Algorithm::EdDsa).expect("key");
    let start = NumericDate::from_unix(1_800_000_000);
    let clock = Arc::new(ManualClock::new(start.to_timestamp()));
    let verifier = Verifier::with_keys(
        validation().with_leeway(Duration::ZERO).expect("leeway"),
        KeySet::new([key.verification_key().clone()]),
    )
    .with_clock(clock.clone());
    let token = encode(&claims("s1", start), &key).expect("encode");
    verifier.verify(&token).expect("valid");
    let cache = verifier.token_cache().expect("cache");
    let hits = cache.hits();
    clock.advance(Duration::from_secs(299));
    verifier.verify(&token).expect("a second before exp");
    assert_eq!(cache.hits(), hits + 1);
    clock.advance(Duration::from_secs(1));
    assert!(
        matches!(verifier.verify(&token), Err(VerifyError::Claims(_))),
        "at exp: refused, not served"
    );
    assert_eq!(cache.hits(), hits + 1, "the expired entry was not a hit");

    // Forged tokens: a flipped signature byte, another key's signature.
    let fresh = encode(&claims("s2", clock.date()), &key).expect("encode");
    let other = SigningKey::generate(Algorithm::EdDsa).expect("key");
    let mut forgeries = Vec::new();
    for i in 0..200 {
        let mut bytes = fresh.clone().into_bytes();
        let at = bytes.len() - 2 - (i % 40);
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        forgeries.push(String::from_utf8(bytes).expect("ascii"));
    }
    let mut foreign = claims("s3", clock.date());
    foreign.jti = "foreign".into();
    let foreign = encode(&foreign, &other).expect("encode");
    let len = cache.len();
    for forged in forgeries.iter().chain(std::iter::once(&foreign)) {
        assert!(verifier.verify(forged).is_err());
    }
    assert_eq!(cache.len(), len, "no forged token entered");
}

#[test]
fn the_cache_stays_within_its_bound() {
    let key = SigningKey::generate(Algorithm::EdDsa).expect("key");
    let verifier = Verifier::with_keys(validation(), KeySet::new([key.verification_key().clone()]))
        .with_token_cache(32);
    let now = system_now();
    for i in 0..500 {
        let token = encode(&claims(&format!("s{i}"), now), &key).expect("encode");
        verifier.verify(&token).expect("valid");
    }
    let cache = verifier.token_cache().expect("cache");
    assert!(cache.len() <= 32, "{} entries", cache.len());
    let without = Verifier::with_keys(validation(), KeySet::new([key.verification_key().clone()]))
        .with_token_cache(0);
    assert!(without.token_cache().is_none());
}

#[test]
fn verify_batch_agrees_with_verify_token_by_token() {
    let ed = SigningKey::generate(Algorithm::EdDsa).expect("key");
    let ed2 = SigningKey::generate(Algorithm::EdDsa).expect("key");
    let es = SigningKey::generate(Algorithm::Es256).expect("key");
    let paseto = SigningKey::generate(Algorithm::V4Public).expect("key");
    let stranger = SigningKey::generate(Algorithm::EdDsa).expect("key");
    let keys = || {
        KeySet::new([
            ed.verification_key().clone(),
            ed2.verification_key().clone(),
            es.verification_key().clone(),
            paseto.verification_key().clone(),
        ])
    };
    let now = system_now();
    let mut tokens: Vec<String> = Vec::new();
    for i in 0..64 {
        let key = if i % 2 == 0 { &ed } else { &ed2 };
        tokens.push(encode(&claims(&format!("s{i}"), now), key).expect("encode"));
    }
    tokens.push(encode(&claims("es", now), &es).expect("encode"));
    tokens.push(encode(&claims("paseto", now), &paseto).expect("encode"));
    tokens.push(encode(&claims("stranger", now), &stranger).expect("encode"));
    let mut expired = claims("expired", NumericDate::from_unix(now.unix() - 3600));
    expired.jti = "expired".into();
    tokens.push(encode(&expired, &ed).expect("encode"));
    let mut bound = claims("bound", now);
    bound.cnf = Some(Confirmation {
        jkt: "x".repeat(43),
    });
    tokens.push(encode(&bound, &ed).expect("encode"));
    tokens.push("not a token".into());
    let mut wrong_aud = claims("aud", now);
    wrong_aud.aud = Audience(vec!["other".into()]);
    tokens.push(encode(&wrong_aud, &ed2).expect("encode"));
    // Forgeries inside the EdDSA batch: the batch fails, each is found alone.
    for i in [3, 17, 40] {
        let mut bytes = tokens[i].clone().into_bytes();
        let at = bytes.len() - 5;
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        tokens[i] = String::from_utf8(bytes).expect("ascii");
    }
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let single = Verifier::with_keys(validation(), keys()).with_token_cache(0);
    let expected: Vec<_> = refs.iter().map(|t| single.verify(t)).collect();
    for cache in [0, 1000] {
        let batch = Verifier::with_keys(validation(), keys()).with_token_cache(cache);
        // Twice: the second time, from the cache where enabled.
        for round in 0..2 {
            let got = batch.verify_batch(&refs);
            assert_eq!(got.len(), expected.len());
            for (i, (got, want)) in got.iter().zip(&expected).enumerate() {
                match (got, want) {
                    (Ok(g), Ok(w)) => assert_eq!(g.claims, w.claims, "token {i}"),
                    (Err(g), Err(w)) => assert_eq!(
                        format!("{g:?}"),
                        format!("{w:?}"),
                        "token {i} (cache {cache}, round {round})"
                    ),
                    _ => panic!(
                        "token {i} (cache {cache}, round {round}): batch {got:?}, single {want:?}"
                    ),
                }
            }
        }
    }
    assert_eq!(
        expected.iter().filter(|r| r.is_ok()).count(),
        63,
        "61 EdDSA + ES256 + PASETO"
    );
    // An all-valid batch takes the batch path (no fallback needed) and agrees too.
    let clean: Vec<String> = (0..64)
        .map(|i| encode(&claims(&format!("c{i}"), now), &ed).expect("encode"))
        .collect();
    let clean: Vec<&str> = clean.iter().map(String::as_str).collect();
    let batch = Verifier::with_keys(validation(), keys()).with_token_cache(0);
    assert!(batch.verify_batch(&clean).iter().all(Result::is_ok));
}
