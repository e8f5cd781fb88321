//! `Verifier::verify` with cached keys, beside the raw signature primitive on a
//! message of the same length, in the same run, so the ratios mean something.
//!
//! ```text
//! cargo bench -p tessera-verifier --bench verify
//! python3 scripts/bench_ratios.py   # medians and ratios from target/criterion
//! ```
//!
//! In each group, `raw_ed25519_verify` verifies a message exactly as long as
//! what that group's token signs (the JWS signing input, or the PASETO PAE)
//! with `ed25519_dalek::VerifyingKey::verify`. Every measured call is
//! interleaved with an untimed call of its counterpart (see [`interleaved`]).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::KeyPair as _;
use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signer as _, Verifier as _};
use tessera_core::{
    AccessClaims, Algorithm, Audience, JwkSet, KeySet, NumericDate, PaserkSet, SigningKey, Status,
    StatusListRef, Validation, encode,
};
use tessera_verifier::{RemoteOptions, RevocationOptions, Revocations, Verifier, system_now};

const ISSUER: &str = "https://auth.example.com";

fn claims(now: NumericDate) -> AccessClaims {
    AccessClaims {
        scope: Some("openid profile orders:read orders:write".into()),
        sid: Some("01HZX3MZ6J8R5T1Y4U7I0O2P9A".into()),
        auth_time: Some(now.minus(Duration::from_secs(120))),
        acr: Some("urn:tessera:acr:mfa".into()),
        amr: Some(vec!["pwd".into(), "otp".into()]),
        status: Some(Status {
            status_list: StatusListRef {
                idx: 48_211,
                uri: format!("{ISSUER}/statuslists/1"),
            },
        }),
        ..AccessClaims::new(
            ISSUER,
            "user_01HZX3N4W8M2Q7",
            Audience(vec!["https://api.example.com".into()]),
            "web-frontend",
            "01HZX3P0F6K9V2B7C4D8E1G5H3",
            now,
            Duration::from_secs(300),
        )
    }
}

/// Length of what a token's signature covers.
fn signed_len(token: &str) -> usize {
    if let Some(body) = token.strip_prefix("v4.public.") {
        let (body, footer) = body.split_once('.').unwrap_or((body, ""));
        let msg = tessera_core::b64::decode(body).expect("body").len() - 64;
        let footer = tessera_core::b64::decode(footer).expect("footer").len();
        // PAE: count + 4 length prefixes + header + message + footer + implicit.
        8 + 4 * 8 + "v4.public.".len() + msg + footer
    } else {
        token.rfind('.').expect("jws")
    }
}

fn bench(c: &mut Criterion) {
    let now = system_now();
    let eddsa = SigningKey::generate(Algorithm::EdDsa).expect("key");
    let es256 = SigningKey::generate(Algorithm::Es256).expect("key");
    let v4 = SigningKey::generate(Algorithm::V4Public).expect("key");
    let keys = KeySet::new([
        eddsa.verification_key().clone(),
        es256.verification_key().clone(),
        v4.verification_key().clone(),
    ]);
    let validation = Validation::new(ISSUER, ["https://api.example.com"]).expect("validation");
    // Full verification: the verified-token cache off (a hit is measured
    // separately, in `cache_hit`).
    let verifier = Verifier::with_keys(validation.clone(), keys.clone()).with_token_cache(0);
    let cached_verifier = Verifier::with_keys(validation.clone(), keys);

    // The same verifier with keys fetched over HTTP and cached in moka, as a
    // resource server runs it.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt");
    let (remote, revoking, revoking_cached) = runtime.block_on(async {
        let jwks = JwkSet::from_keys([eddsa.verification_key(), es256.verification_key()]);
        let paserk = PaserkSet {
            keys: PaserkSet::entry(v4.verification_key(), None)
                .into_iter()
                .collect(),
        };
        let (jwks, paserk) = (
            serde_json::to_string(&jwks).expect("json"),
            serde_json::to_string(&paserk).expect("json"),
        );
        // A revocation feed as a busy issuer would have it: 10,000 ended
        // sessions, 100 subjects logged out, 10 revoked keys (none of them
        // this token's), all served on the first poll.
        let until = now.unix() + 3600;
        let mut events = Vec::new();
        for i in 0..10_110 {
            let (kind, id) = match i {
                0..10_000 => ("session", format!("{i:032x}")),
                10_000..10_100 => ("subject", format!("user-{i}")),
                _ => ("key", format!("revoked-key-{i}")),
            };
            events.push(serde_json::json!({
                "seq": i + 1, "kind": kind, "id": id, "at": now.unix() - 10, "until": until,
            }));
        }
        let page = serde_json::json!({"events": events, "next": 10_110}).to_string();
        let empty = serde_json::json!({"events": [], "next": 10_110}).to_string();
        let app = axum::Router::new()
            .route(
                "/jwks.json",
                axum::routing::get(move || async move { jwks }),
            )
            .route(
                "/paserk.json",
                axum::routing::get(move || async move { paserk }),
            )
            .route(
                "/v1/revocations",
                axum::routing::get(
                    move |axum::extract::RawQuery(query): axum::extract::RawQuery| async move {
                        if query.as_deref() == Some("after=0") {
                            page
                        } else {
                            empty
                        }
                    },
                ),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let remote = |validation| {
            let base = base.clone();
            async move {
                Verifier::from_key_urls(
                    validation,
                    &format!("{base}/jwks.json"),
                    Some(&format!("{base}/paserk.json")),
                    RemoteOptions::default(),
                )
                .await
                .expect("remote verifier")
                .with_token_cache(0)
            }
        };
        let revocations = Revocations::subscribe(
            &format!("{base}/v1/revocations"),
            None,
            RevocationOptions::default(),
        )
        .await
        .expect("revocation feed");
        (
            Arc::new(remote(validation.clone()).await),
            Arc::new(
                remote(validation.clone())
                    .await
                    .with_revocations(revocations.clone()),
            ),
            Arc::new(
                remote(validation)
                    .await
                    .with_revocations(revocations)
                    .with_token_cache(tessera_verifier::cache::DEFAULT_CAPACITY),
            ),
        )
    });

    let rng = aws_lc_rs::rand::SystemRandom::new();
    let p256 = aws_lc_rs::signature::EcdsaKeyPair::generate(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
    )
    .ok();
    let raw_key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let raw_public = raw_key.verifying_key();

    for (case, key) in [
        ("eddsa_jwt", &eddsa),
        ("es256_jwt", &es256),
        ("v4_public_paseto", &v4),
    ] {
        let token = encode(&claims(now), key).expect("encode");
        verifier.verify(&token).expect("static verify");
        remote.verify(&token).expect("remote verify");

        let message = vec![0x61u8; signed_len(&token)];
        let signature = raw_key.sign(&message);
        raw_public.verify(&message, &signature).expect("raw");

        let raw = || {
            raw_public
                .verify(black_box(&message), black_box(&signature))
                .is_ok()
        };
        let local = || verifier.verify(black_box(&token)).is_ok();
        let cached = || remote.verify(black_box(&token)).is_ok();
        let checked = || revoking.verify(black_box(&token)).is_ok();
        revoking.verify(&token).expect("not revoked");

        let mut group = c.benchmark_group(case);
        group.bench_function("raw_ed25519_verify", |b| {
            b.iter_custom(|n| interleaved(n, raw, local))
        });
        if let (Some(p256), "es256_jwt") = (&p256, case) {
            // The P-256 primitive alone: the floor under the ES256 ratio.
            let sig = p256.sign(&rng, &message).expect("sign");
            let public = aws_lc_rs::signature::ParsedPublicKey::new(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
                p256.public_key().as_ref(),
            )
            .expect("public");
            let p256_raw = || {
                public
                    .verify_sig(black_box(&message), black_box(sig.as_ref()))
                    .is_ok()
            };
            group.bench_function("raw_p256_verify", |b| {
                b.iter_custom(|n| interleaved(n, p256_raw, raw))
            });
        }
        group.bench_function("verifier_static", |b| {
            b.iter_custom(|n| interleaved(n, local, raw))
        });
        group.bench_function("verifier_remote_cached", |b| {
            b.iter_custom(|n| interleaved(n, cached, raw))
        });
        if case == "eddsa_jwt" {
            // The revocation check's cost: the same verifier with and without
            // a followed feed of 10,110 entries, each interleaved with the other.
            group.bench_function("revocation_off", |b| {
                b.iter_custom(|n| interleaved(n, cached, checked))
            });
            group.bench_function("revocation_on", |b| {
                b.iter_custom(|n| interleaved(n, checked, cached))
            });
            // The check alone (what `revocation_on` adds), in nanoseconds.
            let revocations = revoking.revocations().expect("revocations");
            let verified = revoking.verify(&token).expect("verified").claims;
            // A token seen before, from the cache: the digest, the lookup,
            // the key and revocation checks (static keys, no feed), and the
            // same with the 10,110-entry feed checked on the hit.
            cached_verifier.verify(&token).expect("fill");
            let hit = || cached_verifier.verify(black_box(&token)).is_ok();
            group.bench_function("cache_hit", |b| b.iter_custom(|n| interleaved(n, hit, raw)));
            revoking_cached.verify(&token).expect("fill");
            let hit_checked = || revoking_cached.verify(black_box(&token)).is_ok();
            group.bench_function("cache_hit_revocation_on", |b| {
                b.iter_custom(|n| interleaved(n, hit_checked, raw))
            });
            let kid = key.kid().to_owned();
            group.bench_function("revocation_check_alone", |b| {
                b.iter(|| {
                    revocations.check_key(black_box(&kid)).is_ok()
                        && revocations
                            .check_claims(black_box(&verified), black_box(now))
                            .is_ok()
                })
            });
        }
        group.finish();
    }
}

/// Times `measured` only, alternating blocks of it with untimed blocks of
/// `other`, so both see the same machine state: on a shared VM, benchmarks
/// run one after the other drift apart by more than the overhead being
/// measured. Blocks (not single calls) keep each one's caches warm.
fn interleaved(iters: u64, measured: impl Fn() -> bool, other: impl Fn() -> bool) -> Duration {
    const BLOCK: u64 = 64;
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = BLOCK.min(iters - done);
        let start = Instant::now();
        for _ in 0..n {
            assert!(black_box(measured()));
        }
        total += start.elapsed();
        for _ in 0..n {
            assert!(black_box(other()));
        }
        done += n;
    }
    total
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(6)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
