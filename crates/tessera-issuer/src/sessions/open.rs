//! Opening, elevating and ending sessions.

use std::collections::BTreeMap;

use tessera_core::{CustomClaims, SessionId};
use tessera_store::{AuditKind, Generation};
use tessera_store::{
    AuditRecord, Device, EndReason, OpenOutcome, Permission, Session, SessionLimit,
};

use super::*;
use crate::Issuer;
use crate::clients::AuthenticatedClient;
use crate::error::IssuerError;

impl Issuer {
    /// Opens a session for `caller` (a backend with the `sessions` permission).
    pub async fn open_session(
        &self,
        caller: &AuthenticatedClient,
        req: OpenRequest,
        ctx: &RequestContext,
    ) -> Result<TokenPair, IssuerError> {
        caller.require(Permission::Sessions)?;
        let owner = match req.client_id.as_deref() {
            Some(id) if id != caller.client.id => {
                // The allow-list first: the answer says nothing about which
                // client ids exist.
                if !caller.may_open_for(id) {
                    return Err(IssuerError::NotAllowed("sessions for that client_id"));
                }
                Some(
                    self.clients
                        .get(id)
                        .await?
                        .filter(|c| c.client.is_enabled())
                        .ok_or_else(|| bad(format!("client_id {id:?} is unknown or disabled")))?,
                )
            }
            _ => None,
        };
        let owner_ref = owner.as_deref().unwrap_or(caller);
        let policy = &owner_ref.policy;

        check_text("subject", &req.subject, 256)?;
        if let Some(scope) = &req.scope {
            check_scope(scope)?;
            owner_ref.check_scope(scope)?;
        }
        let audience = req
            .audience
            .clone()
            .unwrap_or_else(|| vec![owner_ref.client.id.clone()]);
        if audience.is_empty() || audience.len() > 16 {
            return Err(bad("audience must have 1 to 16 entries"));
        }
        audience
            .iter()
            .try_for_each(|a| check_text("audience", a, 256))?;
        owner_ref.check_audiences(&audience)?;
        let claims = CustomClaims::new(
            req.claims
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect::<BTreeMap<_, _>>(),
        )
        .map_err(|e| bad(format!("claims: {e}")))?;
        let now = self.now();
        let auth_time = check_auth_time(req.auth_time, now)?;
        if let Some(acr) = &req.acr {
            check_text("acr", acr, 256)?;
        }
        let amr = req.amr.clone().unwrap_or_default();
        check_amr(&amr)?;
        let format = parse_format(req.token_format.as_deref(), policy)?;
        match &req.dpop_jkt {
            Some(jkt) if !crate::dpop::is_thumbprint(jkt) => {
                return Err(bad(
                    "dpop_jkt must be the key's RFC 7638 thumbprint: 43 base64url characters (SHA-256)",
                ));
            }
            None if policy.require_dpop => {
                return Err(bad(format!(
                    "dpop_jkt is required: client {:?} requires DPoP (tokens.require_dpop)",
                    owner_ref.client.id
                )));
            }
            _ => {}
        }
        let device = req.device.clone().unwrap_or_default();
        for (name, value) in [
            ("device.ip", &device.ip),
            ("device.user_agent", &device.user_agent),
            ("device.label", &device.label),
        ] {
            if let Some(v) = value {
                check_text(name, v, 512)?;
            }
        }

        let absolute = now.plus(policy.absolute_lifetime);
        let session = Session {
            id: SessionId::random()?.to_hex(),
            subject: req.subject.clone(),
            client_id: owner_ref.client.id.clone(),
            opened_by: caller.client.id.clone(),
            scope: req.scope.clone(),
            audience,
            claims: serde_json::Value::Object(
                claims
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.clone()))
                    .collect(),
            ),
            auth_time: Some(auth_time),
            acr: req.acr.clone(),
            amr,
            token_format: format,
            dpop_jkt: req.dpop_jkt.clone(),
            device,
            generation: Generation::FIRST,
            created_at: now,
            last_used_at: now,
            rotated_at: now,
            idle_expires_at: now.plus(policy.idle_timeout).min(absolute),
            absolute_expires_at: absolute,
            revoked_at: None,
            revoked_reason: None,
            status_idx: None,
        };
        let limit = policy.max_per_subject.map(|max| SessionLimit {
            max,
            policy: policy.limit_policy,
        });
        let opened = self.record(AuditKind::SESSION_OPENED, &session, &caller.client.id, ctx);
        let mut session = session;
        let evict_until = self.revocation_until(now);
        match self
            .store
            .open_session(&session, limit, &opened, evict_until)
            .await?
        {
            OpenOutcome::LimitReached => return Err(IssuerError::SessionLimit),
            OpenOutcome::Opened {
                evicted,
                status_idx,
            } => {
                session.status_idx = Some(status_idx);
                crate::metrics::session_opened();
                crate::metrics::sessions_ended(EndReason::Evicted.as_str(), evicted.len());
                for id in evicted {
                    tracing::info!(session_id = %id, subject = %session.subject, "session.evicted");
                }
            }
        }
        tracing::info!(session_id = %session.id, client_id = %session.client_id, "session.opened");
        let mut pair = self.tokens(&session, &Grant::of(&session), policy, now)?;
        pair.session_id = Some(session.id);
        Ok(pair)
    }

    /// Step-up after a fresh login: new `auth_time`/`acr`/`amr`, a new access token.
    pub async fn elevate(
        &self,
        caller: &AuthenticatedClient,
        sid: &str,
        req: ElevateRequest,
        ctx: &RequestContext,
    ) -> Result<TokenPair, IssuerError> {
        if !caller.has(Permission::Sessions) {
            caller.require(Permission::Admin)?;
        }
        let now = self.now();
        let auth_time = check_auth_time(req.auth_time, now)?;
        if let Some(acr) = &req.acr {
            check_text("acr", acr, 256)?;
        }
        let amr = req.amr.unwrap_or_default();
        check_amr(&amr)?;
        let current = self.managed_session(caller, sid).await?;
        if !current.is_live(now) {
            return Err(IssuerError::SessionNotFound);
        }
        // A disabled (or deleted) client gets no new tokens, by any path.
        let owner = self
            .clients
            .get(&current.client_id)
            .await?
            .filter(|o| o.client.is_enabled())
            .ok_or_else(|| bad("the session's client is disabled or deleted"))?;
        let mut record = self.record(
            AuditKind::SESSION_ELEVATED,
            &current,
            &caller.client.id,
            ctx,
        );
        record.detail = serde_json::json!({ "acr": req.acr, "amr": amr });
        let session = self
            .store
            .elevate(sid, auth_time, req.acr.as_deref(), &amr, now, &record)
            .await?
            .ok_or(IssuerError::SessionNotFound)?;
        tracing::info!(session_id = %session.id, client_id = %caller.client.id, acr = ?session.acr, "session.elevated");
        let grant = Grant::narrowed(&owner, &session, None);
        let mut pair = self.tokens(&session, &grant, &owner.policy, now)?;
        // Only an access token: the refresh token stays with the app, which
        // keeps refreshing as before.
        pair.refresh_token = None;
        pair.refresh_expires_in = None;
        pair.session_id = Some(session.id);
        Ok(pair)
    }

    /// Ends one session that `caller` may manage. `Ok(false)` if it had
    /// already ended; `SessionNotFound` if unknown or another backend's.
    pub async fn end_session(
        &self,
        caller: &AuthenticatedClient,
        sid: &str,
        ctx: &RequestContext,
    ) -> Result<bool, IssuerError> {
        let session = self.managed_session(caller, sid).await?;
        self.end(&caller.client.id, &session, ctx).await
    }

    /// Ends `session` on behalf of client `actor` (already checked).
    pub(crate) async fn end(
        &self,
        actor: &str,
        session: &Session,
        ctx: &RequestContext,
    ) -> Result<bool, IssuerError> {
        let sid = session.id.as_str();
        let now = self.now();
        let record = self.record(EndReason::Revoked.audit_kind(), session, actor, ctx);
        let until = self.revocation_until(now);
        let ended = self
            .store
            .end_session(sid, EndReason::Revoked, now, until, &record)
            .await?;
        if ended {
            crate::metrics::sessions_ended(EndReason::Revoked.as_str(), 1);
            tracing::info!(session_id = %sid, client_id = %actor, "session.revoked");
        }
        Ok(ended)
    }

    /// Ends every live session of `subject` that `caller` may manage
    /// (an admin: all of them, with one `subject` event); answers how many.
    pub async fn end_subject(
        &self,
        caller: &AuthenticatedClient,
        subject: &str,
        ctx: &RequestContext,
    ) -> Result<usize, IssuerError> {
        let actor = caller.client.id.as_str();
        let owner = (!caller.has(Permission::Admin)).then_some(actor);
        check_text("subject", subject, 256)?;
        let now = self.now();
        let template = AuditRecord {
            seq: 0,
            at: now,
            kind: EndReason::Revoked.audit_kind(),
            subject: Some(subject.to_owned()),
            session_id: None,
            client_id: Some(actor.to_owned()),
            device: Device {
                ip: ctx.ip.clone(),
                user_agent: ctx.user_agent.clone(),
                label: None,
            },
            detail: serde_json::json!({ "scope": "subject" }),
        };
        let until = self.revocation_until(now);
        let ended = self
            .store
            .end_subject(subject, now, until, &template, owner)
            .await?;
        crate::metrics::sessions_ended(EndReason::Revoked.as_str(), ended.len());
        tracing::info!(subject = %subject, count = ended.len(), client_id = %actor, "subject sessions revoked");
        Ok(ended.len())
    }
}
