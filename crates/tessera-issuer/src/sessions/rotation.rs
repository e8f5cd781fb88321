//! The refresh exchange: rotation by compare-and-swap, the grace window,
//! and theft detection (a reused refresh token ends its family).

use tessera_core::refresh::RefreshToken;
use tessera_store::{AuditKind, Generation};
use tessera_store::{
    AuditRecord, ClientKind, Device, EndReason, Permission, ProofKey, RotateOutcome, Session,
    Timestamp,
};

use super::*;
use crate::Issuer;
use crate::clients::AuthenticatedClient;
use crate::dpop::TokenProof;
use crate::error::IssuerError;
use crate::metrics::Refresh;

/// The refusal of a refresh token older than the grace allows (theft assumed).
const REUSED: &str = "refresh token was already used";

impl Issuer {
    /// The refresh-token grant: rotate on every use; the previous generation
    /// within the grace window gets the same next token; anything older is
    /// theft and ends the session.
    ///
    /// `scope` (RFC 6749 §6) asks for a narrower access token: every token
    /// must have been granted to the session and still be allowed to the
    /// client, or the answer is `invalid_scope` before anything changes.
    /// Without it, the access token carries the session's grant less
    /// whatever the client is no longer allowed (RFC 6749 §3.3: the answer's
    /// `scope` says what was granted).
    pub async fn refresh(
        &self,
        client: &AuthenticatedClient,
        presented: &str,
        scope: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<TokenPair, IssuerError> {
        self.refresh_with_proof(client, presented, scope, None, ctx)
            .await
    }

    /// [`Issuer::refresh`] with the DPoP proof the request carried (already
    /// checked by [`Issuer::token_proof`]). RFC 9449 §5:
    ///
    /// * a session bound to a key (opened with `dpop_jkt`, or bound by an
    ///   earlier refresh) rotates only with a proof of that key: the check
    ///   is part of the store's compare-and-swap, so a mismatch cannot
    ///   rotate. Such a refusal (`invalid_dpop_proof`) never ends the
    ///   session: a refresh token is useless without its key, so a holder
    ///   without the key cannot make it look stolen;
    /// * a public client's proof binds an unbound session to its key;
    /// * with a proof, the access token carries `cnf.jkt` and the answer's
    ///   `token_type` is `DPoP`.
    pub async fn refresh_with_proof(
        &self,
        client: &AuthenticatedClient,
        presented: &str,
        scope: Option<&str>,
        proof: Option<&TokenProof>,
        ctx: &RequestContext,
    ) -> Result<TokenPair, IssuerError> {
        let result = self
            .exchange(client, presented, scope, proof, ctx)
            .await
            .map(|(pair, outcome)| {
                crate::metrics::refresh(outcome);
                pair
            });
        if let Err(error) = &result {
            crate::metrics::refresh(
                if matches!(error, IssuerError::InvalidGrant(m) if *m == REUSED) {
                    Refresh::ReuseDetected
                } else {
                    Refresh::of_error(error)
                },
            );
        }
        result
    }

    /// The exchange itself; answers how it went for the metrics.
    async fn exchange(
        &self,
        client: &AuthenticatedClient,
        presented: &str,
        scope: Option<&str>,
        proof: Option<&TokenProof>,
        ctx: &RequestContext,
    ) -> Result<(TokenPair, Refresh), IssuerError> {
        client.require(Permission::RefreshToken)?;
        require_proof(client, proof)?;
        // Authenticate before touching any session: a forger cannot trigger revocation.
        let token = RefreshToken::authenticate(presented, &self.refresh_secret)
            .map_err(|_| IssuerError::InvalidGrant("refresh token is not authentic"))?;
        let generation = Generation::new(token.generation);
        let sid = token.session_id().to_hex();
        if let Some(requested) = scope {
            // Checked before the rotation, so a refused request changes nothing.
            check_scope(requested)?;
            client.check_scope(requested)?;
            let session = self
                .store
                .session(&sid)
                .await?
                .ok_or(IssuerError::InvalidGrant("unknown session"))?;
            if session.dpop_jkt.is_some()
                && session.dpop_jkt.as_deref() != proof.map(|p| p.jkt.as_str())
            {
                // Nothing about a bound session for whoever lacks its key;
                // the compare-and-swap below would refuse it anyway.
                return Err(IssuerError::DpopProof(
                    "this refresh token is DPoP-bound: send a DPoP proof of its key".into(),
                ));
            }
            let granted = session.scope.as_deref().unwrap_or("");
            if let Some(token) = requested
                .split(' ')
                .find(|t| !granted.split(' ').any(|g| g == *t))
            {
                return Err(IssuerError::InvalidScope(format!(
                    "scope {token:?} was not granted to this session"
                )));
            }
        }
        let policy = &client.policy;
        let now = self.now();
        let idle = now.plus(policy.idle_timeout);
        let refreshed = AuditRecord {
            seq: 0,
            at: now,
            kind: AuditKind::SESSION_REFRESHED,
            subject: None,
            session_id: Some(sid.clone()),
            client_id: Some(client.client.id.clone()),
            device: Device {
                ip: ctx.ip.clone(),
                user_agent: ctx.user_agent.clone(),
                label: None,
            },
            detail: serde_json::json!({ "generation": generation.next().get() }),
        };
        let jkt = proof.map(|p| p.jkt.as_str());
        let key = ProofKey {
            jkt,
            bind: jkt.filter(|_| client.client.kind == ClientKind::Public),
        };
        match self
            .store
            .rotate(
                &sid,
                &client.client.id,
                generation,
                now,
                idle,
                key,
                &refreshed,
            )
            .await?
        {
            RotateOutcome::Rotated(session) => {
                // Debug level: this is the hot path; the audit record is the durable trace.
                tracing::debug!(session_id = %session.id, client_id = %client.client.id, generation = session.generation.get(), "session.refreshed");
                self.tokens(
                    &session,
                    &Grant::narrowed(client, &session, scope).bound_to(jkt),
                    policy,
                    now,
                )
                .map(|pair| (pair, Refresh::Ok))
            }
            RotateOutcome::NotFound => Err(IssuerError::InvalidGrant("unknown session")),
            RotateOutcome::Stale(session) => {
                self.judge_stale(client, session, generation, scope, jkt, now, ctx)
                    .await
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn judge_stale(
        &self,
        client: &AuthenticatedClient,
        session: Session,
        generation: Generation,
        scope: Option<&str>,
        jkt: Option<&str>,
        now: Timestamp,
        ctx: &RequestContext,
    ) -> Result<(TokenPair, Refresh), IssuerError> {
        let policy = &client.policy;
        if session.client_id != client.client.id {
            return Err(IssuerError::InvalidGrant(
                "session belongs to another client",
            ));
        }
        // Before anything else about the session: whoever lacks its key
        // learns nothing and changes nothing (no reuse verdict, no expiry).
        if let Some(bound) = session.dpop_jkt.as_deref()
            && jkt != Some(bound)
        {
            tracing::info!(session_id = %session.id, client_id = %client.client.id, proof = jkt.is_some(), "refresh refused: not the session's DPoP key");
            return Err(IssuerError::DpopProof(
                if jkt.is_some() {
                    "the DPoP proof's key is not the key this refresh token is bound to"
                } else {
                    "this refresh token is DPoP-bound: send a DPoP proof of its key"
                }
                .into(),
            ));
        }
        if session.revoked_at.is_some() {
            return Err(IssuerError::InvalidGrant("session has ended"));
        }
        if now >= session.absolute_expires_at || now >= session.idle_expires_at {
            let reason = if now >= session.absolute_expires_at {
                EndReason::ExpiredAbsolute
            } else {
                EndReason::ExpiredIdle
            };
            let record = self.record(reason.audit_kind(), &session, &client.client.id, ctx);
            let ended = self
                .store
                .end_session(
                    &session.id,
                    reason,
                    now,
                    self.revocation_until(now),
                    &record,
                )
                .await?;
            crate::metrics::sessions_ended(reason.as_str(), usize::from(ended));
            tracing::info!(session_id = %session.id, reason = reason.as_str(), "session expired");
            return Err(IssuerError::InvalidGrant("session has expired"));
        }
        let grace_ends = session.rotated_at.plus(policy.refresh_grace);
        if generation.next() == session.generation && now < grace_ends {
            // An idempotent retry: the same next generation, a fresh access token.
            let grant = Grant::narrowed(client, &session, scope).bound_to(jkt);
            let mut record = self.record(
                AuditKind::SESSION_REFRESH_RETRIED,
                &session,
                &client.client.id,
                ctx,
            );
            record.detail = serde_json::json!({ "generation": session.generation });
            self.store.append_audit(&record).await?;
            tracing::info!(session_id = %session.id, client_id = %client.client.id, "session.refresh_retried");
            return self
                .tokens(&session, &grant, policy, now)
                .map(|pair| (pair, Refresh::GraceRetry));
        }
        let mut record = self.record(
            EndReason::ReuseDetected.audit_kind(),
            &session,
            &client.client.id,
            ctx,
        );
        record.detail = serde_json::json!({ "presented_generation": generation, "current_generation": session.generation });
        let ended = self
            .store
            .end_session(
                &session.id,
                EndReason::ReuseDetected,
                now,
                self.revocation_until(now),
                &record,
            )
            .await?;
        crate::metrics::sessions_ended(EndReason::ReuseDetected.as_str(), usize::from(ended));
        tracing::warn!(session_id = %session.id, client_id = %client.client.id, presented = generation.get(), current = session.generation.get(), "session.reuse_detected: refresh token replayed, session revoked");
        Err(IssuerError::InvalidGrant(REUSED))
    }
}

/// `tokens.require_dpop`: this client's token requests must carry a proof.
pub(crate) fn require_proof(
    client: &AuthenticatedClient,
    proof: Option<&TokenProof>,
) -> Result<(), IssuerError> {
    if client.policy.require_dpop && proof.is_none() {
        return Err(IssuerError::DpopProof(
            "this client requires DPoP (tokens.require_dpop): send a DPoP proof".into(),
        ));
    }
    Ok(())
}
