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
    b.expect_text("main p", "2 live session(s) for alice").await;
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
    // Opening it shows a button (a link preview uses nothing); the button signs in.
    b.go(link).await;
    b.expect_text("form[action=\"/admin/login/link\"]", &admin.id)
        .await;
    b.click("form[action=\"/admin/login/link\"] button").await;
    b.expect_heading("Sessions").await;
    b.click("header form button").await;
    b.expect_heading("Sign in").await;
    b.go(link).await;
    b.expect_text("p.error", "used, expired or not valid").await;
}

/// Plain HTTP against the console: no redirects followed.
struct Plain {
    http: reqwest::Client,
    base: String,
}

impl Plain {
    fn new(server: &Server) -> Plain {
        Plain {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: server.base.clone(),
        }
    }

    /// `POST path` with a form body, the cookie, and extra headers.
    async fn post(
        &self,
        path: &str,
        cookie: Option<&str>,
        body: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.send().await.expect("send")
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.expect("send")
    }

    /// Signs `client` in; answers the `name=value` cookie pair and the
    /// whole `Set-Cookie`.
    async fn sign_in(&self, client: &RegisteredClient) -> (String, String) {
        let body = format!(
            "client_id={}&client_secret={}",
            form_encode(&client.id),
            form_encode(client.secret.as_deref().unwrap_or_default())
        );
        let answer = self.post("/admin/login", None, &body, &[]).await;
        assert_eq!(answer.status(), 303, "sign-in");
        let set = answer.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .to_owned();
        (set.split(';').next().expect("pair").to_owned(), set)
    }

    /// The CSRF token in a console page.
    async fn csrf(&self, cookie: &str) -> String {
        let html = self
            .get("/admin/keys", Some(cookie))
            .await
            .text()
            .await
            .expect("html");
        html.split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("csrf in the page")
            .to_owned()
    }
}

use tessera_testkit::server::form_encode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_cookies_forms_and_permissions_are_strict() {
    let server = Server::start("console-http", &[]).await;
    let admin = server.create_client("ops", "confidential", "admin");
    let backend = server.create_client("<img src=x onerror=alert(1)>", "confidential", "sessions");
    let plain = Plain::new(&server);

    // A client without `admin` cannot sign in; a post from another site neither.
    let body = format!(
        "client_id={}&client_secret={}",
        form_encode(&backend.id),
        form_encode(backend.secret.as_deref().unwrap_or_default())
    );
    let refused = plain.post("/admin/login", None, &body, &[]).await;
    assert_eq!(refused.status(), 403);
    assert!(refused.headers().get("set-cookie").is_none());
    let body = format!(
        "client_id={}&client_secret={}",
        form_encode(&admin.id),
        form_encode(admin.secret.as_deref().unwrap_or_default())
    );
    for header in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let refused = plain.post("/admin/login", None, &body, &[header]).await;
        assert_eq!(refused.status(), 403, "{header:?}");
        assert!(refused.headers().get("set-cookie").is_none());
    }

    let (pair, set) = plain.sign_in(&admin).await;
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    assert!(!set.contains("Secure"), "plain-HTTP loopback: not Secure");
    assert!(pair.starts_with("tessera_console="));

    // Pages need the cookie; headers forbid framing, caching and script.
    let page = plain.get("/admin/keys", Some(&pair)).await;
    assert_eq!(page.status(), 200);
    let h = page.headers();
    let csp = h["content-security-policy"].to_str().expect("ascii");
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    assert!(!page.text().await.expect("html").contains("<script"));
    assert_eq!(plain.get("/admin/keys", None).await.status(), 303);
    // A changed payload (another client id, the old tag) is no cookie.
    let value = pair.split_once('=').expect("pair").1;
    let (payload, tag) = value.split_once('.').expect("signed");
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("b64");
    let changed = String::from_utf8(decoded)
        .expect("utf-8")
        .replace(&admin.id, &backend.id);
    let forged = format!(
        "tessera_console={}.{tag}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(changed)
    );
    assert_eq!(plain.get("/admin/keys", Some(&forged)).await.status(), 303);

    // Markup in a client's name comes back escaped.
    let html = plain
        .get("/admin/clients", Some(&pair))
        .await
        .text()
        .await
        .expect("html");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!html.contains("<img src=x"));

    // Every form refuses a forged token, and another sign-in's token.
    let (other, _) = plain.sign_in(&admin).await;
    let others_token = plain.csrf(&other).await;
    let token = plain.csrf(&pair).await;
    assert_ne!(token, others_token);
    let kid = {
        let (_, keys) = Http::new()
            .json(Method::GET, &server.url("/v1/keys"), None, &admin)
            .await;
        keys["keys"][0]["kid"].as_str().expect("kid").to_owned()
    };
    for (path, fields) in [
        (
            "/admin/sessions/revoke",
            "sid=00&subject=alice&confirm=yes".to_owned(),
        ),
        (
            "/admin/sessions/revoke-all",
            "subject=alice&confirm=yes".to_owned(),
        ),
        ("/admin/keys/rotate", String::new()),
        ("/admin/keys/revoke", format!("kid={kid}&confirm_kid={kid}")),
        (
            &format!("/admin/clients/{}/disable", backend.id),
            "end_sessions=yes".to_owned(),
        ),
    ] {
        for bad in ["forged", others_token.as_str()] {
            let answer = plain
                .post(
                    path,
                    Some(&pair),
                    &format!("csrf={}&{fields}", form_encode(bad)),
                    &[],
                )
                .await;
            assert_eq!(answer.status(), 403, "{path} with {bad}");
        }
    }
    let (_, keys) = Http::new()
        .json(Method::GET, &server.url("/v1/keys"), None, &admin)
        .await;
    assert!(
        keys["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .all(|k| k["state"] == "active"),
        "a refused form changed keys: {keys}"
    );
    let (_, shown) = Http::new()
        .json(
            Method::GET,
            &server.url(&format!("/v1/clients/{}", backend.id)),
            None,
            &admin,
        )
        .await;
    assert_eq!(shown["enabled"], true, "a refused form disabled a client");
    // A forged sign-out signs nothing out.
    plain
        .post("/admin/logout", Some(&pair), "csrf=forged", &[])
        .await;
    assert_eq!(plain.get("/admin/keys", Some(&pair)).await.status(), 200);
    // With the page's token a form works, and a new secret is never cached.
    let rotated = plain
        .post(
            &format!("/admin/clients/{}/rotate-secret", backend.id),
            Some(&pair),
            &format!("csrf={}", form_encode(&token)),
            &[],
        )
        .await;
    assert_eq!(rotated.status(), 200);
    assert_eq!(rotated.headers()["cache-control"], "no-store");
    assert!(rotated.text().await.expect("html").contains("class=secret"));

    // Signing out ends that sign-in: a copy of the cookie is refused.
    let answer = plain
        .post(
            "/admin/logout",
            Some(&other),
            &format!("csrf={}", form_encode(&others_token)),
            &[],
        )
        .await;
    assert_eq!(answer.status(), 303);
    assert!(
        answer.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .contains("Max-Age=0")
    );
    assert_eq!(plain.get("/admin/keys", Some(&other)).await.status(), 303);
    assert_eq!(
        plain.get("/admin/keys", Some(&pair)).await.status(),
        200,
        "the other sign-in lives"
    );

    // One-time links: opening one (GET or HEAD) uses nothing; its button
    // (a same-site POST) signs in once; a changed token never.
    let link = server.cli(&["admin", "login", "--client", &admin.id]);
    let query = link
        .trim()
        .split_once("/admin/login?")
        .expect("link")
        .1
        .to_owned();
    let token_value = query.strip_prefix("token=").expect("token").to_owned();
    for _ in 0..2 {
        assert_eq!(
            plain
                .get(&format!("/admin/login?{query}"), None)
                .await
                .status(),
            200
        );
        let head = plain
            .http
            .head(format!("{}/admin/login?{query}", plain.base))
            .send()
            .await
            .expect("head");
        assert_eq!(head.status(), 200);
    }
    let link_body = format!("token={}", form_encode(&token_value));
    let cross = plain
        .post(
            "/admin/login/link",
            None,
            &link_body,
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(cross.status(), 403);
    let used = plain.post("/admin/login/link", None, &link_body, &[]).await;
    assert_eq!(used.status(), 303);
    assert_eq!(
        plain
            .post("/admin/login/link", None, &link_body, &[])
            .await
            .status(),
        401
    );
    assert_eq!(
        plain
            .get(&format!("/admin/login?{query}"), None)
            .await
            .status(),
        401
    );
    let forged_link = format!("token={}x", form_encode(&token_value));
    assert_eq!(
        plain
            .post("/admin/login/link", None, &forged_link, &[])
            .await
            .status(),
        401
    );
    // The CLI makes links for admin clients only.
    let out = server.cli_output(&["admin", "login", "--client", &backend.id]);
    assert!(!out.status.success());

    // Sign-ins are in the audit trail.
    let (_, audit) = Http::new()
        .json(
            Method::GET,
            &server.url("/v1/audit?kind=console.signed_in"),
            None,
            &admin,
        )
        .await;
    let methods: Vec<&str> = audit["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["detail"]["method"].as_str().expect("method"))
        .collect();
    assert_eq!(methods, ["secret", "secret", "link"]);

    // Rotating the admin's secret ends its console sign-ins; disabling it too.
    server.cli(&["clients", "rotate-secret", &admin.id]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(plain.get("/admin/keys", Some(&pair)).await.status(), 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_the_cookie_is_host_prefixed_and_secure() {
    let server = Server::start(
        "console-https",
        &[("TESSERA_ISSUER", "https://auth.example.test")],
    )
    .await;
    let admin = server.create_client("ops", "confidential", "admin");
    let plain = Plain::new(&server);
    let (pair, set) = plain.sign_in(&admin).await;
    assert!(pair.starts_with("__Host-tessera_console="), "{set}");
    for attribute in ["Secure", "Path=/", "HttpOnly", "SameSite=Strict"] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    assert!(!set.contains("Domain"), "{set}");
    // The loopback cookie name is not read over HTTPS.
    let renamed = pair.replacen("__Host-tessera_console", "tessera_console", 1);
    assert_eq!(plain.get("/admin/keys", Some(&renamed)).await.status(), 303);
    assert_eq!(plain.get("/admin/keys", Some(&pair)).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_limited_without_locking_out_signed_in_admins() {
    let server = Server::start(
        "console-limits",
        &[
            ("TESSERA_RATE_LIMITS__ENABLED", "true"),
            ("TESSERA_RATE_LIMITS__FAILED_AUTH_BURST", "2"),
        ],
    )
    .await;
    let admin = server.create_client("ops", "confidential", "admin");
    let plain = Plain::new(&server);
    let (pair, _) = plain.sign_in(&admin).await;
    let wrong = format!("client_id={}&client_secret=wrong", form_encode(&admin.id));
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            plain
                .post("/admin/login", None, &wrong, &[])
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(&statuses[..2], [401, 401], "{statuses:?}");
    assert_eq!(statuses[3], 429, "{statuses:?}");
    let page = plain.get("/admin/keys", Some(&pair)).await;
    assert_eq!(page.status(), 200, "a signed-in admin still works");
}
