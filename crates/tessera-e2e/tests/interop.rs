//! Interop with independent libraries: PyJWT (with `PyJWKClient`) and pyseto
//! verify Tessera's tokens from the published JWKS/PASERK documents alone,
//! Tessera verifies tokens they signed, and a Python client drives a real
//! server over HTTP alone (discovery, session, refresh, reuse detection).
//! DPoP: Python (PyJWT proofs, jwcrypto thumbprints) and Node `jose`
//! clients against the real server, and `tessera dpop` proofs checked by
//! PyJWT. Needs `python3` with the packages of
//! `tests/interop/requirements.txt` and Node (the test runs `npm ci` in
//! `tests/interop/node`); skips with a message when they are missing,
//! unless `TESSERA_REQUIRE_INTEROP=1` (set by `.ci/run`) makes that a failure.

use std::process::Command;

use tessera_core::{Algorithm, JwkSet, KeySet, PaserkSet, SigningKey, Validation, encode};
use tessera_testkit::server::{Backend, Server};
use tessera_testkit::{claims, repo_root, scratch_dir, serve_key_documents, tessera_bin};
use tessera_verifier::{Verifier, system_now};

const ISSUER: &str = "https://issuer.interop.test";
const AUDIENCE: &str = "api://interop";

/// python3 with PyJWT, pyseto and jwcrypto (see `tessera_testkit::python_ready`).
fn python_ready() -> bool {
    tessera_testkit::python_ready("jwt, pyseto, cryptography, jwcrypto", "interop")
}

fn script() -> String {
    repo_root()
        .join("crates/tessera-e2e/tests/interop/jose_interop.py")
        .to_string_lossy()
        .into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_libraries_verify_tessera_tokens_from_published_documents() {
    if !python_ready() {
        return;
    }
    let eddsa = SigningKey::generate(Algorithm::EdDsa).expect("key");
    let es256 = SigningKey::generate(Algorithm::Es256).expect("key");
    let paseto = SigningKey::generate(Algorithm::V4Public).expect("key");
    let jwks = JwkSet::from_keys([eddsa.verification_key(), es256.verification_key()]);
    let paserk = PaserkSet {
        keys: PaserkSet::entry(paseto.verification_key(), None)
            .into_iter()
            .collect(),
    };
    let base = serve_key_documents(jwks, paserk, Some(ISSUER.to_owned())).await;

    let now = system_now();
    let tokens = serde_json::json!({
        "jwt_eddsa": encode(&claims(ISSUER, AUDIENCE, now), &eddsa).expect("encode"),
        "jwt_es256": encode(&claims(ISSUER, AUDIENCE, now), &es256).expect("encode"),
        "paseto": encode(&claims(ISSUER, AUDIENCE, now), &paseto).expect("encode"),
    });
    let dir = scratch_dir("interop-verify");
    let tokens_file = dir.join("tokens.json");
    std::fs::write(&tokens_file, tokens.to_string()).expect("write");

    let out = tokio::process::Command::new("python3")
        .args([
            script().as_str(),
            "verify",
            "--jwks-url",
            &format!("{base}/.well-known/jwks.json"),
            "--paserk-url",
            &format!("{base}/.well-known/paserk.json"),
            "--issuer",
            ISSUER,
            "--audience",
            AUDIENCE,
            "--tokens",
            &tokens_file.to_string_lossy(),
        ])
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python verify failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("report JSON");
    for name in ["jwt_eddsa", "jwt_es256", "paseto"] {
        assert_eq!(report[name]["ok"], true, "{name}: {report}");
        assert_eq!(report[name]["sub"], "alice", "{name}");
        assert_eq!(
            report[name]["tampered_rejected"], true,
            "{name}: tampered copy must fail"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn tessera_verifies_tokens_signed_by_python_libraries() {
    if !python_ready() {
        return;
    }
    let dir = scratch_dir("interop-sign");
    let out = Command::new("python3")
        .args([
            script().as_str(),
            "sign",
            "--out-dir",
            &dir.to_string_lossy(),
            "--issuer",
            ISSUER,
            "--audience",
            AUDIENCE,
        ])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python sign failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut keys =
        KeySet::from_document(&std::fs::read(dir.join("jwks.json")).expect("jwks")).expect("JWKS");
    assert_eq!(keys.len(), 2, "EdDSA and ES256 keys");
    keys.extend(
        KeySet::from_document(&std::fs::read(dir.join("paserk.json")).expect("paserk"))
            .expect("PASERK set"),
    );
    let tokens: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("tokens.json")).expect("tokens"))
            .expect("json");

    let verifier = Verifier::with_keys(
        Validation::new(ISSUER, [AUDIENCE]).expect("validation"),
        keys,
    );
    for name in ["jwt_eddsa", "jwt_es256", "paseto"] {
        let token = tokens[name].as_str().expect("token");
        let verified = verifier
            .verify(token)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verified.claims.sub, "interop-user", "{name}");
        assert_eq!(verified.claims.client_id, "pyjwt-client", "{name}");
        assert!(verified.claims.has_scope("write"), "{name}");
        // And the same token for another audience is refused.
        let other = Verifier::with_keys(
            Validation::new(ISSUER, ["api://other"]).expect("validation"),
            KeySet::from_document(
                &std::fs::read(dir.join(if name == "paseto" {
                    "paserk.json"
                } else {
                    "jwks.json"
                }))
                .expect("doc"),
            )
            .expect("keys"),
        );
        assert!(
            other.verify(token).is_err(),
            "{name} must not pass for another audience"
        );
    }

    // The real binary accepts PyJWT's EdDSA token from the JWKS file too.
    let out = Command::new(tessera_bin())
        .args([
            "token",
            "verify",
            "--issuer",
            ISSUER,
            "--audience",
            AUDIENCE,
            "--jwks",
            &dir.join("jwks.json").to_string_lossy(),
            tokens["jwt_eddsa"].as_str().expect("token"),
        ])
        .output()
        .expect("run tessera");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(dir).ok();
}

/// The issue's black-box run: a Python client that knows only the issuer URL
/// and two client registrations finds the endpoints by discovery, opens a
/// session, verifies the access tokens with `PyJWKClient` against `jwks_uri`,
/// refreshes, and sees reuse of an old refresh token revoke the whole family.
async fn python_black_box_run_against_the_real_server(backend: Backend) {
    if !python_ready() {
        return;
    }
    let server = Server::start_on(backend, "interop-blackbox", &[]).await;
    let verified = black_box(&server).await;
    assert_eq!(verified["alg"], "EdDSA", "{verified}");
}

/// `tokens.jwt_alg = ES256`: the same black-box run, and PyJWT verifies the
/// ES256 access tokens with the algorithm it reads from the JWKS alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_black_box_run_with_es256_access_tokens() {
    if !python_ready() {
        return;
    }
    let server = Server::start("interop-es256", &[("TESSERA_TOKENS__JWT_ALG", "ES256")]).await;
    let verified = black_box(&server).await;
    assert_eq!(verified["alg"], "ES256", "{verified}");
}

/// Runs the Python black box against `server`; answers the report of its
/// first access-token verification.
async fn black_box(server: &Server) -> serde_json::Value {
    let app = server.create_client_with(
        "py-app",
        "public",
        "refresh_token",
        &["--scopes", "read", "--audiences", "api"],
    );
    let backend = server.create_client_with(
        "py-backend",
        "confidential",
        "sessions,introspect",
        &["--sessions-for", &app.id],
    );
    let secret = backend
        .secret
        .as_deref()
        .expect("confidential client secret");

    let out = tokio::process::Command::new("python3")
        .args([
            script().as_str(),
            "blackbox",
            "--issuer",
            &server.base,
            &format!("--backend-id={}", &backend.id),
            &format!("--backend-secret={}", secret),
            &format!("--client-id={}", &app.id),
            "--audience",
            "api",
        ])
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python blackbox failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("report JSON");
    assert_eq!(report["ok"], true, "{report}");
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            assert_eq!(s["ok"], true, "{s}");
            s["step"].as_str().expect("step name")
        })
        .collect();
    assert_eq!(
        steps,
        [
            "discovery",
            "open_session",
            "verify_access_token",
            "refresh",
            "verify_refreshed_access_token",
            "refresh_again",
            "verify_second_refreshed_access_token",
            "reuse_first_refresh_token",
            "latest_refresh_token_revoked_with_family",
        ],
        "{report}"
    );
    let verified = &report["steps"][2];
    assert_eq!(verified["typ"], "at+jwt", "{verified}");
    assert_eq!(verified["tampered_rejected"], true, "{verified}");
    assert_eq!(verified["other_audience_rejected"], true, "{verified}");
    assert_eq!(report["steps"][7]["error"], "invalid_grant", "{report}");
    assert_eq!(report["steps"][8]["error"], "invalid_grant", "{report}");
    verified.clone()
}

// The black-box run, on SQLite and on PostgreSQL.
tessera_testkit::on_both_backends!(python_black_box_run_against_the_real_server);

fn dpop_script() -> String {
    repo_root()
        .join("crates/tessera-e2e/tests/interop/dpop_interop.py")
        .to_string_lossy()
        .into_owned()
}

/// Runs `dpop_interop.py ARGS`; asserts it reports success; answers its step names.
async fn run_dpop_script(args: &[&str]) -> Vec<String> {
    let out = tokio::process::Command::new("python3")
        .arg(dpop_script())
        .args(args)
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "dpop_interop.py {} failed:\n{stdout}\n{}",
        args[0],
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("report JSON");
    assert_eq!(report["ok"], true, "{report}");
    report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["step"].as_str().expect("step").to_owned())
        .collect()
}

/// A Python DPoP client (key from `cryptography`, thumbprint from
/// `jwcrypto`, proofs from PyJWT) against the real server: its proofs are
/// accepted, `cnf.jkt` is the thumbprint jwcrypto computes, PyJWT verifies
/// the access tokens from the JWKS alone (EdDSA and ES256 access tokens),
/// and a replayed proof or another key's proof is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_dpop_clients_are_accepted_and_agree_on_the_thumbprint() {
    if !python_ready() {
        return;
    }
    for (token_alg, proof_alg) in [("EdDSA", "ES256"), ("ES256", "EdDSA")] {
        let server = Server::start(
            &format!("interop-dpop-{token_alg}"),
            &[("TESSERA_TOKENS__JWT_ALG", token_alg)],
        )
        .await;
        let app =
            server.create_client_with("py-app", "public", "refresh_token", &["--audiences", "api"]);
        let backend = server.create_client_with(
            "py-backend",
            "confidential",
            "sessions",
            &["--sessions-for", &app.id],
        );
        let secret = backend.secret.as_deref().expect("secret");
        let steps = run_dpop_script(&[
            "client",
            "--issuer",
            &server.base,
            &format!("--backend-id={}", &backend.id),
            &format!("--backend-secret={}", secret),
            &format!("--client-id={}", &app.id),
            "--audience",
            "api",
            "--alg",
            proof_alg,
        ])
        .await;
        assert_eq!(
            steps,
            [
                "discovery",
                "open",
                "refresh with a PyJWT proof",
                "refresh",
                "the same proof again",
                "a proof of another key",
                "a fresh proof of the session's key",
                "refresh again"
            ],
            "tokens {token_alg}, proofs {proof_alg}"
        );
    }
}

/// Proofs made by `tessera dpop proof` verify with PyJWT from the JWK in
/// their header, and `tessera dpop thumbprint` equals jwcrypto's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tessera_made_proofs_verify_with_pyjwt() {
    if !python_ready() {
        return;
    }
    let dir = scratch_dir("interop-dpop-cli");
    std::fs::create_dir_all(&dir).expect("dir");
    for alg in ["EdDSA", "ES256"] {
        let key = dir.join(format!("{alg}.jwk"));
        let run = tessera_testkit::tessera_stdout;
        let key_path = key.to_string_lossy();
        let jkt = run(&["dpop", "key", "--alg", alg, "--out", &key_path]);
        assert_eq!(run(&["dpop", "thumbprint", "--key", &key_path]), jkt);
        let url = "https://api.example/orders?page=2";
        let proof = run(&[
            "dpop", "proof", "--key", &key_path, "--method", "GET", "--url", url,
        ]);
        // A thumbprint may begin with '-': `--jkt=VALUE`, never read as a flag.
        let jkt_arg = format!("--jkt={jkt}");
        let steps = run_dpop_script(&[
            "check-proof",
            "--proof",
            &proof,
            "--method",
            "GET",
            "--url",
            url,
            &jkt_arg,
        ])
        .await;
        assert_eq!(steps, ["proof verifies", "tampered proof refused"], "{alg}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `tests/interop/node` with its `jose` installed: runs `npm ci` there when
/// `node_modules` is missing. `None` (with a message) when Node or npm is
/// unavailable, which fails under `TESSERA_REQUIRE_INTEROP=1`.
fn node_interop_dir() -> Option<std::path::PathBuf> {
    let dir = repo_root().join("crates/tessera-e2e/tests/interop/node");
    let works = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .current_dir(&dir)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let ready = works("node", &["--version"])
        && (dir.join("node_modules/jose/package.json").exists()
            || works("npm", &["ci", "--no-audit", "--no-fund", "--silent"]));
    if ready {
        return Some(dir);
    }
    let required = std::env::var("TESSERA_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "TESSERA_REQUIRE_INTEROP=1 but Node with jose is not available: install Node 20 and run npm ci in crates/tessera-e2e/tests/interop/node"
    );
    eprintln!(
        "SKIPPED Node jose interop: node/npm not found or npm ci failed in crates/tessera-e2e/tests/interop/node"
    );
    None
}

/// Node `jose` against the real server issuing ES256 access tokens: jose
/// verifies them from the JWKS alone, computes the same thumbprint as
/// `cnf.jkt`, and the DPoP proofs it signs are accepted (a replay is not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_jose_verifies_es256_tokens_and_its_dpop_proofs_are_accepted() {
    let Some(dir) = node_interop_dir() else {
        return;
    };
    let server = Server::start("interop-node-jose", &[("TESSERA_TOKENS__JWT_ALG", "ES256")]).await;
    let app = server.create_client_with(
        "node-app",
        "public",
        "refresh_token",
        &["--audiences", "api"],
    );
    let backend = server.create_client_with(
        "node-backend",
        "confidential",
        "sessions",
        &["--sessions-for", &app.id],
    );
    let out = tokio::process::Command::new("node")
        .current_dir(&dir)
        .args([
            "jose_dpop.mjs",
            "--issuer",
            &server.base,
            &format!("--backend-id={}", &backend.id),
            &format!(
                "--backend-secret={}",
                backend.secret.as_deref().expect("secret")
            ),
            &format!("--client-id={}", &app.id),
            "--audience",
            "api",
        ])
        .output()
        .await
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "jose_dpop.mjs failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("report JSON");
    assert_eq!(report["ok"], true, "{report}");
    let steps: Vec<(&str, Option<&str>)> = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["step"].as_str().expect("step"), s["alg"].as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("discovery", None),
            ("open", Some("ES256")),
            ("refresh with a jose proof", Some("ES256")),
            ("replayed proof refused", None),
        ]
    );
}
