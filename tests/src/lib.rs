//! Harness for Tessera's end-to-end tests: find the real `tessera` binary,
//! make scratch directories, serve key documents on 127.0.0.1.

pub mod server;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use tessera_core::{AccessClaims, Audience, JwkSet, NumericDate, PaserkSet};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `tessera` binary built for this test run (`TESSERA_BIN` overrides).
///
/// Cargo builds it in the same run because the `tessera` package has
/// integration tests of its own; it sits next to this test's `deps/` folder.
pub fn tessera_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("TESSERA_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory");
    let bin = dir.join(format!("tessera{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} not found: run the tests with `cargo nextest run --workspace` (or set TESSERA_BIN)",
        bin.display()
    );
    bin
}

/// An example program of `tessera-verifier`, built with the tests
/// (`cargo nextest run --workspace --all-features` builds examples too).
pub fn example_bin(name: &str) -> PathBuf {
    let bin = tessera_bin();
    let dir = bin.parent().expect("profile directory").join("examples");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} not found: build with --all-features",
        path.display()
    );
    path
}

/// A fresh, empty directory under the system temp dir.
pub fn scratch_dir(name: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("tessera-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Serves a JWKS at `/.well-known/jwks.json` and a PASERK set at
/// `/.well-known/paserk.json` (plus RFC 8414 metadata naming `issuer`, or the
/// server's own URL) on 127.0.0.1. Returns the base URL.
pub async fn serve_key_documents(
    jwks: JwkSet,
    paserk: PaserkSet,
    issuer: Option<String>,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let metadata = serde_json::json!({
        "issuer": issuer.unwrap_or_else(|| base.clone()),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "paserk_uri": format!("{base}/.well-known/paserk.json"),
    });
    let jwks = serde_json::to_string(&jwks).expect("jwks json");
    let paserk = serde_json::to_string(&paserk).expect("paserk json");
    let json = |body: String| {
        move || {
            let body = body.clone();
            async move {
                (
                    [
                        ("content-type", "application/json"),
                        ("cache-control", "max-age=300"),
                    ],
                    body,
                )
            }
        }
    };
    let app = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(json(metadata.to_string())),
        )
        .route("/.well-known/jwks.json", get(json(jwks)))
        .route("/.well-known/paserk.json", get(json(paserk)));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// Claims for a test token valid for five minutes from `now`.
pub fn claims(issuer: &str, audience: &str, now: NumericDate) -> AccessClaims {
    AccessClaims {
        nbf: Some(now),
        scope: Some("read write".into()),
        sid: Some("sid-1".into()),
        auth_time: Some(now),
        acr: Some("urn:tessera:pwd".into()),
        amr: Some(vec!["pwd".into()]),
        ..AccessClaims::new(
            issuer,
            "alice",
            Audience(vec![audience.to_owned()]),
            "e2e-client",
            format!("jti-{}", now.unix()),
            now,
            Duration::from_secs(300),
        )
    }
}
