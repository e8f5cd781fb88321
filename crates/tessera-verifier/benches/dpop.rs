//! The DPoP verify path beside the plain bearer `verify` of a token of the
//! same shape: about one token signature check plus one proof signature
//! check, proof parsing and the replay cache.
//!
//! ```text
//! cargo bench -p tessera-verifier --bench dpop
//! ```
//!
//! Each `verify_dpop` call needs a fresh proof (a used one is a replay): the
//! proofs are signed in criterion's untimed setup.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tessera_core::dpop::{ProofClaims, sign_proof};
use tessera_core::{
    AccessClaims, Algorithm, Audience, Confirmation, KeySet, SigningKey, Validation, encode,
};
use tessera_verifier::{Verifier, system_now};

const ISSUER: &str = "https://auth.example.com";
const URL: &str = "https://api.example.com/orders";

fn bench(c: &mut Criterion) {
    let now = system_now();
    let issuer = SigningKey::generate(Algorithm::EdDsa).expect("key");
    // One verifier per measurement, so no replay cache fills up.
    let new_verifier = || {
        Verifier::with_keys(
            Validation::new(ISSUER, ["api"]).expect("validation"),
            KeySet::new([issuer.verification_key().clone()]),
        )
    };
    let verifier = new_verifier();
    let claims = |cnf: Option<Confirmation>| AccessClaims {
        cnf,
        scope: Some("orders:read orders:write".into()),
        sid: Some("0f3c2b1a9e8d7c6b5a49382716051423".into()),
        ..AccessClaims::new(
            ISSUER,
            "user_01HZX3N4W8M2Q7",
            Audience(vec!["api".into()]),
            "web-frontend",
            "01HZX3P0F6K9V2B7C4D8E1G5H3",
            now,
            Duration::from_secs(300),
        )
    };
    let bearer = encode(&claims(None), &issuer).expect("bearer token");
    let mut group = c.benchmark_group("dpop");
    group.bench_function("verify_bearer", |b| {
        b.iter(|| black_box(verifier.verify(black_box(&bearer))).expect("valid"));
    });
    for alg in [Algorithm::EdDsa, Algorithm::Es256] {
        let holder = SigningKey::generate(alg).expect("holder");
        let bound = encode(
            &claims(Some(Confirmation {
                jkt: holder.verification_key().kid().to_owned(),
            })),
            &issuer,
        )
        .expect("bound token");
        let next = AtomicU64::new(0);
        let verifier = new_verifier();
        group.bench_function(format!("verify_dpop_{}", alg.as_str()), |b| {
            b.iter_batched(
                || {
                    let jti = next.fetch_add(1, Ordering::Relaxed).to_string();
                    sign_proof(
                        &holder,
                        &ProofClaims {
                            method: "GET",
                            url: URL,
                            iat: system_now(),
                            jti: &jti,
                            access_token: Some(&bound),
                            nonce: None,
                        },
                    )
                    .expect("proof")
                },
                |proof| black_box(verifier.verify_dpop(&bound, &proof, "GET", URL)).expect("valid"),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
