//! # tessera-verifier
//!
//! What a resource server links to verify Tessera access tokens offline: JWT
//! (EdDSA, ES256) and PASETO `v4.public`, with the issuer's keys from a static
//! document or fetched from the issuer and cached.
//!
//! * [`Verifier::verify`] is synchronous and never waits on the network; with
//!   remote keys a background task keeps the cache fresh per `Cache-Control`.
//! * A token seen before is answered from a bounded cache of verified tokens
//!   (on by default; [`Verifier::with_token_cache`]), with revocation, its key
//!   and per-route requirements still checked on every hit.
//! * [`Verifier::verify_batch`] checks many EdDSA tokens' signatures at once.
//! * [`Verifier::verify_with_refetch`] also fetches once for a key id not yet
//!   seen (single-flight, rate-limited, so forged ids cannot cause a storm).
//! * [`Requirements`] express per-route needs (scope, `max_age`, `acr`);
//!   [`Rejection`] turns any refusal into the RFC 6750 / RFC 9470
//!   `WWW-Authenticate` challenge.
//! * Feature `axum`: [`axum::RequireToken`] (a tower layer) and
//!   [`axum::Authenticated`] (an extractor).
//!
//! * Feature `remote`, [`Verifier::with_revocation_feed`] or
//!   [`Verifier::with_status_lists`]: revoked sessions, subjects and keys
//!   are refused, with a fail-closed freshness bound ([`revocation`]).
//!
//! Not here: issuing tokens or sessions.
//!
//! ```
//! use tessera_core::{Algorithm, KeySet, SigningKey, Validation};
//! use tessera_verifier::Verifier;
//!
//! let key = SigningKey::generate(Algorithm::EdDsa)?;
//! let verifier = Verifier::with_keys(
//!     Validation::new("https://auth.example", ["api"])?,
//!     KeySet::new([key.verification_key().clone()]),
//! );
//! let err = verifier.verify("not-a-token").unwrap_err();
//! assert!(err.to_string().starts_with("malformed token"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "axum")]
pub mod axum;
pub mod cache;
mod challenge;
pub mod dpop;
#[cfg(feature = "remote")]
pub mod remote;
mod requirements;
#[cfg(feature = "remote")]
pub mod revocation;
mod verifier;

pub use challenge::Rejection;
#[cfg(feature = "remote")]
pub use remote::{FetchError, RemoteKeys, RemoteOptions};
pub use requirements::{AccessDenied, Requirements};
#[cfg(feature = "remote")]
pub use revocation::{RevocationOptions, Revocations};
pub use tessera_core::{AccessClaims, TokenFormat, Validation, VerifyError};
pub use verifier::{VerifiedToken, Verifier, system_now};
