//! Revocation and key rotation end to end: the real `tessera serve` and the
//! example resource server (or the verifier library) as separate parties on
//! 127.0.0.1. Measured figures are printed (`--nocapture`), never asserted
//! against a time goal; the bounds below only say "it happened at all".

use std::time::{Duration, Instant};

use reqwest::Method;
use tessera_testkit::server::{Backend, Http, RegisteredClient, Server};
use tessera_testkit::{ResourceServer, jwt_kid, jwt_payload, percentiles, scratch_dir};
use tessera_verifier::{RemoteOptions, RevocationOptions, Validation, Verifier, VerifyError};

/// Longest any revocation may take to show before a test calls it lost.
const LOST: Duration = Duration::from_secs(5);

struct World {
    server: Server,
    backend: RegisteredClient,
    http: Http,
    raw: reqwest::Client,
}

async fn world(backend: Backend, name: &str, settings: &[(&str, &str)]) -> World {
    let server = Server::start_on(backend, name, settings).await;
    let backend = server.create_client_with(
        "backend",
        "confidential",
        "sessions,admin",
        &["--audiences", "api"],
    );
    World {
        server,
        backend,
        http: Http::new(),
        raw: reqwest::Client::new(),
    }
}

impl World {
    async fn open(&self, subject: &str) -> (String, String) {
        let (status, body) = self
            .http
            .json(
                Method::POST,
                &self.server.url("/v1/sessions"),
                Some(serde_json::json!({"subject": subject, "audience": ["api"]})),
                &self.backend,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["session_id"].as_str().expect("sid").to_owned(),
            body["access_token"].as_str().expect("token").to_owned(),
        )
    }

    async fn end(&self, sid: &str) {
        let (status, body) = self
            .http
            .json(
                Method::DELETE,
                &self.server.url(&format!("/v1/sessions/{sid}")),
                None,
                &self.backend,
            )
            .await;
        assert_eq!(status, 204, "{body}");
    }

    async fn jwks_kids(&self) -> Vec<String> {
        let text = self
            .raw
            .get(self.server.url("/.well-known/jwks.json"))
            .send()
            .await
            .expect("jwks")
            .text()
            .await
            .expect("jwks body");
        let body: serde_json::Value = serde_json::from_str(&text).expect("jwks json");
        body["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().expect("kid").to_owned())
            .collect()
    }
}

/// Polls `GET /me` until it answers `want`; the time that took.
async fn until_status(
    rs: &ResourceServer,
    http: &reqwest::Client,
    token: &str,
    want: u16,
) -> Duration {
    let start = Instant::now();
    loop {
        if rs.me(http, token).await == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < LOST,
            "GET /me did not answer {want} within {LOST:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn ended_sessions_are_refused_by_a_subscribed_resource_server_within_a_second(
    backend: Backend,
) {
    let w = world(backend, "propagation", &[]).await;
    let rs = ResourceServer::start(&w.server.base, "api", &[]).await;

    let mut sessions = Vec::new();
    for i in 0..100 {
        sessions.push(w.open(&format!("user-{i}")).await);
    }
    let mut delays = Vec::with_capacity(sessions.len());
    for (sid, token) in &sessions {
        assert_eq!(rs.me(&w.raw, token).await, 200, "live before DELETE");
        w.end(sid).await;
        delays.push(until_status(&rs, &w.raw, token, 401).await);
    }
    let (p50, p99, max) = percentiles(&mut delays);
    println!(
        "propagation DELETE → 401 over {} sessions: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
        delays.len()
    );

    // A subject-wide logout covers every session of the subject at once.
    let mut bobs = Vec::new();
    for _ in 0..5 {
        bobs.push(w.open("bob").await.1);
    }
    let carol = w.open("carol").await.1;
    for token in &bobs {
        assert_eq!(rs.me(&w.raw, token).await, 200);
    }
    let (status, body) = w
        .http
        .json(
            Method::DELETE,
            &w.server.url("/v1/sessions?subject=bob"),
            None,
            &w.backend,
        )
        .await;
    assert_eq!((status, body["revoked"].as_u64()), (200, Some(5)), "{body}");
    let start = Instant::now();
    for token in &bobs {
        until_status(&rs, &w.raw, token, 401).await;
    }
    println!(
        "subject-wide logout of 5 sessions: all refused {:.1} ms after the answer",
        start.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(
        rs.me(&w.raw, &carol).await,
        200,
        "other subjects unaffected"
    );
    // A session the subject opens after the logout (a later second) works.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, fresh) = w.open("bob").await;
    assert_eq!(rs.me(&w.raw, &fresh).await, 200);
}

async fn five_scheduled_rotations_under_load_fail_no_verification(backend: Backend) {
    let w = world(
        backend,
        "rotation",
        &[
            ("TESSERA_KEYS__JWKS_MAX_AGE", "1s"),
            ("TESSERA_KEYS__PUBLISH_AHEAD", "2s"),
            ("TESSERA_KEYS__ROTATION_PERIOD", "3s"),
            ("TESSERA_TOKENS__ACCESS_TTL", "2s"),
            ("TESSERA_KEYS__RETIRE_MARGIN", "1s"),
        ],
    )
    .await;
    let rs = ResourceServer::start(&w.server.base, "api", &[]).await;

    let mut kids: Vec<String> = Vec::new();
    let mut verified = 0u32;
    let mut failed = Vec::new();
    let start = Instant::now();
    // Five rotations means six signing keys seen.
    while kids.len() < 6 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "only {} keys in 60 s",
            kids.len()
        );
        let (_, token) = w.open("load").await;
        let kid = jwt_kid(&token);
        if !kids.contains(&kid) {
            kids.push(kid);
        }
        match rs.me(&w.raw, &token).await {
            200 => verified += 1,
            other => failed.push((jwt_kid(&token), other)),
        }
    }
    println!(
        "rotation under load: {} rotations in {:.1} s, {verified} verifications, {} failed",
        kids.len() - 1,
        start.elapsed().as_secs_f64(),
        failed.len()
    );
    assert!(failed.is_empty(), "failed verifications: {failed:?}");

    // Retired keys leave the JWKS once their tokens have expired
    // (access TTL 2 s + margin 1 s, removed by the next schedule step).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let published = w.jwks_kids().await;
    for old in &kids[..kids.len() - 2] {
        assert!(
            !published.contains(old),
            "retired key {old} still published: {published:?}"
        );
    }
    assert!(published.contains(kids.last().expect("a key")));
}

async fn an_emergency_key_revocation_reaches_a_subscribed_verifier_within_a_second(
    backend: Backend,
) {
    let w = world(backend, "key-revoke", &[]).await;
    let rs = ResourceServer::start(&w.server.base, "api", &[]).await;
    let (_, old_token) = w.open("alice").await;
    let kid = jwt_kid(&old_token);
    assert_eq!(rs.me(&w.raw, &old_token).await, 200);

    // Key ids are base64url: one may begin with '-' and is still an id,
    // not a flag (a usage error would exit 2).
    let out = w
        .server
        .cli_output(&["keys", "revoke", "-no-such-key", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no key has id"));
    let started = Instant::now();
    let out = w.server.cli(&["keys", "revoke", &kid, "--json"]);
    let answered = started.elapsed();
    let report: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(report["revoked"]["kid"], kid.as_str());
    let fresh_kid = report["replacement"]["kid"]
        .as_str()
        .expect("a replacement key")
        .to_owned();
    let delay = until_status(&rs, &w.raw, &old_token, 401).await;
    println!(
        "key revoke via CLI: CLI took {:.0} ms; its tokens refused {:.0} ms after it returned",
        answered.as_secs_f64() * 1000.0,
        delay.as_secs_f64() * 1000.0
    );

    // New tokens are signed with the replacement and verify.
    let start = Instant::now();
    let new_token = loop {
        let (_, token) = w.open("alice").await;
        if jwt_kid(&token) != kid {
            break token;
        }
        assert!(start.elapsed() < LOST, "the issuer kept signing with {kid}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(jwt_kid(&new_token), fresh_kid);
    until_status(&rs, &w.raw, &new_token, 200).await;
    assert!(
        !w.jwks_kids().await.contains(&kid),
        "revoked key unpublished"
    );
    let (status, keys) = w
        .http
        .json(Method::GET, &w.server.url("/v1/keys"), None, &w.backend)
        .await;
    assert_eq!(status, 200);
    let state = keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .map(|k| k["state"].clone());
    assert_eq!(state, Some(serde_json::json!("revoked")));
    // Revoking it again is a conflict, an unknown kid a 404; neither is a 5xx.
    for (path, want) in [
        (format!("/v1/keys/{kid}/revoke"), 409),
        ("/v1/keys/nope/revoke".to_owned(), 404),
        ("/v1/keys/..%2F..%2Fetc/revoke".to_owned(), 404),
    ] {
        let (status, body) = w
            .http
            .json(Method::POST, &w.server.url(&path), None, &w.backend)
            .await;
        assert_eq!(status, want, "{path}: {body}");
    }
    let (status, _) = w
        .http
        .json(
            Method::POST,
            &w.server.url("/v1/keys/rotate"),
            None,
            &w.backend,
        )
        .await;
    assert_eq!(status, 202);
}

async fn status_list_agrees_with_an_independent_decoder_for_ten_thousand_sessions(
    backend: Backend,
) {
    let w = world(backend, "statuslist", &[]).await;
    // Open 10,000 sessions, 16 at a time.
    let opened = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for worker in 0..16 {
        let http = w.http.clone();
        let url = w.server.url("/v1/sessions");
        let backend = w.backend.clone();
        let opened = opened.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..625 {
                let (status, body) = http
                    .json(
                        Method::POST,
                        &url,
                        Some(serde_json::json!({"subject": format!("s{worker}-{i}")})),
                        &backend,
                    )
                    .await;
                assert_eq!(status, 201, "{body}");
                let token = body["access_token"].as_str().expect("token");
                let status = &jwt_payload(token)["status"]["status_list"];
                opened.lock().await.push((
                    body["session_id"].as_str().expect("sid").to_owned(),
                    status["idx"].as_u64().expect("idx"),
                    status["uri"].as_str().expect("uri").to_owned(),
                    token.to_owned(),
                ));
            }
        }));
    }
    for task in tasks {
        task.await.expect("opener");
    }
    let sessions = std::mem::take(&mut *opened.lock().await);
    assert_eq!(sessions.len(), 10_000);
    let uri = sessions[0].2.clone();
    assert!(
        sessions.iter().all(|s| s.2 == uri),
        "one list holds them all"
    );
    let mut indices: Vec<u64> = sessions.iter().map(|s| s.1).collect();
    indices.sort_unstable();
    indices.dedup();
    assert_eq!(indices.len(), 10_000, "indices are unique");

    // Revoke a pseudo-random 10% (a fixed LCG, so failures reproduce).
    let mut seed: u64 = 0x5eed;
    let mut revoked = Vec::new();
    let mut live = Vec::new();
    for session in &sessions {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        if (seed >> 33).is_multiple_of(10) {
            w.end(&session.0).await;
            revoked.push(session.1);
        } else {
            live.push(session.1);
        }
    }

    if tessera_testkit::python_ready("jwt, cryptography", "status-list interop") {
        let dir = scratch_dir("statuslist-expect");
        let expect = dir.join("expect.json");
        std::fs::write(
            &expect,
            serde_json::json!({"revoked": revoked, "live": live}).to_string(),
        )
        .expect("write expectations");
        let out = tokio::process::Command::new("python3")
            .arg(
                tessera_testkit::repo_root()
                    .join("crates/tessera-e2e/tests/interop/statuslist_check.py"),
            )
            .args(["--issuer", &w.server.base, "--list", &uri, "--expect"])
            .arg(&expect)
            .output()
            .await
            .expect("run python");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "independent decoder disagrees:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("report");
        assert_eq!(
            report["bits_set"].as_u64(),
            u64::try_from(revoked.len()).ok()
        );
        println!(
            "status list: {} sessions, {} revoked; Status List Token {} bytes (lst {} bytes, {} bytes of bits)",
            sessions.len(),
            revoked.len(),
            report["token_bytes"],
            report["lst_bytes"],
            report["decompressed_bytes"]
        );
        std::fs::remove_dir_all(dir).ok();
    }

    // The verifier library in status-list mode agrees too (these tokens'
    // audience is the backend, the default).
    let validation = Validation::new(&w.server.base, [w.backend.id.as_str()]).expect("validation");
    let verifier = Verifier::from_issuer(validation, RemoteOptions::default())
        .await
        .expect("verifier")
        .with_status_lists(RevocationOptions::default())
        .expect("status lists");
    for (_, idx, _, token) in sessions.iter().take(200) {
        let result = verifier.verify_with_refetch(token).await;
        if revoked.contains(idx) {
            assert!(
                matches!(result, Err(VerifyError::Revoked(_))),
                "{idx}: {result:?}"
            );
        } else {
            assert!(result.is_ok(), "{idx}: {result:?}");
        }
    }
}

async fn a_verifier_resumes_after_a_restart_and_fails_closed_when_the_feed_is_gone(
    backend: Backend,
) {
    let mut w = world(backend, "fault", &[]).await;
    let verifier = Verifier::from_issuer(
        Validation::new(&w.server.base, ["api"]).expect("validation"),
        RemoteOptions::default(),
    )
    .await
    .expect("verifier")
    .with_revocation_feed(RevocationOptions {
        max_staleness: Duration::from_secs(2),
        max_backoff: Duration::from_millis(500),
        ..RevocationOptions::default()
    })
    .await
    .expect("subscribed");
    let (a, token_a) = w.open("a").await;
    let (_, token_b) = w.open("b").await;
    let (c, token_c) = w.open("c").await;
    for token in [&token_a, &token_b, &token_c] {
        verifier.verify(token).expect("live");
    }
    let seen = verifier
        .revocations()
        .and_then(|r| r.last_event_id())
        .expect("feed");

    // Kill the server mid-stream; revoke A while it is down (straight into
    // the store, as an admin would), then bring it back.
    w.server.kill().await;
    w.server.cli(&["sessions", "revoke", &a]);
    w.server.restart().await;
    let start = Instant::now();
    while verifier.verify(&token_a).is_ok() {
        assert!(
            start.elapsed() < LOST,
            "revocation issued during the outage was missed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "resumed after restart: revocation made while down applied {:.0} ms after the restart",
        start.elapsed().as_secs_f64() * 1000.0
    );
    assert!(matches!(
        verifier.verify(&token_a),
        Err(VerifyError::Revoked(_))
    ));
    assert!(
        verifier
            .revocations()
            .and_then(|r| r.last_event_id())
            .expect("feed")
            > seen
    );
    verifier.verify(&token_b).expect("B untouched");

    // Down for longer than max_staleness: every token is refused.
    w.server.kill().await;
    let start = Instant::now();
    while verifier.verify(&token_b).is_ok() {
        assert!(start.elapsed() < LOST, "never failed closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(matches!(
        verifier.verify(&token_b),
        Err(VerifyError::RevocationStale { .. })
    ));
    println!(
        "server down: failing closed after {:.1} s (max_staleness 2 s)",
        start.elapsed().as_secs_f64()
    );

    // Back: recovers without a restart of the verifier, and follows again.
    w.server.restart().await;
    let start = Instant::now();
    while verifier.verify(&token_b).is_err() {
        assert!(start.elapsed() < LOST, "did not recover");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.end(&c).await;
    let start = Instant::now();
    while verifier.verify(&token_c).is_ok() {
        assert!(start.elapsed() < LOST, "not following after recovery");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// SQLite only: it greps the database file itself (PostgreSQL stores the same
/// sealed bytes through the same code).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_keys_never_appear_in_the_database_logs_or_answers() {
    let mut w = world(
        Backend::Sqlite,
        "secrets",
        &[("RUST_LOG", "debug"), ("TESSERA_KEYS__PUBLISH_AHEAD", "6m")],
    )
    .await;
    // Exercise every key path: sign, rotate, revoke, publish, list.
    let (_, token) = w.open("alice").await;
    let (status, _) = w
        .http
        .json(
            Method::POST,
            &w.server.url("/v1/keys/rotate"),
            None,
            &w.backend,
        )
        .await;
    assert_eq!(status, 202);
    let revoke = jwt_kid(&token);
    let (status, _) = w
        .http
        .json(
            Method::POST,
            &w.server.url(&format!("/v1/keys/{revoke}/revoke")),
            None,
            &w.backend,
        )
        .await;
    assert_eq!(status, 200);
    let mut answers = String::new();
    for path in [
        "/.well-known/jwks.json",
        "/.well-known/paserk.json",
        "/statuslists/0",
        "/v1/revocations",
    ] {
        answers.push_str(
            &w.raw
                .get(w.server.url(path))
                .send()
                .await
                .expect("get")
                .text()
                .await
                .expect("text"),
        );
    }
    let (_, keys) = w
        .http
        .json(Method::GET, &w.server.url("/v1/keys"), None, &w.backend)
        .await;
    answers.push_str(&keys.to_string());
    answers.push_str(&w.server.cli(&["keys", "list", "--json"]));
    w.server.kill().await;

    // The raw secrets, opened with the master key the server was given.
    let master = tessera_core::MasterKey::from_base64(
        w.server.setting("TESSERA_MASTER_KEY").expect("master key"),
    )
    .expect("master key");
    let db = w.server.data_dir.join("tessera.db");
    let store = tessera_store::sqlite::SqliteStore::open_path(&db)
        .await
        .expect("store");
    let rows = tessera_store::Store::keys(&store).await.expect("keys");
    assert!(rows.len() >= 4, "keys created, rotated and replaced");
    let mut secrets = Vec::new();
    for row in &rows {
        let key = tessera_revocation::keys::signing_key(row, &master).expect("open");
        let secret = key.to_secret_bytes().expect("secret");
        // Debug output of a signing key shows no secret either.
        answers.push_str(&format!("{key:?}"));
        secrets.push(secret.to_vec());
    }
    store.close().await;

    let mut haystacks: Vec<(String, Vec<u8>)> = vec![
        ("server log".into(), w.server.log_text().into_bytes()),
        ("API answers and Debug output".into(), answers.into_bytes()),
    ];
    for file in ["tessera.db", "tessera.db-wal"] {
        if let Ok(bytes) = std::fs::read(w.server.data_dir.join(file)) {
            haystacks.push((file.to_owned(), bytes));
        }
    }
    assert!(haystacks[0].1.len() > 1000, "debug logs were captured");
    for secret in &secrets {
        let seed = &secret[..32];
        let forms: Vec<Vec<u8>> = vec![
            seed.to_vec(),
            tessera_core::b64::encode(seed).into_bytes(),
            standard_base64(seed).into_bytes(),
            standard_base64(seed)
                .trim_end_matches('=')
                .as_bytes()
                .to_vec(),
            seed.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into_bytes(),
            // The base64 of a 32-byte seed embedded in a longer encoding
            // (k4.secret, PKCS#8) still shares this 40-character prefix.
            tessera_core::b64::encode(seed).as_bytes()[..40].to_vec(),
        ];
        for (name, haystack) in &haystacks {
            for form in &forms {
                assert!(
                    !contains(haystack, form),
                    "a private key appears in {name} (form of {} bytes)",
                    form.len()
                );
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn standard_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(
                    ALPHABET[usize::try_from((n >> (18 - 6 * i)) & 63).expect("6 bits")],
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// ES256 keys live the same life as Ed25519 ones (`tokens.jwt_alg =
/// ES256`): tokens carry a status-list entry that a status-list verifier
/// follows, a manual rotation publishes a pending ES256 key, and an
/// emergency revocation of the active ES256 key reaches a subscribed
/// verifier and hands signing to an ES256 replacement.
async fn es256_keys_rotate_revoke_and_back_status_lists(backend: Backend) {
    let w = world(
        backend,
        "es256-keys",
        &[
            ("TESSERA_TOKENS__JWT_ALG", "ES256"),
            ("TESSERA_REVOCATION__STATUS_LIST_TTL", "1s"),
        ],
    )
    .await;
    let alg = |token: &str| {
        let header = token.split('.').next().expect("header");
        let header: serde_json::Value =
            serde_json::from_slice(&tessera_core::b64::decode(header).expect("b64")).expect("json");
        header["alg"].as_str().expect("alg").to_owned()
    };
    let feed = ResourceServer::start(&w.server.base, "api", &[]).await;
    let lists =
        ResourceServer::start(&w.server.base, "api", &["--revocation", "status-list"]).await;

    // A session's end reaches a status-list verifier through the ES256 token's entry.
    let (sid, token) = w.open("ada").await;
    assert_eq!(alg(&token), "ES256");
    assert!(jwt_payload(&token)["status"]["status_list"]["uri"].is_string());
    assert_eq!(lists.me(&w.raw, &token).await, 200);
    w.end(&sid).await;
    until_status(&lists, &w.raw, &token, 401).await;

    // A manual rotation publishes a pending ES256 key.
    let out = w.server.cli(&["keys", "rotate", "--json"]);
    let pending: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    let es256 = pending["pending"]
        .as_array()
        .expect("pending")
        .iter()
        .find(|k| k["alg"] == "ES256")
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .expect("a pending ES256 key");
    let start = Instant::now();
    while !w.jwks_kids().await.contains(&es256) {
        assert!(start.elapsed() < LOST, "pending ES256 key never published");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Emergency revocation of the active ES256 key.
    let (_, old) = w.open("ada").await;
    let kid = jwt_kid(&old);
    assert_eq!(feed.me(&w.raw, &old).await, 200);
    let out = w.server.cli(&["keys", "revoke", &kid, "--json"]);
    let report: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(report["revoked"]["alg"], "ES256");
    let replacement = report["replacement"]["kid"]
        .as_str()
        .expect("replacement")
        .to_owned();
    assert_eq!(report["replacement"]["alg"], "ES256");
    until_status(&feed, &w.raw, &old, 401).await;
    let start = Instant::now();
    let fresh = loop {
        let (_, token) = w.open("ada").await;
        if jwt_kid(&token) != kid {
            break token;
        }
        assert!(start.elapsed() < LOST, "the issuer kept signing with {kid}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(jwt_kid(&fresh), replacement);
    assert_eq!(alg(&fresh), "ES256");
    until_status(&feed, &w.raw, &fresh, 200).await;
    assert!(
        !w.jwks_kids().await.contains(&kid),
        "revoked ES256 key unpublished"
    );
}

// Every test above, on SQLite and on PostgreSQL.
tessera_testkit::on_both_backends!(
    ended_sessions_are_refused_by_a_subscribed_resource_server_within_a_second,
    five_scheduled_rotations_under_load_fail_no_verification,
    an_emergency_key_revocation_reaches_a_subscribed_verifier_within_a_second,
    status_list_agrees_with_an_independent_decoder_for_ten_thousand_sessions,
    a_verifier_resumes_after_a_restart_and_fails_closed_when_the_feed_is_gone,
    es256_keys_rotate_revoke_and_back_status_lists,
);
