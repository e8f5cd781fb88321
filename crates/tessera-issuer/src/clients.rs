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
use tessera_store::{
    AuditRecord, Client, ClientDeleted, ClientKind, Device, Permission, Store, Timestamp,
};
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::error::IssuerError;
use crate::policy::Policy;
use crate::sessions::{check_scope, check_text};

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
            "client.secret_upgraded",
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

    // ---- lifecycle

    /// Registers a client. Returns it and, for a confidential client, its
    /// secret (only its digest is stored).
    pub async fn register(
        &self,
        spec: ClientSpec,
        actor: Actor<'_>,
    ) -> Result<(Client, Option<NewSecret>), IssuerError> {
        let now = self.clock.now();
        let policy = spec
            .policy
            .unwrap_or_else(|| serde_json::Value::Object(Default::default()));
        // Never a leading '-': an id must not read as a flag on a command line.
        let id = loop {
            let id = b64::encode(tessera_core::random::<16>()?);
            if !id.starts_with('-') {
                break id;
            }
        };
        let (secret, secret_hash) = match spec.kind {
            ClientKind::Public => (None, None),
            ClientKind::Confidential => {
                let (secret, hash) = new_secret()?;
                (Some(secret), Some(hash))
            }
        };
        let client = Client {
            id,
            name: spec.name,
            kind: spec.kind,
            secret_hash,
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            allowed: dedup(spec.allowed),
            scopes: dedup(spec.scopes),
            audiences: dedup(spec.audiences),
            sessions_for: dedup(spec.sessions_for),
            policy,
            created_at: now,
            updated_at: now,
            disabled_at: None,
        };
        self.validate(&client, None).await?;
        let record = client_record("client.created", &client.id, actor, now, describe(&client));
        self.store.insert_client(&client, &record).await?;
        tracing::info!(client_id = %client.id, name = %client.name, "client.created");
        Ok((client, secret))
    }

    /// Every registered client.
    pub async fn list(&self) -> Result<Vec<Client>, IssuerError> {
        Ok(self.store.clients().await?)
    }

    /// Ids of the clients whose secret (or overlapping previous secret) is
    /// still an argon2id hash from an earlier build: each wrong guess against
    /// them costs a slow hash, so their secrets should be rotated.
    pub async fn legacy_secret_hashes(&self) -> Result<Vec<String>, IssuerError> {
        let legacy = |h: &Option<String>| h.as_deref().is_some_and(|h| stored_digest(h).is_none());
        Ok(self
            .store
            .clients()
            .await?
            .into_iter()
            .filter(|c| legacy(&c.secret_hash) || legacy(&c.previous_secret_hash))
            .map(|c| c.id)
            .collect())
    }

    /// The stored client `id`.
    pub async fn show(&self, id: &str) -> Result<Client, IssuerError> {
        self.store
            .client(id)
            .await?
            .ok_or(IssuerError::ClientNotFound)
    }

    /// Applies `changes`.
    pub async fn update(
        &self,
        id: &str,
        changes: ClientChanges,
        actor: Actor<'_>,
    ) -> Result<Client, IssuerError> {
        let detail = serde_json::json!({
            "name": changes.name, "allowed": changes.allowed.as_ref().map(|a| a.iter().map(|p| p.as_str()).collect::<Vec<_>>()),
            "scopes": changes.scopes, "audiences": changes.audiences,
            "sessions_for": changes.sessions_for, "policy": changes.policy,
        });
        self.change(id, "client.updated", actor, detail, |client, _| {
            if let Some(name) = &changes.name {
                client.name.clone_from(name);
            }
            if let Some(allowed) = &changes.allowed {
                client.allowed = dedup(allowed.clone());
            }
            if let Some(scopes) = &changes.scopes {
                client.scopes = dedup(scopes.clone());
            }
            if let Some(audiences) = &changes.audiences {
                client.audiences = dedup(audiences.clone());
            }
            if let Some(sessions_for) = &changes.sessions_for {
                client.sessions_for = dedup(sessions_for.clone());
            }
            if let Some(policy) = &changes.policy {
                client.policy = policy.clone();
            }
            Ok(())
        })
        .await
    }

    /// Switches the client off: from now on it cannot authenticate (refresh,
    /// client credentials, introspection, sessions, admin). With
    /// `end_sessions`, also ends every session it refreshes or opened.
    /// Answers the client and how many sessions ended.
    pub async fn disable(
        &self,
        id: &str,
        end_sessions: bool,
        actor: Actor<'_>,
    ) -> Result<(Client, usize), IssuerError> {
        let client = self
            .change(
                id,
                "client.disabled",
                actor,
                serde_json::json!({ "end_sessions": end_sessions }),
                |client, now| {
                    client.disabled_at.get_or_insert(now);
                    Ok(())
                },
            )
            .await?;
        let mut ended = 0;
        if end_sessions {
            let now = self.clock.now();
            let mut template = client_record(
                tessera_store::EndReason::Revoked.audit_kind(),
                &client.id,
                actor,
                now,
                serde_json::json!({ "reason": "client disabled", "client": client.id }),
            );
            template.client_id = actor_id(actor);
            ended = self
                .store
                .end_client_sessions(
                    &client.id,
                    now,
                    self.policy.revocation_until(now),
                    &template,
                )
                .await?
                .len();
        }
        tracing::warn!(client_id = %client.id, sessions_ended = ended, "client.disabled");
        Ok((client, ended))
    }

    /// Switches the client back on.
    pub async fn enable(&self, id: &str, actor: Actor<'_>) -> Result<Client, IssuerError> {
        let client = self
            .change(
                id,
                "client.enabled",
                actor,
                serde_json::Value::Null,
                |client, _| {
                    client.disabled_at = None;
                    Ok(())
                },
            )
            .await?;
        tracing::info!(client_id = %client.id, "client.enabled");
        Ok(client)
    }

    /// Gives a confidential client a new secret (answered once). The old one
    /// keeps working for `overlap` (none by default).
    pub async fn rotate_secret(
        &self,
        id: &str,
        overlap: Option<Duration>,
        actor: Actor<'_>,
    ) -> Result<(Client, NewSecret), IssuerError> {
        if overlap.is_some_and(|d| d > MAX_OVERLAP) {
            return Err(IssuerError::InvalidRequest(
                "overlap may be at most 7d: the old secret must stop working".into(),
            ));
        }
        let (secret, hash) = new_secret()?;
        let overlap_ms = overlap.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let client = self
            .change(
                id,
                "client.secret_rotated",
                actor,
                serde_json::json!({ "overlap_ms": overlap_ms }),
                |client, now| {
                    if client.kind != ClientKind::Confidential {
                        return Err(IssuerError::InvalidRequest(
                            "a public client has no secret to rotate".into(),
                        ));
                    }
                    let old = client.secret_hash.replace(hash.clone());
                    match overlap.filter(|d| !d.is_zero()) {
                        Some(overlap) => {
                            client.previous_secret_hash = old;
                            client.previous_secret_expires_at = Some(now.plus(overlap));
                        }
                        None => {
                            client.previous_secret_hash = None;
                            client.previous_secret_expires_at = None;
                        }
                    }
                    Ok(())
                },
            )
            .await?;
        tracing::warn!(client_id = %client.id, ?overlap, "client.secret_rotated");
        Ok((client, secret))
    }

    /// Deletes a disabled client, ending whatever sessions it still has.
    pub async fn delete(&self, id: &str, actor: Actor<'_>) -> Result<usize, IssuerError> {
        let client = self.show(id).await?;
        if client.is_enabled() {
            return Err(IssuerError::ClientEnabled);
        }
        let now = self.clock.now();
        let mut template = client_record(
            tessera_store::EndReason::Revoked.audit_kind(),
            id,
            actor,
            now,
            serde_json::json!({ "reason": "client deleted", "client": id }),
        );
        template.client_id = actor_id(actor);
        let ended = self
            .store
            .end_client_sessions(id, now, self.policy.revocation_until(now), &template)
            .await?
            .len();
        let record = client_record("client.deleted", id, actor, now, describe(&client));
        match self.store.delete_client(id, &record).await? {
            ClientDeleted::Deleted => {}
            ClientDeleted::NotDisabled => return Err(IssuerError::ClientEnabled),
            ClientDeleted::NotFound => return Err(IssuerError::ClientNotFound),
        }
        self.forget(id);
        tracing::warn!(client_id = %id, sessions_ended = ended, "client.deleted");
        Ok(ended)
    }

    /// Read, change, validate what changed, and write back if nobody
    /// changed the client meanwhile (a compare-and-swap on `updated_at`),
    /// retrying on a race. Disable, enable and rotate-secret change nothing
    /// that needs validating: an emergency disable must never be blocked by
    /// an old value (a deleted client on the allow-list, an override an
    /// earlier build accepted).
    async fn change(
        &self,
        id: &str,
        kind: &str,
        actor: Actor<'_>,
        detail: serde_json::Value,
        apply: impl Fn(&mut Client, Timestamp) -> Result<(), IssuerError>,
    ) -> Result<Client, IssuerError> {
        for _ in 0..UPDATE_ATTEMPTS {
            let before = self.show(id).await?;
            let mut client = before.clone();
            let now = self.clock.now();
            let expected = client.updated_at;
            apply(&mut client, now)?;
            client.updated_at = next_update(expected, now);
            self.validate(&client, Some(&before)).await?;
            let record = client_record(kind, id, actor, now, detail.clone());
            if self.store.update_client(&client, expected, &record).await? {
                self.forget(id);
                return Ok(client);
            }
        }
        Err(IssuerError::Busy)
    }

    /// What a client must satisfy; with `before`, only what changed is
    /// checked against the world (new allow-list entries must exist, a new
    /// policy must apply to the global one).
    async fn validate(&self, client: &Client, before: Option<&Client>) -> Result<(), IssuerError> {
        let bad = |m: &str| IssuerError::InvalidRequest(m.to_owned());
        let name = client.name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(bad("name must be 1 to 100 characters"));
        }
        if client.allowed.is_empty() {
            return Err(bad(
                "allow at least one of sessions, refresh_token, client_credentials, introspect, admin",
            ));
        }
        if client.kind == ClientKind::Public
            && client
                .allowed
                .iter()
                .any(|p| *p != Permission::RefreshToken)
        {
            return Err(bad(
                "a public client cannot authenticate, so it may only use refresh_token",
            ));
        }
        if client.scopes.len() > LIST_MAX
            || client.audiences.len() > LIST_MAX
            || client.sessions_for.len() > LIST_MAX
        {
            return Err(bad(
                "scopes, audiences and sessions_for have at most 64 entries each",
            ));
        }
        for scope in &client.scopes {
            if scope.contains(' ') {
                return Err(bad("scopes are single scope tokens (give a list)"));
            }
            check_scope(scope)?;
        }
        for audience in &client.audiences {
            check_text("audience", audience, 256)?;
        }
        if !client.sessions_for.is_empty() && !client.allowed.contains(&Permission::Sessions) {
            return Err(bad("sessions_for needs the sessions permission"));
        }
        let known = before.map_or(&[][..], |b| b.sessions_for.as_slice());
        for other in client.sessions_for.iter().filter(|o| !known.contains(o)) {
            if other != &client.id && self.store.client(other).await?.is_none() {
                return Err(IssuerError::InvalidRequest(format!(
                    "sessions_for: no client {other:?}"
                )));
            }
        }
        if before.is_none_or(|b| b.policy != client.policy) {
            self.policy
                .with_overrides(&client.policy)
                .map_err(|e| IssuerError::InvalidRequest(e.to_string()))?;
        }
        Ok(())
    }
}

/// The audit record of a change to client `target`.
fn client_record(
    kind: &str,
    target: &str,
    actor: Actor<'_>,
    now: Timestamp,
    detail: serde_json::Value,
) -> AuditRecord {
    let mut detail = match detail {
        serde_json::Value::Object(map) => map,
        serde_json::Value::Null => serde_json::Map::new(),
        other => [("detail".to_owned(), other)].into_iter().collect(),
    };
    detail.insert("client".into(), target.into());
    match actor {
        Actor::Cli => {
            detail.insert("actor".into(), "cli".into());
        }
        Actor::Server => {
            detail.insert("actor".into(), "server".into());
        }
        Actor::Client(_) => {}
    }
    AuditRecord {
        seq: 0,
        at: now,
        kind: kind.to_owned(),
        subject: None,
        session_id: None,
        client_id: actor_id(actor),
        device: Device::default(),
        detail: serde_json::Value::Object(detail),
    }
}

fn actor_id(actor: Actor<'_>) -> Option<String> {
    match actor {
        Actor::Client(id) => Some(id.to_owned()),
        Actor::Cli | Actor::Server => None,
    }
}

/// What a client is, for audit records (never its secret or hash).
fn describe(client: &Client) -> serde_json::Value {
    serde_json::json!({
        "name": client.name,
        "kind": match client.kind { ClientKind::Confidential => "confidential", ClientKind::Public => "public" },
        "allowed": client.allowed.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        "scopes": client.scopes,
        "audiences": client.audiences,
        "sessions_for": client.sessions_for,
    })
}

/// `updated_at` strictly after `previous`, so it can serve as a version.
fn next_update(previous: Timestamp, now: Timestamp) -> Timestamp {
    Timestamp(now.0.max(previous.0.saturating_add(1)))
}

fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// A fresh secret (`tcs_` + 256 random bits, base64url) and its stored digest.
fn new_secret() -> Result<(NewSecret, String), IssuerError> {
    let mut secret = Zeroizing::new(String::from("tcs_"));
    b64::encode_into(
        Zeroizing::new(tessera_core::random::<32>()?).as_ref(),
        &mut secret,
    );
    let hash = encode_digest(&digest(secret.as_bytes()));
    Ok((secret, hash))
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
