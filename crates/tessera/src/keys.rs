//! Signing-key administration from the command line: `tessera keys list |
//! rotate | revoke KID`, driving the same [`KeyManager`] as the admin routes
//! (`tessera_revocation::admin`, which [`IssuerKeyAdmin`] plugs into the
//! issuer's admin authentication).

use std::sync::Arc;

use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use clap::Subcommand;
use serde_json::json;
use tessera_issuer::{Clock as _, Issuer};
use tessera_revocation::{KeyAdmin, KeyManager, KeySettings, key_json};

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
                    "{:<48}  {:<9}  {:<8}  {:<20}  {:<20}  {:<20}",
                    "KID", "ALG", "STATE", "CREATED", "ACTIVATES", "EXPIRES"
                );
                for k in &keys {
                    println!(
                        "{:<48}  {:<9}  {:<8}  {:<20}  {:<20}  {:<20}",
                        k.kid,
                        k.alg,
                        k.state,
                        k.created_at.to_rfc3339(),
                        k.activates_at.to_rfc3339(),
                        k.expires_at
                            .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339())
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
                        key.activates_at.to_rfc3339()
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

/// What `/v1/keys` (served by `tessera_revocation::admin`) needs from the
/// issuer: admin authentication, a key reload after a revocation, the clock.
pub struct IssuerKeyAdmin(pub Arc<Issuer>);

#[async_trait::async_trait]
impl KeyAdmin for IssuerKeyAdmin {
    async fn authorize(&self, parts: &Parts) -> Result<(), Response> {
        tessera_issuer::http::authenticate_admin(&self.0, &parts.headers, &parts.extensions)
            .await
            .map(|_| ())
            .map_err(IntoResponse::into_response)
    }

    async fn key_revoked(&self) {
        // Sign with the replacement from the next request on.
        if let Err(error) = self.0.reload_keys().await {
            tracing::warn!(%error, "reloading keys after a revocation failed");
        }
    }

    fn now(&self) -> tessera_store::Timestamp {
        self.0.now()
    }
}
