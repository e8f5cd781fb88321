//! Changing clients: register, update, disable, enable, rotate the secret,
//! delete. Each change is a compare-and-swap on `updated_at` with its audit
//! record in the same transaction.

use std::time::Duration;

use tessera_core::b64;
use tessera_store::{
    AuditKind, AuditRecord, Client, ClientDeleted, ClientKind, Device, Permission, Timestamp,
};

use zeroize::Zeroizing;

use super::{
    Actor, ClientChanges, ClientDirectory, ClientSpec, LIST_MAX, MAX_OVERLAP, NewSecret,
    UPDATE_ATTEMPTS, digest, encode_digest, stored_digest,
};
use crate::error::IssuerError;
use crate::sessions::{check_scope, check_text};

impl ClientDirectory {
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
        let record = client_record(
            AuditKind::CLIENT_CREATED,
            &client.id,
            actor,
            now,
            describe(&client),
        );
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
        self.change(id, AuditKind::CLIENT_UPDATED, actor, detail, |client, _| {
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
                AuditKind::CLIENT_DISABLED,
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
            crate::metrics::sessions_ended("client_disabled", ended);
        }
        tracing::warn!(client_id = %client.id, sessions_ended = ended, "client.disabled");
        Ok((client, ended))
    }

    /// Switches the client back on.
    pub async fn enable(&self, id: &str, actor: Actor<'_>) -> Result<Client, IssuerError> {
        let client = self
            .change(
                id,
                AuditKind::CLIENT_ENABLED,
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
                AuditKind::CLIENT_SECRET_ROTATED,
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
        crate::metrics::sessions_ended("client_deleted", ended);
        let record = client_record(AuditKind::CLIENT_DELETED, id, actor, now, describe(&client));
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
        kind: AuditKind,
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
            let record = client_record(kind.clone(), id, actor, now, detail.clone());
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
pub(super) fn client_record(
    kind: AuditKind,
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
        kind,
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
pub(super) fn next_update(previous: Timestamp, now: Timestamp) -> Timestamp {
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
