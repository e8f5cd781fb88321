//! A resource server protected by tessera-verifier.
//!
//! ```text
//! cargo run -p tessera-verifier --features axum --example resource_server -- \
//!     --issuer http://127.0.0.1:8080 --audience api --listen 127.0.0.1:9090
//! ```
//!
//! `GET /me` answers the verified claims as JSON; `GET /admin` also requires
//! a login within the last 300 s (RFC 9470 step-up). Anything else about the
//! token earns a 401 with an RFC 6750 / RFC 9470 `WWW-Authenticate` header.
//!
//! Revoked tokens are refused too: by default the server follows the
//! issuer's revocation event stream (`--revocation feed`); `status-list`
//! checks Token Status Lists instead, `none` checks nothing. With revocation
//! data older than `--max-staleness` it refuses every token, unless
//! `--fail-open`.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use tessera_verifier::axum::{Authenticated, RequireToken};
use tessera_verifier::{RemoteOptions, Requirements, RevocationOptions, Validation, Verifier};

#[derive(Clone, Copy, clap::ValueEnum)]
enum RevocationMode {
    /// Follow the revocation event stream.
    Feed,
    /// Check Token Status Lists.
    StatusList,
    /// Do not check revocation.
    None,
}

#[derive(Parser)]
#[command(about = "Example resource server protected by tessera-verifier")]
struct Args {
    /// The issuer's base URL (its RFC 8414 metadata is read from there).
    #[arg(long)]
    issuer: String,
    /// The audience this server accepts.
    #[arg(long)]
    audience: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: String,
    /// How revoked tokens are learnt.
    #[arg(long, value_enum, default_value_t = RevocationMode::Feed)]
    revocation: RevocationMode,
    /// Seconds after which revocation data counts as stale.
    #[arg(long, default_value_t = 30)]
    max_staleness: u64,
    /// Accept tokens while revocation data is stale (default: refuse them).
    #[arg(long)]
    fail_open: bool,
    /// Also accept DPoP-bound tokens with their proofs; the value is this
    /// server's public origin (`https://api.example`), which proofs name.
    #[arg(long, value_name = "ORIGIN")]
    dpop_origin: Option<String>,
    /// Verified tokens remembered, so a repeat skips its signature check
    /// (revocation and per-route requirements are still checked); 0 turns
    /// the cache off.
    #[arg(long, default_value_t = tessera_verifier::cache::DEFAULT_CAPACITY)]
    token_cache: usize,
}

async fn me(token: Authenticated) -> Json<serde_json::Value> {
    Json(token.claims_json())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let validation = Validation::new(&args.issuer, [args.audience.as_str()])?;
    let verifier = Verifier::from_issuer(validation, RemoteOptions::default())
        .await?
        .with_token_cache(args.token_cache);
    let revocation = RevocationOptions {
        max_staleness: Duration::from_secs(args.max_staleness),
        fail_open: args.fail_open,
        ..RevocationOptions::default()
    };
    let verifier = Arc::new(match args.revocation {
        RevocationMode::Feed => verifier.with_revocation_feed(revocation).await?,
        RevocationMode::StatusList => verifier.with_status_lists(revocation)?,
        RevocationMode::None => verifier,
    });

    let step_up = Requirements::new().max_age(Duration::from_secs(300));
    let dpop_origin = args.dpop_origin.clone();
    let layer = move |layer: RequireToken| match &dpop_origin {
        Some(origin) => layer.dpop(origin),
        None => layer,
    };
    let app = Router::new()
        .route(
            "/me",
            get(me).layer(layer(RequireToken::new(verifier.clone()))),
        )
        .route(
            "/admin",
            get(me).layer(layer(RequireToken::new(verifier).require(step_up))),
        );

    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
