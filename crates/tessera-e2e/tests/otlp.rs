//! The `otlp` feature: `tessera serve` with `OTEL_EXPORTER_OTLP_ENDPOINT`
//! set exports a span per request over OTLP/HTTP to a collector, here a
//! small one on 127.0.0.1 that keeps what it receives. Runs when this crate's
//! `otlp` feature is on (with `--all-features`, which also builds `tessera`
//! with its own).
#![cfg(feature = "otlp")]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::post;
use reqwest::Method;
use tessera_testkit::server::{Http, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_spans_reach_an_otlp_collector() {
    let received: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let kept = received.clone();
    let collector = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let kept = kept.clone();
            async move {
                kept.lock().expect("lock").push(body);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, collector).await;
    });
    let endpoint = format!("http://{addr}");
    let server = Server::start(
        "otlp",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_SERVICE_NAME", "tessera-otlp-test"),
        ],
    )
    .await;
    assert!(
        server
            .log_text()
            .contains("exporting request spans over OTLP"),
        "{}",
        server.log_text()
    );
    let spa = server.create_client_with("spa", "public", "refresh_token", &["--audiences", "api"]);
    let backend = server.create_client_with(
        "backend",
        "confidential",
        "sessions",
        &["--sessions-for", &spa.id],
    );
    let http = Http::new();
    let (status, opened) = http
        .json(
            Method::POST,
            &server.url("/v1/sessions"),
            Some(serde_json::json!({"subject": "otel", "client_id": spa.id, "audience": ["api"]})),
            &backend,
        )
        .await;
    assert_eq!(status, 201, "{opened}");
    let refresh = opened["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let (status, _) = http
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
    assert_eq!(status, 200);

    // The batch goes out within a moment; protobuf keeps strings as UTF-8.
    let contains =
        |bytes: &[u8], needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    let started = Instant::now();
    let mut all = Vec::new();
    while started.elapsed() < Duration::from_secs(15) {
        all = received.lock().expect("lock").concat();
        if contains(&all, "/oauth/token") && contains(&all, "/v1/sessions") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for needle in [
        "tessera-otlp-test",
        "request",
        "http.route",
        "/oauth/token",
        "/v1/sessions",
        "http.request.method",
        "POST",
        "http.response.status_code",
        "tessera.client_id",
        spa.id.as_str(),
    ] {
        assert!(
            contains(&all, needle),
            "{needle:?} not exported ({} bytes)",
            all.len()
        );
    }
    assert!(!contains(&all, &refresh), "a refresh token was exported");
    assert!(
        !contains(&all, opened["access_token"].as_str().expect("access")),
        "an access token was exported"
    );
}
