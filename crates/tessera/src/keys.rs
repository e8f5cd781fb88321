//! Signing-key administration: `tessera keys list | rotate | revoke KID` and
//! the admin routes `GET /v1/keys`, `POST /v1/keys/rotate`,
//! `POST /v1/keys/{kid}/revoke`. Both drive the same
//! [`KeyManager`], against the store the config names.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Subcommand;
use serde_json::json;
use tessera_issuer::http::ApiError;
use tessera_issuer::{Clock as _, Issuer};
use tessera_revocation::{KeyManager, KeyOpError, KeySettings};
use tessera_store::StoredKey;

use crate::config::Config;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List every stored key with its lifecycle state and times.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Start a rotation: each algorithm gets a pending key, published now,
    /// signing after `keys.publish_ahead` (a running `tessera serve` activates it).
    Rotate {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compromise: unpublish KID now and refuse every token it signed; if it
    /// was signing, a fresh key takes over at once.
    Revoke {
        /// The key id (a thumbprint may begin with `-`; it is still the id).
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The lifecycle settings from the config.
pub fn settings(config: &Config) -> KeySettings {
    KeySettings {
        algorithms: crate::serve::DEFAULT_ALGORITHMS.to_vec(),
        rotation_period: config.rotation_period,
        publish_ahead: config.publish_ahead,
        retire_after: config.access_ttl + config.retire_margin,
    }
}

/// A key as admins see it (never any private part).
pub fn key_json(key: &StoredKey) -> serde_json::Value {
    let secs = |t: tessera_store::Timestamp| t.unix_seconds();
    json!({
        "kid": key.kid,
        "alg": key.alg.as_str(),
        "state": key.state.as_str(),
        "created_at": secs(key.created_at),
        "activates_at": secs(key.activates_at),
        "retired_at": key.retired_at.map(secs),
        "expires_at": key.expires_at.map(secs),
    })
}

pub async fn run(command: KeysCommand, mut config: Config) -> anyhow::Result<()> {
    let store = crate::serve::open_admin_store(&config).await?;
    let now = tessera_issuer::SystemClock.now();
    match command {
        KeysCommand::List { json } => {
            let keys = store.keys().await?;
            if json {
                let list: Vec<_> = keys.iter().map(key_json).collect();
                println!("{}", json!({ "keys": list }));
            } else {
                println!(
                    "{:<48}  {:<9}  {:<8}  {:>10}  {:>10}  {:>10}",
                    "KID", "ALG", "STATE", "CREATED", "ACTIVATES", "EXPIRES"
                );
                for k in &keys {
                    println!(
                        "{:<48}  {:<9}  {:<8}  {:>10}  {:>10}  {:>10}",
                        k.kid,
                        k.alg,
                        k.state,
                        k.created_at.unix_seconds(),
                        k.activates_at.unix_seconds(),
                        k.expires_at
                            .map_or_else(|| "-".to_owned(), |t| t.unix_seconds().to_string())
                    );
                }
            }
            Ok(())
        }
        KeysCommand::Rotate { json } => {
            let master = Arc::new(crate::master_key::load(&mut config)?);
            let manager = KeyManager::new(store, master, settings(&config));
            let pending = manager.rotate(now).await?;
            if json {
                let list: Vec<_> = pending.iter().map(key_json).collect();
                println!("{}", json!({ "pending": list }));
            } else {
                for key in &pending {
                    println!(
                        "pending {} {} (signs from {})",
                        key.alg,
                        key.kid,
                        key.activates_at.unix_seconds()
                    );
                }
            }
            Ok(())
        }
        KeysCommand::Revoke { kid, json } => {
            let master = Arc::new(crate::master_key::load(&mut config)?);
            let manager = KeyManager::new(store, master, settings(&config));
            let revoked = manager.revoke(&kid, now).await?;
            if json {
                println!(
                    "{}",
                    json!({
                        "revoked": key_json(&revoked.key),
                        "replacement": revoked.replacement.as_ref().map(key_json),
                    })
                );
            } else {
                println!("revoked {} {}", revoked.key.alg, revoked.key.kid);
                if let Some(fresh) = &revoked.replacement {
                    println!("now signing with {} {}", fresh.alg, fresh.kid);
                }
            }
            Ok(())
        }
    }
}

#[derive(Clone)]
struct Admin {
    issuer: Arc<Issuer>,
    manager: Arc<KeyManager>,
}

/// `GET /v1/keys`, `POST /v1/keys/rotate`, `POST /v1/keys/{kid}/revoke`
/// (confidential clients with the `admin` permission).
pub fn routes(issuer: Arc<Issuer>, manager: Arc<KeyManager>) -> Router {
    Router::new()
        .route("/v1/keys", get(list))
        .route("/v1/keys/rotate", post(rotate))
        .route("/v1/keys/{kid}/revoke", post(revoke))
        .with_state(Admin { issuer, manager })
}

fn unavailable(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "key administration failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({
            "error": "temporarily_unavailable",
            "message": "the key store is unavailable; retry later",
        })),
    )
        .into_response()
}

async fn list(
    State(admin): State<Admin>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<Response, ApiError> {
    tessera_issuer::http::authenticate_admin(&admin.issuer, &headers, &extensions).await?;
    Ok(match admin.manager.store().keys().await {
        Ok(keys) => {
            let list: Vec<_> = keys.iter().map(key_json).collect();
            axum::Json(json!({ "keys": list })).into_response()
        }
        Err(e) => unavailable(e),
    })
}

async fn rotate(
    State(admin): State<Admin>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<Response, ApiError> {
    tessera_issuer::http::authenticate_admin(&admin.issuer, &headers, &extensions).await?;
    Ok(match admin.manager.rotate(admin.issuer.now()).await {
        Ok(pending) => {
            let list: Vec<_> = pending.iter().map(key_json).collect();
            (StatusCode::ACCEPTED, axum::Json(json!({ "pending": list }))).into_response()
        }
        Err(e) => unavailable(e),
    })
}

async fn revoke(
    State(admin): State<Admin>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(kid): Path<String>,
) -> Result<Response, ApiError> {
    tessera_issuer::http::authenticate_admin(&admin.issuer, &headers, &extensions).await?;
    if !tessera_core::key::is_valid_kid(&kid) {
        return Ok(not_found(&kid));
    }
    Ok(match admin.manager.revoke(&kid, admin.issuer.now()).await {
        Ok(revoked) => {
            // Sign with the replacement from the next request on.
            if let Err(error) = admin.issuer.reload_keys().await {
                tracing::warn!(%error, "reloading keys after a revocation failed");
            }
            axum::Json(json!({
                "revoked": key_json(&revoked.key),
                "replacement": revoked.replacement.as_ref().map(key_json),
            }))
            .into_response()
        }
        Err(KeyOpError::NotFound(_)) => not_found(&kid),
        Err(KeyOpError::AlreadyRevoked(_)) => (
            StatusCode::CONFLICT,
            axum::Json(json!({
                "error": "already_revoked",
                "message": format!("key {kid:?} is already revoked"),
            })),
        )
            .into_response(),
        Err(e) => unavailable(e),
    })
}

fn not_found(kid: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({
            "error": "not_found",
            "message": format!("no key has id {kid:?}"),
        })),
    )
        .into_response()
}
