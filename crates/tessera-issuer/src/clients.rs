//! Clients: registration, lifecycle (update, disable, enable, rotate the
//! secret, delete) and authentication per RFC 6749 §2.3.1.
//!
//! Tessera generates every client secret (256 random bits), so a slow
//! password hash buys nothing: the store keeps `sha256:` + the base64url
//! SHA-256 digest of the secret, and checking a secret costs one digest and
//! a constant-time compare — whether the client exists or not, so neither
//! timing nor answer tells an unknown id from a wrong secret. Hashes written
//! by earlier builds (argon2id PHC strings) still verify, at most
//! [`ARGON2_PERMITS`] at a time, and are replaced by a digest at the first
//! success.
//!
//! Every change writes an audit record in the same transaction, and moves
//! the store's `clients` change mark: every instance drops its cached copy
//! (at once on this one; on others when the mark reaches them, within a
//! poll on SQLite and at commit through NOTIFY on PostgreSQL).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::PasswordVerifier;
use argon2::password_hash::phc::PasswordHash;
use subtle::ConstantTimeEq as _;
use tessera_core::b64;
use tessera_store::AuditKind;
use tessera_store::{Client, ClientKind, Permission, Store};
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::error::IssuerError;
use crate::policy::Policy;

mod lifecycle;

use lifecycle::{client_record, next_update};

/// How long a client record (and its parsed policy) is reused at most, even
/// when no change mark moved (a safety net for a missed notification).
const CLIENT_TTL: Duration = Duration::from_secs(30);
/// Most cached client records.
const CLIENT_CACHE_MAX: usize = 10_000;
/// Most legacy (argon2id) verifications running at once; each takes ~19 MiB
/// and tens of milliseconds of CPU.
pub const ARGON2_PERMITS: usize = 2;
/// How long a legacy verification waits for a permit before the request is
/// refused like a wrong secret (the queue is bounded by time, never by memory).
const ARGON2_WAIT: Duration = Duration::from_secs(2);
/// Prefix of a stored secret digest.
const DIGEST_PREFIX: &str = "sha256:";
/// How many times a change is retried when another change got there first.
const UPDATE_ATTEMPTS: usize = 5;
/// Longest overlap of an old secret after a rotation.
pub const MAX_OVERLAP: Duration = Duration::from_secs(7 * 86_400);
/// Most entries in `scopes`, `audiences` and `sessions_for`.
const LIST_MAX: usize = 64;

/// What a new client is.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    /// Human-readable name (1 to 100 characters).
    pub name: String,
    /// Confidential (gets a secret) or public.
    pub kind: ClientKind,
    /// What it may do.
    pub allowed: Vec<Permission>,
    /// Scope tokens it may be granted.
    pub scopes: Vec<String>,
    /// Audiences its tokens may name besides its own id.
    pub audiences: Vec<String>,
    /// Client ids it may open sessions for (a backend).
    pub sessions_for: Vec<String>,
    /// Policy overrides (JSON object of `tokens.*`/`sessions.*` settings).
    pub policy: Option<serde_json::Value>,
}

/// A change to a client: each `Some` field replaces the stored value.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientChanges {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New permissions.
    #[serde(default)]
    pub allowed: Option<Vec<Permission>>,
    /// New allowed scopes.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// New allowed audiences.
    #[serde(default)]
    pub audiences: Option<Vec<String>>,
    /// New session allow-list.
    #[serde(default)]
    pub sessions_for: Option<Vec<String>>,
    /// New policy overrides (replaces the whole object).
    #[serde(default)]
    pub policy: Option<serde_json::Value>,
}

/// Who changed a client, for its audit record: an admin client, or the CLI.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// An admin client over `/v1/clients`.
    Client(&'a str),
    /// `tessera clients ...` on the operator's machine.
    Cli,
    /// The server itself (upgrading a legacy secret hash).
    Server,
}

/// A new secret, shown once: the only time it exists outside the caller's hands.
pub type NewSecret = Zeroizing<String>;

/// Credentials presented with a request.
pub enum Credentials {
    /// HTTP Basic (confidential clients).
    Basic {
        /// `client_id`.
        id: String,
        /// `client_secret`.
        secret: Zeroizing<String>,
    },
    /// `client_id` in the form, no secret (public clients).
    Public {
        /// `client_id`.
        id: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { id, .. } => f
                .debug_struct("Basic")
                .field("id", id)
                .finish_non_exhaustive(),
            Credentials::Public { id } => f.debug_struct("Public").field("id", id).finish(),
        }
    }
}

/// A registered client with its effective policy.
#[derive(Debug)]
pub struct AuthenticatedClient {
    /// The client record.
    pub client: Client,
    /// Global policy with the client's overrides.
    pub policy: Policy,
}

impl AuthenticatedClient {
    /// Fails with `NotAllowed` unless the client has `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), IssuerError> {
        if self.has(permission) {
            Ok(())
        } else {
            Err(IssuerError::NotAllowed(permission.as_str()))
        }
    }

    /// Whether the client has `permission`.
    pub fn has(&self, permission: Permission) -> bool {
        self.client.allowed.contains(&permission)
    }

    /// Whether this backend may open sessions for client `id`.
    pub fn may_open_for(&self, id: &str) -> bool {
        id == self.client.id || self.client.sessions_for.iter().any(|s| s == id)
    }

    /// Whether every token of `scope` is among the client's allowed scopes.
    pub fn allows_scope(&self, scope: &str) -> bool {
        scope
            .split(' ')
            .all(|token| self.client.scopes.iter().any(|s| s == token))
    }

    /// `InvalidScope` unless every token of `scope` is allowed.
    pub fn check_scope(&self, scope: &str) -> Result<(), IssuerError> {
        match scope
            .split(' ')
            .find(|token| !self.client.scopes.iter().any(|s| s == token))
        {
            None => Ok(()),
            Some(token) => Err(IssuerError::InvalidScope(format!(
                "scope {token:?} is not allowed for this client"
            ))),
        }
    }

    /// Whether the client's tokens may name `audience`: its own id, or one
    /// of its allowed audiences.
    pub fn allows_audience(&self, audience: &str) -> bool {
        audience == self.client.id || self.client.audiences.iter().any(|a| a == audience)
    }

    /// `InvalidTarget` unless every audience is allowed.
    pub fn check_audiences<'a>(
        &self,
        audiences: impl IntoIterator<Item = &'a String>,
    ) -> Result<(), IssuerError> {
        match audiences.into_iter().find(|a| !self.allows_audience(a)) {
            None => Ok(()),
            Some(a) => Err(IssuerError::InvalidTarget(format!(
                "audience {a:?} is not allowed for this client"
            ))),
        }
    }
}

struct Cached {
    entry: Arc<AuthenticatedClient>,
    loaded: Instant,
    /// The `clients` change mark when it was read.
    mark: i64,
}

/// Looks clients up (with a cache that follows the store's change marks),
/// authenticates them, and changes them.
pub struct ClientDirectory {
    store: Arc<dyn Store>,
    policy: Policy,
    clock: Arc<dyn Clock>,
    marks: tokio::sync::watch::Receiver<tessera_store::ChangeMarks>,
    cache: Mutex<HashMap<String, Cached>>,
    argon2: tokio::sync::Semaphore,
    dummy_digest: [u8; 32],
}

impl std::fmt::Debug for ClientDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientDirectory").finish_non_exhaustive()
    }
}

impl ClientDirectory {
    /// A directory over `store` applying overrides to `policy`.
    pub fn new(store: Arc<dyn Store>, policy: Policy, clock: Arc<dyn Clock>) -> Self {
        let marks = store.changes();
        ClientDirectory {
            store,
            policy,
            clock,
            marks,
            cache: Mutex::default(),
            argon2: tokio::sync::Semaphore::new(ARGON2_PERMITS),
            dummy_digest: digest(b"no client has this secret"),
        }
    }

    fn mark(&self) -> i64 {
        self.marks.borrow().clients
    }

    /// The client `id` with its effective policy, if registered (enabled or not).
    pub async fn get(&self, id: &str) -> Result<Option<Arc<AuthenticatedClient>>, IssuerError> {
        let mark = self.mark();
        if let Some(hit) = self
            .lock_cache()
            .get(id)
            .filter(|c| c.mark == mark && c.loaded.elapsed() < CLIENT_TTL)
        {
            return Ok(Some(hit.entry.clone()));
        }
        let Some(client) = self.store.client(id).await? else {
            return Ok(None);
        };
        // A stored override this build no longer accepts (one written by an
        // earlier build) must not lock the client out, nor tell callers why:
        // the global policy applies, and the log says so.
        let policy = self
            .policy
            .with_overrides(&client.policy)
            .unwrap_or_else(|error| {
                tracing::warn!(client_id = %client.id, %error, "ignoring the client's policy overrides; fix them with `tessera clients update --policy`");
                self.policy.clone()
            });
        let entry = Arc::new(AuthenticatedClient { client, policy });
        let mut cache = self.lock_cache();
        if cache.len() >= CLIENT_CACHE_MAX {
            cache.clear();
        }
        cache.insert(
            id.to_owned(),
            Cached {
                entry: entry.clone(),
                loaded: Instant::now(),
                mark,
            },
        );
        Ok(Some(entry))
    }

    /// Authenticates `credentials`: a confidential client must use Basic with
    /// its secret (or, during an overlap, the previous one); a public client
    /// must not present a secret. A disabled or unknown client fails exactly
    /// like a wrong secret.
    pub async fn authenticate(
        &self,
        credentials: Credentials,
    ) -> Result<Arc<AuthenticatedClient>, IssuerError> {
        match credentials {
            Credentials::Public { id } => {
                let entry = self.get(&id).await?.ok_or(IssuerError::InvalidClient)?;
                if entry.client.kind != ClientKind::Public || !entry.client.is_enabled() {
                    return Err(IssuerError::InvalidClient);
                }
                Ok(entry)
            }
            Credentials::Basic { id, secret } => {
                let presented = digest(secret.as_bytes());
                let usable = |e: &Arc<AuthenticatedClient>| {
                    e.client.kind == ClientKind::Confidential && e.client.is_enabled()
                };
                let Some(entry) = self.get(&id).await?.filter(usable) else {
                    // The same digest and compare as a real check.
                    let _ = bool::from(presented.ct_eq(&self.dummy_digest));
                    return Err(IssuerError::InvalidClient);
                };
                if self.secret_matches(&entry, &secret, &presented).await? {
                    return Ok(entry);
                }
                // The cached copy may predate a rotation made elsewhere (the
                // CLI, another instance) that the change mark has not brought
                // here yet: read once more, so a new secret works at once.
                let changed = self
                    .store
                    .client(&id)
                    .await?
                    .is_some_and(|stored| stored.updated_at != entry.client.updated_at);
                if !changed {
                    return Err(IssuerError::InvalidClient);
                }
                self.forget(&id);
                match self.get(&id).await?.filter(usable) {
                    Some(fresh) if self.secret_matches(&fresh, &secret, &presented).await? => {
                        Ok(fresh)
                    }
                    _ => Err(IssuerError::InvalidClient),
                }
            }
        }
    }

    /// Whether `secret` (whose digest is `presented`) is the client's
    /// current secret, or its previous one inside the overlap.
    async fn secret_matches(
        &self,
        entry: &AuthenticatedClient,
        secret: &Zeroizing<String>,
        presented: &[u8; 32],
    ) -> Result<bool, IssuerError> {
        let now = self.clock.now();
        let previous = entry.client.previous_secret_hash.as_deref().filter(|_| {
            entry
                .client
                .previous_secret_expires_at
                .is_some_and(|t| now < t)
        });
        for stored in [entry.client.secret_hash.as_deref(), previous]
            .into_iter()
            .flatten()
        {
            if let Some(expected) = stored_digest(stored) {
                if bool::from(presented.ct_eq(&expected)) {
                    return Ok(true);
                }
            } else if self.verify_legacy(stored, secret).await? {
                self.upgrade_legacy(entry, stored, presented).await;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// An argon2id PHC string from an earlier build, checked under a
    /// bounded number of permits.
    async fn verify_legacy(
        &self,
        hash: &str,
        secret: &Zeroizing<String>,
    ) -> Result<bool, IssuerError> {
        // A caller that has not authenticated never learns it waited in a
        // queue: past the wait, the answer is the usual refusal.
        let Ok(Ok(permit)) = tokio::time::timeout(ARGON2_WAIT, self.argon2.acquire()).await else {
            tracing::warn!(
                "legacy (argon2id) secret checks are saturated; refusing; rotate legacy client secrets"
            );
            return Ok(false);
        };
        let hash = hash.to_owned();
        let secret = secret.clone();
        let verified = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(secret.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
        drop(permit);
        Ok(verified)
    }

    /// Replaces a verified legacy hash by its digest (best effort: a
    /// concurrent change wins, and the next success tries again).
    async fn upgrade_legacy(
        &self,
        entry: &AuthenticatedClient,
        stored: &str,
        presented: &[u8; 32],
    ) {
        let mut client = entry.client.clone();
        let replacement = Some(encode_digest(presented));
        if client.secret_hash.as_deref() == Some(stored) {
            client.secret_hash = replacement;
        } else {
            client.previous_secret_hash = replacement;
        }
        let now = self.clock.now();
        let expected = client.updated_at;
        client.updated_at = next_update(expected, now);
        let record = client_record(
            AuditKind::CLIENT_SECRET_UPGRADED,
            &client.id,
            Actor::Server,
            now,
            serde_json::json!({ "to": "sha256" }),
        );
        match self.store.update_client(&client, expected, &record).await {
            Ok(true) => {
                self.forget(&client.id);
                tracing::info!(client_id = %client.id, "client secret hash upgraded from argon2id to sha256");
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, client_id = %client.id, "upgrading a client secret hash failed")
            }
        }
    }

    /// Drops the cached copy of client `id` (after a change through this instance).
    pub fn forget(&self, id: &str) {
        self.lock_cache().remove(id);
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn encode_digest(digest: &[u8; 32]) -> String {
    let mut out = String::from(DIGEST_PREFIX);
    b64::encode_into(digest, &mut out);
    out
}

/// The digest in a stored `sha256:` hash; `None` for any other (legacy) form.
fn stored_digest(stored: &str) -> Option<[u8; 32]> {
    let encoded = stored.strip_prefix(DIGEST_PREFIX)?;
    let bytes = b64::decode(encoded).ok()?;
    bytes.as_slice().try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_store::Timestamp;

    #[test]
    fn digests_round_trip_and_legacy_hashes_are_recognised() {
        let d = digest(b"tcs_example");
        assert_eq!(stored_digest(&encode_digest(&d)), Some(d));
        assert_eq!(
            stored_digest("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
            None
        );
        assert_eq!(stored_digest("sha256:short"), None);
    }

    #[test]
    fn versions_always_move_forward() {
        assert_eq!(next_update(Timestamp(10), Timestamp(5)), Timestamp(11));
        assert_eq!(next_update(Timestamp(10), Timestamp(10)), Timestamp(11));
        assert_eq!(next_update(Timestamp(10), Timestamp(50)), Timestamp(50));
    }
}
