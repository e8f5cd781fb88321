//! DPoP (RFC 9449) at the token endpoint, black-box against the real
//! `tessera serve` on both backends: sessions bound from the first token,
//! refreshes that need a proof of the session's key, every way a proof can
//! be wrong (each with its exact error, none ending the session), replay
//! (also across instances sharing PostgreSQL), the server nonce, and the
//! per-client `tokens.require_dpop` policy.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_core::dpop::{ProofClaims, jwk_thumbprint, sign_proof};
use tessera_core::{Algorithm, Clock, NumericDate, SigningKey, SystemClock};
use tessera_testkit::on_both_backends;
use tessera_testkit::postgres::{TestDatabase, server_url};
use tessera_testkit::server::{Backend, Http, RegisteredClient, Server, form_encode};

on_both_backends!(
    a_bound_session_refreshes_only_with_proofs_of_its_key,
    a_public_clients_proof_binds_an_unbound_session,
    the_server_nonce_is_required_then_satisfied,
    require_dpop_is_enforced_per_client,
);

/// A client's DPoP key.
struct ClientKey(SigningKey);

impl ClientKey {
    fn new(alg: Algorithm) -> Self {
        ClientKey(SigningKey::generate(alg).expect("key"))
    }

    fn jkt(&self) -> String {
        jwk_thumbprint(self.0.verification_key())
    }

    /// A proof for `method url`, made `age_secs` ago, with an optional nonce.
    fn proof_with(&self, method: &str, url: &str, age_secs: i64, nonce: Option<&str>) -> String {
        let now = SystemClock.now().to_numeric_date().unix();
        let jti = tessera_core::b64::encode(tessera_core::random::<16>().expect("random"));
        sign_proof(
            &self.0,
            &ProofClaims {
                method,
                url,
                iat: NumericDate::from_unix(now - age_secs),
                jti: &jti,
                access_token: None,
                nonce,
            },
        )
        .expect("proof")
    }

    /// A fresh proof for `POST` to `server`'s token endpoint.
    fn proof(&self, server: &Server) -> String {
        self.proof_with("POST", &server.url("/oauth/token"), 0, None)
    }
}

/// One `/oauth/token` answer: status, body, and the `DPoP-Nonce` header.
struct Answer {
    status: u16,
    body: Value,
    nonce: Option<String>,
}

impl Answer {
    /// Asserts an RFC 6749 error with this code, its description containing `detail`.
    fn refused(&self, code: &str, detail: &str, what: &str) {
        assert_eq!(self.status, 400, "{what}: {}", self.body);
        assert_eq!(self.body["error"], code, "{what}: {}", self.body);
        let description = self.body["error_description"].as_str().unwrap_or_default();
        assert!(
            description.contains(detail),
            "{what}: {description:?} should mention {detail:?}"
        );
    }

    fn refresh_token(&self) -> String {
        assert_eq!(self.status, 200, "{}", self.body);
        self.body["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_owned()
    }
}

/// `POST /oauth/token` on `server` with a form and optional DPoP proof.
async fn token(
    server: &Server,
    fields: &[(&str, &str)],
    basic: Option<&RegisteredClient>,
    proof: Option<&str>,
) -> Answer {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", form_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut request = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(client) = basic {
        request = request.basic_auth(&client.id, client.secret.as_deref());
    }
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let nonce = response
        .headers()
        .get("dpop-nonce")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body =
        serde_json::from_slice(&response.bytes().await.expect("body")).unwrap_or(Value::Null);
    Answer {
        status,
        body,
        nonce,
    }
}

async fn refresh(
    server: &Server,
    app: &RegisteredClient,
    refresh_token: &str,
    proof: Option<&str>,
) -> Answer {
    token(
        server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", &app.id),
        ],
        None,
        proof,
    )
    .await
}

/// The claims of a JWT (not verified: the tests only read `cnf`).
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&tessera_core::b64::decode(payload).expect("b64")).expect("json")
}

/// Asserts a DPoP-bound answer: `token_type` DPoP, `cnf.jkt` = `jkt`.
fn assert_bound(body: &Value, jkt: &str) {
    assert_eq!(body["token_type"], "DPoP", "{body}");
    let access = body["access_token"].as_str().expect("access_token");
    assert_eq!(claims(access)["cnf"]["jkt"], jkt, "{body}");
}

struct World {
    server: Server,
    http: Http,
    app: RegisteredClient,
    backend: RegisteredClient,
}

async fn world(backend: Backend, name: &str, settings: &[(&str, &str)]) -> World {
    let server = Server::start_on(backend, name, settings).await;
    let app = server.create_client_with("app", "public", "refresh_token", &["--audiences", "api"]);
    let backend = server.create_client_with(
        "backend",
        "confidential",
        "sessions",
        &["--sessions-for", &app.id],
    );
    World {
        server,
        http: Http::new(),
        app,
        backend,
    }
}

impl World {
    /// Opens a session for the app, bound to `jkt` when given.
    async fn open(&self, subject: &str, jkt: Option<&str>) -> (u16, Value) {
        let mut body = json!({ "subject": subject, "audience": ["api"], "client_id": self.app.id });
        if let Some(jkt) = jkt {
            body["dpop_jkt"] = jkt.into();
        }
        self.http
            .json(
                Method::POST,
                &self.server.url("/v1/sessions"),
                Some(body),
                &self.backend,
            )
            .await
    }

    async fn live_sessions(&self, subject: &str) -> usize {
        let (status, body) = self
            .http
            .json(
                Method::GET,
                &self.server.url(&format!("/v1/sessions?subject={subject}")),
                None,
                &self.backend,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["sessions"].as_array().expect("sessions").len()
    }
}

async fn a_bound_session_refreshes_only_with_proofs_of_its_key(backend: Backend) {
    let w = world(backend, "dpop-bound-session", &[]).await;
    for (alg, subject) in [
        (Algorithm::EdDsa, "ed-user"),
        (Algorithm::Es256, "p256-user"),
    ] {
        let key = ClientKey::new(alg);
        let jkt = key.jkt();
        let (status, opened) = w.open(subject, Some(&jkt)).await;
        assert_eq!(status, 201, "{opened}");
        assert_bound(&opened, &jkt);
        let mut current = opened["refresh_token"].as_str().expect("rt").to_owned();

        // A good proof: bound tokens, rotated.
        let proof = key.proof(&w.server);
        let answer = refresh(&w.server, &w.app, &current, Some(&proof)).await;
        assert_bound(&answer.body, &jkt);
        let previous = current.clone();
        current = answer.refresh_token();

        // Every wrong proof, with its exact error; none rotates or ends the session.
        let token_url = w.server.url("/oauth/token");
        let other = ClientKey::new(Algorithm::EdDsa);
        let cases: Vec<(&str, Option<String>, &str, &str)> = vec![
            (
                "no proof",
                None,
                "invalid_dpop_proof",
                "send a DPoP proof of its key",
            ),
            (
                "a proof signed by another key",
                Some(other.proof(&w.server)),
                "invalid_dpop_proof",
                "not the key this refresh token is bound to",
            ),
            (
                "wrong htm",
                Some(key.proof_with("GET", &token_url, 0, None)),
                "invalid_dpop_proof",
                "htm",
            ),
            (
                "wrong htu",
                Some(key.proof_with("POST", &w.server.url("/oauth/revoke"), 0, None)),
                "invalid_dpop_proof",
                "htu",
            ),
            (
                "another host in htu",
                Some(key.proof_with("POST", "https://attacker.example/oauth/token", 0, None)),
                "invalid_dpop_proof",
                "htu",
            ),
            (
                "stale iat",
                Some(key.proof_with("POST", &token_url, 120, None)),
                "invalid_dpop_proof",
                "iat",
            ),
            (
                "iat in the future",
                Some(key.proof_with("POST", &token_url, -60, None)),
                "invalid_dpop_proof",
                "iat",
            ),
            (
                "the replayed proof",
                Some(proof.clone()),
                "invalid_dpop_proof",
                "already used",
            ),
            (
                "not a JWT",
                Some("not.a.proof".into()),
                "invalid_dpop_proof",
                "malformed",
            ),
        ];
        for (what, proof, code, detail) in &cases {
            refresh(&w.server, &w.app, &current, proof.as_deref())
                .await
                .refused(code, detail, what);
        }
        // The previous token too, without the key: refused, not a reuse verdict.
        refresh(&w.server, &w.app, &previous, Some(&other.proof(&w.server)))
            .await
            .refused("invalid_dpop_proof", "not the key", "old token, wrong key");
        refresh(&w.server, &w.app, &previous, None).await.refused(
            "invalid_dpop_proof",
            "DPoP-bound",
            "old token, no proof",
        );
        assert_eq!(
            w.live_sessions(subject).await,
            1,
            "{subject}: nothing ended"
        );

        // The session is intact: the right key still refreshes it.
        let answer = refresh(&w.server, &w.app, &current, Some(&key.proof(&w.server))).await;
        assert_bound(&answer.body, &jkt);
        current = answer.refresh_token();

        // Real reuse, by the key holder, still ends the session.
        refresh(&w.server, &w.app, &previous, Some(&key.proof(&w.server)))
            .await
            .refused("invalid_grant", "invalid, expired or revoked", "reuse");
        assert_eq!(
            w.live_sessions(subject).await,
            0,
            "{subject}: reuse ended it"
        );
        refresh(&w.server, &w.app, &current, Some(&key.proof(&w.server)))
            .await
            .refused(
                "invalid_grant",
                "invalid, expired or revoked",
                "after reuse",
            );
    }

    // A malformed thumbprint is refused when the session opens.
    let (status, body) = w.open("carol", Some("not-a-thumbprint")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("dpop_jkt"),
        "{body}"
    );
}

async fn a_public_clients_proof_binds_an_unbound_session(backend: Backend) {
    let w = world(backend, "dpop-binds-unbound", &[]).await;
    let (status, opened) = w.open("dave", None).await;
    assert_eq!(status, 201, "{opened}");
    assert_eq!(opened["token_type"], "Bearer");
    assert!(
        claims(opened["access_token"].as_str().expect("at"))
            .get("cnf")
            .is_none()
    );
    let first = opened["refresh_token"].as_str().expect("rt").to_owned();
    // Bearer refreshes work while the session is unbound.
    let plain = refresh(&w.server, &w.app, &first, None).await;
    assert_eq!(plain.body["token_type"], "Bearer", "{}", plain.body);
    let second = plain.refresh_token();

    let key = ClientKey::new(Algorithm::Es256);
    let bound = refresh(&w.server, &w.app, &second, Some(&key.proof(&w.server))).await;
    assert_bound(&bound.body, &key.jkt());
    let third = bound.refresh_token();
    // From now on the session is the key's.
    refresh(&w.server, &w.app, &third, None).await.refused(
        "invalid_dpop_proof",
        "DPoP-bound",
        "no proof after binding",
    );
    refresh(
        &w.server,
        &w.app,
        &third,
        Some(&ClientKey::new(Algorithm::Es256).proof(&w.server)),
    )
    .await
    .refused(
        "invalid_dpop_proof",
        "not the key",
        "another key after binding",
    );
    let again = refresh(&w.server, &w.app, &third, Some(&key.proof(&w.server))).await;
    assert_bound(&again.body, &key.jkt());
    assert_eq!(w.live_sessions("dave").await, 1);
    let (_, listed) = w
        .http
        .json(
            Method::GET,
            &w.server.url("/v1/sessions?subject=dave"),
            None,
            &w.backend,
        )
        .await;
    assert_eq!(
        listed["sessions"][0]["dpop_jkt"],
        key.jkt(),
        "the binding is visible"
    );
}

async fn the_server_nonce_is_required_then_satisfied(backend: Backend) {
    let w = world(
        backend,
        "dpop-nonce",
        &[("TESSERA_DPOP__REQUIRE_NONCE", "true")],
    )
    .await;
    let key = ClientKey::new(Algorithm::EdDsa);
    let (status, opened) = w.open("erin", Some(&key.jkt())).await;
    assert_eq!(status, 201, "{opened}");
    let current = opened["refresh_token"].as_str().expect("rt").to_owned();
    let token_url = w.server.url("/oauth/token");

    // No nonce: use_dpop_nonce, with a nonce to use.
    let first = refresh(&w.server, &w.app, &current, Some(&key.proof(&w.server))).await;
    first.refused("use_dpop_nonce", "nonce", "no nonce");
    let nonce = first.nonce.clone().expect("a DPoP-Nonce header");
    // A made-up nonce is no better.
    refresh(
        &w.server,
        &w.app,
        &current,
        Some(&key.proof_with("POST", &token_url, 0, Some("made-up"))),
    )
    .await
    .refused("use_dpop_nonce", "nonce", "a made-up nonce");
    assert_eq!(w.live_sessions("erin").await, 1, "nothing ended");

    // With the server's nonce: accepted, and a nonce comes back for next time.
    let answer = refresh(
        &w.server,
        &w.app,
        &current,
        Some(&key.proof_with("POST", &token_url, 0, Some(&nonce))),
    )
    .await;
    assert_bound(&answer.body, &key.jkt());
    assert!(answer.nonce.is_some(), "a fresh nonce on success");
}

async fn require_dpop_is_enforced_per_client(backend: Backend) {
    let w = world(backend, "dpop-required", &[]).await;
    let strict_app = w.server.create_client_with(
        "strict-app",
        "public",
        "refresh_token",
        &[
            "--audiences",
            "api",
            "--policy",
            r#"{"tokens.require_dpop": true}"#,
        ],
    );
    let opener = w.server.create_client_with(
        "opener",
        "confidential",
        "sessions",
        &["--sessions-for", &strict_app.id],
    );
    let sessions_url = w.server.url("/v1/sessions");
    let open = |jkt: Option<String>| {
        let mut body =
            json!({ "subject": "frank", "client_id": strict_app.id, "audience": ["api"] });
        if let Some(jkt) = jkt {
            body["dpop_jkt"] = jkt.into();
        }
        w.http
            .json(Method::POST, &sessions_url, Some(body), &opener)
    };
    let (status, body) = open(None).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("tokens.require_dpop"),
        "{body}"
    );
    let key = ClientKey::new(Algorithm::EdDsa);
    let (status, opened) = open(Some(key.jkt())).await;
    assert_eq!(status, 201, "{opened}");
    assert_bound(&opened, &key.jkt());

    // A service that must use DPoP for client credentials.
    let service = w.server.create_client_with(
        "service",
        "confidential",
        "client_credentials",
        &[
            "--audiences",
            "api",
            "--policy",
            r#"{"tokens.require_dpop": true}"#,
        ],
    );
    let grant = [("grant_type", "client_credentials"), ("audience", "api")];
    token(&w.server, &grant, Some(&service), None)
        .await
        .refused("invalid_dpop_proof", "tokens.require_dpop", "no proof");
    let answer = token(
        &w.server,
        &grant,
        Some(&service),
        Some(&key.proof(&w.server)),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_bound(&answer.body, &key.jkt());
    // Other clients may still use bearer tokens.
    let (status, opened) = w.open("grace", None).await;
    assert_eq!(status, 201, "{opened}");
    assert_eq!(opened["token_type"], "Bearer");
}

/// A proof is accepted once across every instance sharing a PostgreSQL
/// database: the replay record lives in the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_replayed_on_another_instance_is_refused() {
    let name = "dpop_replay_across_instances";
    let Some(admin) = server_url(name) else {
        return;
    };
    let db = TestDatabase::create(&admin, name).await;
    let master = tessera_core::MasterKey::generate().expect("master");
    let master = master.to_base64().to_string();
    // One public issuer URL for both, as behind a load balancer: a proof
    // names the same htu whichever instance answers.
    let issuer = "https://auth.tessera.test";
    let settings = [
        ("TESSERA_STORE_URL", db.url.as_str()),
        ("TESSERA_MASTER_KEY", master.as_str()),
        ("TESSERA_ISSUER", issuer),
    ];
    let a = Server::start("dpop-replay-a", &settings).await;
    let b = Server::start("dpop-replay-b", &settings).await;
    let app = a.create_client_with("app", "public", "refresh_token", &["--audiences", "api"]);
    let backend = a.create_client_with(
        "backend",
        "confidential",
        "sessions",
        &["--sessions-for", &app.id],
    );
    let key = ClientKey::new(Algorithm::EdDsa);
    let (status, opened) = Http::new()
        .json(
            Method::POST,
            &a.url("/v1/sessions"),
            Some(json!({ "subject": "hana", "client_id": app.id, "audience": ["api"], "dpop_jkt": key.jkt() })),
            &backend,
        )
        .await;
    assert_eq!(status, 201, "{opened}");
    let proof = key.proof_with("POST", &format!("{issuer}/oauth/token"), 0, None);
    let answer = refresh(
        &a,
        &app,
        opened["refresh_token"].as_str().expect("rt"),
        Some(&proof),
    )
    .await;
    let next = answer.refresh_token();
    refresh(&b, &app, &next, Some(&proof)).await.refused(
        "invalid_dpop_proof",
        "already used",
        "replayed on instance b",
    );
    // A fresh proof on b works: the session was not touched.
    let fresh = key.proof_with("POST", &format!("{issuer}/oauth/token"), 0, None);
    assert_bound(
        &refresh(&b, &app, &next, Some(&fresh)).await.body,
        &key.jkt(),
    );
    drop((a, b));
    db.drop_now().await;
}

/// The README's DPoP walk-through, on the real binaries: `tessera dpop`
/// makes the key and every proof; the session is bound from its first
/// token; the example resource server (`--dpop-origin`) accepts the token
/// only with a proof over it (`ath`) and refuses it as a bearer token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_dpop_flow_works_with_the_cli_and_the_example_server() {
    let w = world(Backend::Sqlite, "dpop-readme-flow", &[]).await;
    let dir = tessera_testkit::scratch_dir("dpop-readme-key");
    let key = dir.join("client-key.json");
    let key = key.to_string_lossy();
    let cli = tessera_testkit::tessera_stdout;
    let jkt = cli(&["dpop", "key", "--alg", "ES256", "--out", &key]);
    let (status, opened) = w.open("ivy", Some(&jkt)).await;
    assert_eq!(status, 201, "{opened}");
    assert_bound(&opened, &jkt);
    let token_url = w.server.url("/oauth/token");
    let proof = cli(&["dpop", "proof", "--key", &key, "--url", &token_url]);
    let refreshed = refresh(
        &w.server,
        &w.app,
        opened["refresh_token"].as_str().expect("rt"),
        Some(&proof),
    )
    .await;
    assert_bound(&refreshed.body, &jkt);
    let access = refreshed.body["access_token"].as_str().expect("at");

    let rs = tessera_testkit::ResourceServer::start(
        &w.server.base,
        "api",
        &["--dpop-origin", "http://api.example"],
    )
    .await;
    let http = reqwest::Client::new();
    let me_url = "http://api.example/me";
    let call = |scheme: &'static str, proof: Option<String>| {
        let mut request = http
            .get(format!("{}/me", rs.base))
            .header("authorization", format!("{scheme} {access}"));
        if let Some(proof) = proof {
            request = request.header("dpop", proof);
        }
        request.send()
    };
    let proof = cli(&[
        "dpop",
        "proof",
        "--key",
        &key,
        "--method",
        "GET",
        "--url",
        me_url,
        "--access-token",
        access,
    ]);
    let ok = call("DPoP", Some(proof.clone())).await.expect("me");
    assert_eq!(ok.status(), 200);
    let body: Value = serde_json::from_slice(&ok.bytes().await.expect("body")).expect("json");
    assert_eq!(body["sub"], "ivy", "{body}");
    // The same proof twice, the token as a bearer token, a proof for another path.
    let replay = call("DPoP", Some(proof)).await.expect("me");
    assert_eq!(replay.status(), 401, "a replayed proof");
    let bearer = call("Bearer", None).await.expect("me");
    assert_eq!(bearer.status(), 401, "a bound token as a bearer token");
    let elsewhere = cli(&[
        "dpop",
        "proof",
        "--key",
        &key,
        "--method",
        "GET",
        "--url",
        "http://api.example/admin",
        "--access-token",
        access,
    ]);
    assert_eq!(
        call("DPoP", Some(elsewhere)).await.expect("me").status(),
        401,
        "a proof for another URL"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
