//! What can go wrong while issuing. The HTTP face of each variant is in
//! `http/errors.rs`, and nowhere else.

use tessera_store::StoreError;

/// Why an issuer operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// Unknown client, wrong secret, or the wrong authentication method.
    #[error("client authentication failed")]
    InvalidClient,
    /// The client is authenticated but not allowed to do this.
    #[error("client is not allowed to use {0}")]
    NotAllowed(&'static str),
    /// A refresh token that cannot be used (RFC 6749 `invalid_grant`). The
    /// reason is for logs; clients see one generic description.
    #[error("invalid grant: {0}")]
    InvalidGrant(&'static str),
    /// A missing or malformed parameter.
    #[error("{0}")]
    InvalidRequest(String),
    /// A `grant_type` the token endpoint does not offer (RFC 6749 §5.2).
    #[error("unsupported grant type")]
    UnsupportedGrantType,
    /// A scope beyond what the client is allowed (RFC 6749 `invalid_scope`).
    #[error("{0}")]
    InvalidScope(String),
    /// An audience beyond what the client is allowed (RFC 8707 `invalid_target`).
    #[error("{0}")]
    InvalidTarget(String),
    /// The `DPoP` proof is missing, invalid, replayed or made with a key
    /// other than the one the token is bound to (RFC 9449
    /// `invalid_dpop_proof`). Nothing was changed.
    #[error("{0}")]
    DpopProof(String),
    /// The proof lacks the current server nonce (RFC 9449 §8
    /// `use_dpop_nonce`); the answer's `DPoP-Nonce` header has one.
    #[error("a DPoP nonce is required: retry with the DPoP-Nonce this answer carries")]
    UseDpopNonce,
    /// No such client.
    #[error("client not found")]
    ClientNotFound,
    /// The client must be disabled first.
    #[error("the client is enabled: disable it before deleting it")]
    ClientEnabled,
    /// Over a rate limit: retry after this long. Nothing was done.
    #[error("too many requests ({limit} limit); retry in {retry_after_secs} s")]
    RateLimited {
        /// Which limit.
        limit: &'static str,
        /// Whole seconds until a retry can succeed (at least 1).
        retry_after_secs: u64,
    },
    /// Too much work queued already (a bounded queue is full); retry later.
    #[error("the token service is busy; retry shortly")]
    Busy,
    /// No such session (or not live).
    #[error("session not found")]
    SessionNotFound,
    /// The concurrent-session limit is reached and the policy is `reject`.
    #[error("the subject has reached its concurrent-session limit")]
    SessionLimit,
    /// No active key can sign this format.
    #[error("no active signing key for {0}")]
    NoSigningKey(&'static str),
    /// Key material could not be used.
    #[error("key error: {0}")]
    Key(#[from] tessera_core::KeyError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
