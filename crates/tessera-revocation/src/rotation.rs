//! The key lifecycle: `pending` → `active` → `retired` → removed, or
//! `revoked` at once.
//!
//! * A rotation creates the next key of each algorithm as `pending`. It is
//!   published at once and activates `publish_ahead` later, so every verifier
//!   that honours the JWKS `max-age` holds it before it signs anything.
//! * Activation retires the previous key. A retired key stays published for
//!   `retire_after` (the longest access-token lifetime plus verifier
//!   leeway), then is deleted with its sealed secret.
//! * A revocation unpublishes the key now, writes a `key` revocation event,
//!   and, if the key was signing, activates a fresh key at once.
//!
//! [`KeyManager::tick`] does whatever is due; `tessera serve` runs it on a
//! schedule, and every step is a compare-and-swap in the store, so instances
//! racing on a step do it once.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tessera_core::{Algorithm, MasterKey};
use tessera_store::{AuditKind, AuditRecord, Device, KeyRevoked, Store, StoredKey, Timestamp};

use crate::keys::{KeyState, KeysError, create_key, create_key_unless_state};

/// Lifecycle durations.
#[derive(Debug, Clone)]
pub struct KeySettings {
    /// The algorithms that always have an active key.
    pub algorithms: Vec<Algorithm>,
    /// Age at which an active key is replaced (`keys.rotation_period`).
    pub rotation_period: Duration,
    /// Time a new key is published before it signs (`keys.publish_ahead`).
    pub publish_ahead: Duration,
    /// Time a retired key stays published: the longest access-token TTL
    /// plus the leeway verifiers allow.
    pub retire_after: Duration,
}

/// What [`KeyManager::tick`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Keys created (pending, or active where an algorithm had none).
    pub created: Vec<String>,
    /// Pending keys that became active.
    pub activated: Vec<String>,
    /// Retired or revoked keys deleted.
    pub removed: Vec<String>,
    /// Revocation events pruned.
    pub pruned: u64,
}

/// What [`KeyManager::revoke`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// The key as it was before.
    pub key: StoredKey,
    /// The key activated in its place, if it was signing.
    pub replacement: Option<StoredKey>,
}

/// Why a key operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyOpError {
    /// No key has this id.
    #[error("no key has id {0:?}")]
    NotFound(String),
    /// The key is revoked already.
    #[error("key {0:?} is already revoked")]
    AlreadyRevoked(String),
    /// Creating, reading or storing keys failed.
    #[error(transparent)]
    Keys(#[from] KeysError),
}

impl From<tessera_store::StoreError> for KeyOpError {
    fn from(e: tessera_store::StoreError) -> Self {
        KeyOpError::Keys(KeysError::Store(e))
    }
}

/// Runs the key lifecycle against the store.
pub struct KeyManager {
    store: Arc<dyn Store>,
    master: Arc<MasterKey>,
    settings: KeySettings,
}

impl std::fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyManager")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn key_record(kind: AuditKind, detail: serde_json::Value, now: Timestamp) -> AuditRecord {
    AuditRecord {
        seq: 0,
        at: now,
        kind,
        subject: None,
        session_id: None,
        client_id: None,
        device: Device::default(),
        detail,
    }
}

impl KeyManager {
    /// A manager over `store`, sealing new keys under `master`.
    pub fn new(store: Arc<dyn Store>, master: Arc<MasterKey>, settings: KeySettings) -> Self {
        KeyManager {
            store,
            master,
            settings,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &KeySettings {
        &self.settings
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The master key (to open the active key for signing).
    pub fn master(&self) -> &Arc<MasterKey> {
        &self.master
    }

    /// Does what is due at `now`: activates pending keys whose time has
    /// come (retiring their predecessors), starts a rotation for active keys
    /// older than `rotation_period`, gives an algorithm without any key an
    /// active one, deletes retired keys past their tokens, prunes revocation
    /// events past their `until`.
    pub async fn tick(&self, now: Timestamp) -> Result<TickReport, KeysError> {
        let mut report = TickReport::default();
        let keys = self.store.keys().await?;
        for &alg in &self.settings.algorithms {
            let of_alg = |state: KeyState| {
                keys.iter()
                    .rev()
                    .filter(move |k| k.alg == alg && k.state == state)
            };
            let active = of_alg(KeyState::Active).next();
            let mut pending: Vec<&StoredKey> = of_alg(KeyState::Pending).collect();
            pending.sort_by_key(|k| k.activates_at);
            match pending.first() {
                Some(next) if next.activates_at <= now => {
                    if self.activate(next, now).await? {
                        report.activated.push(next.kid.clone());
                    }
                }
                Some(_) => {}
                None => match active {
                    None => {
                        let key = create_key_unless_state(
                            &*self.store,
                            &self.master,
                            alg,
                            KeyState::Active,
                            now,
                            now,
                        )
                        .await?;
                        report.created.extend(key.map(|k| k.kid));
                    }
                    Some(active)
                        if active.activates_at.plus(self.settings.rotation_period) <= now =>
                    {
                        // Several instances may run this step at once: one stores a key.
                        let key = self.create_pending(alg, now).await?;
                        report.created.extend(key.map(|k| k.kid));
                    }
                    Some(_) => {}
                },
            }
        }
        report.removed = self.store.remove_expired_keys(now).await?;
        report.pruned = self.store.prune_revocations(now).await?;
        for kid in &report.removed {
            tracing::info!(kid = %kid, "key removed: every token it signed has expired");
        }
        Ok(report)
    }

    async fn activate(&self, key: &StoredKey, now: Timestamp) -> Result<bool, KeysError> {
        let retire_until = now.plus(self.settings.retire_after);
        let record = key_record(
            AuditKind::KEY_ACTIVATED,
            json!({ "kid": key.kid, "alg": key.alg.as_str(), "retire_until": retire_until.0 }),
            now,
        );
        let done = self
            .store
            .activate_key(&key.kid, now, retire_until, &record)
            .await?;
        if done {
            crate::metrics::key_rotation("activated");
            tracing::info!(kid = %key.kid, alg = %key.alg, "key activated; the previous one is retired");
        }
        Ok(done)
    }

    async fn create_pending(
        &self,
        alg: Algorithm,
        now: Timestamp,
    ) -> Result<Option<StoredKey>, KeysError> {
        let created = create_key_unless_state(
            &*self.store,
            &self.master,
            alg,
            KeyState::Pending,
            now,
            now.plus(self.settings.publish_ahead),
        )
        .await?;
        if created.is_some() {
            crate::metrics::key_rotation("started");
        }
        Ok(created)
    }

    /// Starts a rotation now: each algorithm gets a pending key that activates
    /// `publish_ahead` from now (an algorithm already rotating keeps its
    /// pending key). Answers the pending keys.
    pub async fn rotate(&self, now: Timestamp) -> Result<Vec<StoredKey>, KeysError> {
        let keys = self.store.keys().await?;
        let mut out = Vec::with_capacity(self.settings.algorithms.len());
        for &alg in &self.settings.algorithms {
            let existing = keys
                .iter()
                .find(|k| k.alg == alg && k.state == KeyState::Pending);
            match existing {
                Some(key) => out.push(key.clone()),
                None => {
                    match self.create_pending(alg, now).await? {
                        Some(key) => out.push(key),
                        // Another instance started this rotation meanwhile.
                        None => out.extend(
                            self.store
                                .keys()
                                .await?
                                .into_iter()
                                .find(|k| k.alg == alg && k.state == KeyState::Pending),
                        ),
                    }
                }
            }
        }
        Ok(out)
    }

    /// Compromise: unpublishes `kid` now and writes a `key` revocation event
    /// (every token it signed is refused by subscribed verifiers). If it was
    /// the active key of its algorithm, a fresh key is activated first, so
    /// signing never stops.
    pub async fn revoke(&self, kid: &str, now: Timestamp) -> Result<Revoked, KeyOpError> {
        let keys = self.store.keys().await?;
        let key = keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| KeyOpError::NotFound(kid.to_owned()))?;
        if key.state == KeyState::Revoked {
            return Err(KeyOpError::AlreadyRevoked(kid.to_owned()));
        }
        let mut replacement = None;
        if key.state == KeyState::Active {
            let fresh = create_key(
                &*self.store,
                &self.master,
                key.alg,
                KeyState::Active,
                now,
                now,
            )
            .await?;
            crate::metrics::key_rotation("emergency");
            tracing::warn!(kid = %fresh.kid, alg = %fresh.alg, "emergency activation of a fresh key");
            replacement = Some(fresh);
        }
        let until = now.plus(self.settings.retire_after);
        let record = key_record(
            AuditKind::KEY_REVOKED,
            json!({
                "kid": kid,
                "alg": key.alg.as_str(),
                "state_before": key.state.as_str(),
                "replacement": replacement.as_ref().map(|k| k.kid.clone()),
            }),
            now,
        );
        match self.store.revoke_key(kid, now, until, &record).await? {
            KeyRevoked::Revoked(before) => {
                tracing::warn!(kid = %kid, alg = %before.alg, "key revoked: unpublished, its tokens are refused");
                Ok(Revoked {
                    key: before,
                    replacement,
                })
            }
            KeyRevoked::AlreadyRevoked => Err(KeyOpError::AlreadyRevoked(kid.to_owned())),
            KeyRevoked::NotFound => Err(KeyOpError::NotFound(kid.to_owned())),
        }
    }

    /// Runs [`KeyManager::tick`] every `every` until the manager is dropped.
    pub fn spawn_schedule(
        self: &Arc<Self>,
        every: Duration,
        clock: Arc<dyn tessera_core::time::Clock>,
    ) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(manager) = weak.upgrade() else {
                    return;
                };
                match manager.tick(clock.now()).await {
                    Ok(report) if report != TickReport::default() => {
                        tracing::debug!(?report, "key schedule");
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "key schedule step failed; retrying"),
                }
            }
        });
    }
}
