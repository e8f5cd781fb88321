//! `Verifier::verify` with cached keys, beside the raw signature primitive on a
//! message of the same length, in the same run, so the ratios mean something.
//!
//! ```text
//! cargo bench -p tessera-verifier --bench verify
//! python3 scripts/bench_ratios.py   # medians and ratios from target/criterion
//! ```
//!
//! Each `raw_ed25519/<case>` signs and verifies a message exactly as long as
//! what the `verify/<case>` token signs (the JWS signing input, or the PASETO
//! PAE), with `ed25519_dalek::VerifyingKey::verify`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signer as _, Verifier as _};
use tessera_core::{
    AccessClaims, Algorithm, Audience, CustomClaims, JwkSet, KeySet, NumericDate, PaserkSet,
    SigningKey, Status, StatusListRef, Validation, encode,
};
use tessera_verifier::{RemoteOptions, Verifier, system_now};

const ISSUER: &str = "https://auth.example.com";

fn claims(now: NumericDate) -> AccessClaims {
    AccessClaims {
        iss: ISSUER.into(),
        sub: "user_01HZX3N4W8M2Q7".into(),
        aud: Audience(vec!["https://api.example.com".into()]),
        exp: now.plus(Duration::from_secs(300)),
        iat: now,
        nbf: None,
        jti: "01HZX3P0F6K9V2B7C4D8E1G5H3".into(),
        client_id: "web-frontend".into(),
        scope: Some("openid profile orders:read orders:write".into()),
        sid: Some("01HZX3MZ6J8R5T1Y4U7I0O2P9A".into()),
        auth_time: Some(now.minus(Duration::from_secs(120))),
        acr: Some("urn:tessera:acr:mfa".into()),
        amr: Some(vec!["pwd".into(), "otp".into()]),
        cnf: None,
        status: Some(Status {
            status_list: StatusListRef {
                idx: 48_211,
                uri: format!("{ISSUER}/statuslists/1"),
            },
        }),
        custom: CustomClaims::default(),
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
    let verifier = Verifier::with_keys(validation.clone(), keys);

    // The same verifier with keys fetched over HTTP and cached in moka, as a
    // resource server runs it.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt");
    let remote = runtime.block_on(async {
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
        let app = axum::Router::new()
            .route(
                "/jwks.json",
                axum::routing::get(move || async move { jwks }),
            )
            .route(
                "/paserk.json",
                axum::routing::get(move || async move { paserk }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Arc::new(
            Verifier::from_key_urls(
                validation,
                &format!("{base}/jwks.json"),
                Some(&format!("{base}/paserk.json")),
                RemoteOptions::default(),
            )
            .await
            .expect("remote verifier"),
        )
    });

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

        let mut group = c.benchmark_group(case);
        group.bench_function("raw_ed25519_verify", |b| {
            b.iter(|| raw_public.verify(black_box(&message), black_box(&signature)))
        });
        group.bench_function("verifier_static", |b| {
            b.iter(|| verifier.verify(black_box(&token)))
        });
        group.bench_function("verifier_remote_cached", |b| {
            b.iter(|| remote.verify(black_box(&token)))
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
