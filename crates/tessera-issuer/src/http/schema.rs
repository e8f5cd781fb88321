//! Shapes of the issuer's JSON answers that are built as JSON values
//! (`view`, `client_view`, the error bodies), for the OpenAPI document.
//! `tessera-e2e/tests/openapi.rs` validates real answers against these
//! schemas, so a field added to an answer but not here fails a test.

#![allow(dead_code)] // Read by the OpenAPI derive only.

use utoipa::ToSchema;

/// `/v1/*` errors.
#[derive(ToSchema)]
pub struct ApiErrorBody {
    /// A snake_case code (`invalid_request`, `not_found`, `unauthorized`, `rate_limited`, ...).
    error: String,
    /// What is wrong, for people.
    message: String,
}

/// `/oauth/*` errors (RFC 6749 §5.2, RFC 9449 for DPoP).
#[derive(ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope`, `invalid_target`,
    /// `invalid_dpop_proof`, `use_dpop_nonce`, `temporarily_unavailable`, ...
    error: String,
    error_description: Option<String>,
}

/// Where a session was opened (as the backend said).
#[derive(ToSchema)]
pub struct DeviceView {
    ip: Option<String>,
    user_agent: Option<String>,
    label: Option<String>,
}

/// A session as `/v1/sessions` shows it. Times are Unix seconds.
#[derive(ToSchema)]
pub struct SessionView {
    id: String,
    subject: String,
    client_id: String,
    /// The backend client that opened it.
    opened_by: String,
    scope: Option<String>,
    audience: Vec<String>,
    created_at: i64,
    last_used_at: i64,
    /// When it ends unless used (the idle timeout, capped by the absolute lifetime).
    expires_at: i64,
    absolute_expires_at: i64,
    auth_time: Option<i64>,
    acr: Option<String>,
    amr: Vec<String>,
    /// `jwt` or `paseto`.
    token_format: String,
    /// The RFC 7638 thumbprint the session is bound to (DPoP), if any.
    dpop_jkt: Option<String>,
    device: DeviceView,
    /// How many times the refresh token was rotated.
    generation: i64,
    revoked_at: Option<i64>,
    revoked_reason: Option<String>,
}

#[derive(ToSchema)]
pub struct SessionList {
    sessions: Vec<SessionView>,
}

/// `DELETE /v1/sessions?subject=`.
#[derive(ToSchema)]
pub struct SubjectEnded {
    /// How many sessions were ended.
    revoked: u64,
}

/// One audit record. `at` is Unix milliseconds.
#[derive(ToSchema)]
pub struct AuditRecordView {
    seq: i64,
    at: i64,
    /// `session.opened`, `session.refreshed`, `session.reuse_detected`, `key.revoked`, ...
    kind: String,
    subject: Option<String>,
    session_id: Option<String>,
    client_id: Option<String>,
    device: DeviceView,
    /// What happened, by kind (JSON; `null` when nothing more to say).
    #[schema(value_type = Option<Object>)]
    detail: serde_json::Value,
}

/// A page of the audit trail; pass `next` as `after` for the next page.
#[derive(ToSchema)]
pub struct AuditPage {
    records: Vec<AuditRecordView>,
    next: i64,
}

/// A client as `/v1/clients` shows it: never a secret digest. Times are Unix seconds.
#[derive(ToSchema)]
pub struct ClientView {
    client_id: String,
    name: String,
    /// `confidential` or `public`.
    kind: String,
    /// Permissions: `sessions`, `refresh_token`, `client_credentials`, `introspect`, `admin`.
    allowed: Vec<String>,
    scopes: Vec<String>,
    audiences: Vec<String>,
    sessions_for: Vec<String>,
    /// Per-client overrides of `tokens.*` and `sessions.*`.
    #[schema(value_type = Object)]
    policy: serde_json::Value,
    enabled: bool,
    created_at: i64,
    updated_at: i64,
    disabled_at: Option<i64>,
    previous_secret_expires_at: Option<i64>,
    /// Only in the answer that made it (create, rotate-secret): shown once.
    client_secret: Option<String>,
    /// Only in the answer of `disable`.
    sessions_ended: Option<u64>,
}

#[derive(ToSchema)]
pub struct ClientList {
    clients: Vec<ClientView>,
}

/// `POST /v1/clients`.
#[derive(ToSchema)]
pub struct ClientCreate {
    name: String,
    /// `confidential` (default) or `public`.
    kind: Option<String>,
    allowed: Vec<String>,
    scopes: Option<Vec<String>>,
    audiences: Option<Vec<String>>,
    sessions_for: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    policy: Option<serde_json::Value>,
}

/// `PATCH /v1/clients/{id}`: the fields to change.
#[derive(ToSchema)]
pub struct ClientUpdate {
    name: Option<String>,
    allowed: Option<Vec<String>>,
    scopes: Option<Vec<String>>,
    audiences: Option<Vec<String>>,
    sessions_for: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    policy: Option<serde_json::Value>,
}

/// `POST /v1/clients/{id}/disable`.
#[derive(ToSchema)]
pub struct ClientDisable {
    /// Also end every session of the client.
    end_sessions: Option<bool>,
}

/// `POST /v1/clients/{id}/rotate-secret`.
#[derive(ToSchema)]
pub struct ClientRotate {
    /// How long the old secret keeps working (`"1h"`); none by default.
    overlap: Option<String>,
}

/// The form of `/oauth/token`, `/oauth/revoke` and `/oauth/introspect`
/// (each reads the fields it needs). Confidential clients authenticate
/// with HTTP Basic; public clients send `client_id`.
#[derive(ToSchema)]
pub struct TokenFormDoc {
    /// `refresh_token` or `client_credentials` (token endpoint).
    grant_type: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
    audience: Option<String>,
    /// The token to revoke or introspect.
    token: Option<String>,
}

/// RFC 7662 introspection: `{"active": false}` unless the caller may see the token.
#[derive(ToSchema)]
pub struct Introspection {
    active: bool,
    /// `access_token` or `refresh_token`.
    token_type: Option<String>,
    client_id: Option<String>,
    sub: Option<String>,
    scope: Option<String>,
    sid: Option<String>,
    iss: Option<String>,
    /// A string or an array of strings.
    #[schema(value_type = Option<Value>)]
    aud: Option<serde_json::Value>,
    exp: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
    #[schema(value_type = Option<Object>)]
    cnf: Option<serde_json::Value>,
}
