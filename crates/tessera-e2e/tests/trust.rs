//! Trust boundaries, black-box against the real `tessera serve` on both
//! backends: each backend sees only its own sessions; each client gets only
//! its allowed scopes and audiences; clients are disabled, enabled, have
//! their secret rotated and are deleted; introspection answers only the
//! token's holder; a flood of bad credentials costs little.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tessera_testkit::on_both_backends;
use tessera_testkit::server::{Backend, Http, RegisteredClient, Server};

on_both_backends!(
    a_backend_cannot_see_or_change_another_backends_sessions,
    a_client_gets_only_its_allowed_scopes_and_audiences,
    disable_enable_rotate_and_delete_behave_as_documented,
    introspection_answers_only_the_tokens_holder,
    admin_commands_refuse_a_missing_store_and_create_nothing,
);

/// A server with two backends (A, B) that may both open sessions for one
/// SPA, an admin, and a service client for client credentials.
struct World {
    server: Server,
    http: Http,
    spa: RegisteredClient,
    a: RegisteredClient,
    b: RegisteredClient,
    admin: RegisteredClient,
    service: RegisteredClient,
}

async fn world(backend: Backend, name: &str) -> World {
    let server = Server::start_on(backend, name, &[]).await;
    let spa = server.create_client_with(
        "spa",
        "public",
        "refresh_token",
        &["--scopes", "read,write", "--audiences", "api"],
    );
    let a = server.create_client_with(
        "backend-a",
        "confidential",
        "sessions,introspect",
        &["--sessions-for", &spa.id],
    );
    let b = server.create_client_with(
        "backend-b",
        "confidential",
        "sessions,introspect",
        &["--sessions-for", &spa.id],
    );
    let admin = server.create_client("admin", "confidential", "admin");
    let service = server.create_client_with(
        "service",
        "confidential",
        "client_credentials,introspect",
        &["--scopes", "read", "--audiences", "api"],
    );
    World {
        server,
        http: Http::new(),
        spa,
        a,
        b,
        admin,
        service,
    }
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_owned()
}

impl World {
    async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        who: &RegisteredClient,
    ) -> (u16, Value) {
        self.http
            .json(method, &self.server.url(path), body, who)
            .await
    }

    async fn open_by(&self, backend: &RegisteredClient, subject: &str) -> Value {
        let (status, body) = self
            .api(
                Method::POST,
                "/v1/sessions",
                Some(json!({"subject": subject, "client_id": self.spa.id, "audience": ["api"], "scope": "read write"})),
                backend,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    async fn refresh(&self, token: &str, extra: &[(&str, &str)]) -> (u16, Value) {
        let mut fields = vec![
            ("grant_type", "refresh_token"),
            ("client_id", self.spa.id.as_str()),
            ("refresh_token", token),
        ];
        fields.extend_from_slice(extra);
        self.http
            .form(&self.server.url("/oauth/token"), &fields, None)
            .await
    }

    async fn client_credentials(
        &self,
        who: &RegisteredClient,
        extra: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut fields = vec![("grant_type", "client_credentials")];
        fields.extend_from_slice(extra);
        self.http
            .form(&self.server.url("/oauth/token"), &fields, Some(who))
            .await
    }

    async fn introspect(&self, who: &RegisteredClient, token: &str) -> (u16, Value) {
        self.http
            .form(
                &self.server.url("/oauth/introspect"),
                &[("token", token)],
                Some(who),
            )
            .await
    }

    fn with_secret(&self, client: &RegisteredClient, secret: &str) -> RegisteredClient {
        RegisteredClient {
            id: client.id.clone(),
            secret: Some(secret.to_owned()),
        }
    }
}

async fn a_backend_cannot_see_or_change_another_backends_sessions(backend: Backend) {
    let w = world(backend, "trust-own").await;
    let opened = w.open_by(&w.a, "alice").await;
    let sid = text(&opened["session_id"]);
    let refresh = text(&opened["refresh_token"]);

    // B: the session does not exist, in the very words an unknown one gets.
    let (status, unknown) = w
        .api(
            Method::GET,
            "/v1/sessions/0123456789abcdef0123456789abcdef",
            None,
            &w.b,
        )
        .await;
    assert_eq!(status, 404, "{unknown}");
    let elevate = json!({"acr": "mfa", "amr": ["otp"]});
    for (method, path, body) in [
        (Method::GET, format!("/v1/sessions/{sid}"), None),
        (Method::DELETE, format!("/v1/sessions/{sid}"), None),
        (
            Method::POST,
            format!("/v1/sessions/{sid}/elevate"),
            Some(elevate.clone()),
        ),
    ] {
        let (status, body) = w.api(method.clone(), &path, body, &w.b).await;
        assert_eq!((status, &body), (404, &unknown), "B {method} {path}");
    }
    let (status, list) = w
        .api(Method::GET, "/v1/sessions?subject=alice", None, &w.b)
        .await;
    assert_eq!(
        (status, list["sessions"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{list}"
    );
    let (status, audit) = w
        .api(Method::GET, &format!("/v1/audit?session={sid}"), None, &w.b)
        .await;
    assert_eq!(
        (status, audit["records"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{audit}"
    );
    let (status, all_audit) = w.api(Method::GET, "/v1/audit", None, &w.b).await;
    assert_eq!(status, 200);
    assert!(
        all_audit["records"]
            .as_array()
            .expect("records")
            .iter()
            .all(|r| r["session_id"] != json!(sid)),
        "B's unfiltered audit holds nothing of A's: {all_audit}"
    );
    let (status, ended) = w
        .api(Method::DELETE, "/v1/sessions?subject=alice", None, &w.b)
        .await;
    assert_eq!((status, &ended), (200, &json!({"revoked": 0})));
    // Nor may B reach admin routes.
    for path in ["/v1/clients", "/v1/keys"] {
        let (status, body) = w.api(Method::GET, path, None, &w.b).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("forbidden")),
            "{path}: {body}"
        );
    }
    // B may open sessions only for clients on its list.
    let (status, body) = w
        .api(
            Method::POST,
            "/v1/sessions",
            Some(json!({"subject": "alice", "client_id": w.service.id})),
            &w.b,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );

    // A sees its session; elevate gives an access token only, and the app's
    // refresh token keeps working.
    let (status, shown) = w
        .api(Method::GET, &format!("/v1/sessions/{sid}"), None, &w.a)
        .await;
    assert_eq!(
        (status, shown["opened_by"].as_str()),
        (200, Some(w.a.id.as_str())),
        "{shown}"
    );
    let (status, elevated) = w
        .api(
            Method::POST,
            &format!("/v1/sessions/{sid}/elevate"),
            Some(elevate),
            &w.a,
        )
        .await;
    assert_eq!(status, 200, "{elevated}");
    assert!(elevated.get("refresh_token").is_none(), "{elevated}");
    assert!(elevated["access_token"].is_string());
    let claims = tessera_testkit::jwt_payload(&text(&elevated["access_token"]));
    assert_eq!(
        (claims["acr"].as_str(), &claims["amr"]),
        (Some("mfa"), &json!(["otp"]))
    );
    let (status, next) = w.refresh(&refresh, &[]).await;
    assert_eq!(status, 200, "the owner's refresh token still works: {next}");

    // An admin sees and changes every backend's sessions.
    let (status, listed) = w
        .api(Method::GET, "/v1/sessions?subject=alice", None, &w.admin)
        .await;
    assert_eq!(
        (status, listed["sessions"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    let (status, audit) = w
        .api(
            Method::GET,
            &format!("/v1/audit?session={sid}"),
            None,
            &w.admin,
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        audit["records"].as_array().expect("records").len() >= 3,
        "{audit}"
    );
    let (status, _) = w
        .api(
            Method::DELETE,
            &format!("/v1/sessions/{sid}"),
            None,
            &w.admin,
        )
        .await;
    assert_eq!(status, 204);
    let (status, shown) = w
        .api(Method::GET, &format!("/v1/sessions/{sid}"), None, &w.a)
        .await;
    assert_eq!(
        (status, shown["revoked_reason"].as_str()),
        (200, Some("revoked"))
    );
}

async fn a_client_gets_only_its_allowed_scopes_and_audiences(backend: Backend) {
    let w = world(backend, "trust-scopes").await;
    // Client credentials: scope and audience within the registration, or refused.
    let (status, ok) = w
        .client_credentials(&w.service, &[("scope", "read"), ("audience", "api")])
        .await;
    assert_eq!((status, ok["scope"].as_str()), (200, Some("read")), "{ok}");
    for (extra, code) in [
        (&[("scope", "read write")][..], "invalid_scope"),
        (&[("scope", "admin")][..], "invalid_scope"),
        (&[("audience", "billing")][..], "invalid_target"),
    ] {
        let (status, body) = w.client_credentials(&w.service, extra).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(code)),
            "{extra:?}: {body}"
        );
    }

    // Sessions: checked against the session's client (the SPA).
    for (body, code) in [
        (
            json!({"subject": "bo", "client_id": w.spa.id, "scope": "read delete"}),
            "invalid_scope",
        ),
        (
            json!({"subject": "bo", "client_id": w.spa.id, "audience": ["api", "billing"]}),
            "invalid_target",
        ),
    ] {
        let (status, answer) = w
            .api(Method::POST, "/v1/sessions", Some(body.clone()), &w.a)
            .await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some(code)),
            "{body}: {answer}"
        );
        assert!(answer["message"].is_string());
    }
    let (status, list) = w
        .api(Method::GET, "/v1/sessions?subject=bo", None, &w.admin)
        .await;
    assert_eq!(
        (status, list["sessions"].as_array().map(Vec::len)),
        (200, Some(0)),
        "nothing opened"
    );

    // Refresh: a narrower scope is granted; a wider one refused, and the
    // refused request spends nothing.
    let opened = w.open_by(&w.a, "bo").await;
    let (status, narrow) = w
        .refresh(&text(&opened["refresh_token"]), &[("scope", "read")])
        .await;
    assert_eq!(
        (status, narrow["scope"].as_str()),
        (200, Some("read")),
        "{narrow}"
    );
    let token = text(&narrow["refresh_token"]);
    let (status, body) = w.refresh(&token, &[("scope", "read admin")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );
    let (status, full) = w.refresh(&token, &[]).await;
    assert_eq!(
        (status, full["scope"].as_str()),
        (200, Some("read write")),
        "{full}"
    );

    // The SPA loses "write" (admin PATCH): its next token says so.
    let (status, body) = w
        .api(
            Method::PATCH,
            &format!("/v1/clients/{}", w.spa.id),
            Some(json!({"scopes": ["read"]})),
            &w.admin,
        )
        .await;
    assert_eq!((status, &body["scopes"]), (200, &json!(["read"])), "{body}");
    let (status, narrowed) = w.refresh(&text(&full["refresh_token"]), &[]).await;
    assert_eq!(
        (status, narrowed["scope"].as_str()),
        (200, Some("read")),
        "{narrowed}"
    );
}

async fn disable_enable_rotate_and_delete_behave_as_documented(backend: Backend) {
    let w = world(backend, "trust-lifecycle").await;
    let opened = w.open_by(&w.a, "cy").await;
    let refresh = text(&opened["refresh_token"]);
    let cc = |who: RegisteredClient| {
        let w = &w;
        async move { w.client_credentials(&who, &[]).await.0 }
    };
    assert_eq!(cc(w.service.clone()).await, 200);

    // Disable over HTTP: refused at once, by every grant and by introspection.
    let (status, body) = w
        .api(
            Method::POST,
            &format!("/v1/clients/{}/disable", w.service.id),
            None,
            &w.admin,
        )
        .await;
    assert_eq!((status, &body["enabled"]), (200, &json!(false)), "{body}");
    assert_eq!(cc(w.service.clone()).await, 401);
    let (status, body) = w.introspect(&w.service, "x").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, _) = w
        .api(
            Method::POST,
            &format!("/v1/clients/{}/enable", w.service.id),
            None,
            &w.admin,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(cc(w.service.clone()).await, 200, "enabled again");

    // Disable the SPA with the CLI (another process): refresh refused, the
    // session lives on; enable: it refreshes again.
    w.server.cli(&["clients", "disable", &w.spa.id]);
    let until = Instant::now() + Duration::from_secs(2);
    let refused = loop {
        let (status, body) = w.refresh(&refresh, &[]).await;
        if status != 200 || Instant::now() > until {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (refused.0, refused.1["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // No other path hands out its tokens or calls them active.
    let sid = text(&opened["session_id"]);
    let (status, body) = w
        .api(
            Method::POST,
            &format!("/v1/sessions/{sid}/elevate"),
            Some(json!({"acr": "mfa"})),
            &w.a,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    for token in [&refresh, &text(&opened["access_token"])] {
        let (status, body) = w.introspect(&w.a, token).await;
        assert_eq!(
            (status, &body),
            (200, &json!({"active": false})),
            "a disabled client's token"
        );
    }
    w.server.cli(&["clients", "enable", &w.spa.id]);
    let until = Instant::now() + Duration::from_secs(2);
    let next = loop {
        let (status, body) = w.refresh(&refresh, &[]).await;
        if status == 200 || Instant::now() > until {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(next.0, 200, "the session survived the disable: {}", next.1);

    // Rotate without overlap: the old secret stops at once.
    let (status, rotated) = w
        .api(
            Method::POST,
            &format!("/v1/clients/{}/rotate-secret", w.service.id),
            None,
            &w.admin,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = w.with_secret(&w.service, &text(&rotated["client_secret"]));
    assert_eq!(cc(w.service.clone()).await, 401, "old secret, no overlap");
    assert_eq!(cc(new.clone()).await, 200);
    // With an overlap (CLI): both work.
    let out = w.server.cli(&[
        "clients",
        "rotate-secret",
        &w.service.id,
        "--overlap",
        "1h",
        "--json",
    ]);
    let newer: Value = serde_json::from_str(out.trim()).expect("json");
    let newer = w.with_secret(&w.service, &text(&newer["client_secret"]));
    assert_eq!(cc(new.clone()).await, 200, "old secret inside its overlap");
    assert_eq!(cc(newer.clone()).await, 200);
    let (_, shown) = w
        .api(
            Method::GET,
            &format!("/v1/clients/{}", w.service.id),
            None,
            &w.admin,
        )
        .await;
    assert!(shown["previous_secret_expires_at"].is_i64(), "{shown}");
    assert!(
        shown.get("secret_hash").is_none() && !shown.to_string().contains("sha256:"),
        "{shown}"
    );

    // Delete needs a disabled client.
    let (status, body) = w
        .api(
            Method::DELETE,
            &format!("/v1/clients/{}", w.service.id),
            None,
            &w.admin,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("client_enabled")),
        "{body}"
    );
    let out = w.server.cli_output(&["clients", "delete", &w.service.id]);
    assert_eq!(out.status.code(), Some(1), "the CLI refuses too");

    // disable --end-sessions: backend A's sessions end, with events.
    let second = w.open_by(&w.a, "dee").await;
    let sid = text(&second["session_id"]);
    let out = w
        .server
        .cli(&["clients", "disable", &w.a.id, "--end-sessions", "--json"]);
    let out: Value = serde_json::from_str(out.trim()).expect("json");
    assert!(out["sessions_ended"].as_u64() >= Some(1), "{out}");
    let (_, shown) = w
        .api(Method::GET, &format!("/v1/sessions/{sid}"), None, &w.admin)
        .await;
    assert_eq!(shown["revoked_reason"], "revoked", "{shown}");
    let (_, feed) = w
        .http
        .send(
            w.http
                .request(Method::GET, &w.server.url("/v1/revocations?after=0")),
        )
        .await;
    assert!(
        feed["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["id"] == json!(sid)),
        "{feed}"
    );
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        let (status, _) = w
            .api(Method::GET, "/v1/sessions?subject=dee", None, &w.a)
            .await;
        if status == 401 {
            break;
        }
        assert!(Instant::now() < until, "a disabled backend is refused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Delete the disabled one: gone for good.
    let (status, _) = w
        .api(
            Method::POST,
            &format!("/v1/clients/{}/disable", w.service.id),
            None,
            &w.admin,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = w
        .api(
            Method::DELETE,
            &format!("/v1/clients/{}", w.service.id),
            None,
            &w.admin,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(cc(newer.clone()).await, 401);
    for (method, path) in [
        (Method::GET, format!("/v1/clients/{}", w.service.id)),
        (Method::POST, format!("/v1/clients/{}/enable", w.service.id)),
    ] {
        let (status, body) = w.api(method, &path, None, &w.admin).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some("client_not_found")),
            "{path}"
        );
    }
    assert_eq!(cc(newer).await, 401, "nothing brings a deleted client back");

    // Every change left an audit record.
    let (_, audit) = w
        .api(Method::GET, "/v1/audit?limit=1000", None, &w.admin)
        .await;
    let kinds: Vec<&str> = audit["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["kind"].as_str())
        .filter(|k| k.starts_with("client."))
        .collect();
    for kind in [
        "client.created",
        "client.disabled",
        "client.enabled",
        "client.secret_rotated",
        "client.deleted",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
}

async fn introspection_answers_only_the_tokens_holder(backend: Backend) {
    let w = world(backend, "trust-introspect").await;
    let opened = w.open_by(&w.a, "eve").await;
    let access = text(&opened["access_token"]);
    let refresh = text(&opened["refresh_token"]);
    for token in [&access, &refresh] {
        let (status, mine) = w.introspect(&w.a, token).await;
        assert_eq!(
            (status, &mine["active"]),
            (200, &json!(true)),
            "the opening backend: {mine}"
        );
        let (status, other) = w.introspect(&w.b, token).await;
        assert_eq!(
            (status, &other),
            (200, &json!({"active": false})),
            "an unrelated backend"
        );
        let (status, other) = w.introspect(&w.service, token).await;
        assert_eq!(
            (status, &other),
            (200, &json!({"active": false})),
            "an unrelated service"
        );
    }
    // A token whose `aud` names the caller.
    let (status, _) = w
        .api(
            Method::PATCH,
            &format!("/v1/clients/{}", w.spa.id),
            Some(json!({"audiences": ["api", w.service.id]})),
            &w.admin,
        )
        .await;
    assert_eq!(status, 200);
    let (status, opened) = w
        .api(
            Method::POST,
            "/v1/sessions",
            Some(json!({"subject": "eve", "client_id": w.spa.id, "audience": [w.service.id]})),
            &w.a,
        )
        .await;
    assert_eq!(status, 201, "{opened}");
    let (status, named) = w
        .introspect(&w.service, &text(&opened["access_token"]))
        .await;
    assert_eq!((status, &named["active"]), (200, &json!(true)), "{named}");
}

async fn admin_commands_refuse_a_missing_store_and_create_nothing(backend: Backend) {
    let w = world(backend, "trust-admin-cli").await;
    // A data directory with nothing in it, and (on PostgreSQL) an empty database.
    let empty = tessera_testkit::scratch_dir("trust-empty");
    let data_dir = empty.to_string_lossy().into_owned();
    let empty_db = match w.server.setting("TESSERA_STORE_URL") {
        Some(_) => {
            let admin = tessera_testkit::postgres::server_url("trust-empty").expect("postgres run");
            Some(tessera_testkit::postgres::TestDatabase::create(&admin, "trust-empty").await)
        }
        None => None,
    };
    let run = |args: &[&str], master: bool| {
        let mut cmd = std::process::Command::new(tessera_testkit::tessera_bin());
        cmd.args(args)
            .env_clear()
            .env("TESSERA_DATA_DIR", &data_dir);
        if master {
            cmd.env(
                "TESSERA_MASTER_KEY",
                w.server.setting("TESSERA_MASTER_KEY").expect("key"),
            );
        }
        if let Some(db) = &empty_db {
            cmd.env("TESSERA_STORE_URL", &db.url);
        }
        cmd.output().expect("run tessera")
    };
    for args in [
        &["clients", "list"][..],
        &[
            "clients",
            "create",
            "--name",
            "x",
            "--kind",
            "public",
            "--allow",
            "refresh_token",
        ][..],
        &["sessions", "list", "--subject", "x"][..],
        &["keys", "list"][..],
    ] {
        for master in [false, true] {
            let out = run(args, master);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(
                stderr.contains(&data_dir),
                "{args:?} names the data dir: {stderr}"
            );
            assert!(
                stderr.contains("store.url"),
                "{args:?} names the store URL: {stderr}"
            );
            let expected = if master {
                "no Tessera store"
            } else {
                "no master key"
            };
            assert!(stderr.contains(expected), "{args:?}: {stderr}");
        }
    }
    let left: Vec<_> = std::fs::read_dir(&empty).expect("dir").collect();
    assert!(left.is_empty(), "nothing was created: {left:?}");
    if let Some(db) = &empty_db {
        assert!(!has_tessera_schema(&db.url).await, "no schema was created");
    }
    if let Some(db) = empty_db {
        db.drop_now().await;
    }
    let _ = std::fs::remove_dir_all(&empty);
}

/// Whether the database at `url` holds Tessera's schema (asked through the
/// store's own check, which creates nothing when the answer is no).
async fn has_tessera_schema(url: &str) -> bool {
    match tessera_store::postgres::PgStore::connect_existing(
        url,
        &tessera_store::postgres::PgSettings::default(),
    )
    .await
    {
        Err(tessera_store::StoreError::NotFound) => false,
        Ok(store) => {
            store.close().await;
            true
        }
        Err(e) => panic!("{e}"),
    }
}

/// Flood: 2,000 requests with wrong or unknown credentials over 64
/// connections while a real client keeps refreshing. No 5xx, every real
/// refresh succeeds, and the server's memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_credentials_costs_little_and_starves_nobody() {
    let w = Arc::new(world(Backend::Sqlite, "trust-flood").await);
    let pid = w.server.pid().expect("server pid");
    let rss_before = rss_kib(pid);
    let opened = w.open_by(&w.a, "flo").await;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let real = {
        let (w, stop) = (w.clone(), stop.clone());
        let mut token = text(&opened["refresh_token"]);
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (status, body) = w.refresh(&token, &[]).await;
                if status == 200 {
                    token = text(&body["refresh_token"]);
                    ok += 1;
                } else {
                    failed.push((status, body));
                }
            }
            (ok, failed)
        })
    };

    let started = Instant::now();
    let per_connection = 2_000 / 64 + 1;
    let tasks: Vec<_> = (0..64)
        .map(|c| {
            let w = w.clone();
            tokio::spawn(async move {
                // One connection per task.
                let http = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .expect("client");
                let mut statuses = Vec::new();
                for i in 0..per_connection {
                    let n = c * per_connection + i;
                    if n >= 2_000 {
                        break;
                    }
                    let (id, secret) = match n % 3 {
                        0 => (w.a.id.clone(), "tcs_wrong".to_owned()),
                        1 => (format!("unknown-{n}"), "tcs_whatever".to_owned()),
                        _ => (w.admin.id.clone(), format!("tcs_{n}")),
                    };
                    let (path, body) = if n % 2 == 0 {
                        ("/oauth/token", "grant_type=client_credentials")
                    } else {
                        ("/oauth/introspect", "token=abc")
                    };
                    let status = http
                        .post(w.server.url(path))
                        .basic_auth(id, Some(secret))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body)
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    statuses.push(status);
                }
                statuses
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.extend(task.await.expect("flood task"));
    }
    let flood_time = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (refreshed, failed) = real.await.expect("refresher");
    let rss_after = rss_kib(pid);

    assert_eq!(statuses.len(), 2_000);
    let unexpected: Vec<_> = statuses.iter().filter(|s| **s != 401).collect();
    assert!(
        unexpected.is_empty(),
        "every bad credential is a 401, never a 5xx: {unexpected:?}"
    );
    assert!(
        failed.is_empty(),
        "every real refresh succeeded: {failed:?}"
    );
    assert!(refreshed > 0, "the real client was served during the flood");
    let growth_kib = rss_after.saturating_sub(rss_before);
    println!(
        "flood: 2000 bad requests over 64 connections in {:.2} s ({:.0}/s); {refreshed} real refreshes, 0 failed; server RSS {} KiB -> {} KiB (+{} KiB)",
        flood_time.as_secs_f64(),
        2_000.0 / flood_time.as_secs_f64(),
        rss_before,
        rss_after,
        growth_kib
    );
    assert!(
        growth_kib < 64 * 1024,
        "RSS grew by {growth_kib} KiB: unauthenticated traffic must stay cheap"
    );
}

/// Resident memory of process `pid`, in KiB (Linux).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
