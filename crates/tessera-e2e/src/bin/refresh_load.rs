//! Refresh-token load client for a Tessera server on 127.0.0.1.
//!
//! Finds the endpoints by discovery, opens `--sessions` sessions as a backend
//! (HTTP Basic at `sessions_endpoint`), then runs one task per session that
//! refreshes it in a loop as the public client (`token_endpoint`, always
//! presenting the newest refresh token) for `--warmup-secs` (not measured)
//! plus `--duration-secs` (measured). Prints a human summary, then one JSON
//! line. Exit 0 when every refresh succeeded, 1 on any failure, 2 on usage.
//!
//! It refuses any issuer or endpoint that is not `http://127.0.0.1:PORT`, uses
//! no proxy, follows no redirect, and stops by itself.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

const USAGE: &str = "usage: refresh_load --issuer http://127.0.0.1:PORT --backend-id ID --backend-secret SECRET \
--client-id PUBLIC_ID [--audience AUD (api)] [--sessions N (64)] [--duration-secs S (20)] \
[--warmup-secs S (3)] [--threads N (1)] [--also http://127.0.0.1:PORT ...]";

/// The goal on the 2-core reference machine.
const GOAL_REFRESHES_PER_SEC: f64 = 8_000.0;
const GOAL_P99_MS: f64 = 20.0;
/// Per-request limit (the server answers 408 after 10 s itself).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// After the run ends, how long in-flight requests may take before tasks are aborted.
const DRAIN_LIMIT: Duration = Duration::from_secs(15);
/// Pause after a failure before trying again, so a dead server is not spun on.
const FAILURE_PAUSE: Duration = Duration::from_millis(20);

/// Command-line settings. No `Debug`: it holds the backend secret.
struct Args {
    issuer: String,
    backend_id: String,
    backend_secret: String,
    client_id: String,
    audience: String,
    sessions: usize,
    duration: Duration,
    warmup: Duration,
    threads: usize,
    also: Vec<String>,
}

enum ArgsError {
    Help,
    Bad(String),
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, ArgsError> {
    let mut issuer = None;
    let mut backend_id = None;
    let mut backend_secret = None;
    let mut client_id = None;
    let mut audience = "api".to_owned();
    let mut sessions = 64usize;
    let mut duration_secs = 20u64;
    let mut warmup_secs = 3u64;
    let mut threads = 1usize;
    let mut also = Vec::new();
    while let Some(flag) = argv.next() {
        if flag == "--help" || flag == "-h" {
            return Err(ArgsError::Help);
        }
        let value = argv
            .next()
            .ok_or_else(|| ArgsError::Bad(format!("{flag} needs a value")))?;
        let number = |max: u64| -> Result<u64, ArgsError> {
            value
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| ArgsError::Bad(format!("{flag}: {value:?} is not a number ≤ {max}")))
        };
        match flag.as_str() {
            "--issuer" => issuer = Some(value.trim_end_matches('/').to_owned()),
            "--backend-id" => backend_id = Some(value),
            "--backend-secret" => backend_secret = Some(value),
            "--client-id" => client_id = Some(value),
            "--audience" => audience = value,
            "--sessions" => {
                sessions = usize::try_from(number(4096)?)
                    .map_err(|_| ArgsError::Bad("--sessions is too large".into()))?;
            }
            "--duration-secs" => duration_secs = number(3600)?,
            "--warmup-secs" => warmup_secs = number(600)?,
            "--threads" => {
                threads = usize::try_from(number(64)?)
                    .map_err(|_| ArgsError::Bad("--threads is too large".into()))?;
            }
            // Another instance on the same store: refreshes rotate over all.
            "--also" => also.push(value.trim_end_matches('/').to_owned()),
            _ => return Err(ArgsError::Bad(format!("unknown argument {flag:?}"))),
        }
    }
    let required = |name: &str, value: Option<String>| {
        value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ArgsError::Bad(format!("{name} is required")))
    };
    let args = Args {
        issuer: required("--issuer", issuer)?,
        backend_id: required("--backend-id", backend_id)?,
        backend_secret: required("--backend-secret", backend_secret)?,
        client_id: required("--client-id", client_id)?,
        audience,
        sessions,
        duration: Duration::from_secs(duration_secs),
        warmup: Duration::from_secs(warmup_secs),
        threads,
        also,
    };
    if let Some(bad) = args.also.iter().find(|url| !is_loopback_origin(url)) {
        return Err(ArgsError::Bad(format!(
            "--also must be http://127.0.0.1:PORT, got {bad:?}"
        )));
    }
    if !is_loopback_origin(&args.issuer) {
        return Err(ArgsError::Bad(format!(
            "--issuer must be http://127.0.0.1:PORT, got {:?}",
            args.issuer
        )));
    }
    if args.sessions == 0 || args.duration.is_zero() || args.threads == 0 {
        return Err(ArgsError::Bad(
            "--sessions, --duration-secs and --threads must be at least 1".into(),
        ));
    }
    if args.audience.is_empty() {
        return Err(ArgsError::Bad("--audience must be non-empty".into()));
    }
    Ok(args)
}

/// `http://127.0.0.1:PORT` exactly (no path, no other host).
fn is_loopback_origin(url: &str) -> bool {
    url.strip_prefix("http://127.0.0.1:")
        .is_some_and(|port| port.parse::<u16>().is_ok_and(|p| p != 0))
}

/// `application/x-www-form-urlencoded` for one value, appended to `out`.
fn push_form_encoded(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

fn form_encoded(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    push_form_encoded(&mut out, value);
    out
}

/// Why one refresh failed, and whether the session is gone (a new one is opened).
struct Failure {
    kind: String,
    session_lost: bool,
}

impl Failure {
    fn transport(e: &reqwest::Error) -> Failure {
        let kind = if e.is_timeout() {
            "timeout"
        } else if e.is_connect() {
            "connect error"
        } else {
            "transport error"
        };
        Failure {
            kind: kind.to_owned(),
            session_lost: false,
        }
    }
}

/// What every task shares: the HTTP client, endpoints and credentials.
struct Target {
    http: reqwest::Client,
    sessions_endpoint: String,
    token_endpoint: String,
    /// Every instance's token endpoint; refreshes take them in turn.
    token_endpoints: Vec<String>,
    next_endpoint: std::sync::atomic::AtomicUsize,
    backend_id: String,
    backend_secret: String,
    /// `client_id=...&refresh_token=` prefix of every refresh body.
    refresh_prefix: String,
    client_id: String,
    audience: String,
}

impl Target {
    async fn discover(args: &Args) -> Result<Target, String> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let url = format!("{}/.well-known/oauth-authorization-server", args.issuer);
        let response = http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let metadata: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("GET {url}: HTTP {status}, body is not JSON ({e})"))?;
        if metadata["issuer"] != args.issuer.as_str() {
            return Err(format!(
                "discovery: issuer is {}, expected {:?}",
                metadata["issuer"], args.issuer
            ));
        }
        let endpoint = |name: &str| -> Result<String, String> {
            let url = metadata[name]
                .as_str()
                .ok_or_else(|| format!("discovery: no {name}"))?;
            let on_issuer = url
                .strip_prefix(args.issuer.as_str())
                .is_some_and(|rest| rest.starts_with('/'));
            if !on_issuer {
                return Err(format!(
                    "discovery: {name} {url:?} is not on {}; refusing to send load there",
                    args.issuer
                ));
            }
            Ok(url.to_owned())
        };
        let mut refresh_prefix = String::from("grant_type=refresh_token&client_id=");
        push_form_encoded(&mut refresh_prefix, &args.client_id);
        refresh_prefix.push_str("&refresh_token=");
        Ok(Target {
            sessions_endpoint: endpoint("sessions_endpoint")?,
            token_endpoint: endpoint("token_endpoint")?,
            token_endpoints: std::iter::once(endpoint("token_endpoint")?)
                .chain(args.also.iter().map(|base| format!("{base}/oauth/token")))
                .collect(),
            next_endpoint: std::sync::atomic::AtomicUsize::new(0),
            http,
            backend_id: args.backend_id.clone(),
            backend_secret: args.backend_secret.clone(),
            refresh_prefix,
            client_id: args.client_id.clone(),
            audience: args.audience.clone(),
        })
    }

    /// Opens a session for subject `load-INDEX`; returns its first refresh token.
    async fn open_session(&self, index: usize) -> Result<String, String> {
        let body = json!({
            "subject": format!("load-{index}"),
            "client_id": self.client_id,
            "audience": [self.audience],
            "scope": "read",
        });
        let response = self
            .http
            .post(&self.sessions_endpoint)
            // RFC 6749 §2.3.1: form-encoded inside the Basic credentials.
            .basic_auth(
                form_encoded(&self.backend_id),
                Some(form_encoded(&self.backend_secret)),
            )
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("open session: {e}"))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("open session: {e}"))?;
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        match (status, answer["refresh_token"].as_str()) {
            (201, Some(token)) => Ok(token.to_owned()),
            _ => Err(format!(
                "open session: HTTP {status} {} {}",
                answer["error"], answer["message"]
            )),
        }
    }

    /// One refresh exchange; returns the new refresh token.
    async fn refresh(&self, token: &str) -> Result<String, Failure> {
        let mut body = String::with_capacity(self.refresh_prefix.len() + token.len() + 8);
        body.push_str(&self.refresh_prefix);
        push_form_encoded(&mut body, token);
        let response = self
            .http
            .post(
                &self.token_endpoints[self
                    .next_endpoint
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    % self.token_endpoints.len()],
            )
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::transport(&e))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| Failure::transport(&e))?;
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status == 200 {
            return match answer["refresh_token"].as_str() {
                Some(next) if !next.is_empty() => Ok(next.to_owned()),
                _ => Err(Failure {
                    kind: "200 without refresh_token".into(),
                    session_lost: false,
                }),
            };
        }
        let error = answer["error"].as_str().unwrap_or("-");
        Err(Failure {
            kind: format!("{status} {error}"),
            session_lost: error == "invalid_grant",
        })
    }
}

/// The measurement window shared by all tasks.
#[derive(Clone, Copy)]
struct Window {
    measure_from: Instant,
    until: Instant,
}

/// What one task saw.
#[derive(Default)]
struct TaskResult {
    /// Latency of each successful refresh started in the measured window, µs.
    latencies_us: Vec<u32>,
    warmup_ok: u64,
    failures: BTreeMap<String, u64>,
    reopened: u64,
    last_done: Option<Instant>,
}

async fn refresh_loop(
    target: Arc<Target>,
    index: usize,
    first: String,
    window: Window,
) -> TaskResult {
    let mut result = TaskResult::default();
    let mut token = first;
    loop {
        let started = Instant::now();
        if started >= window.until {
            break;
        }
        let outcome = target.refresh(&token).await;
        let done = Instant::now();
        result.last_done = Some(done);
        match outcome {
            Ok(next) => {
                token = next;
                if started >= window.measure_from {
                    let micros = done.duration_since(started).as_micros();
                    result
                        .latencies_us
                        .push(u32::try_from(micros).unwrap_or(u32::MAX));
                } else {
                    result.warmup_ok += 1;
                }
            }
            Err(failure) => {
                *result.failures.entry(failure.kind).or_default() += 1;
                if failure.session_lost {
                    // The chain is broken (or revoked): carry on with a new session.
                    match target.open_session(index).await {
                        Ok(fresh) => {
                            token = fresh;
                            result.reopened += 1;
                        }
                        Err(_) => tokio::time::sleep(FAILURE_PAUSE).await,
                    }
                } else {
                    // Retry the same token: within the grace window the server
                    // answers a retried exchange idempotently.
                    tokio::time::sleep(FAILURE_PAUSE).await;
                }
            }
        }
    }
    result
}

/// A count as a float (exact below 2^32, which any run stays under).
fn count_f64(n: usize) -> f64 {
    f64::from(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Nearest-rank percentile (`per_mille` of 1000) of sorted microseconds, in
/// milliseconds.
fn percentile_ms(sorted: &[u32], per_mille: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (per_mille * sorted.len()).div_ceil(1000);
    let index = rank.clamp(1, sorted.len()) - 1;
    f64::from(sorted[index]) / 1000.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

async fn run(args: Args) -> Result<(Value, bool), String> {
    let target = Arc::new(Target::discover(&args).await?);

    let opening = Instant::now();
    let mut firsts = Vec::with_capacity(args.sessions);
    for index in 0..args.sessions {
        firsts.push(target.open_session(index).await?);
    }
    let open_ms = opening.elapsed().as_secs_f64() * 1000.0;
    eprintln!(
        "refresh_load: opened {} sessions in {open_ms:.0} ms; warm-up {} s, then measuring {} s",
        args.sessions,
        args.warmup.as_secs(),
        args.duration.as_secs()
    );

    let start = Instant::now();
    let window = Window {
        measure_from: start + args.warmup,
        until: start + args.warmup + args.duration,
    };
    let tasks: Vec<_> = firsts
        .into_iter()
        .enumerate()
        .map(|(index, first)| tokio::spawn(refresh_loop(target.clone(), index, first, window)))
        .collect();

    let drain_deadline = tokio::time::Instant::from_std(window.until + DRAIN_LIMIT);
    let mut results = Vec::with_capacity(tasks.len());
    let mut lost_tasks = 0u64;
    for task in tasks {
        let abort = task.abort_handle();
        match tokio::time::timeout_at(drain_deadline, task).await {
            Ok(Ok(result)) => results.push(result),
            Ok(Err(_)) => lost_tasks += 1,
            Err(_) => {
                abort.abort();
                lost_tasks += 1;
            }
        }
    }

    let mut latencies: Vec<u32> =
        Vec::with_capacity(results.iter().map(|r| r.latencies_us.len()).sum());
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut warmup_ok = 0u64;
    let mut reopened = 0u64;
    let mut last_done = window.measure_from;
    for result in results {
        latencies.extend_from_slice(&result.latencies_us);
        warmup_ok += result.warmup_ok;
        reopened += result.reopened;
        for (kind, n) in result.failures {
            *failures.entry(kind).or_default() += n;
        }
        if let Some(done) = result.last_done {
            last_done = last_done.max(done);
        }
    }
    if lost_tasks > 0 {
        *failures.entry("task did not finish".into()).or_default() += lost_tasks;
    }
    latencies.sort_unstable();

    let ok = u64::try_from(latencies.len()).expect("a count fits in u64");
    let failed: u64 = failures.values().sum();
    let measured_secs = last_done
        .duration_since(window.measure_from)
        .as_secs_f64()
        .max(args.duration.as_secs_f64());
    let rate = count_f64(latencies.len()) / measured_secs;
    let mean_ms = if latencies.is_empty() {
        0.0
    } else {
        latencies.iter().map(|&us| f64::from(us)).sum::<f64>() / count_f64(latencies.len()) / 1000.0
    };
    let (p50, p90, p99, max) = (
        percentile_ms(&latencies, 500),
        percentile_ms(&latencies, 900),
        percentile_ms(&latencies, 990),
        percentile_ms(&latencies, 1000),
    );
    let goal_met = rate >= GOAL_REFRESHES_PER_SEC && p99 <= GOAL_P99_MS && failed == 0;

    println!(
        "refresh_load: {} sessions, {measured_secs:.2} s measured after {} s warm-up, {} client thread(s), {}",
        args.sessions,
        args.warmup.as_secs(),
        args.threads,
        target.token_endpoint
    );
    println!(
        "  refreshes     {ok} ok in the window ({warmup_ok} during warm-up), {failed} failed, {reopened} sessions reopened"
    );
    println!("  throughput    {rate:.1} refreshes/s");
    println!(
        "  latency (ms)  p50 {p50:.3}  p90 {p90:.3}  p99 {p99:.3}  max {max:.3}  mean {mean_ms:.3}"
    );
    for (kind, n) in &failures {
        println!("  failure       {kind}: {n}");
    }
    println!(
        "  goal          >= {GOAL_REFRESHES_PER_SEC:.0}/s with p99 <= {GOAL_P99_MS:.0} ms, no failures: {}",
        if goal_met { "met" } else { "NOT met" }
    );

    let report = json!({
        "sessions": args.sessions,
        "threads": args.threads,
        "warmup_secs": args.warmup.as_secs(),
        "duration_secs": round3(measured_secs),
        "refreshes": ok,
        "warmup_refreshes": warmup_ok,
        "failures": failed,
        "failure_kinds": failures,
        "sessions_reopened": reopened,
        "refreshes_per_sec": round3(rate),
        "latency_ms": {
            "p50": p50,
            "p90": p90,
            "p99": p99,
            "max": max,
            "mean": round3(mean_ms),
        },
        "goal": {
            "refreshes_per_sec": GOAL_REFRESHES_PER_SEC,
            "p99_ms": GOAL_P99_MS,
            "met": goal_met,
        },
    });
    Ok((report, ok > 0 && failed == 0))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(ArgsError::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(ArgsError::Bad(message)) => {
            eprintln!("refresh_load: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("refresh_load: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok((report, all_ok)) => {
            println!("{report}");
            if all_ok {
                ExitCode::SUCCESS
            } else {
                eprintln!("refresh_load: some refreshes failed (or none succeeded)");
                ExitCode::FAILURE
            }
        }
        Err(message) => {
            eprintln!("refresh_load: {message}");
            ExitCode::FAILURE
        }
    }
}
