//! # tessera-core
//!
//! The pure heart of Tessera: access-token claims, signing and verification
//! keys, the JWT (RFC 9068) and PASETO `v4.public` codecs, and the JWKS and
//! PASERK documents that publish keys. No I/O, no async, no clock: callers
//! pass `now`, so the issuer, the verifier and tests share one behaviour.
//!
//! What it is not: a key cache, an HTTP client or a session store. Resource
//! servers use `tessera-verifier`, which wraps this crate with caches.
//!
//! ## Design
//!
//! * The algorithm comes from the key, never from the token (RFC 8725 §3.1):
//!   a [`VerificationKey`] knows its [`Algorithm`]; a header that disagrees
//!   is [`VerifyError::AlgorithmMismatch`].
//! * Untrusted until verified: [`UntrustedToken::parse`] does every keyless
//!   check, size first; only [`UntrustedToken::verify`] yields claims.
//! * Strict codecs: canonical base64url, no duplicate JSON members, typed
//!   claims, `typ: at+jwt`, no `jwk`/`jku`/`x5u`/`crit`/`b64`.
//! * Secrets: [`SigningKey`] has no `Clone`, `Serialize` or revealing `Debug`,
//!   and is zeroized on drop.
//!
//! ## Example
//!
//! ```
//! use std::time::Duration;
//! use tessera_core::{AccessClaims, Algorithm, Audience, NumericDate, SigningKey,
//!     UntrustedToken, Validation, encode};
//!
//! let key = SigningKey::generate(Algorithm::EdDsa)?;
//! let now = NumericDate::from_unix(1_700_000_000);
//! let claims = AccessClaims {
//!     scope: Some("read".into()),
//!     ..AccessClaims::new("https://auth.example", "alice", Audience(vec!["api".into()]),
//!         "web", "t1", now, Duration::from_secs(300))
//! };
//! let token = encode(&claims, &key)?;
//!
//! let validation = Validation::new("https://auth.example", ["api"])?;
//! let untrusted = UntrustedToken::parse(&token, validation.max_token_len())?;
//! assert_eq!(untrusted.kid(), key.kid()); // look the key up by this id
//! let verified = untrusted.verify(key.verification_key(), &validation, now)?;
//! assert_eq!(verified.sub, "alice");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod b64;
pub mod claims;
pub mod dpop;
pub mod error;
pub mod jwk;
pub mod jws;
pub mod key;
pub mod keyset;
pub mod paserk;
pub mod paseto;
pub mod refresh;
pub mod sealed;
pub mod statuslist;
mod strict_json;
pub mod time;
pub mod token;

/// A length as a `u64`. `usize` is at most 64 bits on every target Rust
/// supports, so this never saturates in practice; it is the one place the
/// conversion is written.
pub(crate) fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// `N` bytes from the operating system's random source.
pub fn random<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out).map_err(|_| KeyError::Rng)?;
    Ok(out)
}

pub use claims::{
    AccessClaims, Audience, Confirmation, CustomClaims, NumericDate, Status, StatusListRef,
};
pub use error::{ClaimError, HeaderError, KeyError, MalformedError, Part, RevokedBy, VerifyError};
pub use jwk::{Jwk, JwkSet};
pub use key::{Algorithm, SigningKey, VerificationKey};
pub use keyset::KeySet;
pub use paserk::{PaserkEntry, PaserkSet};
pub use refresh::{RefreshSecret, RefreshToken, RefreshTokenError, SessionId};
pub use sealed::MasterKey;
pub use statuslist::{StatusList, StatusListError, StatusListInfo};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
pub use token::{TokenFormat, UntrustedToken, Validation, ValidationError, encode};
