//! `tessera token verify|inspect`, run as the real binary.

use std::path::Path;
use std::process::{Command, Output};

use tessera_core::{
    Algorithm, JwkSet, KeySet, NumericDate, PaserkSet, SigningKey, Validation, encode,
};
use tessera_testkit::{claims, repo_root, scratch_dir, serve_key_documents, tessera_bin};

fn tessera(args: &[&str]) -> Output {
    Command::new(tessera_bin())
        .args(args)
        .output()
        .expect("run tessera")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn now() -> NumericDate {
    tessera_verifier::system_now()
}

struct Keys {
    eddsa: SigningKey,
    es256: SigningKey,
    paseto: SigningKey,
}

fn keys() -> Keys {
    Keys {
        eddsa: SigningKey::generate(Algorithm::EdDsa).expect("key"),
        es256: SigningKey::generate(Algorithm::Es256).expect("key"),
        paseto: SigningKey::generate(Algorithm::V4Public).expect("key"),
    }
}

fn write_jwks(dir: &Path, keys: &Keys) -> String {
    let jwks = JwkSet::from_keys([keys.eddsa.verification_key(), keys.es256.verification_key()]);
    let path = dir.join("jwks.json");
    std::fs::write(&path, serde_json::to_vec(&jwks).expect("json")).expect("write");
    path.to_string_lossy().into_owned()
}

#[test]
fn verify_with_a_jwks_file_exit_codes() {
    let dir = scratch_dir("cli-verify");
    let keys = keys();
    let jwks = write_jwks(&dir, &keys);
    let iss = "https://issuer.test";
    for key in [&keys.eddsa, &keys.es256] {
        let token = encode(&claims(iss, "api", now()), key).expect("encode");
        let out = tessera(&[
            "token",
            "verify",
            "--issuer",
            iss,
            "--audience",
            "api",
            "--jwks",
            &jwks,
            &token,
        ]);
        assert_eq!(code(&out), 0, "{:?}: {}", key.alg(), stderr(&out));
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("claims JSON");
        assert_eq!(printed["sub"], "alice");
        assert_eq!(printed["iss"], iss);

        let wrong_aud = tessera(&[
            "token",
            "verify",
            "--issuer",
            iss,
            "--audience",
            "other",
            "--jwks",
            &jwks,
            &token,
        ]);
        assert_eq!(code(&wrong_aud), 1);
        assert!(
            stderr(&wrong_aud).contains("audience"),
            "{}",
            stderr(&wrong_aud)
        );
        assert!(wrong_aud.stdout.is_empty());

        let wrong_iss = tessera(&[
            "token",
            "verify",
            "--issuer",
            "https://evil.test",
            "--audience",
            "api",
            "--jwks",
            &jwks,
            &token,
        ]);
        assert_eq!(code(&wrong_iss), 1, "{}", stderr(&wrong_iss));
        assert!(stderr(&wrong_iss).contains("issuer"));
    }

    let mut tampered = encode(&claims(iss, "api", now()), &keys.eddsa).expect("encode");
    let last = tampered.pop().expect("char");
    tampered.push(if last == 'A' { 'Q' } else { 'A' });
    let out = tessera(&[
        "token",
        "verify",
        "--issuer",
        iss,
        "--audience",
        "api",
        "--jwks",
        &jwks,
        &tampered,
    ]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).starts_with("rejected:"), "{}", stderr(&out));

    let other = SigningKey::generate(Algorithm::EdDsa).expect("key");
    let foreign = encode(&claims(iss, "api", now()), &other).expect("encode");
    let out = tessera(&[
        "token",
        "verify",
        "--issuer",
        iss,
        "--audience",
        "api",
        "--jwks",
        &jwks,
        &foreign,
    ]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("no trusted key"), "{}", stderr(&out));

    // No --audience: verifies, but says loudly that the audience was not checked.
    let token = encode(&claims(iss, "api", now()), &keys.eddsa).expect("encode");
    let out = tessera(&["token", "verify", "--issuer", iss, "--jwks", &jwks, &token]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("NOT checked"), "{}", stderr(&out));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_dpop_bound_token_verifies_only_with_its_proof() {
    use tessera_core::Confirmation;
    use tessera_core::dpop::{ProofClaims, sign_proof};

    let dir = scratch_dir("cli-dpop");
    let keys = keys();
    let jwks = write_jwks(&dir, &keys);
    let iss = "https://issuer.test";
    let holder = SigningKey::generate(Algorithm::Es256).expect("holder key");
    let token = encode(
        &tessera_core::AccessClaims {
            cnf: Some(Confirmation {
                jkt: holder.verification_key().kid().to_owned(),
            }),
            ..claims(iss, "api", now())
        },
        &keys.eddsa,
    )
    .expect("encode");
    let url = "https://api.test/orders";
    let proof = |method: &str, jti: &str| {
        sign_proof(
            &holder,
            &ProofClaims {
                method,
                url,
                iat: now(),
                jti,
                access_token: Some(&token),
                nonce: None,
            },
        )
        .expect("proof")
    };
    let base = [
        "token",
        "verify",
        "--issuer",
        iss,
        "--audience",
        "api",
        "--jwks",
        &jwks,
    ];
    let run = |extra: &[&str]| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        args.push(&token);
        tessera(&args)
    };

    let bearer = run(&[]);
    assert_eq!(code(&bearer), 1, "{}", stderr(&bearer));
    assert!(
        stderr(&bearer).contains("DPoP-bound"),
        "{}",
        stderr(&bearer)
    );

    let good = proof("GET", "j-1");
    let out = run(&["--dpop-proof", &good, "--method", "GET", "--url", url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("claims JSON");
    assert_eq!(
        printed["cnf"]["jkt"],
        holder.verification_key().kid(),
        "the binding is printed"
    );

    let wrong_method = proof("POST", "j-2");
    let out = run(&[
        "--dpop-proof",
        &wrong_method,
        "--method",
        "GET",
        "--url",
        url,
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("htm"), "{}", stderr(&out));

    // A proof without the request it was made for is a usage error.
    let out = run(&["--dpop-proof", &good]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

#[test]
fn usage_errors_exit_2() {
    let dir = scratch_dir("cli-usage");
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, b"{not json").expect("write");
    let garbage = garbage.to_string_lossy().into_owned();
    let cases: Vec<Vec<&str>> = vec![
        vec!["token", "verify"],
        vec!["token", "verify", "TOKEN"],
        vec!["token", "verify", "--issuer", "x", "--bogus", "TOKEN"],
        vec![
            "token",
            "verify",
            "--issuer",
            "x",
            "--jwks",
            "/nonexistent/jwks.json",
            "TOKEN",
        ],
        vec![
            "token", "verify", "--issuer", "x", "--jwks", &garbage, "TOKEN",
        ],
        vec![
            "token", "verify", "--issuer", "x", "--leeway", "500", "--jwks", &garbage, "TOKEN",
        ],
        vec!["token", "frobnicate"],
        vec![],
    ];
    for args in cases {
        let out = tessera(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "{args:?} says why");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_against_the_issuer_url_uses_discovery() {
    let keys = keys();
    let jwks = JwkSet::from_keys([keys.eddsa.verification_key(), keys.es256.verification_key()]);
    let paserk = PaserkSet {
        keys: PaserkSet::entry(keys.paseto.verification_key(), None)
            .into_iter()
            .collect(),
    };
    let base = serve_key_documents(jwks, paserk, None).await;
    for key in [&keys.eddsa, &keys.es256, &keys.paseto] {
        let token = encode(&claims(&base, "api", now()), key).expect("encode");
        let bin = tessera_bin();
        let args = [
            "token",
            "verify",
            "--issuer",
            base.as_str(),
            "--audience",
            "api",
            token.as_str(),
        ];
        let out = tokio::process::Command::new(&bin)
            .args(args)
            .output()
            .await
            .expect("run");
        assert_eq!(code(&out), 0, "{:?}: {}", key.alg(), stderr(&out));
    }
    // An issuer that is not there: rejected (1), with the reason.
    let token = encode(&claims("http://127.0.0.1:9", "api", now()), &keys.eddsa).expect("encode");
    let out = tokio::process::Command::new(tessera_bin())
        .args([
            "token",
            "verify",
            "--issuer",
            "http://127.0.0.1:9",
            "--audience",
            "api",
            &token,
        ])
        .output()
        .await
        .expect("run");
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("cannot fetch"), "{}", stderr(&out));
}

#[test]
fn inspect_decodes_and_says_it_did_not_verify() {
    let keys = keys();
    for key in [&keys.eddsa, &keys.paseto] {
        let token = encode(&claims("https://issuer.test", "api", now()), key).expect("encode");
        let out = tessera(&["token", "inspect", &token]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(stderr(&out).contains("NOT verified"));
        let view: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(view["verified"], false);
        assert_eq!(view["claims"]["sub"], "alice");
    }
    let out = tessera(&["token", "inspect", "not.a-token"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
}

/// The README's quick start verifies this committed sample against the
/// committed test JWKS; keep them valid together.
#[test]
fn committed_sample_token_verifies_with_committed_test_keys() {
    let root = repo_root();
    let token =
        std::fs::read_to_string(root.join("keys/sample-access-token.jwt")).expect("sample token");
    let jwks = root.join("keys/test-jwks.json");
    let out = tessera(&[
        "token",
        "verify",
        "--issuer",
        "https://tessera.example",
        "--audience",
        "api",
        "--jwks",
        &jwks.to_string_lossy(),
        token.trim(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let paseto =
        std::fs::read_to_string(root.join("keys/sample-access-token.paseto")).expect("sample");
    let set =
        KeySet::from_document(&std::fs::read(root.join("keys/test-paserk.json")).expect("read"))
            .expect("paserk set");
    let validation = Validation::new("https://tessera.example", ["api"]).expect("validation");
    set.verify(paseto.trim(), &validation, now())
        .expect("sample PASETO verifies");
}

/// Writes the test-only fixtures in `keys/`. Run on purpose only:
/// `cargo test -p tessera-e2e --test cli -- --ignored regenerate_fixtures`.
/// The private keys are thrown away; only public documents and tokens are kept.
#[test]
#[ignore = "rewrites keys/ fixtures"]
fn regenerate_fixtures() {
    let keys = keys();
    let root = repo_root().join("keys");
    let mut sample = claims(
        "https://tessera.example",
        "api",
        NumericDate::from_unix(1_763_856_000),
    );
    sample.exp = NumericDate::from_unix(4_102_444_800); // 2100-01-01: a fixture, never trusted anywhere
    sample.jti = "sample-0001".into();
    let jwks = JwkSet::from_keys([keys.eddsa.verification_key(), keys.es256.verification_key()]);
    let paserk = PaserkSet {
        keys: PaserkSet::entry(keys.paseto.verification_key(), None)
            .into_iter()
            .collect(),
    };
    std::fs::write(
        root.join("test-jwks.json"),
        serde_json::to_string_pretty(&jwks).expect("json") + "\n",
    )
    .expect("write");
    std::fs::write(
        root.join("test-paserk.json"),
        serde_json::to_string_pretty(&paserk).expect("json") + "\n",
    )
    .expect("write");
    std::fs::write(
        root.join("sample-access-token.jwt"),
        encode(&sample, &keys.eddsa).expect("encode") + "\n",
    )
    .expect("write");
    std::fs::write(
        root.join("sample-access-token.paseto"),
        encode(&sample, &keys.paseto).expect("encode") + "\n",
    )
    .expect("write");
}
