//! The admin console (`/admin`) in a real browser: Debian's Chromium driven
//! over WebDriver (chromedriver), against the real server. It signs in,
//! revokes a session, rotates and revokes a key, and disables a client,
//! and checks each effect through the API; it signs in with a one-time
//! link (once); and it checks the phone layout. Beside the browser, plain
//! HTTP checks the cookie's attributes, the CSRF refusal and the
//! permission check.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium
//! chromium-driver`); skips with a message when they are missing, unless
//! `TESSERA_REQUIRE_BROWSER=1` (set by `.ci/run`) makes that a failure.
//! With `TESSERA_SCREENSHOTS_DIR=DIR` it saves a screenshot of each page
//! there (how `docs/screenshots/` was made).

use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use tessera_testkit::server::{Http, RegisteredClient, Server};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn browser() -> Option<(String, String)> {
    let find = |names: &[&str]| {
        names
            .iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.exists())
            .map(|p| p.to_string_lossy().into_owned())
    };
    let found = find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]).zip(find(&[
        "/usr/bin/chromedriver",
        "/usr/lib/chromium/chromedriver",
    ]));
    if found.is_none() {
        let required = std::env::var("TESSERA_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "TESSERA_REQUIRE_BROWSER=1 but chromium/chromedriver are missing: apt-get install chromium chromium-driver"
        );
        eprintln!(
            "SKIPPED console browser test: chromium and chromedriver not found (apt-get install chromium chromium-driver)"
        );
    }
    found
}

/// A chromedriver process and one browser session, ended on drop.
struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    _driver: tokio::process::Child,
    shots: Option<std::path::PathBuf>,
}

impl Browser {
    async fn start(chromium: &str, chromedriver: &str) -> Browser {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
            probe.local_addr().expect("addr").port()
        };
        let driver = tokio::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(response) = ready
                && response.status().is_success()
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tessera_testkit::scratch_dir("console-chromium");
        let created = Self::call(
            &http,
            Method::POST,
            &format!("{base}/session"),
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--window-size=1280,800",
                             format!("--user-data-dir={}", profile.display())],
                },
            }}})),
        )
        .await;
        let session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        Browser {
            http,
            base,
            session,
            _driver: driver,
            shots: std::env::var_os("TESSERA_SCREENSHOTS_DIR").map(std::path::PathBuf::from),
        }
    }

    async fn call(http: &reqwest::Client, method: Method, url: &str, body: Option<Value>) -> Value {
        let mut request = http.request(method, url);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("webdriver");
        let bytes = response.bytes().await.expect("body");
        let value: Value = serde_json::from_slice(&bytes).expect("json");
        value["value"].clone()
    }

    async fn command(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        Self::call(&self.http, method, &url, body).await
    }

    async fn go(&self, url: &str) {
        self.command(Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .command(
                Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned()
    }

    async fn count(&self, css: &str) -> usize {
        self.command(
            Method::POST,
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .await
        .as_array()
        .map_or(0, Vec::len)
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.command(
            Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.command(
            Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.command(Method::GET, &format!("/element/{element}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits (up to 10 s) for an element `css` whose text contains `needle`.
    async fn expect_text(&self, css: &str, needle: &str) {
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < Duration::from_secs(10) {
            let found = self
                .command(
                    Method::POST,
                    "/element",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            if let Some(element) = found[ELEMENT].as_str() {
                last = self
                    .command(Method::GET, &format!("/element/{element}/text"), None)
                    .await
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if last.contains(needle) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {css} with {needle:?}, last saw {last:?}");
    }

    /// Waits (up to 10 s) for the page whose `h1` is `expected`: a click
    /// that submits a form returns before the next page has loaded.
    async fn expect_heading(&self, expected: &str) {
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < Duration::from_secs(10) {
            let found = self
                .command(
                    Method::POST,
                    "/element",
                    Some(json!({"using": "css selector", "value": "h1"})),
                )
                .await;
            if let Some(element) = found[ELEMENT].as_str() {
                last = self
                    .command(Method::GET, &format!("/element/{element}/text"), None)
                    .await
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if last == expected {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected the page {expected:?}, still on {last:?}");
    }

    async fn script(&self, script: &str) -> Value {
        self.command(
            Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    async fn resize(&self, width: u32, height: u32) {
        self.command(
            Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    async fn screenshot(&self, name: &str) {
        let Some(dir) = &self.shots else { return };
        let shot = self.command(Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().expect("base64"))
            .expect("png");
        std::fs::create_dir_all(dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Best effort: chromedriver is killed with the child anyway.
        let url = format!("{}/session/{}", self.base, self.session);
        let http = self.http.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    let _ = http.delete(url).send().await;
                });
            }
        })
        .join();
    }
}

async fn open_session(
    http: &Http,
    server: &Server,
    backend: &RegisteredClient,
    spa: &RegisteredClient,
    label: &str,
) -> Value {
    let (status, body) = http
        .json(
            Method::POST,
            &server.url("/v1/sessions"),
            Some(json!({"subject": "alice", "client_id": spa.id, "audience": ["api"],
                        "device": {"label": label, "user_agent": "Firefox on Linux", "ip": "203.0.113.5"}})),
            backend,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_manages_sessions_keys_and_clients_in_chromium() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let server = Server::start("console", &[]).await;
    let http = Http::new();
    let spa = server.create_client_with("spa", "public", "refresh_token", &["--audiences", "api"]);
    let backend = server.create_client_with(
        "backend",
        "confidential",
        "sessions",
        &["--sessions-for", &spa.id],
    );
    let admin = server.create_client("ops", "confidential", "admin");
    let laptop = open_session(&http, &server, &backend, &spa, "laptop").await;
    let phone = open_session(&http, &server, &backend, &spa, "phone").await;
    let laptop_sid = laptop["session_id"].as_str().expect("sid").to_owned();

    let b = Browser::start(&chromium, &chromedriver).await;

    // Sign in with the admin client's credentials.
    b.go(&server.url("/admin")).await;
    b.expect_heading("Sign in").await;
    b.screenshot("console-sign-in").await;
    b.type_into("input[name=client_id]", &admin.id).await;
    b.type_into("input[name=client_secret]", "not the secret")
        .await;
    b.click("form.card button").await;
    b.expect_text("p.error", "Wrong client id or secret").await;
    b.type_into("input[name=client_id]", &admin.id).await;
    b.type_into(
        "input[name=client_secret]",
        admin.secret.as_deref().expect("secret"),
    )
    .await;
    b.click("form.card button").await;
    b.expect_heading("Sessions").await;

    // Sessions by subject: both devices, with times people read.
    b.type_into("input[name=subject]", "alice").await;
    b.click("form.search button").await;
    assert_eq!(b.count("tr[data-session]").await, 2);
    let row = b.text(&format!("tr[data-session=\"{laptop_sid}\"]")).await;
    assert!(row.contains("laptop") && row.contains(" UTC"), "{row}");
    b.screenshot("console-sessions").await;

    // Revoke one, with the confirmation step.
    b.click(&format!("tr[data-session=\"{laptop_sid}\"] button"))
        .await;
    b.expect_heading("Revoke this session?").await;
    b.click("main form button").await;
    b.expect_heading("Session revoked").await;
    let refresh = |token: &Value| {
        let token = token["refresh_token"].as_str().expect("refresh").to_owned();
        let http = http.clone();
        let url = server.url("/oauth/token");
        let spa = spa.id.clone();
        async move {
            http.form(
                &url,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", &spa),
                    ("refresh_token", &token),
                ],
                None,
            )
            .await
            .0
        }
    };
    assert_eq!(
        refresh(&laptop).await,
        400,
        "the revoked session cannot refresh"
    );
    assert_eq!(refresh(&phone).await, 200, "the other session is untouched");

    // Keys: the timeline, a rotation, and an emergency revocation that
    // needs the key id typed out.
    b.go(&server.url("/admin/keys")).await;
    b.expect_heading("Keys").await;
    assert_eq!(b.count("tr.state-active").await, 3);
    b.screenshot("console-keys").await;
    b.click("form[action=\"/admin/keys/rotate\"] button").await;
    b.expect_heading("Rotation started").await;
    let (_, keys) = http
        .json(Method::GET, &server.url("/v1/keys"), None, &admin)
        .await;
    let of_state = |keys: &Value, state: &str| {
        keys["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .filter(|k| k["state"] == state)
            .map(|k| {
                (
                    k["kid"].as_str().expect("kid").to_owned(),
                    k["alg"].as_str().expect("alg").to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(of_state(&keys, "pending").len(), 3, "{keys}");
    let (es256, _) = of_state(&keys, "active")
        .into_iter()
        .find(|(_, alg)| alg == "ES256")
        .expect("an active ES256 key");
    b.go(&server.url("/admin/keys")).await;
    let row = format!("tr[data-kid=\"{es256}\"]");
    b.type_into(&format!("{row} input[name=confirm_kid]"), "not-the-kid")
        .await;
    b.click(&format!("{row} button")).await;
    b.expect_heading("Not done").await;
    b.expect_text("p.error", "does not match").await;
    let (_, keys) = http
        .json(Method::GET, &server.url("/v1/keys"), None, &admin)
        .await;
    assert!(
        of_state(&keys, "revoked").is_empty(),
        "a wrong confirmation revokes nothing"
    );
    b.go(&server.url("/admin/keys")).await;
    b.type_into(&format!("{row} input[name=confirm_kid]"), &es256)
        .await;
    b.click(&format!("{row} button")).await;
    b.expect_heading("Key revoked").await;
    let (_, keys) = http
        .json(Method::GET, &server.url("/v1/keys"), None, &admin)
        .await;
    assert_eq!(
        of_state(&keys, "revoked"),
        [(es256.clone(), "ES256".to_owned())]
    );

    // Clients: disable the backend; it can no longer open sessions.
    b.go(&server.url("/admin/clients")).await;
    b.expect_heading("Clients").await;
    b.screenshot("console-clients").await;
    b.click(&format!("tr[data-client=\"{}\"] a", backend.id))
        .await;
    b.expect_heading("Client").await;
    b.click(&format!(
        "form[action=\"/admin/clients/{}/disable\"] button",
        backend.id
    ))
    .await;
    b.expect_heading("Client changed").await;
    let (status, _) = http
        .json(
            Method::POST,
            &server.url("/v1/sessions"),
            Some(json!({"subject": "bob", "client_id": spa.id})),
            &backend,
        )
        .await;
    assert_eq!(status, 401, "a disabled client cannot authenticate");
    let (_, shown) = http
        .json(
            Method::GET,
            &server.url(&format!("/v1/clients/{}", backend.id)),
            None,
            &admin,
        )
        .await;
    assert_eq!(shown["enabled"], false);

    // Audit: what just happened, searchable.
    b.go(&server.url("/admin/audit?subject=alice")).await;
    let table = b.text("table").await;
    assert!(
        table.contains("session.revoked") && table.contains("session.opened"),
        "{table}"
    );
    b.screenshot("console-audit").await;
    b.go(&server.url("/admin/audit?kind=key.revoked")).await;
    assert!(b.text("table").await.contains(&es256));

    // A phone's width: nothing wider than the screen but the scrolling tables.
    b.resize(390, 844).await;
    b.go(&server.url("/admin/sessions?subject=alice")).await;
    let width = b
        .script("return document.documentElement.scrollWidth")
        .await;
    let viewport = b.script("return window.innerWidth").await;
    assert!(
        width.as_i64().expect("width") <= viewport.as_i64().expect("viewport"),
        "the page scrolls sideways on a phone: {width} > {viewport}"
    );
    b.screenshot("console-phone").await;
    b.resize(1280, 800).await;

    // Sign out: the console asks to sign in again.
    b.go(&server.url("/admin/keys")).await;
    b.click("header form button").await;
    b.expect_heading("Sign in").await;
    b.go(&server.url("/admin/keys")).await;
    b.expect_heading("Sign in").await;

    // A one-time link from the CLI signs in once.
    let link = server.cli(&["admin", "login", "--client", &admin.id]);
    let link = link.trim();
    assert!(
        link.starts_with(&server.url("/admin/login?token=")),
        "{link}"
    );
    b.go(link).await;
    b.expect_heading("Sessions").await;
    b.click("header form button").await;
    b.expect_heading("Sign in").await;
    b.go(link).await;
    b.expect_heading("Sign in").await; // a used link signs in no more
    b.expect_text("p.error", "used, expired or not valid").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_cookies_forms_and_permissions_are_strict() {
    let server = Server::start("console-http", &[]).await;
    let admin = server.create_client("ops", "confidential", "admin");
    let backend = server.create_client("backend", "confidential", "sessions");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let sign_in = |client: &RegisteredClient| {
        http.post(server.url("/admin/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "client_id={}&client_secret={}",
                tessera_testkit::server::form_encode(&client.id),
                tessera_testkit::server::form_encode(client.secret.as_deref().unwrap_or_default())
            ))
            .send()
    };
    // A client without `admin` cannot sign in.
    let refused = sign_in(&backend).await.expect("send");
    assert_eq!(refused.status(), 403);
    assert!(refused.headers().get("set-cookie").is_none());

    let signed = sign_in(&admin).await.expect("send");
    assert_eq!(signed.status(), 303);
    let cookie = signed.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain-HTTP loopback: not Secure"
    );
    let pair = cookie.split(';').next().expect("pair").to_owned();

    // Pages need the cookie; a tampered one is no cookie.
    let get = |path: &str, cookie: Option<&str>| {
        let mut request = http.get(server.url(path));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send()
    };
    let page = get("/admin/keys", Some(&pair)).await.expect("send");
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    let html = page.text().await.expect("html");
    assert!(!html.contains("<script"), "no JavaScript");
    assert_eq!(get("/admin/keys", None).await.expect("send").status(), 303);
    let tampered = format!("{}x", pair);
    assert_eq!(
        get("/admin/keys", Some(&tampered))
            .await
            .expect("send")
            .status(),
        303
    );

    // A form without this sign-in's CSRF token changes nothing.
    let post = |path: &str, body: String| {
        http.post(server.url(path))
            .header("cookie", pair.as_str())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let forged = post("/admin/keys/rotate", "csrf=forged".to_owned())
        .await
        .expect("send");
    assert_eq!(forged.status(), 403);
    let (_, keys) = Http::new()
        .json(Method::GET, &server.url("/v1/keys"), None, &admin)
        .await;
    assert!(
        keys["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .all(|k| k["state"] != "pending"),
        "a forged form rotated keys: {keys}"
    );
    // With the page's token it works.
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf in the page")
        .to_owned();
    let done = post("/admin/keys/rotate", format!("csrf={csrf}"))
        .await
        .expect("send");
    assert_eq!(done.status(), 200);

    // A disabled admin client's cookie stops working at once.
    server.cli(&["clients", "disable", &admin.id]);
    // The directory notices the change within its refresh interval.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        get("/admin/keys", Some(&pair))
            .await
            .expect("send")
            .status(),
        303
    );
}
