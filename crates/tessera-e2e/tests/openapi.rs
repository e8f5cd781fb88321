//! `/openapi.json` of the real server: valid OpenAPI 3.1 (checked by the
//! independent `openapi-spec-validator`), every route served is in it and
//! every documented operation is served, and real answers (successes and
//! errors) match their documented schemas exactly (Python `jsonschema`, with
//! every documented object closed, so an undocumented field fails).

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};
use tessera_testkit::server::{Http, Server};
use tessera_testkit::{repo_root, scratch_dir};

/// The crates whose routers `tessera serve` merges.
const SERVER_SOURCES: [&str; 3] = [
    "crates/tessera/src",
    "crates/tessera-issuer/src",
    "crates/tessera-revocation/src",
];

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_route_is_registered_with_its_description() {
    // Routes registered with axum's own `.route(...)` would be served
    // without a description; `utoipa_axum::routes!` registers both at once.
    let mut files = Vec::new();
    for dir in SERVER_SOURCES {
        rust_files(&repo_root().join(dir), &mut files);
    }
    assert!(files.len() > 20, "found the sources");
    let mut bare = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            // `.route("/path", ...)` or `.route(A_CONST, ...)`: a registration.
            let registers = [".route(", ".nest(", ".fallback("].iter().any(|call| {
                code.match_indices(call).any(|(at, _)| {
                    code[at + call.len()..]
                        .chars()
                        .next()
                        .is_some_and(|c| c == '"' || c.is_ascii_uppercase())
                })
            });
            if registers {
                bare.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        bare.is_empty(),
        "routes registered without an OpenAPI description:\n{}",
        bare.join("\n")
    );
}

/// One real answer, for the schema check.
fn sample(path: &str, method: &str, status: u16, body: Value) -> Value {
    json!({ "path": path, "method": method, "status": status, "body": body })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_valid_complete_and_matches_real_answers() {
    let server = Server::start("openapi", &[]).await;
    let http = Http::new();
    let spa = server.create_client_with(
        "spa",
        "public",
        "refresh_token",
        &["--scopes", "read", "--audiences", "api"],
    );
    let backend = server.create_client_with(
        "backend",
        "confidential",
        "sessions,introspect",
        &["--sessions-for", &spa.id],
    );
    let admin = server.create_client("ops", "confidential", "admin");

    let response = http
        .request(Method::GET, &server.url("/openapi.json"))
        .send()
        .await
        .expect("openapi.json");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("application/json")
    );
    let doc: Value = serde_json::from_slice(&response.bytes().await.expect("body")).expect("json");
    assert!(doc["openapi"].as_str().expect("openapi").starts_with("3.1"));
    assert_eq!(doc["info"]["title"], "Tessera");
    assert!(doc["components"]["securitySchemes"]["client_basic"].is_object());

    // Every documented operation, as (METHOD, path template).
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .keys()
                .filter(|m| {
                    ["get", "post", "put", "patch", "delete", "head", "options"]
                        .contains(&m.as_str())
                })
                .map(|m| (m.to_uppercase(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    for expected in [
        ("POST", "/v1/sessions"),
        ("GET", "/v1/sessions/{sid}"),
        ("POST", "/oauth/token"),
        ("GET", "/v1/keys"),
        ("GET", "/v1/revocations/stream"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/.well-known/openid-configuration"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/statuslists/{id}"),
    ] {
        assert!(
            documented.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} missing from {documented:?}"
        );
    }

    // Real answers, collected for the schema check.
    let mut samples = Vec::new();
    let (status, opened) = http
        .json(
            Method::POST,
            &server.url("/v1/sessions"),
            Some(json!({"subject": "alice", "client_id": spa.id, "audience": ["api"], "scope": "read",
                        "device": {"ip": "203.0.113.9", "user_agent": "openapi test", "label": "laptop"}})),
            &backend,
        )
        .await;
    assert_eq!(status, 201, "{opened}");
    samples.push(sample("/v1/sessions", "post", 201, opened.clone()));
    let sid = opened["session_id"].as_str().expect("sid").to_owned();
    let refresh = opened["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let (status, body) = http
        .json(
            Method::GET,
            &server.url("/v1/sessions?subject=alice"),
            None,
            &backend,
        )
        .await;
    samples.push(sample("/v1/sessions", "get", status, body));
    let (status, body) = http
        .json(
            Method::GET,
            &server.url(&format!("/v1/sessions/{sid}")),
            None,
            &backend,
        )
        .await;
    samples.push(sample("/v1/sessions/{sid}", "get", status, body));
    let (status, body) = http
        .json(
            Method::GET,
            &server.url("/v1/sessions/0123456789abcdef0123456789abcdef"),
            None,
            &backend,
        )
        .await;
    assert_eq!(status, 404);
    samples.push(sample("/v1/sessions/{sid}", "get", status, body));
    let (status, body) = http
        .json(
            Method::POST,
            &server.url(&format!("/v1/sessions/{sid}/elevate")),
            Some(json!({"acr": "mfa", "amr": ["otp"]})),
            &backend,
        )
        .await;
    samples.push(sample("/v1/sessions/{sid}/elevate", "post", status, body));
    let (status, body) = http
        .form(
            &server.url("/oauth/token"),
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &spa.id),
                ("refresh_token", &refresh),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let next_refresh = body["refresh_token"].as_str().expect("refresh").to_owned();
    samples.push(sample("/oauth/token", "post", status, body));
    let (status, body) = http
        .form(
            &server.url("/oauth/token"),
            &[("grant_type", "password")],
            None,
        )
        .await;
    assert_eq!(status, 400);
    samples.push(sample("/oauth/token", "post", status, body));
    let (status, body) = http
        .form(
            &server.url("/oauth/introspect"),
            &[("token", &next_refresh)],
            Some(&backend),
        )
        .await;
    assert_eq!(body["active"], true, "{body}");
    samples.push(sample("/oauth/introspect", "post", status, body));
    let (status, body) = http
        .form(
            &server.url("/oauth/introspect"),
            &[("token", "nonsense")],
            Some(&backend),
        )
        .await;
    samples.push(sample("/oauth/introspect", "post", status, body));
    let (status, body) = http
        .json(
            Method::GET,
            &server.url("/v1/audit?subject=alice&limit=10"),
            None,
            &backend,
        )
        .await;
    samples.push(sample("/v1/audit", "get", status, body));
    let (status, body) = http
        .json(
            Method::GET,
            &server.url("/v1/audit?since=never"),
            None,
            &backend,
        )
        .await;
    assert_eq!(status, 400);
    samples.push(sample("/v1/audit", "get", status, body));

    // Clients.
    let (status, body) = http
        .json(Method::GET, &server.url("/v1/clients"), None, &admin)
        .await;
    samples.push(sample("/v1/clients", "get", status, body));
    let (status, created) = http
        .json(
            Method::POST,
            &server.url("/v1/clients"),
            Some(json!({"name": "svc", "kind": "confidential", "allowed": ["client_credentials"]})),
            &admin,
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let svc = created["client_id"].as_str().expect("id").to_owned();
    samples.push(sample("/v1/clients", "post", status, created));
    for (method, path, body, status) in [
        (Method::GET, format!("/v1/clients/{svc}"), None, 200),
        (
            Method::PATCH,
            format!("/v1/clients/{svc}"),
            Some(json!({"name": "svc2"})),
            200,
        ),
        (
            Method::POST,
            format!("/v1/clients/{svc}/rotate-secret"),
            Some(json!({"overlap": "1m"})),
            200,
        ),
        (
            Method::POST,
            format!("/v1/clients/{svc}/disable"),
            Some(json!({"end_sessions": true})),
            200,
        ),
        (Method::POST, format!("/v1/clients/{svc}/enable"), None, 200),
        (Method::DELETE, format!("/v1/clients/{svc}"), None, 409),
    ] {
        let template = path.replace(&svc, "{id}");
        let name = method.as_str().to_lowercase();
        let (got, answer) = http.json(method, &server.url(&path), body, &admin).await;
        assert_eq!(got, status, "{path}: {answer}");
        samples.push(sample(&template, &name, got, answer));
    }
    let (status, body) = http
        .json(Method::GET, &server.url("/v1/clients"), None, &backend)
        .await;
    assert_eq!(status, 403);
    samples.push(sample("/v1/clients", "get", status, body));

    // Keys and revocation.
    let (status, keys) = http
        .json(Method::GET, &server.url("/v1/keys"), None, &admin)
        .await;
    samples.push(sample("/v1/keys", "get", status, keys.clone()));
    let (status, body) = http
        .json(Method::POST, &server.url("/v1/keys/rotate"), None, &admin)
        .await;
    samples.push(sample("/v1/keys/rotate", "post", status, body));
    let pending = keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["state"] == "active" && k["alg"] == "ES256")
        .expect("an active ES256 key")["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    let (status, body) = http
        .json(
            Method::POST,
            &server.url(&format!("/v1/keys/{pending}/revoke")),
            None,
            &admin,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    samples.push(sample("/v1/keys/{kid}/revoke", "post", status, body));
    let (status, body) = http
        .json(
            Method::POST,
            &server.url(&format!("/v1/keys/{pending}/revoke")),
            None,
            &admin,
        )
        .await;
    assert_eq!(status, 409);
    samples.push(sample("/v1/keys/{kid}/revoke", "post", status, body));
    let (status, body) = http
        .json(
            Method::DELETE,
            &server.url(&format!("/v1/sessions/{sid}")),
            None,
            &backend,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = http
        .json(
            Method::DELETE,
            &server.url("/v1/sessions?subject=alice"),
            None,
            &backend,
        )
        .await;
    samples.push(sample("/v1/sessions", "delete", status, body));
    for (path, template) in [
        ("/v1/revocations?after=0", "/v1/revocations"),
        ("/.well-known/jwks.json", "/.well-known/jwks.json"),
        ("/.well-known/paserk.json", "/.well-known/paserk.json"),
        (
            "/.well-known/oauth-authorization-server",
            "/.well-known/oauth-authorization-server",
        ),
        (
            "/.well-known/openid-configuration",
            "/.well-known/openid-configuration",
        ),
        ("/readyz", "/readyz"),
    ] {
        let (status, body) = http
            .send(http.request(Method::GET, &server.url(path)))
            .await;
        assert_eq!(status, 200, "{path}");
        samples.push(sample(template, "get", status, body));
    }
    let (status, body) = http
        .send(http.request(Method::GET, &server.url("/v1/revocations?after=x")))
        .await;
    assert_eq!(status, 400);
    samples.push(sample("/v1/revocations", "get", status, body));

    // Every documented operation is served: the route template each probe
    // matched is in the request histogram's `route` label.
    for (method, path) in &documented {
        let concrete = path
            .replace("{sid}", &sid)
            .replace("{id}", "1")
            .replace("{kid}", "no-such-key");
        let mut request = http.request(
            Method::from_bytes(method.as_bytes()).expect("method"),
            &server.url(&concrete),
        );
        if path == "/v1/revocations/stream" {
            request = request.timeout(std::time::Duration::from_millis(300));
        }
        let _ = request.send().await;
    }
    let metrics = http
        .request(Method::GET, &server.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for (method, path) in &documented {
        let needle_route = format!("route=\"{path}\"");
        let needle_method = format!("method=\"{method}\"");
        assert!(
            metrics
                .lines()
                .any(|l| l.contains(&needle_route) && l.contains(&needle_method)),
            "{method} {path} is documented but was not served"
        );
    }
    assert!(!metrics.contains("route=\"unmatched\",method=\"GET\",status=\"405\""));

    if !tessera_testkit::python_ready("openapi_spec_validator, jsonschema", "OpenAPI validation") {
        return;
    }
    let dir = scratch_dir("openapi-check");
    let doc_file = dir.join("openapi.json");
    let samples_file = dir.join("samples.json");
    std::fs::write(&doc_file, doc.to_string()).expect("write");
    std::fs::write(&samples_file, Value::Array(samples).to_string()).expect("write");
    let out = std::process::Command::new("python3")
        .arg(repo_root().join("crates/tessera-e2e/tests/interop/openapi_check.py"))
        .arg(&doc_file)
        .arg(&samples_file)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("ok "), "{stdout}");
}
