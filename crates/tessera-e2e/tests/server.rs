//! `tessera serve` as a real process on 127.0.0.1 with a temporary data
//! directory, driven over HTTP: rotation, theft detection, races, forged
//! tokens, and bad input.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use tessera_testkit::server::{Backend, Http, RegisteredClient, Server};
use tessera_verifier::{RemoteOptions, Validation, Verifier};

struct World {
    server: Server,
    http: Http,
    backend: RegisteredClient,
    spa: RegisteredClient,
}

async fn world(backend: Backend, name: &str, settings: &[(&str, &str)]) -> World {
    let server = Server::start_on(backend, name, settings).await;
    let spa = server.create_client_with(
        "spa",
        "public",
        "refresh_token",
        &["--scopes", "read,write", "--audiences", "api"],
    );
    let backend = server.create_client_with(
        "backend",
        "confidential",
        "sessions,introspect",
        &["--sessions-for", &spa.id],
    );
    assert!(spa.secret.is_none() && backend.secret.is_some());
    World {
        server,
        http: Http::new(),
        backend,
        spa,
    }
}

impl World {
    async fn open(&self, subject: &str) -> serde_json::Value {
        let body = serde_json::json!({
            "subject": subject, "client_id": self.spa.id, "audience": ["api"], "scope": "read write",
            "device": {"ip": "203.0.113.7", "user_agent": "e2e", "label": "laptop"},
        });
        let response = self
            .http
            .request(Method::POST, &self.server.url("/v1/sessions"))
            .basic_auth(&self.backend.id, self.backend.secret.as_deref())
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("send");
        assert_eq!(response.status().as_u16(), 201);
        let cache = response
            .headers()
            .get("cache-control")
            .map(|v| v.as_bytes().to_vec());
        assert_eq!(
            cache.as_deref(),
            Some(&b"no-store"[..]),
            "tokens are never cached"
        );
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("json")
    }

    async fn refresh(&self, token: &str) -> (u16, serde_json::Value) {
        let fields = [
            ("grant_type", "refresh_token"),
            ("client_id", self.spa.id.as_str()),
            ("refresh_token", token),
        ];
        self.http
            .form(&self.server.url("/oauth/token"), &fields, None)
            .await
    }

    async fn session(&self, sid: &str) -> serde_json::Value {
        let (status, json) = self
            .http
            .json(
                Method::GET,
                &self.server.url(&format!("/v1/sessions/{sid}")),
                None,
                &self.backend,
            )
            .await;
        assert_eq!(status, 200, "{json}");
        json
    }
}

fn s(v: &serde_json::Value) -> String {
    v.as_str().expect("string").to_owned()
}

async fn open_refresh_five_times_then_reuse_revokes_the_family(backend: Backend) {
    let w = world(backend, "e2e-rotate", &[]).await;
    let verifier = Verifier::from_issuer(
        Validation::new(w.server.base.clone(), ["api"]).expect("validation"),
        RemoteOptions::default(),
    )
    .await
    .expect("verifier from discovery");

    let opened = w.open("alice").await;
    let sid = s(&opened["session_id"]);
    let mut tokens = vec![s(&opened["refresh_token"])];
    let mut access = s(&opened["access_token"]);
    assert_eq!(
        verifier.verify(&access).expect("verifies").claims.sub,
        "alice"
    );
    for _ in 0..5 {
        let (status, json) = w.refresh(tokens.last().expect("token")).await;
        assert_eq!(status, 200, "{json}");
        access = s(&json["access_token"]);
        let verified = verifier
            .verify(&access)
            .expect("every access token verifies against the served JWKS");
        assert_eq!(verified.claims.sid.as_deref(), Some(sid.as_str()));
        tokens.push(s(&json["refresh_token"]));
    }
    assert_eq!(w.session(&sid).await["generation"], 6);

    let introspect = |token: String| {
        let w = &w;
        async move {
            w.http
                .form(
                    &w.server.url("/oauth/introspect"),
                    &[("token", token.as_str())],
                    Some(&w.backend),
                )
                .await
        }
    };
    assert_eq!(introspect(access.clone()).await.1["active"], true);

    // Generation 1 again, long after generation 3 exists: theft.
    let (status, json) = w.refresh(&tokens[0]).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (400, Some("invalid_grant")),
        "{json}"
    );
    let session = w.session(&sid).await;
    assert_eq!(session["revoked_reason"], "reuse_detected", "{session}");
    let (status, _) = w.refresh(tokens.last().expect("latest")).await;
    assert_eq!(status, 400, "the whole family is revoked");
    assert_eq!(
        introspect(access).await.1,
        serde_json::json!({"active": false})
    );

    let (status, audit) = w
        .http
        .json(
            Method::GET,
            &w.server.url(&format!("/v1/audit?session={sid}")),
            None,
            &w.backend,
        )
        .await;
    assert_eq!(status, 200);
    let kinds: Vec<&str> = audit["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"session.opened") && kinds.contains(&"session.reuse_detected"),
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "session.refreshed").count(),
        5,
        "{kinds:?}"
    );
}

async fn sixty_four_racing_refreshes_advance_exactly_one_generation(backend: Backend) {
    let w = Arc::new(
        world(
            backend,
            "e2e-race",
            &[("TESSERA_SESSIONS__REFRESH_GRACE", "1s")],
        )
        .await,
    );
    let opened = w.open("bob").await;
    let sid = s(&opened["session_id"]);
    let token = s(&opened["refresh_token"]);

    // 63 other sessions refresh in the same burst, so the racers share
    // group-commit batches with rotations that must all win.
    let mut others = Vec::new();
    for i in 0..63 {
        let other = w.open(&format!("bystander-{i}")).await;
        others.push((s(&other["session_id"]), s(&other["refresh_token"])));
    }
    let bystanders: Vec<_> = others
        .iter()
        .map(|(_, token)| {
            let (w, token) = (w.clone(), token.clone());
            tokio::spawn(async move { w.refresh(&token).await })
        })
        .collect();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (w, token) = (w.clone(), token.clone());
            tokio::spawn(async move { w.refresh(&token).await })
        })
        .collect();
    for task in bystanders {
        let (status, json) = task.await.expect("join");
        assert_eq!(status, 200, "a bystander's refresh: {json}");
    }
    for (sid, _) in &others {
        assert_eq!(w.session(sid).await["generation"], 2, "bystander {sid}");
    }
    let mut next = None;
    let mut refused = 0;
    for task in tasks {
        let (status, json) = task.await.expect("join");
        match status {
            200 => {
                let got = s(&json["refresh_token"]);
                assert_eq!(
                    next.get_or_insert_with(|| got.clone()),
                    &got,
                    "every success hands out the same next token"
                );
            }
            400 => {
                assert_eq!(json["error"], "invalid_grant");
                refused += 1;
            }
            other => panic!("unexpected {other}: {json}"),
        }
    }
    let session = w.session(&sid).await;
    assert_eq!(
        session["generation"], 2,
        "exactly one advance ({refused} refused)"
    );
    assert!(
        session["revoked_at"].is_null(),
        "the race did not revoke the session"
    );
    let next = next.expect("at least the winner succeeded");
    assert_ne!(next, token);

    // After the grace window, the same (now previous) token is theft.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, json) = w.refresh(&token).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(w.session(&sid).await["revoked_reason"], "reuse_detected");
    assert_eq!(w.refresh(&next).await.0, 400, "family revoked");
}

async fn forged_foreign_and_garbage_tokens_change_no_session(backend: Backend) {
    let w = world(backend, "e2e-forged", &[]).await;
    let opened = w.open("carol").await;
    let sid = s(&opened["session_id"]);
    let token = s(&opened["refresh_token"]);
    let before = w.session(&sid).await;

    let mut flipped = token.clone().into_bytes();
    let at = flipped.len() - 3; // inside the MAC
    flipped[at] = if flipped[at] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    // A well-formed token for this session id, MAC'd under another secret.
    let session_bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&sid[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    let mut id = [0u8; 16];
    id.copy_from_slice(&session_bytes);
    let foreign = tessera_core::refresh::RefreshToken {
        session: id,
        generation: 1,
    }
    .encode(&tessera_core::RefreshSecret::from_bytes([42; 32]));
    for bad in [
        flipped.as_str(),
        foreign.as_str(),
        "garbage",
        "trt_AAAA",
        &"A".repeat(4000),
    ] {
        let (status, json) = w.refresh(bad).await;
        assert_eq!(
            (status, json["error"].as_str()),
            (400, Some("invalid_grant")),
            "{bad:.16}: {json}"
        );
    }
    assert_eq!(w.session(&sid).await, before, "no session changed");
    assert_eq!(
        w.refresh(&token).await.0,
        200,
        "the genuine token still works"
    );
}

async fn bad_input_over_http_is_a_4xx_never_a_5xx(backend: Backend) {
    let w = world(backend, "e2e-bad", &[]).await;
    let opened = w.open("dave").await;
    let sid = s(&opened["session_id"]);
    let before = w.session(&sid).await;
    // No connection reuse: a case the server refused mid-body (413) must not
    // leave the next case a half-closed pooled connection.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");

    let oversized = "a".repeat(128 * 1024);
    let cases: Vec<(&str, reqwest::RequestBuilder, u16)> = vec![
        (
            "oversized token body",
            http.post(w.server.url("/oauth/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!(
                    "grant_type=refresh_token&refresh_token={oversized}"
                )),
            413,
        ),
        (
            "oversized sessions body",
            http.post(w.server.url("/v1/sessions"))
                .basic_auth(&w.backend.id, w.backend.secret.as_deref())
                .header("content-type", "application/json")
                .body(format!(r#"{{"subject":"{oversized}"}}"#)),
            413,
        ),
        (
            "token as JSON",
            http.post(w.server.url("/oauth/token"))
                .header("content-type", "application/json")
                .body("{}"),
            415,
        ),
        (
            "malformed JSON",
            http.post(w.server.url("/v1/sessions"))
                .basic_auth(&w.backend.id, w.backend.secret.as_deref())
                .header("content-type", "application/json")
                .body("{\"subject\":"),
            400,
        ),
        (
            "unknown grant",
            http.post(w.server.url("/oauth/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("grant_type=magic&client_id={}", w.spa.id)),
            400,
        ),
        (
            "wrong secret",
            http.post(w.server.url("/v1/sessions"))
                .basic_auth(&w.backend.id, Some("nope"))
                .header("content-type", "application/json")
                .body("{\"subject\":\"x\"}"),
            401,
        ),
        (
            "public client with Basic",
            http.post(w.server.url("/oauth/token"))
                .basic_auth(&w.spa.id, Some("x"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=refresh_token&refresh_token=trt_x"),
            401,
        ),
        (
            "unknown session",
            http.delete(
                w.server
                    .url("/v1/sessions/00000000000000000000000000000000"),
            )
            .basic_auth(&w.backend.id, w.backend.secret.as_deref()),
            404,
        ),
        ("unknown path", http.get(w.server.url("/v1/nothing")), 404),
    ];
    for (name, request, want) in cases {
        match request.send().await {
            Ok(response) => assert_eq!(response.status().as_u16(), want, "{name}"),
            // A server refusing an oversized body by its Content-Length may
            // answer 413 and close before the client has written it all; the
            // client then sees the reset instead of the answer. (A crash
            // would fail every later case and the final checks.)
            Err(e) if want == 413 => eprintln!("{name}: connection closed early: {e}"),
            Err(e) => panic!("{name}: {e}"),
        }
    }
    assert_eq!(
        w.session(&sid).await,
        before,
        "no bad request changed the session"
    );

    // The operational endpoints and discovery answer.
    for path in [
        "/healthz",
        "/readyz",
        "/.well-known/oauth-authorization-server",
        "/.well-known/jwks.json",
        "/.well-known/paserk.json",
    ] {
        let response = http.get(w.server.url(path)).send().await.expect("send");
        assert_eq!(response.status().as_u16(), 200, "{path}");
    }
}

// Every test above, on SQLite and on PostgreSQL.
tessera_testkit::on_both_backends!(
    open_refresh_five_times_then_reuse_revokes_the_family,
    sixty_four_racing_refreshes_advance_exactly_one_generation,
    forged_foreign_and_garbage_tokens_change_no_session,
    bad_input_over_http_is_a_4xx_never_a_5xx,
);
