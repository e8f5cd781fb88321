//! A real `tessera serve` on 127.0.0.1 with its own data directory, and the
//! CLI run against the same configuration.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::{scratch_dir, tessera_bin};

/// Which store a [`Server`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the data directory (the default).
    Sqlite,
    /// A fresh database on `TESSERA_TEST_DATABASE_URL`, dropped afterwards.
    Postgres,
}

/// Generates, for each named `async fn(Backend)`, a module with two tests:
/// `sqlite` and `postgres` (which says it skipped without
/// `TESSERA_TEST_DATABASE_URL`). One test body, both backends, passed as an
/// explicit argument.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::server::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::postgres::server_url(stringify!($name)).is_none() {
                    return;
                }
                super::$name($crate::server::Backend::Postgres).await
            }
        }
    )*};
}

/// A running server; killed when dropped, its data directory (and, on
/// PostgreSQL, its database) removed.
pub struct Server {
    /// `http://127.0.0.1:PORT` (also the issuer).
    pub base: String,
    /// The data directory.
    pub data_dir: PathBuf,
    env: Vec<(String, String)>,
    child: Option<tokio::process::Child>,
    database: Option<crate::postgres::TestDatabase>,
}

/// A registered client.
#[derive(Debug, Clone)]
pub struct RegisteredClient {
    /// `client_id`.
    pub id: String,
    /// `client_secret` (confidential clients).
    pub secret: Option<String>,
}

impl Server {
    /// Starts `tessera serve` on SQLite with extra `TESSERA_*` settings.
    pub async fn start(name: &str, settings: &[(&str, &str)]) -> Server {
        Server::start_on(Backend::Sqlite, name, settings).await
    }

    /// Starts `tessera serve` on `backend` (unless `settings` name a
    /// `TESSERA_STORE_URL`) with extra `TESSERA_*` settings.
    pub async fn start_on(backend: Backend, name: &str, settings: &[(&str, &str)]) -> Server {
        let data_dir = scratch_dir(name);
        let master = tessera_core::MasterKey::generate().expect("master key");
        let mut env = vec![
            (
                "TESSERA_DATA_DIR".to_owned(),
                data_dir.to_string_lossy().into_owned(),
            ),
            ("TESSERA_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            (
                "TESSERA_MASTER_KEY".to_owned(),
                master.to_base64().to_string(),
            ),
            // Tests drive one server from one address far faster than any
            // real client; the rate-limit tests turn them back on.
            (
                "TESSERA_RATE_LIMITS__ENABLED".to_owned(),
                "false".to_owned(),
            ),
        ];
        let mut database = None;
        let own_store = !settings.iter().any(|(k, _)| *k == "TESSERA_STORE_URL");
        if backend == Backend::Postgres && own_store {
            let admin = crate::postgres::server_url(name)
                .expect("Backend::Postgres needs TESSERA_TEST_DATABASE_URL");
            let db = crate::postgres::TestDatabase::create(&admin, name).await;
            env.push(("TESSERA_STORE_URL".to_owned(), db.url.clone()));
            database = Some(db);
        }
        env.extend(
            settings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let log = data_dir.with_extension("log");
        let (child, base) = spawn(&mut env, &log).await;
        Server {
            base,
            data_dir,
            env,
            child: Some(child),
            database,
        }
    }

    /// Where the server's log lines (stderr) go: appended across restarts.
    pub fn log_path(&self) -> PathBuf {
        self.data_dir.with_extension("log")
    }

    /// Everything the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A setting the server was started with.
    pub fn setting(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(tokio::process::Child::id)
    }

    /// Kills the server at once (SIGKILL: no graceful shutdown).
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Starts the server again on the same address and data directory.
    pub async fn restart(&mut self) {
        self.kill().await;
        let log = self.log_path();
        let (child, base) = spawn(&mut self.env, &log).await;
        self.child = Some(child);
        self.base = base;
    }

    /// Runs `tessera ARGS` with the server's configuration, whatever its exit.
    pub fn cli_output(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(tessera_bin())
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("run tessera")
    }

    /// Runs `tessera ARGS` with the server's configuration; panics unless it exits 0.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_output(args);
        assert!(
            out.status.success(),
            "tessera {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Registers a client through the CLI.
    pub fn create_client(&self, name: &str, kind: &str, allow: &str) -> RegisteredClient {
        self.create_client_with(name, kind, allow, &[])
    }

    /// Registers a client through the CLI with more `clients create` options
    /// (`--scopes`, `--audiences`, `--sessions-for`, `--policy`).
    pub fn create_client_with(
        &self,
        name: &str,
        kind: &str,
        allow: &str,
        extra: &[&str],
    ) -> RegisteredClient {
        let mut args = vec![
            "clients", "create", "--name", name, "--kind", kind, "--allow", allow, "--json",
        ];
        args.extend_from_slice(extra);
        let out = self.cli(&args);
        let json: serde_json::Value =
            serde_json::from_str(out.trim()).expect("clients create --json");
        RegisteredClient {
            id: json["client_id"].as_str().expect("client_id").to_owned(),
            secret: json["client_secret"].as_str().map(str::to_owned),
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
        let _ = std::fs::remove_file(self.log_path());
        if let Some(db) = self.database.take() {
            // Drop cannot await: a small runtime on its own thread does it.
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(db.drop_now());
                }
            })
            .join();
        }
    }
}

/// A minimal HTTP client for the tests: JSON in, JSON out, status kept.
#[derive(Clone, Default)]
pub struct Http(reqwest::Client);

impl Http {
    /// A client.
    pub fn new() -> Self {
        Http(reqwest::Client::new())
    }

    /// Sends and returns (status, JSON body or Null).
    pub async fn send(&self, request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    /// A request builder.
    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.0.request(method, url)
    }

    /// `POST url` with a form body (values must already be form-safe).
    pub async fn form(
        &self,
        url: &str,
        fields: &[(&str, &str)],
        basic: Option<&RegisteredClient>,
    ) -> (u16, serde_json::Value) {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut request = self
            .0
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(client) = basic {
            request = request.basic_auth(&client.id, client.secret.as_deref());
        }
        self.send(request).await
    }

    /// `METHOD url` with a JSON body and HTTP Basic.
    pub async fn json(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<serde_json::Value>,
        basic: &RegisteredClient,
    ) -> (u16, serde_json::Value) {
        let mut request = self
            .0
            .request(method, url)
            .basic_auth(&basic.id, basic.secret.as_deref());
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        self.send(request).await
    }
}

/// `application/x-www-form-urlencoded` for one value.
pub fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Starts `tessera serve` with `env`, its stderr appended to `log`; answers
/// the child and its base URL once it listens (and pins `TESSERA_LISTEN` to
/// that address, so a restart keeps it).
async fn spawn(
    env: &mut Vec<(String, String)>,
    log: &std::path::Path,
) -> (tokio::process::Child, String) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the server log");
    let mut child = tokio::process::Command::new(tessera_bin())
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start tessera serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if let Some(addr) = line.strip_prefix("listening on ") {
                return addr.trim().to_owned();
            }
        }
        panic!("tessera serve exited before listening");
    })
    .await
    .expect("tessera serve listens within 20 s");
    // Restarts keep the address (and so the issuer URL).
    env.retain(|(k, _)| k != "TESSERA_LISTEN");
    env.push(("TESSERA_LISTEN".to_owned(), line.clone()));
    // Keep reading stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("http://{line}"))
}
