//! # tessera-revocation
//!
//! The publication side of Tessera: the lifecycle of signing keys as stored
//! (creating the first key of each algorithm, rebuilding keys from stored
//! rows) and the documents through which verifiers learn them,
//! `/.well-known/jwks.json` and `/.well-known/paserk.json`.
//!
//! It never calls the issuer: both meet in the [`tessera_store::Store`].
//! What it is not: a signer (the issuer opens the active key with
//! [`keys::signing_key`]) or a verifier (that is `tessera-verifier`).
//!
//! ## Example
//!
//! ```no_run
//! # async fn run(store: std::sync::Arc<dyn tessera_store::Store>) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use tessera_core::{Algorithm, MasterKey};
//! use tessera_revocation::{keys, publish};
//!
//! let master = MasterKey::generate()?;
//! let now = publish::system_now();
//! keys::ensure_signing_keys(&*store, &master, &[Algorithm::EdDsa, Algorithm::V4Public], now).await?;
//! let app: axum::Router = publish::routes(store, Duration::from_secs(300));
//! # let _ = app; Ok(()) }
//! ```

pub mod keys;
pub mod publish;

pub use keys::{KeyState, KeysError, ensure_signing_keys, verification_key};
pub use publish::routes;
