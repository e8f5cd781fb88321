//! # tessera-testkit
//!
//! What Tessera's own tests share (a dev-dependency only, never shipped):
//!
//! * temp dirs: [`TempDir`] (removed on drop) and [`scratch_dir`];
//! * [`postgres`]: a fresh PostgreSQL database per test, and the
//!   `TESSERA_REQUIRE_POSTGRES` guard;
//! * [`server`]: the real `tessera serve` on 127.0.0.1, on an explicit
//!   [`server::Backend`], and [`on_both_backends!`];
//! * fixtures: key documents served on 127.0.0.1, claims, the example
//!   resource server, token helpers.

pub mod postgres;
pub mod server;

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tessera_core::{AccessClaims, Audience, JwkSet, NumericDate, PaserkSet};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether `python3` can `import MODULES` (e.g. `"jwt, pyseto"`). When it
/// cannot, the test should return early: this says `SKIPPED WHAT` on
/// stderr, or fails the test under `TESSERA_REQUIRE_INTEROP=1` (CI).
pub fn python_ready(modules: &str, what: &str) -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let fix = "pip install -r crates/tessera-e2e/tests/interop/requirements.txt";
        let required = std::env::var("TESSERA_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "TESSERA_REQUIRE_INTEROP=1 but python3 cannot import {modules}: {fix}"
        );
        eprintln!("SKIPPED {what}: python3 cannot import {modules} ({fix})");
    }
    ok
}

/// 16 random hex digits, to make names unique across runs and processes.
pub fn nonce() -> String {
    tessera_core::random::<8>()
        .expect("random")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fresh directory under the system temp dir, removed on drop (also when
/// a test panics).
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory whose name includes `name`.
    pub fn new(name: &str) -> TempDir {
        TempDir(scratch_dir(name))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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

/// Runs `tessera ARGS` with no server configuration (commands such as
/// `tessera dpop` that need none); panics unless it exits 0; answers its
/// trimmed standard output.
pub fn tessera_stdout(args: &[&str]) -> String {
    let out = std::process::Command::new(tessera_bin())
        .args(args)
        .output()
        .expect("run tessera");
    assert!(
        out.status.success(),
        "tessera {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
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
    let nonce = nonce();
    let dir = std::env::temp_dir().join(format!("tessera-{name}-{}-{nonce}", std::process::id()));
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

/// The example resource server, running as a process on 127.0.0.1.
pub struct ResourceServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    _child: tokio::process::Child,
}

impl ResourceServer {
    /// Starts `resource_server --issuer ISSUER --audience AUDIENCE` plus `extra` arguments.
    pub async fn start(issuer: &str, audience: &str, extra: &[&str]) -> ResourceServer {
        use tokio::io::AsyncBufReadExt as _;
        let mut child = tokio::process::Command::new(example_bin("resource_server"))
            .args([
                "--issuer",
                issuer,
                "--audience",
                audience,
                "--listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start resource_server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("resource_server starts within 20 s")
            .expect("read stdout")
            .expect("resource_server printed its address (or failed to start)");
        let addr = line
            .strip_prefix("listening on ")
            .expect("listening line")
            .to_owned();
        ResourceServer {
            base: format!("http://{addr}"),
            _child: child,
        }
    }

    /// `GET /me` with `token`: the status code. Panics if the resource
    /// server (a local process) cannot be reached at all.
    pub async fn me(&self, http: &reqwest::Client, token: &str) -> u16 {
        http.get(format!("{}/me", self.base))
            .bearer_auth(token)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or_else(|e| panic!("the example resource server did not answer: {e}"))
    }
}

/// The payload of a compact JWS, decoded but not verified (tests only).
pub fn jwt_payload(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("a JWS");
    let bytes = tessera_core::b64::decode(payload).expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON payload")
}

/// The `kid` of a compact JWS, unverified (tests only).
pub fn jwt_kid(token: &str) -> String {
    let header = token.split('.').next().expect("a JWS");
    let bytes = tessera_core::b64::decode(header).expect("base64url header");
    let header: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON header");
    header["kid"].as_str().expect("kid").to_owned()
}

/// The generation inside a `trt_` refresh token (unverified; tests only).
pub fn refresh_generation(token: &str) -> u64 {
    let body = tessera_core::b64::decode(token.strip_prefix("trt_").expect("trt_")).expect("b64");
    u64::from_be_bytes(body[16..24].try_into().expect("8 bytes"))
}

/// p50, p99 and max of `samples`, in milliseconds.
pub fn percentiles(samples: &mut [Duration]) -> (f64, f64, f64) {
    samples.sort();
    // Nearest rank: the sample at `per_mille` of the way through.
    let last = samples.len().saturating_sub(1);
    let at = |per_mille: usize| samples[(last * per_mille + 500) / 1000].as_secs_f64() * 1000.0;
    (at(500), at(990), at(1000))
}

/// A TCP proxy on 127.0.0.1 in front of `target` that a test can cut (every
/// connection dropped, new ones refused) and restore: a database outage for
/// the processes behind it only, leaving the real server to other tests.
pub struct Cuttable {
    /// `127.0.0.1:PORT`.
    pub addr: std::net::SocketAddr,
    up: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
}

impl Cuttable {
    /// Starts forwarding to `target` (`host:port`).
    pub async fn start(target: &str) -> Cuttable {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let up = std::sync::Arc::new(tokio::sync::watch::Sender::new(true));
        let target = target.to_owned();
        let state = up.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let mut watch = state.subscribe();
                if !*watch.borrow_and_update() {
                    continue; // down: refused (dropped at once)
                }
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watch.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Cuttable { addr, up }
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}
