//! The records the store keeps, shaped by the domain rather than by SQL.

use serde::{Deserialize, Serialize};

pub use tessera_core::statuslist::StatusIndex;
pub use tessera_core::time::Timestamp;
pub use tessera_core::{Algorithm, NumericDate, TokenFormat};

mod values;

pub use values::{AuditKind, EventKind, Generation, KeyState};
pub(crate) use values::{generation, status_index, status_index_to_db};

/// A registered OAuth client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// `client_id`.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Confidential (has a secret) or public.
    pub kind: ClientKind,
    /// Digest of the secret (`sha256:...`, or an argon2id PHC string written
    /// by earlier builds); `None` for public clients. Never the secret.
    pub secret_hash: Option<String>,
    /// The secret replaced by the last rotation, still accepted until
    /// `previous_secret_expires_at` (an overlap for deployments to catch up).
    pub previous_secret_hash: Option<String>,
    /// End of the previous secret's overlap.
    pub previous_secret_expires_at: Option<Timestamp>,
    /// What the client may do.
    pub allowed: Vec<Permission>,
    /// Scope tokens the client may be granted (RFC 6749 §3.3).
    pub scopes: Vec<String>,
    /// Audiences its tokens may name besides its own id (RFC 8707).
    pub audiences: Vec<String>,
    /// Client ids this backend may open sessions for (besides itself).
    pub sessions_for: Vec<String>,
    /// Per-client overrides of the `tokens` and `sessions` policy (JSON object of setting → value).
    pub policy: serde_json::Value,
    /// Registration time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Set while the client is switched off: it cannot authenticate.
    pub disabled_at: Option<Timestamp>,
}

impl Client {
    /// Whether the client may authenticate at all.
    pub fn is_enabled(&self) -> bool {
        self.disabled_at.is_none()
    }
}

/// RFC 6749 §2.1 client types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// Authenticates with a secret (HTTP Basic).
    Confidential,
    /// Cannot keep a secret (SPA, mobile app).
    Public,
}

/// What a client is allowed to do (API.md `--allow` list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Open and end sessions (`/v1/sessions`).
    Sessions,
    /// Use the refresh-token grant.
    RefreshToken,
    /// Use the client-credentials grant.
    ClientCredentials,
    /// Call `/oauth/introspect`.
    Introspect,
    /// Call the admin API.
    Admin,
}

impl Permission {
    /// The word used in config, CLI and storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            Permission::Sessions => "sessions",
            Permission::RefreshToken => "refresh_token",
            Permission::ClientCredentials => "client_credentials",
            Permission::Introspect => "introspect",
            Permission::Admin => "admin",
        }
    }

    /// Parses one word of the `--allow` list.
    pub fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "sessions" => Permission::Sessions,
            "refresh_token" => Permission::RefreshToken,
            "client_credentials" => Permission::ClientCredentials,
            "introspect" => Permission::Introspect,
            "admin" => Permission::Admin,
            _ => return None,
        })
    }
}

/// Where a session was opened from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Client IP as the backend reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// User agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// A label ("Alice's phone").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// A session: one refresh-token family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Session id: 16 random bytes, written as 32 lowercase hex characters.
    pub id: String,
    /// The authenticated subject.
    pub subject: String,
    /// The client the session belongs to (the client that refreshes it).
    pub client_id: String,
    /// The backend client that opened it: only that backend (or `admin`)
    /// sees and changes it through `/v1/sessions`.
    pub opened_by: String,
    /// Granted scopes, space-separated.
    pub scope: Option<String>,
    /// Audiences of its access tokens.
    pub audience: Vec<String>,
    /// Custom claims for its access tokens (JSON object).
    pub claims: serde_json::Value,
    /// Last authentication time (`auth_time`).
    pub auth_time: Option<NumericDate>,
    /// Authentication context class.
    pub acr: Option<String>,
    /// Authentication methods.
    pub amr: Vec<String>,
    /// The format of its access tokens.
    pub token_format: TokenFormat,
    /// DPoP key thumbprint, when sender-constrained.
    pub dpop_jkt: Option<String>,
    /// Where it was opened from.
    pub device: Device,
    /// Current refresh generation (1 when opened).
    pub generation: Generation,
    /// Opened at.
    pub created_at: Timestamp,
    /// Last refresh (or open).
    pub last_used_at: Timestamp,
    /// When the current generation was issued (start of the grace window).
    pub rotated_at: Timestamp,
    /// Ends if not refreshed before this.
    pub idle_expires_at: Timestamp,
    /// Ends at this time whatever happens.
    pub absolute_expires_at: Timestamp,
    /// Set when ended.
    pub revoked_at: Option<Timestamp>,
    /// Why it ended.
    pub revoked_reason: Option<EndReason>,
    /// Its bit in the Token Status List (assigned by the store when the
    /// session opens; `None` only before that).
    pub status_idx: Option<StatusIndex>,
}

impl Session {
    /// Whether the session can still be used at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && now < self.idle_expires_at && now < self.absolute_expires_at
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Ended by its backend or an admin (`DELETE`, `/oauth/revoke`, CLI).
    Revoked,
    /// A replayed refresh token: the family was revoked.
    ReuseDetected,
    /// Evicted by the concurrent-session limit.
    Evicted,
    /// Unused past its idle timeout.
    ExpiredIdle,
    /// Past its absolute lifetime.
    ExpiredAbsolute,
}

impl EndReason {
    /// Stable name (storage, API, audit).
    pub const fn as_str(self) -> &'static str {
        match self {
            EndReason::Revoked => "revoked",
            EndReason::ReuseDetected => "reuse_detected",
            EndReason::Evicted => "evicted",
            EndReason::ExpiredIdle => "expired_idle",
            EndReason::ExpiredAbsolute => "expired_absolute",
        }
    }

    /// Parses [`EndReason::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "revoked" => EndReason::Revoked,
            "reuse_detected" => EndReason::ReuseDetected,
            "evicted" => EndReason::Evicted,
            "expired_idle" => EndReason::ExpiredIdle,
            "expired_absolute" => EndReason::ExpiredAbsolute,
            _ => return None,
        })
    }

    /// The audit event written when a session ends for this reason.
    pub const fn audit_kind(self) -> AuditKind {
        match self {
            EndReason::Revoked => AuditKind::SESSION_REVOKED,
            EndReason::ReuseDetected => AuditKind::SESSION_REUSE_DETECTED,
            EndReason::Evicted => AuditKind::SESSION_EVICTED,
            EndReason::ExpiredIdle => AuditKind::SESSION_EXPIRED_IDLE,
            EndReason::ExpiredAbsolute => AuditKind::SESSION_EXPIRED_ABSOLUTE,
        }
    }
}

/// The concurrent-session limit applied when opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimit {
    /// Most live sessions per subject.
    pub max: u32,
    /// What to do when a new one would exceed it.
    pub policy: LimitPolicy,
}

/// `sessions.limit_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitPolicy {
    /// End the least recently used live session(s).
    EvictOldest,
    /// Refuse the new session.
    Reject,
}

/// Result of [`crate::Store::open_session`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenOutcome {
    /// Opened; these sessions were evicted to make room.
    Opened {
        /// Ids of evicted sessions.
        evicted: Vec<String>,
        /// The status-list index given to the new session.
        status_idx: StatusIndex,
    },
    /// The limit was reached and the policy is `reject`: nothing was written.
    LimitReached,
}

/// The DPoP key a refresh request proved it holds (RFC 9449 §5), for
/// [`crate::Store::rotate`]. The default is no proof.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProofKey<'a> {
    /// The proof key's RFC 7638 thumbprint, when a proof came.
    pub jkt: Option<&'a str>,
    /// Bind an unbound session to this thumbprint (public clients).
    pub bind: Option<&'a str>,
}

/// Result of [`crate::Store::rotate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// This call advanced the generation; the session as it now is.
    Rotated(Session),
    /// The generation was not the expected one (another request won, or an
    /// old token): the session as it is, for the caller to judge grace or reuse.
    Stale(Session),
    /// No live session with that id.
    NotFound,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Sequence number (assigned by the store; 0 before insertion).
    pub seq: i64,
    /// When.
    pub at: Timestamp,
    /// What happened ([`AuditKind`] names every kind Tessera writes).
    pub kind: AuditKind,
    /// Whose session.
    pub subject: Option<String>,
    /// Which session.
    pub session_id: Option<String>,
    /// Which client acted.
    pub client_id: Option<String>,
    /// Device context.
    #[serde(default)]
    pub device: Device,
    /// Anything else (JSON object), never a token or secret.
    #[serde(default)]
    pub detail: serde_json::Value,
}

/// Which audit records to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this subject's.
    pub subject: Option<String>,
    /// Only this session's.
    pub session_id: Option<String>,
    /// Only records about sessions opened by this backend client.
    pub opened_by: Option<String>,
    /// Only records whose `client_id` (the client that acted: the backend
    /// that opened or ended a session, the app that refreshed it) is this.
    pub client_id: Option<String>,
    /// Only records of this kind (`session.opened`, `key.revoked`, ...).
    pub kind: Option<String>,
    /// Only records at or after this time.
    pub since: Option<Timestamp>,
    /// Only records before this time.
    pub until: Option<Timestamp>,
    /// Only records with `seq` greater than this.
    pub after: Option<i64>,
    /// At most this many (the store caps it at 1000).
    pub limit: u32,
}

/// A revocation event for verifiers (published by the revocation service).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationEvent {
    /// Sequence number (assigned by the store).
    pub seq: i64,
    /// What was revoked.
    pub kind: EventKind,
    /// The session id, subject or key id.
    pub id: String,
    /// When it was revoked.
    pub at: Timestamp,
    /// When every token it covers has expired and it may be forgotten.
    pub until: Timestamp,
}

/// A signing key as stored: public part in clear, private part sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Key id (thumbprint or `k4.pid`).
    pub kid: String,
    /// Its algorithm.
    pub alg: Algorithm,
    /// Where it is in its lifecycle.
    pub state: KeyState,
    /// Public key bytes (Ed25519: 32; P-256: x ‖ y).
    pub public: Vec<u8>,
    /// The private key sealed under the master key (see `tessera_core::sealed`).
    pub sealed_secret: Vec<u8>,
    /// Created.
    pub created_at: Timestamp,
    /// Becomes (or became) active.
    pub activates_at: Timestamp,
    /// Stopped signing.
    pub retired_at: Option<Timestamp>,
    /// Unpublished after this.
    pub expires_at: Option<Timestamp>,
}

/// Counters that move whenever something verifiers or signers care about
/// changes; see [`crate::Store::changes`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeMarks {
    /// The newest revocation event's `seq` (0 when there is none).
    pub revocations: i64,
    /// Bumped by every change to the signing keys.
    pub keys: i64,
    /// Bumped by every change to the registered clients.
    pub clients: i64,
}

/// Result of [`crate::Store::delete_client`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientDeleted {
    /// Deleted now.
    Deleted,
    /// The client is enabled: disable it first.
    NotDisabled,
    /// No such client.
    NotFound,
}

/// Result of [`crate::Store::revoke_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRevoked {
    /// Revoked now; the key as it was before.
    Revoked(StoredKey),
    /// It was revoked already.
    AlreadyRevoked,
    /// No such key.
    NotFound,
}
