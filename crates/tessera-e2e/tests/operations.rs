//! The operations surface of `tessera serve` as a real process: Prometheus
//! `/metrics` (parsed by Python's `prometheus_client`, an independent
//! parser), `metrics.listen`, request ids and the access log, CORS for the
//! browser-facing endpoints, and the OpenID discovery alias.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use tessera_testkit::repo_root;
use tessera_testkit::server::{Http, RegisteredClient, Server};

/// The samples of a Prometheus text page, as Python's `prometheus_client`
/// parser reads them: (sample name, labels) → value. Panics when the parser
/// refuses the page.
async fn parse_metrics(text: &str) -> BTreeMap<(String, BTreeMap<String, String>), f64> {
    use tokio::io::AsyncWriteExt as _;
    let script = repo_root().join("crates/tessera-e2e/tests/interop/metrics_parse.py");
    let mut child = tokio::process::Command::new("python3")
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(text.as_bytes()).await.expect("write");
    drop(stdin);
    let out = child.wait_with_output().await.expect("parser");
    assert!(
        out.status.success(),
        "prometheus_client refused the page: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let mut samples = BTreeMap::new();
    for sample in parsed["samples"].as_array().expect("samples") {
        let labels = sample[1]
            .as_object()
            .expect("labels")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        samples.insert(
            (sample[0].as_str().expect("name").to_owned(), labels),
            sample[2].as_f64().expect("value"),
        );
    }
    samples
}

type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

/// The value of `name` with exactly `labels`, or 0 when absent (a counter
/// that never moved has no series).
fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples
        .get(&(name.to_owned(), labels))
        .copied()
        .unwrap_or(0.0)
}

struct World {
    server: Server,
    http: Http,
    backend: RegisteredClient,
    spa: RegisteredClient,
    admin: RegisteredClient,
}

async fn world(name: &str, settings: &[(&str, &str)]) -> World {
    let server = Server::start(name, settings).await;
    let spa = server.create_client_with(
        "spa",
        "public",
        "refresh_token",
        &["--scopes", "read", "--audiences", "api"],
    );
    let backend = server.create_client_with(
        "backend",
        "confidential",
        "sessions",
        &["--sessions-for", &spa.id],
    );
    let admin = server.create_client("ops", "confidential", "admin");
    World {
        server,
        http: Http::new(),
        backend,
        spa,
        admin,
    }
}

impl World {
    async fn open(&self, subject: &str) -> serde_json::Value {
        let (status, body) = self
            .http
            .json(
                Method::POST,
                &self.server.url("/v1/sessions"),
                Some(serde_json::json!({
                    "subject": subject, "client_id": self.spa.id, "audience": ["api"], "scope": "read",
                })),
                &self.backend,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    async fn refresh(&self, token: &str) -> (u16, serde_json::Value) {
        self.http
            .form(
                &self.server.url("/oauth/token"),
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", self.spa.id.as_str()),
                    ("refresh_token", token),
                ],
                None,
            )
            .await
    }

    async fn metrics_text(&self, url: &str) -> String {
        let response = self
            .http
            .request(Method::GET, url)
            .send()
            .await
            .expect("metrics");
        assert_eq!(response.status(), 200);
        assert!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/plain; version=0.0.4")),
            "Prometheus text content type"
        );
        response.text().await.expect("text")
    }
}

fn token(body: &serde_json::Value, field: &str) -> String {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {body}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_happened_and_parse_as_prometheus_text() {
    if !tessera_testkit::python_ready("prometheus_client.parser", "metrics parsing") {
        return;
    }
    let w = world(
        "ops-metrics",
        &[
            ("TESSERA_RATE_LIMITS__ENABLED", "true"),
            ("TESSERA_RATE_LIMITS__FAILED_AUTH_BURST", "2"),
        ],
    )
    .await;
    let metrics_url = w.server.url("/metrics");

    // Session one: a rotation, then the same (previous) token again within
    // the grace window, then a token that is not one.
    let one = w.open("alice").await;
    let first = token(&one, "refresh_token");
    let (status, rotated) = w.refresh(&first).await;
    assert_eq!(status, 200, "{rotated}");
    let (status, _) = w.refresh(&first).await;
    assert_eq!(status, 200, "a retry within the grace window");
    let (status, _) = w.refresh("not-a-refresh-token").await;
    assert_eq!(status, 400);
    // Refused before the exchange (an unknown client): counted too.
    let (status, _) = w
        .http
        .form(
            &w.server.url("/oauth/token"),
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "no-such-client"),
                ("refresh_token", first.as_str()),
            ],
            None,
        )
        .await;
    assert_eq!(status, 401);

    // Session two: two rotations, then its first token: reuse, session ended.
    let two = w.open("bob").await;
    let stolen = token(&two, "refresh_token");
    let (_, next) = w.refresh(&stolen).await;
    let (status, _) = w.refresh(&token(&next, "refresh_token")).await;
    assert_eq!(status, 200);
    let (status, body) = w.refresh(&stolen).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // Session one ended by its backend.
    let sid = token(&one, "session_id");
    let (status, _) = w
        .http
        .json(
            Method::DELETE,
            &w.server.url(&format!("/v1/sessions/{sid}")),
            None,
            &w.backend,
        )
        .await;
    assert_eq!(status, 204);

    // A manual key rotation: one pending key per algorithm.
    let (status, body) = w
        .http
        .json(
            Method::POST,
            &w.server.url("/v1/keys/rotate"),
            None,
            &w.admin,
        )
        .await;
    assert_eq!(status, 202, "{body}");

    // One open event stream.
    let mut stream = w
        .http
        .request(Method::GET, &w.server.url("/v1/revocations/stream"))
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), 200);
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await;

    // Revocation events reach the feed within a moment.
    let mut samples = Samples::new();
    let mut text = String::new();
    for _ in 0..50 {
        text = w.metrics_text(&metrics_url).await;
        samples = parse_metrics(&text).await;
        if value(
            &samples,
            "tessera_revocation_events_total",
            &[("kind", "session")],
        ) >= 2.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let refreshes =
        |outcome: &str| value(&samples, "tessera_refreshes_total", &[("outcome", outcome)]);
    assert_eq!(value(&samples, "tessera_sessions_opened_total", &[]), 2.0);
    assert_eq!(refreshes("ok"), 3.0);
    assert_eq!(refreshes("grace_retry"), 1.0);
    assert_eq!(refreshes("reuse_detected"), 1.0);
    assert_eq!(refreshes("invalid"), 2.0);
    assert_eq!(refreshes("error"), 0.0);
    let ended = |reason: &str| {
        value(
            &samples,
            "tessera_sessions_ended_total",
            &[("reason", reason)],
        )
    };
    assert_eq!(ended("reuse_detected"), 1.0);
    assert_eq!(ended("revoked"), 1.0);
    let auth = |outcome: &str| {
        value(
            &samples,
            "tessera_client_authentications_total",
            &[("outcome", outcome)],
        )
    };
    // Two opens and one delete by the backend; the public client's refreshes.
    assert!(auth("ok") >= 3.0, "{}", auth("ok"));
    assert_eq!(
        value(
            &samples,
            "tessera_key_rotations_total",
            &[("step", "started")]
        ),
        3.0,
        "one pending key per algorithm"
    );
    assert_eq!(
        value(
            &samples,
            "tessera_revocation_events_total",
            &[("kind", "session")]
        ),
        2.0,
        "the reused session and the revoked one"
    );
    assert_eq!(
        value(&samples, "tessera_revocation_stream_subscribers", &[]),
        1.0
    );
    for alg in ["EdDSA", "ES256", "v4.public"] {
        assert_eq!(
            value(
                &samples,
                "tessera_keys",
                &[("alg", alg), ("state", "active")]
            ),
            1.0,
            "{alg}"
        );
        assert_eq!(
            value(
                &samples,
                "tessera_keys",
                &[("alg", alg), ("state", "pending")]
            ),
            1.0,
            "{alg}"
        );
        assert!(
            samples.contains_key(&(
                "tessera_key_age_seconds".to_owned(),
                [("alg", alg), ("state", "active")]
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect()
            ))
        );
    }
    // Latency histograms: every token request is in the route's series, and
    // every rotation in the store's.
    let token_ok = value(
        &samples,
        "tessera_http_request_duration_seconds_count",
        &[
            ("route", "/oauth/token"),
            ("method", "POST"),
            ("status", "200"),
        ],
    );
    assert_eq!(token_ok, 4.0, "four token answers were 200");
    assert_eq!(
        value(
            &samples,
            "tessera_http_request_duration_seconds_bucket",
            &[
                ("route", "/oauth/token"),
                ("method", "POST"),
                ("status", "200"),
                ("le", "+Inf")
            ],
        ),
        token_ok
    );
    assert!(
        value(
            &samples,
            "tessera_store_operation_duration_seconds_count",
            &[("op", "rotate"), ("result", "ok")],
        ) >= 5.0
    );
    // Routes are templates: no session id, and never a token.
    assert!(text.contains("route=\"/v1/sessions/{sid}\""), "{text}");
    for secret in [&first, &stolen, &sid] {
        assert!(!text.contains(secret.as_str()), "{secret} in /metrics");
    }

    // The counters move: one more rotation is one more `ok`.
    let (status, _) = w.refresh(&token(&rotated, "refresh_token")).await;
    assert_eq!(status, 400, "session one has ended");
    let (status, _) = w.refresh(&token(&next, "refresh_token")).await;
    assert_eq!(status, 400, "session two has ended");
    let three = w.open("carol").await;
    let (status, _) = w.refresh(&token(&three, "refresh_token")).await;
    assert_eq!(status, 200);
    let later = parse_metrics(&w.metrics_text(&metrics_url).await).await;
    let later_refreshes =
        |outcome: &str| value(&later, "tessera_refreshes_total", &[("outcome", outcome)]);
    assert_eq!(later_refreshes("ok"), 4.0);
    assert_eq!(later_refreshes("invalid"), 4.0);
    assert_eq!(value(&later, "tessera_sessions_opened_total", &[]), 3.0);

    // Wrong secrets: counted, then the address is limited.
    let wrong = RegisteredClient {
        id: w.backend.id.clone(),
        secret: Some("wrong".to_owned()),
    };
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let (status, _) = w
            .http
            .json(
                Method::GET,
                &w.server.url("/v1/sessions?subject=x"),
                None,
                &wrong,
            )
            .await;
        statuses.push(status);
    }
    assert!(
        statuses.contains(&401) && statuses.contains(&429),
        "{statuses:?}"
    );

    let last = parse_metrics(&w.metrics_text(&metrics_url).await).await;
    let auth = |outcome: &str| {
        value(
            &last,
            "tessera_client_authentications_total",
            &[("outcome", outcome)],
        )
    };
    assert!(auth("invalid_client") >= 2.0, "the burst of two failures");
    assert!(
        value(
            &last,
            "tessera_rate_limited_total",
            &[("limit", "failed_auth")]
        ) >= 2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_listen_moves_metrics_off_the_api_address() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        probe.local_addr().expect("addr").port()
    };
    let addr = format!("127.0.0.1:{port}");
    let w = world(
        "ops-metrics-listen",
        &[("TESSERA_METRICS__LISTEN", addr.as_str())],
    )
    .await;
    let (status, _) = w
        .http
        .send(w.http.request(Method::GET, &w.server.url("/metrics")))
        .await;
    assert_eq!(status, 404, "not on the API address");
    let text = w.metrics_text(&format!("http://{addr}/metrics")).await;
    assert!(text.contains("tessera_keys{"), "{text}");
    // Nothing else is served there.
    let (status, _) = w
        .http
        .send(
            w.http
                .request(Method::GET, &format!("http://{addr}/healthz")),
        )
        .await;
    assert_eq!(status, 404);

    // A bad address stops start-up, naming the setting.
    let out = std::process::Command::new(tessera_testkit::tessera_bin())
        .args(["serve"])
        .env("TESSERA_METRICS__LISTEN", "not an address")
        .env("TESSERA_DATA_DIR", w.server.data_dir.join("unused"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("metrics.listen"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_has_a_request_id_and_one_access_log_line() {
    let w = world("ops-request-id", &[]).await;
    // Kept when sane.
    let response = w
        .http
        .request(Method::GET, &w.server.url("/healthz"))
        .header("x-request-id", "trace-42.a_b")
        .send()
        .await
        .expect("send");
    assert_eq!(response.headers()["x-request-id"], "trace-42.a_b");
    // Made up otherwise, and different each time.
    let mut made = Vec::new();
    for sent in [None, Some("bad id with spaces")] {
        let mut request = w.http.request(Method::GET, &w.server.url("/nowhere"));
        if let Some(id) = sent {
            request = request.header("x-request-id", id);
        }
        let response = request.send().await.expect("send");
        assert_eq!(response.status(), 404);
        let id = response.headers()["x-request-id"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(!id.is_empty() && Some(id.as_str()) != sent);
        made.push(id);
    }
    assert_ne!(made[0], made[1]);

    // An authenticated request: its line names the route template, the
    // status and the client, and never the token.
    let body = w.open("dave").await;
    let refresh = token(&body, "refresh_token");
    let access = token(&body, "access_token");
    let response = w
        .http
        .request(Method::POST, &w.server.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-request-id", "refresh-1")
        .body(format!(
            "grant_type=refresh_token&client_id={}&refresh_token={refresh}",
            w.spa.id
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let sid = token(&body, "session_id");
    let _ = w
        .http
        .request(Method::GET, &w.server.url(&format!("/v1/sessions/{sid}")))
        .basic_auth(&w.backend.id, w.backend.secret.as_deref())
        .header("x-request-id", "show-1")
        .send()
        .await
        .expect("send");

    let mut log = String::new();
    for _ in 0..50 {
        log = w.server.log_text();
        if log.contains("show-1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let line = |id: &str| {
        log.lines()
            .find(|l| l.contains("tessera::access") && l.contains(id))
            .unwrap_or_else(|| panic!("no access line for {id}:\n{log}"))
            .to_owned()
    };
    let refresh_line = line("refresh-1");
    for part in [
        "route=\"/oauth/token\"",
        "status=200",
        "method=\"POST\"",
        "latency_ms=",
    ] {
        assert!(refresh_line.contains(part), "{part} in {refresh_line}");
    }
    assert!(
        refresh_line.contains(&w.spa.id),
        "client id in {refresh_line}"
    );
    let show_line = line("show-1");
    assert!(
        show_line.contains("route=\"/v1/sessions/{sid}\""),
        "{show_line}"
    );
    assert!(show_line.contains(&w.backend.id), "{show_line}");
    for secret in [
        refresh.as_str(),
        access.as_str(),
        w.backend.secret.as_deref().unwrap_or("-"),
    ] {
        assert!(!log.contains(secret), "a secret in the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_listed_origins_only_on_the_browser_endpoints() {
    let app = "http://app.localhost:5173";
    let w = world(
        "ops-cors",
        &[(
            "TESSERA_CORS__ALLOWED_ORIGINS",
            "https://other.example, HTTP://App.Localhost:5173",
        )],
    )
    .await;
    let preflight = |path: &str, origin: &str, method: &str| {
        w.http
            .request(Method::OPTIONS, &w.server.url(path))
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "content-type, dpop")
            .send()
    };
    // A listed origin, an allowed method: 204 with the grant.
    for (path, method) in [
        ("/oauth/token", "POST"),
        ("/oauth/revoke", "POST"),
        ("/.well-known/jwks.json", "GET"),
        ("/.well-known/openid-configuration", "GET"),
        ("/.well-known/oauth-authorization-server", "GET"),
    ] {
        let response = preflight(path, app, method).await.expect("preflight");
        assert_eq!(response.status(), 204, "{path}");
        let h = response.headers();
        assert_eq!(h["access-control-allow-origin"], app, "{path}");
        assert_eq!(h["access-control-allow-methods"], method, "{path}");
        let allowed = h["access-control-allow-headers"].to_str().expect("ascii");
        assert!(
            allowed.contains("content-type") && allowed.contains("dpop"),
            "{path}"
        );
        assert!(h["vary"].to_str().expect("ascii").contains("origin"));
        assert!(h.get("access-control-allow-credentials").is_none());
    }
    // Another method on a listed path: no grant.
    let response = preflight("/oauth/token", app, "DELETE")
        .await
        .expect("preflight");
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    // An unlisted origin, or a path that is not for browsers: no grant.
    for (path, origin) in [
        ("/oauth/token", "https://evil.example"),
        ("/oauth/token", "null"),
        ("/v1/sessions", app),
        ("/oauth/introspect", app),
    ] {
        let response = preflight(path, origin, "POST").await.expect("preflight");
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{path} from {origin}"
        );
    }

    // The real request from the page: readable, with the DPoP nonce exposed.
    let body = w.open("erin").await;
    let response = w
        .http
        .request(Method::POST, &w.server.url("/oauth/token"))
        .header("origin", app)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=refresh_token&client_id={}&refresh_token={}",
            w.spa.id,
            token(&body, "refresh_token")
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], app);
    assert!(
        response.headers()["access-control-expose-headers"]
            .to_str()
            .expect("ascii")
            .contains("dpop-nonce")
    );
    // From an unlisted origin the answer is the same, without the grant.
    let response = w
        .http
        .request(Method::GET, &w.server.url("/.well-known/jwks.json"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert!(
        response.headers()["vary"]
            .to_str()
            .expect("ascii")
            .contains("origin")
    );

    // Discovery: the OpenID Connect alias serves the same metadata.
    let (status, oauth) = w
        .http
        .send(w.http.request(
            Method::GET,
            &w.server.url("/.well-known/oauth-authorization-server"),
        ))
        .await;
    assert_eq!(status, 200);
    let (status, oidc) = w
        .http
        .send(w.http.request(
            Method::GET,
            &w.server.url("/.well-known/openid-configuration"),
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(oauth, oidc);
    assert_eq!(oidc["jwks_uri"], w.server.url("/.well-known/jwks.json"));

    // A wildcard or a path is refused at start, naming the setting.
    for bad in ["*", "https://app.example/callback"] {
        let out = std::process::Command::new(tessera_testkit::tessera_bin())
            .args(["serve"])
            .env("TESSERA_CORS__ALLOWED_ORIGINS", bad)
            .env("TESSERA_DATA_DIR", w.server.data_dir.join("unused"))
            .output()
            .expect("run");
        assert!(!out.status.success(), "{bad}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("cors.allowed_origins"),
            "{bad}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Whether `token` is an RFC 3339 time as the tables print them.
fn is_rfc3339(token: &str) -> bool {
    token.len() == 20
        && token.ends_with('Z')
        && token.as_bytes().get(10) == Some(&b'T')
        && tessera_core::time::Timestamp::parse(token).is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_tables_print_rfc3339_and_audit_takes_the_consoles_filters() {
    let w = world("ops-cli-audit", &[]).await;
    let one = w.open("frank").await;
    let (status, _) = w.refresh(&token(&one, "refresh_token")).await;
    assert_eq!(status, 200);
    let _two = w.open("grace").await;

    // Tables: times as RFC 3339, no bare Unix seconds.
    for args in [
        &["sessions", "list", "--subject", "frank"][..],
        &["keys", "list"][..],
    ] {
        let out = w.server.cli(args);
        let tokens: Vec<&str> = out.split_whitespace().collect();
        assert!(tokens.iter().any(|t| is_rfc3339(t)), "{args:?}:\n{out}");
        assert!(
            !tokens
                .iter()
                .any(|t| t.len() == 10 && t.bytes().all(|b| b.is_ascii_digit())),
            "{args:?} prints Unix seconds:\n{out}"
        );
    }
    // --json keeps Unix seconds.
    let json: serde_json::Value =
        serde_json::from_str(
            &w.server
                .cli(&["sessions", "list", "--subject", "frank", "--json"]),
        )
        .expect("json");
    assert!(json["sessions"][0]["created_at"].is_i64());

    let audit = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["audit", "--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&w.server.cli(&all)).expect("audit --json")
    };
    let kinds = |page: &serde_json::Value| -> Vec<String> {
        page["records"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| r["kind"].as_str().expect("kind").to_owned())
            .collect()
    };
    let sid = token(&one, "session_id");
    assert_eq!(
        kinds(&audit(&["--subject", "frank"])),
        ["session.opened", "session.refreshed"]
    );
    assert_eq!(kinds(&audit(&["--session", &sid])).len(), 2);
    assert_eq!(
        kinds(&audit(&["--kind", "session.opened"])),
        ["session.opened", "session.opened"]
    );
    let by_backend = audit(&["--client", &w.backend.id]);
    assert!(
        by_backend["records"]
            .as_array()
            .expect("records")
            .iter()
            .all(|r| r["client_id"] == w.backend.id.as_str())
    );
    assert_eq!(kinds(&by_backend), ["session.opened", "session.opened"]);
    // Time range: everything happened after an hour ago and before in an hour.
    let now = tessera_verifier::system_now().unix();
    let hour_ago = (now - 3600).to_string();
    let in_an_hour = (now + 3600).to_string();
    let recent = kinds(&audit(&["--subject", "frank", "--since", &hour_ago]));
    assert_eq!(recent.len(), 2);
    assert!(kinds(&audit(&["--subject", "frank", "--since", &in_an_hour])).is_empty());
    assert!(kinds(&audit(&["--subject", "frank", "--until", &hour_ago])).is_empty());
    let rfc = tessera_core::time::Timestamp::from_millis((now - 3600) * 1000).to_rfc3339();
    assert_eq!(
        kinds(&audit(&["--subject", "frank", "--since", &rfc])).len(),
        2
    );
    // Pages: one record at a time, following `next`.
    let first = audit(&["--subject", "frank", "--limit", "1"]);
    assert_eq!(kinds(&first), ["session.opened"]);
    let next = first["next"].as_i64().expect("next").to_string();
    let second = audit(&["--subject", "frank", "--limit", "1", "--after", &next]);
    assert_eq!(kinds(&second), ["session.refreshed"]);
    // The table, and a bad time (usage: exit 2).
    let table = w.server.cli(&["audit", "--subject", "frank"]);
    assert!(table.contains("session.refreshed") && table.split_whitespace().any(is_rfc3339));
    let out = w.server.cli_output(&["audit", "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));

    // The HTTP audit takes the same filters.
    let (status, page) = w
        .http
        .json(
            Method::GET,
            &w.server.url(&format!(
                "/v1/audit?kind=session.opened&since={}&client={}",
                form(&rfc),
                w.backend.id
            )),
            None,
            &w.admin,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["records"].as_array().expect("records").len(), 2);
    let (status, body) = w
        .http
        .json(
            Method::GET,
            &w.server.url("/v1/audit?since=soon"),
            None,
            &w.admin,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
}

fn form(value: &str) -> String {
    tessera_testkit::server::form_encode(value)
}

/// `tessera ARGS` with only the given environment (nothing of the caller's).
fn tessera_alone(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(tessera_testkit::tessera_bin())
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run tessera")
}

#[test]
fn master_key_generate_file_secrets_tessera_config_and_config_check() {
    let dir = tessera_testkit::TempDir::new("ops-config-check");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8");

    // A fresh key on stdout: 32 bytes of base64url.
    let out = tessera_alone(&["master-key", "generate"], &[]);
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    assert_eq!(key.len(), 43);
    assert!(
        key.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_ne!(
        key,
        String::from_utf8(tessera_alone(&["master-key", "generate"], &[]).stdout)
            .expect("utf-8")
            .trim()
    );
    // Into a new private file, never over one.
    let file = dir.path().join("master.key");
    let file_arg = file.to_str().expect("utf-8");
    assert!(
        tessera_alone(&["master-key", "generate", "--out", file_arg], &[])
            .status
            .success()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let written = std::fs::read_to_string(&file).expect("read");
    let again = tessera_alone(&["master-key", "generate", "--out", file_arg], &[]);
    assert!(!again.status.success());
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        written,
        "not overwritten"
    );

    // The master key from a file, checked without touching a store.
    let out = tessera_alone(
        &["config", "check"],
        &[
            ("TESSERA_DATA_DIR", data),
            ("TESSERA_MASTER_KEY_FILE", file_arg),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("config: ok") && stdout.contains("master_key: given"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(written.trim()),
        "the key itself is never printed"
    );
    assert!(
        !std::path::Path::new(data).exists(),
        "config check creates nothing"
    );
    // Both the variable and its file: refused, naming the setting.
    let out = tessera_alone(
        &["config", "check"],
        &[
            ("TESSERA_DATA_DIR", data),
            ("TESSERA_MASTER_KEY_FILE", file_arg),
            ("TESSERA_MASTER_KEY", &key),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("master_key"));
    // A key file others can read stops `serve` before anything starts.
    #[cfg(unix)]
    {
        use std::io::Read as _;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let mut child = std::process::Command::new(tessera_testkit::tessera_bin())
            .args(["serve"])
            .env_clear()
            .envs([
                ("TESSERA_DATA_DIR", data),
                ("TESSERA_MASTER_KEY_FILE", file_arg),
                ("TESSERA_LISTEN", "127.0.0.1:0"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("serve");
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if started.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                panic!("serve started with a readable master key file");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut stderr)
            .expect("read");
        assert!(!status.success());
        assert!(stderr.contains("readable by other users"), "{stderr}");
        assert!(!std::path::Path::new(data).join("tessera.db").exists());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    // A missing file: refused, naming the variable.
    let out = tessera_alone(
        &["config", "check"],
        &[("TESSERA_MASTER_KEY_FILE", "/nonexistent/master.key")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TESSERA_MASTER_KEY_FILE"));
    // The store URL (which may hold a password) from a file, shown redacted.
    let url_file = dir.path().join("store-url");
    std::fs::write(
        &url_file,
        "postgres://tessera:hunter2@db.internal:5432/tessera\n",
    )
    .expect("write");
    let out = tessera_alone(
        &["config", "check"],
        &[("TESSERA_STORE_URL_FILE", url_file.to_str().expect("utf-8"))],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("db.internal") && !stdout.contains("hunter2"),
        "{stdout}"
    );

    // TESSERA_CONFIG names the file --config would.
    let toml = dir.path().join("tessera.toml");
    std::fs::write(
        &toml,
        "listen = \"127.0.0.1:9876\"\n[tokens]\naccess_ttl = \"2m\"\n",
    )
    .expect("write");
    let out = tessera_alone(
        &["config", "check"],
        &[("TESSERA_CONFIG", toml.to_str().expect("utf-8"))],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("listen: 127.0.0.1:9876") && stdout.contains("120s"),
        "{stdout}"
    );
    assert!(!stdout.contains("TESSERA_CONFIG names no"), "{stdout}");
    // A bad setting in it: exit 1, naming the setting.
    std::fs::write(&toml, "[tokens]\naccess_ttl = \"soon\"\n").expect("write");
    let out = tessera_alone(
        &["config", "check"],
        &[("TESSERA_CONFIG", toml.to_str().expect("utf-8"))],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tokens.access_ttl"));
}
