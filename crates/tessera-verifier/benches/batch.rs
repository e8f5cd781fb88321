//! `Verifier::verify_batch` of 64 distinct EdDSA tokens against 64 single
//! `Verifier::verify` calls on the same tokens (the verified-token cache off
//! in both, so every call does the full work), and the issuer-side signer.
//!
//! ```text
//! cargo bench -p tessera-verifier --bench batch
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tessera_core::{
    AccessClaims, Algorithm, Audience, KeySet, NumericDate, SigningKey, Validation, encode,
};
use tessera_verifier::{Verifier, system_now};

const ISSUER: &str = "https://auth.example.com";
const N: usize = 64;

fn claims(now: NumericDate, i: usize) -> AccessClaims {
    AccessClaims {
        scope: Some("openid profile orders:read orders:write".into()),
        sid: Some(format!("{i:032x}")),
        ..AccessClaims::new(
            ISSUER,
            format!("user_{i}"),
            Audience(vec!["https://api.example.com".into()]),
            "web-frontend",
            format!("jti-{i}"),
            now,
            Duration::from_secs(300),
        )
    }
}

fn bench(c: &mut Criterion) {
    let now = system_now();
    let key = SigningKey::generate(Algorithm::EdDsa).expect("key");
    let validation = Validation::new(ISSUER, ["https://api.example.com"]).expect("validation");
    let verifier = Verifier::with_keys(validation, KeySet::new([key.verification_key().clone()]))
        .with_token_cache(0);
    let tokens: Vec<String> = (0..N)
        .map(|i| encode(&claims(now, i), &key).expect("encode"))
        .collect();
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    assert!(verifier.verify_batch(&refs).iter().all(Result::is_ok));

    let mut group = c.benchmark_group("verify_64_eddsa");
    group.throughput(Throughput::Elements(u64::try_from(N).expect("64")));
    group.bench_function("single_verify_x64", |b| {
        b.iter(|| {
            refs.iter()
                .filter(|t| verifier.verify(black_box(t)).is_ok())
                .count()
        })
    });
    group.bench_function("verify_batch", |b| {
        b.iter(|| {
            verifier
                .verify_batch(black_box(&refs))
                .iter()
                .filter(|r| r.is_ok())
                .count()
        })
    });
    group.finish();

    // The issuer's signer: one access token's claims encoded and signed
    // (the key is expanded once, when loaded).
    let mut group = c.benchmark_group("sign_access_token");
    for (case, alg) in [
        ("eddsa_jwt", Algorithm::EdDsa),
        ("es256_jwt", Algorithm::Es256),
        ("v4_public_paseto", Algorithm::V4Public),
    ] {
        let key = SigningKey::generate(alg).expect("key");
        let claims = claims(now, 7);
        group.bench_function(case, |b| {
            b.iter(|| encode(black_box(&claims), &key).is_ok())
        });
    }
    group.finish();

    // The signature alone, on an access token's signing input: Tessera's key
    // (expanded once) against ed25519-dalek's `SigningKey`, which hashes the
    // seed again for every signature.
    let mut group = c.benchmark_group("ed25519_sign_300_bytes");
    let seed = [0x42u8; 32];
    let message = [0x61u8; 300];
    let key = SigningKey::from_secret_bytes(Algorithm::EdDsa, &seed).expect("key");
    let per_call = ed25519_dalek::SigningKey::from_bytes(&seed);
    group.bench_function("pre_expanded", |b| {
        b.iter(|| key.sign(black_box(&message)).is_ok())
    });
    group.bench_function("expanded_per_signature", |b| {
        use ed25519_dalek::Signer as _;
        b.iter(|| per_call.sign(black_box(&message)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
