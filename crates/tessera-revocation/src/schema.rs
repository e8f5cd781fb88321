//! Shapes of the key-admin and feed answers (built as JSON values), for the
//! OpenAPI document; `tessera-e2e/tests/openapi.rs` validates real answers
//! against them.

#![allow(dead_code)] // Read by the OpenAPI derive only.

use utoipa::ToSchema;

/// `/v1/*` errors (the same shape as the issuer's).
#[derive(ToSchema)]
pub struct ApiErrorBody {
    /// A snake_case code (`not_found`, `already_revoked`, `unauthorized`, ...).
    error: String,
    /// What is wrong, for people.
    message: String,
}

/// A signing key as admins see it (never a private part). Times are Unix seconds.
#[derive(ToSchema)]
pub struct KeyView {
    kid: String,
    /// `EdDSA`, `ES256` or `v4.public`.
    alg: String,
    /// `pending`, `active`, `retired` or `revoked`.
    state: String,
    created_at: i64,
    activates_at: i64,
    retired_at: Option<i64>,
    expires_at: Option<i64>,
}

#[derive(ToSchema)]
pub struct KeyList {
    keys: Vec<KeyView>,
}

/// The pending keys of a rotation (one per algorithm).
#[derive(ToSchema)]
pub struct PendingKeys {
    pending: Vec<KeyView>,
}

/// An emergency revocation: the key, and the fresh key that now signs if it was active.
#[derive(ToSchema)]
pub struct KeyRevokedView {
    revoked: KeyView,
    replacement: Option<KeyView>,
}

/// A revocation event. Times are Unix seconds.
#[derive(ToSchema)]
pub struct RevocationEventView {
    seq: i64,
    /// `session`, `subject` or `key`.
    kind: String,
    /// The session id, subject or key id.
    id: String,
    at: i64,
    /// When every token it covers has expired and it may be forgotten.
    until: i64,
}

/// A page of revocation events after `after`.
#[derive(ToSchema)]
pub struct RevocationPage {
    events: Vec<RevocationEventView>,
    /// Pass as `after` (or `Last-Event-ID`) to continue.
    next: i64,
}

/// An RFC 7517 JSON Web Key Set (public keys only).
#[derive(ToSchema)]
pub struct JwkSetView {
    #[schema(value_type = Vec<Object>)]
    keys: Vec<serde_json::Value>,
}

/// One PASERK `k4.public` key.
#[derive(ToSchema)]
pub struct PaserkEntry {
    /// `k4.pid....`
    kid: String,
    /// `k4.public....`
    paserk: String,
    /// `pending`, `active` or `retired`.
    status: String,
}

#[derive(ToSchema)]
pub struct PaserkSetView {
    keys: Vec<PaserkEntry>,
}
