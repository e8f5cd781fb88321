//! The typed values records are made of, and their conversions to and from
//! what the database keeps: each is converted once, in the row decoders and
//! binds, and a stored value no build writes is `StoreError::Corrupt`.

use serde::{Deserialize, Serialize};

use super::StatusIndex;

/// A session's refresh generation: 1 when opened, one more per rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Generation(u64);

impl Generation {
    /// A new session's generation.
    pub const FIRST: Generation = Generation(1);

    /// The generation `n` (as a refresh token carries it).
    pub const fn new(n: u64) -> Self {
        Generation(n)
    }

    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The generation after this one.
    pub const fn next(self) -> Self {
        Generation(self.0.saturating_add(1))
    }

    /// As the store writes it (a `BIGINT`).
    pub(crate) fn to_db(self) -> Result<i64, crate::StoreError> {
        i64::try_from(self.0).map_err(|_| {
            crate::StoreError::Corrupt(format!("generation {} out of range", self.0).into())
        })
    }
}

/// A stored status index (`BIGINT`) as a [`StatusIndex`].
pub(crate) fn status_index(stored: i64) -> Result<StatusIndex, crate::StoreError> {
    StatusIndex::from_stored(stored)
        .ok_or_else(|| crate::StoreError::Corrupt(format!("negative status index {stored}").into()))
}

/// A [`StatusIndex`] as the store writes it.
pub(crate) fn status_index_to_db(index: StatusIndex) -> Result<i64, crate::StoreError> {
    i64::try_from(index.get()).map_err(|_| {
        crate::StoreError::Corrupt(format!("status index {} out of range", index.get()).into())
    })
}

/// A stored generation (`BIGINT`) as a [`Generation`].
pub(crate) fn generation(stored: i64) -> Result<Generation, crate::StoreError> {
    u64::try_from(stored)
        .map(Generation)
        .map_err(|_| crate::StoreError::Corrupt(format!("negative generation {stored}").into()))
}

impl std::fmt::Display for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a key is in its lifecycle (the `state` column of a stored key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyState {
    /// Published, not yet signing.
    Pending,
    /// Signing.
    Active,
    /// Published, no longer signing, until its tokens have expired.
    Retired,
    /// Compromised: unpublished, and every token it signed is revoked.
    Revoked,
}

impl KeyState {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Revoked => "revoked",
        }
    }

    /// Parses [`KeyState::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => KeyState::Pending,
            "active" => KeyState::Active,
            "retired" => KeyState::Retired,
            "revoked" => KeyState::Revoked,
            _ => return None,
        })
    }

    /// Whether verifiers should see a key in this state.
    pub const fn is_published(self) -> bool {
        matches!(
            self,
            KeyState::Pending | KeyState::Active | KeyState::Retired
        )
    }
}

impl PartialEq<&str> for KeyState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for KeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a revocation event revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// One session: its `sid`.
    Session,
    /// Every token of a subject issued before the event.
    Subject,
    /// Every token signed by a key.
    Key,
}

impl EventKind {
    /// The stored (and published) name.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Session => "session",
            EventKind::Subject => "subject",
            EventKind::Key => "key",
        }
    }

    /// Parses [`EventKind::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "session" => EventKind::Session,
            "subject" => EventKind::Subject,
            "key" => EventKind::Key,
            _ => return None,
        })
    }
}

impl PartialEq<&str> for EventKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an audit record records: a dotted name (`session.opened`). Every
/// kind Tessera writes is a constant here; the store keeps whatever kind it
/// is given, so older or newer builds' records still read back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AuditKind(std::borrow::Cow<'static, str>);

macro_rules! audit_kinds {
    ($($name:ident = $text:literal),* $(,)?) => {
        impl AuditKind {
            $(
                #[doc = concat!("`", $text, "`")]
                pub const $name: AuditKind = AuditKind(std::borrow::Cow::Borrowed($text));
            )*
        }
    };
}

audit_kinds! {
    SESSION_OPENED = "session.opened",
    SESSION_REFRESHED = "session.refreshed",
    SESSION_REFRESH_RETRIED = "session.refresh_retried",
    SESSION_REUSE_DETECTED = "session.reuse_detected",
    SESSION_ELEVATED = "session.elevated",
    SESSION_EXPIRED_IDLE = "session.expired_idle",
    SESSION_EXPIRED_ABSOLUTE = "session.expired_absolute",
    SESSION_REVOKED = "session.revoked",
    SESSION_EVICTED = "session.evicted",
    CLIENT_CREATED = "client.created",
    CLIENT_UPDATED = "client.updated",
    CLIENT_DISABLED = "client.disabled",
    CLIENT_ENABLED = "client.enabled",
    CLIENT_DELETED = "client.deleted",
    CLIENT_SECRET_ROTATED = "client.secret_rotated",
    CLIENT_SECRET_UPGRADED = "client.secret_upgraded",
    KEY_CREATED = "key.created",
    KEY_ACTIVATED = "key.activated",
    KEY_REVOKED = "key.revoked",
    KEY_REMOVED = "key.removed",
}

impl AuditKind {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for AuditKind {
    fn from(text: String) -> Self {
        AuditKind(std::borrow::Cow::Owned(text))
    }
}

impl From<&str> for AuditKind {
    fn from(text: &str) -> Self {
        AuditKind(std::borrow::Cow::Owned(text.to_owned()))
    }
}

impl PartialEq<&str> for AuditKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for AuditKind {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl std::fmt::Display for AuditKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
