//! The resource servers of `examples/node` (Node, `jose`) and
//! `examples/python` (Python, PyJWT) as real processes against the real
//! server: they verify its access tokens from discovery and the JWKS alone,
//! answer RFC 6750 challenges, refuse forged headers (`alg: none`, `HS256`,
//! `typ: JWT`), refuse a session revoked before they started (behind more
//! than a page of older events) from their first request, refuse a revoked
//! session and a subject-wide logout within a second of the `DELETE` (the
//! revocation event stream), and fail closed with a 503 once the issuer is
//! gone for longer than `--max-staleness`.
//!
//! Needs Node 20 and npm (the test runs `npm ci` in `examples/node`) and
//! `python3` with the packages of `examples/python/requirements.txt`; skips
//! with a message when they are missing, unless `TESSERA_REQUIRE_INTEROP=1`
//! (set by `.ci/run`) makes that a failure.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::Method;
use tessera_core::b64;
use tessera_testkit::server::{Http, RegisteredClient, Server};
use tessera_testkit::{TempDir, repo_root};
use tokio::io::{AsyncBufReadExt as _, BufReader};

const SUBJECT: &str = "alice";
/// A subject whose session outlives `SUBJECT`'s subject-wide logout.
const OTHER_SUBJECT: &str = "bob";
/// Revocation events put in the feed before the example starts, ahead of a
/// session's revocation: more than one page (1,000) of `GET
/// /v1/revocations`, and enough that replaying them over the stream
/// outlasts the first request for Python (a Python example that counted as
/// ready on the stream's first bytes accepted the revoked token; Node reads
/// faster and needed some 6,000 events, too slow to make here).
const BACKLOG_EVENTS: usize = 1200;
/// What both examples say of a token whose session ended.
const SESSION_REVOKED: &str = r#"error_description="session revoked""#;
/// `--max-staleness` of the examples, in seconds.
const MAX_STALENESS_SECS: u64 = 2;
/// How soon after the `DELETE` answers a revoked session must be refused.
const REVOCATION_BOUND: Duration = Duration::from_secs(1);
/// How long an example may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One of the example resource servers.
struct Example {
    /// For messages and scratch names.
    name: &'static str,
    /// The interpreter.
    program: &'static str,
    /// The server script, in `dir`.
    script: &'static str,
    /// Its folder (the working directory).
    dir: PathBuf,
}

/// Records that an example cannot run here: a failure under
/// `TESSERA_REQUIRE_INTEROP=1`, else a `SKIPPED` message.
fn unavailable(what: &str, fix: &str) {
    let required = std::env::var("TESSERA_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
    assert!(!required, "TESSERA_REQUIRE_INTEROP=1 but {what}: {fix}");
    eprintln!("SKIPPED {what}: {fix}");
}

/// Whether `program ARGS` runs in `dir` and exits 0 within `limit`.
async fn succeeds(program: &str, args: &[&str], dir: &Path, limit: Duration) -> bool {
    let run = tokio::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status();
    matches!(tokio::time::timeout(limit, run).await, Ok(Ok(status)) if status.success())
}

/// `examples/node` with its `jose` installed (`npm ci` when `node_modules`
/// is missing), or `None` when Node or npm is unavailable.
async fn node_example() -> Option<Example> {
    let dir = repo_root().join("examples/node");
    let ready = succeeds("node", &["--version"], &dir, Duration::from_secs(30)).await
        && (dir.join("node_modules/jose/package.json").exists()
            || succeeds(
                "npm",
                &["ci", "--no-audit", "--no-fund", "--silent"],
                &dir,
                Duration::from_secs(300),
            )
            .await);
    if !ready {
        unavailable(
            "the Node example resource server",
            "node/npm not found or npm ci failed in examples/node (install Node 20)",
        );
        return None;
    }
    Some(Example {
        name: "node",
        program: "node",
        script: "server.mjs",
        dir,
    })
}

/// `examples/python`, or `None` when `python3` lacks PyJWT with its
/// `cryptography` backend.
async fn python_example() -> Option<Example> {
    let dir = repo_root().join("examples/python");
    let check = "import sys, jwt.algorithms; sys.exit(0 if jwt.algorithms.has_crypto else 1)";
    if !succeeds("python3", &["-c", check], &dir, Duration::from_secs(30)).await {
        unavailable(
            "the Python example resource server",
            "python3 with PyJWT[crypto] not found (pip install -r examples/python/requirements.txt)",
        );
        return None;
    }
    Some(Example {
        name: "python",
        program: "python3",
        script: "server.py",
        dir,
    })
}

/// An example resource server running as a process; killed when dropped.
struct ExampleServer {
    /// `http://127.0.0.1:PORT`.
    base: String,
    /// Where its stderr goes (quoted when an assertion fails).
    log: PathBuf,
    http: reqwest::Client,
    _child: tokio::process::Child,
}

/// One answer of `GET /me`.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// The `WWW-Authenticate` header ("" when absent).
    challenge: String,
    body: String,
}

impl ExampleServer {
    /// Starts `example` for `issuer` and `audience` on a free port; answers
    /// once it printed `listening on 127.0.0.1:PORT` (after discovery, the
    /// JWKS, every revocation event so far and the stream's answer).
    async fn start(example: &Example, issuer: &str, audience: &str, logs: &Path) -> ExampleServer {
        let log = logs.join(format!("{}-{audience}.log", example.name));
        let stderr = std::fs::File::create(&log).expect("create the example's log");
        let max_staleness = MAX_STALENESS_SECS.to_string();
        let mut child = tokio::process::Command::new(example.program)
            .current_dir(&example.dir)
            .arg(example.script)
            .args(["--issuer", issuer, "--audience", audience])
            .args(["--listen", "127.0.0.1:0", "--max-staleness", &max_staleness])
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {} {}: {e}", example.program, example.script));
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(START_TIMEOUT, lines.next_line())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the {} example printed no `listening on` line within {START_TIMEOUT:?}; its stderr:\n{}",
                    example.name,
                    read_log(&log)
                )
            })
            .expect("read the example's stdout")
            .unwrap_or_else(|| {
                panic!(
                    "the {} example exited before listening; its stderr:\n{}",
                    example.name,
                    read_log(&log)
                )
            });
        let port = line
            .strip_prefix("listening on 127.0.0.1:")
            .and_then(|port| port.trim().parse::<u16>().ok())
            .unwrap_or_else(|| {
                panic!(
                    "the {} example's first line is {line:?}, not `listening on 127.0.0.1:PORT`",
                    example.name
                )
            });
        // Keep reading stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        ExampleServer {
            base: format!("http://127.0.0.1:{port}"),
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("HTTP client"),
            _child: child,
        }
    }

    /// `GET /me` with `Authorization: Bearer TOKEN` (none when `None`).
    async fn me(&self, token: Option<&str>) -> Answer {
        let mut request = self.http.get(format!("{}/me", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap_or_else(|e| {
            panic!(
                "the example at {} did not answer GET /me: {e}; its stderr:\n{}",
                self.base,
                self.log_text()
            )
        });
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().expect("an ASCII challenge").to_owned())
            .unwrap_or_default();
        let body = response.text().await.expect("body");
        Answer {
            status,
            challenge,
            body,
        }
    }

    /// Asks `GET /me` with `token` every 50 ms until the answer is not 200;
    /// answers that answer and how long after `since` it came. Panics when
    /// it is still 200 after 5 s.
    async fn refused(&self, token: &str, since: Instant, what: &str) -> (Answer, Duration) {
        loop {
            let answer = self.me(Some(token)).await;
            if answer.status != 200 {
                return (answer, since.elapsed());
            }
            assert!(
                since.elapsed() < Duration::from_secs(5),
                "{what}: the token still answers 200 after 5 s; stderr:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_text(&self) -> String {
        read_log(&self.log)
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(unreadable: {e})"))
}

/// `token` with one character in the middle of its signature changed.
fn tampered(token: &str) -> String {
    let signature = token.rfind('.').expect("a compact JWS") + 1;
    let at = signature + (token.len() - signature) / 2;
    let mut bytes = token.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("base64url is ASCII")
}

/// `token`'s protected header, decoded.
fn header_of(token: &str) -> serde_json::Value {
    let header = token.split('.').next().expect("a compact JWS");
    let json = b64::decode(header).expect("a base64url header");
    serde_json::from_slice(&json).expect("a JSON header")
}

/// `token`'s signature segment (base64url).
fn signature_of(token: &str) -> &str {
    token.rsplit('.').next().expect("a compact JWS")
}

/// A token made by hand: `header` (re-encoded), `token`'s payload as is,
/// and `signature` (base64url, possibly empty).
fn forged(token: &str, header: &serde_json::Value, signature: &str) -> String {
    let payload = token.split('.').nth(1).expect("a compact JWS payload");
    format!("{}.{payload}.{signature}", b64::encode(header.to_string()))
}

/// Opens a session of `subject` for `spa` with `audience`; answers
/// (session id, access token).
async fn open_session(
    server: &Server,
    backend: &RegisteredClient,
    spa: &RegisteredClient,
    subject: &str,
    audience: &str,
) -> (String, String) {
    let (status, body) = Http::new()
        .json(
            Method::POST,
            &server.url("/v1/sessions"),
            Some(serde_json::json!({
                "subject": subject, "client_id": spa.id, "audience": [audience], "scope": "read",
            })),
            backend,
        )
        .await;
    assert_eq!(status, 201, "open a session: {body}");
    (
        body["session_id"].as_str().expect("session_id").to_owned(),
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned(),
    )
}

/// Ends session `sid` as `backend` (`DELETE /v1/sessions/{sid}`: 204).
async fn end_session(server: &Server, backend: &RegisteredClient, sid: &str, what: &str) {
    let (status, body) = Http::new()
        .json(
            Method::DELETE,
            &server.url(&format!("/v1/sessions/{sid}")),
            None,
            backend,
        )
        .await;
    assert_eq!(status, 204, "{what}: DELETE /v1/sessions/{{sid}}: {body}");
}

/// Puts `count` events in the revocation feed: subject-wide logouts, as
/// `admin`, of subjects without sessions (one `subject` event each). Checks
/// that the feed's first page is then full.
async fn fill_backlog(server: &Server, admin: &RegisteredClient, count: usize) {
    let http = Http::new();
    for i in 0..count {
        let (status, body) = http
            .json(
                Method::DELETE,
                &server.url(&format!("/v1/sessions?subject=backlog-{i}")),
                None,
                admin,
            )
            .await;
        assert_eq!(status, 200, "backlog event {i}: {body}");
    }
    let (status, page) = http
        .send(http.request(Method::GET, &server.url("/v1/revocations?after=0")))
        .await;
    assert_eq!(status, 200, "GET /v1/revocations?after=0");
    assert_eq!(
        page["events"].as_array().map(Vec::len),
        Some(1000),
        "the backlog fills a whole page (next: {})",
        page["next"]
    );
}

/// The whole run for one example: tokens, challenges, revocation, staleness.
async fn example_follows_tessera(example: Example) {
    let mut server = Server::start(&format!("other-languages-{}", example.name), &[]).await;
    let spa = server.create_client_with(
        "spa",
        "public",
        "refresh_token",
        &["--scopes", "read", "--audiences", "api,other"],
    );
    let backend = server.create_client_with(
        "backend",
        "confidential",
        "sessions",
        &["--sessions-for", &spa.id],
    );
    let admin = server.create_client("admin", "confidential", "admin");
    let name = example.name;
    // Ended before the example starts, as the last of many events.
    let (early_sid, early) = open_session(&server, &backend, &spa, SUBJECT, "api").await;
    let (sid, token) = open_session(&server, &backend, &spa, SUBJECT, "api").await;
    // Ended by the subject-wide logout below.
    let (_, alice_other) = open_session(&server, &backend, &spa, SUBJECT, "api").await;
    // Still valid when the issuer goes away at the end.
    let (_, second) = open_session(&server, &backend, &spa, OTHER_SUBJECT, "api").await;
    let (_, other_audience) = open_session(&server, &backend, &spa, SUBJECT, "other").await;
    fill_backlog(&server, &admin, BACKLOG_EVENTS).await;
    end_session(&server, &backend, &early_sid, name).await;

    let logs = TempDir::new(&format!("other-languages-{}-logs", example.name));
    let rs = ExampleServer::start(&example, &server.base, "api", logs.path()).await;

    // The session ended before the example started is refused from its very
    // first request: it reads the whole feed before it listens, not just the
    // stream's first bytes.
    let answer = rs.me(Some(early.as_str())).await;
    assert_eq!(
        answer.status,
        401,
        "{name}: the first request, with a session ended before the example started: {answer:?}; stderr:\n{}",
        rs.log_text()
    );
    assert!(
        answer.challenge.contains(r#"error="invalid_token""#)
            && answer.challenge.contains(SESSION_REVOKED),
        "{name}: ended before the start: {answer:?}"
    );

    // A valid token: 200 with its claims.
    let answer = rs.me(Some(token.as_str())).await;
    assert_eq!(answer.status, 200, "{name}: valid token: {answer:?}");
    let claims: serde_json::Value = serde_json::from_str(&answer.body)
        .unwrap_or_else(|e| panic!("{name}: GET /me body is not JSON ({e}): {answer:?}"));
    assert_eq!(claims["sub"], SUBJECT, "{name}: {claims}");
    assert_eq!(claims["sid"], sid.as_str(), "{name}: {claims}");

    // No token: a bare challenge, no error code (RFC 6750 §3.1).
    let answer = rs.me(None).await;
    assert_eq!(answer.status, 401, "{name}: no token: {answer:?}");
    assert!(
        answer.challenge.starts_with("Bearer") && !answer.challenge.contains("error="),
        "{name}: no token: {answer:?}"
    );

    // A changed signature, a token for another audience, and headers
    // forged by hand on the real payload: invalid_token. The algorithm is
    // the key's, never the header's: `none` and `HS256` are refused before
    // any signature check (an HMAC-sized signature is as good as a real HMAC
    // under any key here), and so is `typ: JWT`, whatever the signature.
    let header = header_of(&token);
    let with = |field: &str, value: &str| {
        let mut changed = header.clone();
        changed[field] = serde_json::Value::from(value);
        changed
    };
    let mac = b64::encode([0x5a_u8; 32]);
    for (case, bad, description) in [
        ("tampered signature", tampered(&token), None),
        ("audience other", other_audience.clone(), None),
        (
            "alg none, no signature",
            forged(&token, &with("alg", "none"), ""),
            None,
        ),
        (
            "alg none, the original signature",
            forged(&token, &with("alg", "none"), signature_of(&token)),
            Some("algorithm not allowed"),
        ),
        (
            "alg HS256, an HMAC-sized signature",
            forged(&token, &with("alg", "HS256"), &mac),
            Some("algorithm does not match the key"),
        ),
        (
            "typ JWT, the original signature",
            forged(&token, &with("typ", "JWT"), signature_of(&token)),
            Some("typ is not at+jwt"),
        ),
    ] {
        let answer = rs.me(Some(bad.as_str())).await;
        assert_eq!(answer.status, 401, "{name}: {case}: {answer:?}");
        assert!(
            answer.challenge.starts_with("Bearer")
                && answer.challenge.contains(r#"error="invalid_token""#),
            "{name}: {case}: {answer:?}"
        );
        if let Some(description) = description {
            assert!(
                answer
                    .challenge
                    .contains(&format!(r#"error_description="{description}""#)),
                "{name}: {case}: {answer:?}"
            );
        }
        assert!(
            !answer.challenge.contains(bad.as_str()),
            "{name}: {case}: the challenge quotes the token"
        );
    }

    // Revocation: the session's token is refused within a second of the
    // DELETE's answer, as a revoked session; the other sessions' are not.
    end_session(&server, &backend, &sid, name).await;
    let (refused, latency) = rs
        .refused(&token, Instant::now(), &format!("{name}: revoked session"))
        .await;
    println!(
        "{name}: DELETE → 401 in {:.1} ms",
        latency.as_secs_f64() * 1000.0
    );
    assert_eq!(refused.status, 401, "{name}: revoked: {refused:?}");
    assert!(
        refused.challenge.contains(r#"error="invalid_token""#)
            && refused.challenge.contains(SESSION_REVOKED),
        "{name}: revoked: {refused:?}"
    );
    assert!(
        latency < REVOCATION_BOUND,
        "{name}: the revoked token was refused {latency:?} after the DELETE (bound {REVOCATION_BOUND:?})"
    );
    for (case, live) in [
        ("alice's other session", &alice_other),
        ("bob's session", &second),
    ] {
        let answer = rs.me(Some(live.as_str())).await;
        assert_eq!(answer.status, 200, "{name}: {case}: {answer:?}");
    }

    // Subject-wide logout by the backend: alice's other session, opened
    // before the example started, is refused within a second; bob's is not.
    // (A backend ends only the sessions it opened: one `session` event each,
    // so the refusal names the session, not the subject.)
    let (status, body) = Http::new()
        .json(
            Method::DELETE,
            &server.url(&format!("/v1/sessions?subject={SUBJECT}")),
            None,
            &backend,
        )
        .await;
    assert_eq!(status, 200, "{name}: DELETE /v1/sessions?subject=: {body}");
    // `alice_other` and `other_audience`; the others had already ended.
    assert_eq!(
        body["revoked"].as_u64(),
        Some(2),
        "{name}: DELETE /v1/sessions?subject=: {body}"
    );
    let (refused, latency) = rs
        .refused(
            &alice_other,
            Instant::now(),
            &format!("{name}: subject logout"),
        )
        .await;
    println!(
        "{name}: DELETE ?subject= → 401 in {:.1} ms",
        latency.as_secs_f64() * 1000.0
    );
    assert_eq!(refused.status, 401, "{name}: subject logout: {refused:?}");
    assert!(
        refused.challenge.contains(r#"error="invalid_token""#)
            && refused.challenge.contains(SESSION_REVOKED),
        "{name}: subject logout: {refused:?}"
    );
    assert!(
        latency < REVOCATION_BOUND,
        "{name}: alice's other session was refused {latency:?} after the subject logout (bound {REVOCATION_BOUND:?})"
    );
    let answer = rs.me(Some(second.as_str())).await;
    assert_eq!(answer.status, 200, "{name}: bob's session: {answer:?}");

    // Staleness: with the issuer gone, revocation data is stale after
    // --max-staleness and a valid token gets 503 temporarily_unavailable.
    server.kill().await;
    let killed_at = Instant::now();
    let bound = Duration::from_secs(MAX_STALENESS_SECS + 2);
    let stale = loop {
        let answer = rs.me(Some(second.as_str())).await;
        if answer.status != 200 {
            break answer;
        }
        assert!(
            killed_at.elapsed() < bound,
            "{name}: still 200 {bound:?} after the issuer died (--max-staleness {MAX_STALENESS_SECS}); stderr:\n{}",
            rs.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "{name}: issuer killed → 503 in {:.1} ms",
        killed_at.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(stale.status, 503, "{name}: stale: {stale:?}");
    assert!(
        stale.challenge.starts_with("Bearer")
            && stale
                .challenge
                .contains(r#"error="temporarily_unavailable""#),
        "{name}: stale: {stale:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_example_verifies_tokens_and_follows_revocations() {
    let Some(example) = node_example().await else {
        return;
    };
    example_follows_tessera(example).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_example_verifies_tokens_and_follows_revocations() {
    let Some(example) = python_example().await else {
        return;
    };
    example_follows_tessera(example).await;
}
