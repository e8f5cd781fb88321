//! # tessera-revocation
//!
//! The publication side of Tessera: what verifiers need to trust and to
//! distrust.
//!
//! * [`rotation::KeyManager`]: the signing-key lifecycle (pending → active →
//!   retired → removed, or revoked at once), on a schedule and on demand.
//! * [`publish`]: `/.well-known/jwks.json` and `/.well-known/paserk.json`,
//!   with `Cache-Control: max-age` and strong `ETag`s.
//! * [`feed::Feed`]: the revocation event feed (`/v1/revocations`, and as
//!   Server-Sent Events at `/v1/revocations/stream`) and the Token Status
//!   Lists (`/statuslists/{id}`).
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
//! use tessera_core::time::{Clock, SystemClock};
//! use tessera_core::{Algorithm, MasterKey};
//! use tessera_revocation::{keys, publish};
//!
//! let master = MasterKey::generate()?;
//! let now = SystemClock.now();
//! keys::ensure_signing_keys(&*store, &master, &[Algorithm::EdDsa, Algorithm::V4Public], now).await?;
//! let app: axum::Router = publish::routes(store, Duration::from_secs(300));
//! # let _ = app; Ok(()) }
//! ```

pub mod admin;
pub mod feed;
mod http;
pub mod keys;
pub mod metrics;
pub mod publish;
pub mod rotation;
pub mod schema;

pub use admin::{KeyAdmin, key_json};
pub use feed::{Feed, FeedSettings, status_list_uri};
pub use keys::{KeyState, KeysError, ensure_signing_keys, verification_key};
pub use publish::routes;
pub use rotation::{KeyManager, KeyOpError, KeySettings, TickReport};
