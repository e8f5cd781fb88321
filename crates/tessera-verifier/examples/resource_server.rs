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

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use tessera_verifier::axum::{Authenticated, RequireToken};
use tessera_verifier::{RemoteOptions, Requirements, Validation, Verifier};

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
}

async fn me(token: Authenticated) -> Json<serde_json::Value> {
    Json(token.claims_json())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let validation = Validation::new(&args.issuer, [args.audience.as_str()])?;
    let verifier = Arc::new(Verifier::from_issuer(validation, RemoteOptions::default()).await?);

    let step_up = Requirements::new().max_age(Duration::from_secs(300));
    let app = Router::new()
        .route("/me", get(me).layer(RequireToken::new(verifier.clone())))
        .route(
            "/admin",
            get(me).layer(RequireToken::new(verifier).require(step_up)),
        );

    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
