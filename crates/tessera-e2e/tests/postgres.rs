//! Many `tessera serve` processes, one PostgreSQL database: exactly-once
//! rotation across instances, reuse detection everywhere, key rotation
//! picked up by every instance, and a database outage. Each test creates
//! its own database on `TESSERA_TEST_DATABASE_URL` (and says it skipped
//! without it).

use std::time::{Duration, Instant};

use reqwest::Method;
use tessera_testkit::postgres::{TestDatabase, server_url};
use tessera_testkit::server::{Http, RegisteredClient, Server};
use tessera_testkit::{Cuttable, ResourceServer, jwt_kid};

const LOST: Duration = Duration::from_secs(5);

struct Cluster {
    instances: Vec<Server>,
    backend: RegisteredClient,
    app: RegisteredClient,
    http: Http,
    db: Option<TestDatabase>,
}

impl Cluster {
    /// `n` instances on one fresh database (reached at `store_url`, or the
    /// database's own URL), sharing one master key.
    async fn start(
        name: &str,
        n: usize,
        db: TestDatabase,
        store_url: Option<String>,
        settings: &[(&str, &str)],
    ) -> Cluster {
        let master = tessera_core::MasterKey::generate().expect("master");
        let master = master.to_base64().to_string();
        let url = store_url.unwrap_or_else(|| db.url.clone());
        let mut all: Vec<(&str, &str)> = vec![
            ("TESSERA_STORE_URL", url.as_str()),
            ("TESSERA_MASTER_KEY", master.as_str()),
        ];
        all.extend_from_slice(settings);
        let mut instances = Vec::new();
        for i in 0..n {
            instances.push(Server::start(&format!("{name}-{i}"), &all).await);
        }
        let app = instances[0].create_client_with(
            "app",
            "public",
            "refresh_token",
            &["--audiences", "api"],
        );
        let backend = instances[0].create_client_with(
            "backend",
            "confidential",
            "sessions,admin",
            &["--sessions-for", &app.id],
        );
        Cluster {
            instances,
            backend,
            app,
            http: Http::new(),
            db: Some(db),
        }
    }

    async fn open(&self, on: usize, subject: &str) -> serde_json::Value {
        let (status, body) = self
            .http
            .json(
                Method::POST,
                &self.instances[on].url("/v1/sessions"),
                Some(serde_json::json!({
                    "subject": subject, "audience": ["api"], "client_id": self.app.id,
                })),
                &self.backend,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    async fn refresh(&self, on: usize, token: &str) -> (u16, serde_json::Value) {
        self.http
            .form(
                &self.instances[on].url("/oauth/token"),
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token),
                    ("client_id", &self.app.id),
                ],
                None,
            )
            .await
    }

    async fn session(&self, sid: &str) -> serde_json::Value {
        let (status, body) = self
            .http
            .json(
                Method::GET,
                &self.instances[0].url(&format!("/v1/sessions/{sid}")),
                None,
                &self.backend,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn finish(mut self) {
        for server in &mut self.instances {
            server.kill().await;
        }
        if let Some(db) = self.db.take() {
            db.drop_now().await;
        }
    }
}

async fn database(test: &str) -> Option<TestDatabase> {
    let server = server_url(test)?;
    Some(TestDatabase::create(&server, test).await)
}

fn s(v: &serde_json::Value) -> String {
    v.as_str().expect("string").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refresh_token_sent_to_three_instances_advances_one_generation() {
    let Some(db) = database("pg_race").await else {
        return;
    };
    let c = Cluster::start("pg-race", 3, db, None, &[]).await;
    let opened = c.open(0, "alice").await;
    let sid = s(&opened["session_id"]);
    let mut token = s(&opened["refresh_token"]);
    let mut refused = 0;
    for round in 0..200 {
        let (a, b, d) = tokio::join!(
            c.refresh(0, &token),
            c.refresh(1, &token),
            c.refresh(2, &token)
        );
        let mut next: Option<String> = None;
        for (status, body) in [a, b, d] {
            match status {
                200 => {
                    let got = s(&body["refresh_token"]);
                    assert!(
                        next.as_ref().is_none_or(|n| *n == got),
                        "round {round}: two different next tokens"
                    );
                    next = Some(got);
                }
                400 => {
                    assert_eq!(body["error"], "invalid_grant", "round {round}: {body}");
                    refused += 1;
                }
                other => panic!("round {round}: HTTP {other}: {body}"),
            }
        }
        token = next.unwrap_or_else(|| panic!("round {round}: nobody rotated"));
        let session = c.session(&sid).await;
        assert_eq!(session["generation"], round + 2, "round {round}");
        assert!(session["revoked_at"].is_null(), "round {round}: revoked");
    }
    println!(
        "3 instances × 200 rounds: 200 advances, {refused} refusals (the rest were grace retries)"
    );
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_disabled_on_one_instance_is_refused_by_the_others_within_a_second() {
    let Some(db) = database("pg_disable").await else {
        return;
    };
    let c = Cluster::start("pg-disable", 3, db, None, &[]).await;
    let service = c.instances[0].create_client("service", "confidential", "client_credentials");
    let opened = c.open(0, "alice").await;
    let mut token = s(&opened["refresh_token"]);
    let grant = |on: usize| {
        let (c, service) = (&c, &service);
        async move {
            c.http
                .form(
                    &c.instances[on].url("/oauth/token"),
                    &[("grant_type", "client_credentials")],
                    Some(service),
                )
                .await
                .0
        }
    };
    // Every instance has both clients cached and working.
    for on in 0..3 {
        assert_eq!(grant(on).await, 200, "instance {on}");
        let (status, body) = c.refresh(on, &token).await;
        assert_eq!(status, 200, "instance {on}: {body}");
        token = s(&body["refresh_token"]);
    }

    for (what, id) in [("service", service.id.clone()), ("app", c.app.id.clone())] {
        let (status, body) = c
            .http
            .json(
                Method::POST,
                &c.instances[0].url(&format!("/v1/clients/{id}/disable")),
                None,
                &c.backend,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let disabled = Instant::now();
        for on in 1..3 {
            loop {
                let status = if what == "service" {
                    grant(on).await
                } else {
                    c.refresh(on, &token).await.0
                };
                if status == 401 {
                    break;
                }
                assert_eq!(status, 200, "{what} on instance {on}");
                assert!(
                    disabled.elapsed() < Duration::from_secs(1),
                    "{what} still accepted by instance {on} after 1 s"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            println!(
                "{what} disabled on instance 0: refused by instance {on} {:.1} ms later",
                disabled.elapsed().as_secs_f64() * 1000.0
            );
        }
    }
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_detected_on_one_instance_revokes_the_session_everywhere() {
    let Some(db) = database("pg_reuse").await else {
        return;
    };
    let c = Cluster::start(
        "pg-reuse",
        3,
        db,
        None,
        &[("TESSERA_SESSIONS__REFRESH_GRACE", "0s")],
    )
    .await;
    let rs = ResourceServer::start(&c.instances[2].base, "api", &[]).await;
    let raw = reqwest::Client::new();
    let opened = c.open(0, "bob").await;
    let first = s(&opened["refresh_token"]);
    let (status, second) = c.refresh(1, &first).await;
    assert_eq!(status, 200, "{second}");
    let (status, third) = c.refresh(2, &s(&second["refresh_token"])).await;
    assert_eq!(status, 200, "{third}");
    let access = s(&third["access_token"]);
    assert_eq!(rs.me(&raw, &access).await, 200);

    // The thief replays generation 1 on instance A.
    let (status, body) = c.refresh(0, &first).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let started = Instant::now();
    let latest = s(&third["refresh_token"]);
    for on in [1, 2] {
        let (status, body) = c.refresh(on, &latest).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "instance {on}"
        );
    }
    loop {
        if rs.me(&raw, &access).await == 401 {
            break;
        }
        assert!(
            started.elapsed() < LOST,
            "resource server on C never refused"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "reuse on A: B and C refuse at once; resource server following C refuses {:.0} ms later",
        started.elapsed().as_secs_f64() * 1000.0
    );
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_started_on_one_instance_reaches_all_and_the_schedule_runs_once() {
    let Some(db) = database("pg_keys").await else {
        return;
    };
    let c = Cluster::start(
        "pg-keys",
        3,
        db,
        None,
        &[
            ("TESSERA_KEYS__JWKS_MAX_AGE", "1s"),
            ("TESSERA_KEYS__PUBLISH_AHEAD", "2s"),
            ("TESSERA_KEYS__ROTATION_PERIOD", "4s"),
        ],
    )
    .await;
    let before = jwt_kid(&s(&c.open(0, "k").await["access_token"]));
    let (status, body) = c
        .http
        .json(
            Method::POST,
            &c.instances[0].url("/v1/keys/rotate"),
            None,
            &c.backend,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let started = Instant::now();
    let pending: Vec<String> = body["pending"]
        .as_array()
        .expect("pending")
        .iter()
        .filter(|k| k["alg"] == "EdDSA")
        .map(|k| s(&k["kid"]))
        .collect();
    let new_kid = pending.first().expect("a pending EdDSA key").clone();
    let raw = reqwest::Client::new();
    for server in &c.instances[1..] {
        loop {
            let jwks = raw
                .get(server.url("/.well-known/jwks.json"))
                .send()
                .await
                .expect("jwks")
                .text()
                .await
                .expect("body");
            if jwks.contains(&new_kid) {
                break;
            }
            assert!(
                started.elapsed() < LOST,
                "pending key never reached {}",
                server.base
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    println!(
        "rotation on A: pending key in B's and C's JWKS after {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    // After publish_ahead every instance signs with it.
    for on in 0..3 {
        loop {
            let kid = jwt_kid(&s(&c.open(on, "k").await["access_token"]));
            if kid == new_kid {
                break;
            }
            assert_eq!(kid, before, "instance {on} signed with a third key");
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "instance {on} never switched"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Scheduled rotations (every 4 s + 2 s publish_ahead) with three
    // schedulers running: each happens once, never twice at the same time.
    tokio::time::sleep(Duration::from_secs(9)).await;
    let (status, audit) = c
        .http
        .json(
            Method::GET,
            &c.instances[1].url("/v1/audit?limit=1000"),
            None,
            &c.backend,
        )
        .await;
    assert_eq!(status, 200, "{audit}");
    let mut pending_created: Vec<(String, i64)> = audit["records"]
        .as_array()
        .or_else(|| audit.as_array())
        .expect("records")
        .iter()
        .filter(|r| r["kind"] == "key.created" && r["detail"]["state"] == "pending")
        .map(|r| (s(&r["detail"]["alg"]), r["at"].as_i64().expect("at")))
        .collect();
    pending_created.sort();
    for pair in pending_created.windows(2) {
        if pair[0].0 == pair[1].0 {
            assert!(
                pair[1].1 - pair[0].1 >= 3000,
                "two rotations of {} within {} ms: {pending_created:?}",
                pair[0].0,
                pair[1].1 - pair[0].1
            );
        }
    }
    println!(
        "scheduled: {} pending keys created over ~15 s by 3 schedulers",
        pending_created.len()
    );
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_a_clear_503_and_service_resumes_without_restart() {
    let Some(server) = server_url("pg_down") else {
        return;
    };
    let db = TestDatabase::create(&server, "pg_down").await;
    let target = db
        .url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("host:port in the URL")
        .to_owned();
    let proxy = Cuttable::start(&target).await;
    let via_proxy = db.url.replacen(&target, &proxy.addr.to_string(), 1);
    let c = Cluster::start("pg-down", 2, db, Some(via_proxy), &[]).await;
    let rs = ResourceServer::start(&c.instances[1].base, "api", &["--max-staleness", "60"]).await;
    let raw = reqwest::Client::new();
    // Each instance is its own issuer URL here (no shared TESSERA_ISSUER
    // behind a load balancer): the token comes from the one the resource
    // server trusts.
    let opened = c.open(1, "carol").await;
    let access = s(&opened["access_token"]);
    let token = s(&opened["refresh_token"]);
    assert_eq!(rs.me(&raw, &access).await, 200);

    proxy.cut();
    for server in &c.instances {
        let start = Instant::now();
        loop {
            let status = raw
                .get(server.url("/readyz"))
                .send()
                .await
                .expect("readyz")
                .status();
            if status == 503 {
                break;
            }
            assert!(start.elapsed() < LOST, "readyz stayed {status}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let (status, body) = c.refresh(0, &token).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert_eq!(
        rs.me(&raw, &access).await,
        200,
        "verification keeps working from caches"
    );

    proxy.restore();
    let start = Instant::now();
    loop {
        let (status, body) = c.refresh(0, &token).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "service did not resume: {body}\n{}",
            c.instances[0]
                .log_text()
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "database back: refreshes succeed {:.1} s later, no restart",
        start.elapsed().as_secs_f64()
    );
    for server in &c.instances {
        let status = raw
            .get(server.url("/readyz"))
            .send()
            .await
            .expect("readyz")
            .status();
        assert_eq!(status, 200);
    }
    c.finish().await;
}

/// The generation a refresh token carries (bytes 16..24 of its body).
fn generation_of(token: &str) -> u64 {
    tessera_testkit::refresh_generation(token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_under_load_loses_no_session_and_skips_no_generation() {
    let Some(db) = database("pg_crash").await else {
        return;
    };
    let mut c = Cluster::start("pg-crash", 3, db, None, &[]).await;
    let bases: Vec<String> = c.instances.iter().map(|s| s.base.clone()).collect();
    let mut sessions = Vec::new();
    for i in 0..24 {
        let opened = c.open(i % 3, &format!("crash-{i}")).await;
        sessions.push((s(&opened["session_id"]), s(&opened["refresh_token"])));
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for (w, (sid, first)) in sessions.clone().into_iter().enumerate() {
        let bases = bases.clone();
        let app = c.app.id.clone();
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("client");
            // (presented, answered) for every 200; errors by kind.
            let mut accepted: Vec<(String, String)> = Vec::new();
            let mut errors = std::collections::BTreeMap::<String, u32>::new();
            let mut token = first;
            let mut turn = w;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                turn += 1;
                let base = &bases[turn % bases.len()];
                let body =
                    format!("grant_type=refresh_token&client_id={app}&refresh_token={token}");
                let sent = http
                    .post(format!("{base}/oauth/token"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let bytes = response.bytes().await.unwrap_or_default();
                        let json: serde_json::Value =
                            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
                        if status == 200 {
                            let next = s(&json["refresh_token"]);
                            accepted.push((token.clone(), next.clone()));
                            token = next;
                        } else {
                            *errors
                                .entry(format!("HTTP {status} {}", json["error"]))
                                .or_default() += 1;
                        }
                    }
                    // The killed instance: retry the same token elsewhere.
                    Err(_) => *errors.entry("connection".into()).or_default() += 1,
                }
            }
            (sid, accepted, errors)
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    c.instances[1].kill().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.instances[1].restart().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let elapsed = started.elapsed();

    let mut total = 0usize;
    let mut all_errors = std::collections::BTreeMap::<String, u32>::new();
    for worker in workers {
        let (sid, accepted, errors) = worker.await.expect("worker");
        for (k, v) in errors {
            *all_errors.entry(k).or_default() += v;
        }
        total += accepted.len();
        // Each accepted exchange moved exactly one generation forward; a
        // token accepted twice (a retry within the grace window) got the
        // same answer both times.
        let mut answers = std::collections::HashMap::new();
        for (presented, answered) in &accepted {
            assert_eq!(
                generation_of(answered),
                generation_of(presented) + 1,
                "{sid}: a generation was skipped"
            );
            let first = answers.entry(presented.clone()).or_insert(answered.clone());
            assert_eq!(first, answered, "{sid}: one token answered two ways");
        }
        let last = accepted.last().map_or(1, |(_, a)| generation_of(a));
        let session = c.session(&sid).await;
        assert!(session["revoked_at"].is_null(), "{sid} was lost: {session}");
        let stored = session["generation"].as_u64().expect("generation");
        // The store is at the client's newest token, or one past it when the
        // last request's answer was lost with the killed instance.
        assert!(
            stored == last || stored == last + 1,
            "{sid}: store at generation {stored}, client at {last}"
        );
        let (status, audit) = c
            .http
            .json(
                Method::GET,
                &c.instances[0].url(&format!("/v1/audit?session={sid}&limit=1000")),
                None,
                &c.backend,
            )
            .await;
        assert_eq!(status, 200);
        let refreshed = audit["records"]
            .as_array()
            .expect("records")
            .iter()
            .filter(|r| r["kind"] == "session.refreshed")
            .count();
        let refreshed = u64::try_from(refreshed).expect("a count");
        assert_eq!(
            refreshed,
            stored - 1,
            "{sid}: one audit record per generation"
        );
        assert!(
            !audit["records"]
                .as_array()
                .expect("records")
                .iter()
                .any(|r| r["kind"] == "session.reuse_detected"),
            "{sid}: a retry was taken for theft"
        );
    }
    println!(
        "kill -9 under load: 24 sessions over 3 instances, {total} refreshes in {:.1} s ({:.0}/s); \
         errors {all_errors:?}; 0 sessions lost, 0 generations skipped or reversed",
        elapsed.as_secs_f64(),
        f64::from(u32::try_from(total).expect("a count")) / elapsed.as_secs_f64()
    );
    c.finish().await;
}
