//! The session lifecycle: open, refresh (rotation with theft detection),
//! elevate, end; and the tokens each step hands out.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use tessera_core::refresh::RefreshToken;
use tessera_core::statuslist::ENTRIES_PER_LIST;
use tessera_core::{
    AccessClaims, Algorithm, Audience, Confirmation, CustomClaims, NumericDate, Status,
    StatusListRef, TokenFormat,
};

use tessera_store::{
    AuditFilter, AuditRecord, Device, EndReason, OpenOutcome, Permission, RotateOutcome, Session,
    SessionLimit, Timestamp,
};

use crate::Issuer;
use crate::clients::AuthenticatedClient;
use crate::error::IssuerError;
use crate::policy::Policy;

/// Who is asking, for audit records.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// The caller's address.
    pub ip: Option<String>,
    /// The caller's user agent.
    pub user_agent: Option<String>,
}

/// `POST /v1/sessions` body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    /// The authenticated subject (required).
    pub subject: String,
    /// Granted scopes, space-separated.
    #[serde(default)]
    pub scope: Option<String>,
    /// Audiences of the access tokens (default: the session's client id).
    #[serde(default)]
    pub audience: Option<Vec<String>>,
    /// Custom claims (bounded).
    #[serde(default)]
    pub claims: Option<serde_json::Map<String, serde_json::Value>>,
    /// When the subject authenticated (default: now).
    #[serde(default)]
    pub auth_time: Option<i64>,
    /// Authentication context class.
    #[serde(default)]
    pub acr: Option<String>,
    /// Authentication methods.
    #[serde(default)]
    pub amr: Option<Vec<String>>,
    /// `jwt` or `paseto` (default: policy).
    #[serde(default)]
    pub token_format: Option<String>,
    /// DPoP key thumbprint (not supported yet: refused).
    #[serde(default)]
    pub dpop_jkt: Option<String>,
    /// Where the login happened.
    #[serde(default)]
    pub device: Option<Device>,
    /// The client that will refresh this session (default: the caller).
    #[serde(default)]
    pub client_id: Option<String>,
}

/// `POST /v1/sessions/{sid}/elevate` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElevateRequest {
    /// The fresh login's time (default: now).
    #[serde(default)]
    pub auth_time: Option<i64>,
    /// The new authentication context class.
    #[serde(default)]
    pub acr: Option<String>,
    /// The methods of the fresh login.
    #[serde(default)]
    pub amr: Option<Vec<String>>,
}

/// Tokens handed out by open, refresh and elevate.
#[derive(Debug, Clone, Serialize)]
pub struct TokenPair {
    /// The session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The access token.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The refresh token (absent for client credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Seconds until the session ends if not refreshed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_expires_in: Option<u64>,
    /// Granted scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn session_bytes(id: &str) -> Option<[u8; 16]> {
    if id.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in id.as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

fn bad(message: impl Into<String>) -> IssuerError {
    IssuerError::InvalidRequest(message.into())
}

pub(crate) fn check_text(name: &str, value: &str, max: usize) -> Result<(), IssuerError> {
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(bad(format!(
            "{name} must be 1 to {max} characters without control characters"
        )));
    }
    Ok(())
}

/// RFC 6749 §3.3 scope tokens.
pub(crate) fn check_scope(scope: &str) -> Result<(), IssuerError> {
    let ok = scope.len() <= 1024
        && scope.split(' ').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(bad(
            "scope must be space-separated RFC 6749 scope tokens (at most 1024 characters)",
        ))
    }
}

fn parse_format(text: Option<&str>, policy: &Policy) -> Result<TokenFormat, IssuerError> {
    match text {
        None => Ok(policy.default_format),
        Some("jwt") => Ok(TokenFormat::Jwt),
        Some("paseto") => Ok(TokenFormat::Paseto),
        Some(_) => Err(bad("token_format must be \"jwt\" or \"paseto\"")),
    }
}

fn check_amr(amr: &[String]) -> Result<(), IssuerError> {
    if amr.len() > 16 {
        return Err(bad("amr has at most 16 entries"));
    }
    amr.iter().try_for_each(|m| check_text("amr", m, 64))
}

/// What one access token grants: the session's scope and audience, or
/// less of them.
pub(crate) struct Grant<'a> {
    scope: Option<Cow<'a, str>>,
    audience: Cow<'a, [String]>,
}

impl<'a> Grant<'a> {
    /// Everything the session was granted (checked when it opened).
    pub(crate) fn of(session: &'a Session) -> Self {
        Grant {
            scope: session.scope.as_deref().map(Cow::Borrowed),
            audience: Cow::Borrowed(&session.audience),
        }
    }

    /// The session's grant as `client` may still receive it, or the
    /// `requested` scope (already checked to lie within it). Borrows in the
    /// common case where nothing was taken away.
    pub(crate) fn narrowed(
        client: &AuthenticatedClient,
        session: &'a Session,
        requested: Option<&'a str>,
    ) -> Self {
        let scope = match requested.or(session.scope.as_deref()) {
            None => None,
            Some(scope) if client.allows_scope(scope) => Some(Cow::Borrowed(scope)),
            Some(scope) => {
                let kept: Vec<&str> = scope
                    .split(' ')
                    .filter(|t| client.client.scopes.iter().any(|s| s == t))
                    .collect();
                (!kept.is_empty()).then(|| Cow::Owned(kept.join(" ")))
            }
        };
        let audience = if session.audience.iter().all(|a| client.allows_audience(a)) {
            Cow::Borrowed(session.audience.as_slice())
        } else {
            let kept: Vec<String> = session
                .audience
                .iter()
                .filter(|a| client.allows_audience(a))
                .cloned()
                .collect();
            // Nothing left: the client's own id, which is always allowed. Never
            // an error here: the rotation has already happened, and a refused
            // retry would end in a false theft verdict.
            Cow::Owned(if kept.is_empty() {
                vec![client.client.id.clone()]
            } else {
                kept
            })
        };
        Grant { scope, audience }
    }
}

impl Issuer {
    fn record(
        &self,
        kind: &str,
        session: &Session,
        client_id: &str,
        ctx: &RequestContext,
    ) -> AuditRecord {
        AuditRecord {
            seq: 0,
            at: self.now(),
            kind: kind.to_owned(),
            subject: Some(session.subject.clone()),
            session_id: Some(session.id.clone()),
            client_id: Some(client_id.to_owned()),
            device: Device {
                ip: ctx.ip.clone(),
                user_agent: ctx.user_agent.clone(),
                label: session.device.label.clone(),
            },
            detail: serde_json::Value::Null,
        }
    }

    /// Until when a session event made now is remembered: the longest
    /// access-token lifetime (the global one; clients may only shorten it)
    /// plus the margin.
    fn revocation_until(&self, now: Timestamp) -> Timestamp {
        self.config.policy.revocation_until(now)
    }

    /// Whether `caller` may see and change `session` through `/v1/sessions`:
    /// the backend that opened it, or an admin.
    pub fn may_manage(caller: &AuthenticatedClient, session: &Session) -> bool {
        caller.has(Permission::Admin) || session.opened_by == caller.client.id
    }

    /// The session `sid` if `caller` may manage it; another backend's
    /// session is `SessionNotFound`, exactly like an unknown one.
    pub async fn managed_session(
        &self,
        caller: &AuthenticatedClient,
        sid: &str,
    ) -> Result<Session, IssuerError> {
        self.store
            .session(sid)
            .await?
            .filter(|s| Self::may_manage(caller, s))
            .ok_or(IssuerError::SessionNotFound)
    }

    /// The subject's live sessions that `caller` may manage.
    pub async fn managed_sessions(
        &self,
        caller: &AuthenticatedClient,
        subject: &str,
    ) -> Result<Vec<Session>, IssuerError> {
        let owner = (!caller.has(Permission::Admin)).then_some(caller.client.id.as_str());
        Ok(self.store.live_sessions(subject, self.now(), owner).await?)
    }

    /// Audit records `caller` may read: an admin reads everything; a
    /// backend only the records about sessions it opened.
    pub async fn audit_for(
        &self,
        caller: &AuthenticatedClient,
        mut filter: AuditFilter,
    ) -> Result<Vec<AuditRecord>, IssuerError> {
        if !caller.has(Permission::Admin) {
            filter.opened_by = Some(caller.client.id.clone());
        }
        Ok(self.store.audit(&filter).await?)
    }

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
        let auth_time = req.auth_time.unwrap_or(now.unix_seconds());
        if auth_time <= 0 || auth_time > now.unix_seconds() + 60 {
            return Err(bad("auth_time must be a past Unix time in seconds"));
        }
        if let Some(acr) = &req.acr {
            check_text("acr", acr, 256)?;
        }
        let amr = req.amr.clone().unwrap_or_default();
        check_amr(&amr)?;
        let format = parse_format(req.token_format.as_deref(), policy)?;
        if req.dpop_jkt.is_some() {
            return Err(bad("dpop_jkt: DPoP-bound sessions are not supported yet"));
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
            id: hex(&tessera_core::random::<16>()?),
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
            token_format: format.as_str().to_owned(),
            dpop_jkt: None,
            device,
            generation: 1,
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
        let opened = self.record("session.opened", &session, &caller.client.id, ctx);
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
        client.require(Permission::RefreshToken)?;
        // Authenticate before touching any session: a forger cannot trigger revocation.
        let token = RefreshToken::authenticate(presented, &self.refresh_secret)
            .map_err(|_| IssuerError::InvalidGrant("refresh token is not authentic"))?;
        let generation =
            i64::try_from(token.generation).map_err(|_| IssuerError::InvalidGrant("generation"))?;
        let sid = hex(&token.session);
        if let Some(requested) = scope {
            // Checked before the rotation, so a refused request changes nothing.
            check_scope(requested)?;
            client.check_scope(requested)?;
            let session = self
                .store
                .session(&sid)
                .await?
                .ok_or(IssuerError::InvalidGrant("unknown session"))?;
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
            kind: "session.refreshed".into(),
            subject: None,
            session_id: Some(sid.clone()),
            client_id: Some(client.client.id.clone()),
            device: Device {
                ip: ctx.ip.clone(),
                user_agent: ctx.user_agent.clone(),
                label: None,
            },
            detail: serde_json::json!({ "generation": generation + 1 }),
        };
        match self
            .store
            .rotate(&sid, &client.client.id, generation, now, idle, &refreshed)
            .await?
        {
            RotateOutcome::Rotated(session) => {
                // Debug level: this is the hot path; the audit record is the durable trace.
                tracing::debug!(session_id = %session.id, client_id = %client.client.id, generation = session.generation, "session.refreshed");
                self.tokens(
                    &session,
                    &Grant::narrowed(client, &session, scope),
                    policy,
                    now,
                )
            }
            RotateOutcome::NotFound => Err(IssuerError::InvalidGrant("unknown session")),
            RotateOutcome::Stale(session) => {
                self.judge_stale(client, session, generation, scope, now, ctx)
                    .await
            }
        }
    }

    async fn judge_stale(
        &self,
        client: &AuthenticatedClient,
        session: Session,
        generation: i64,
        scope: Option<&str>,
        now: Timestamp,
        ctx: &RequestContext,
    ) -> Result<TokenPair, IssuerError> {
        let policy = &client.policy;
        if session.client_id != client.client.id {
            return Err(IssuerError::InvalidGrant(
                "session belongs to another client",
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
            self.store
                .end_session(
                    &session.id,
                    reason,
                    now,
                    self.revocation_until(now),
                    &record,
                )
                .await?;
            tracing::info!(session_id = %session.id, reason = reason.as_str(), "session expired");
            return Err(IssuerError::InvalidGrant("session has expired"));
        }
        let grace_ends = session.rotated_at.plus(policy.refresh_grace);
        if generation + 1 == session.generation && now < grace_ends {
            // An idempotent retry: the same next generation, a fresh access token.
            let grant = Grant::narrowed(client, &session, scope);
            let mut record =
                self.record("session.refresh_retried", &session, &client.client.id, ctx);
            record.detail = serde_json::json!({ "generation": session.generation });
            self.store.append_audit(&record).await?;
            tracing::info!(session_id = %session.id, client_id = %client.client.id, "session.refresh_retried");
            return self.tokens(&session, &grant, policy, now);
        }
        let mut record = self.record(
            EndReason::ReuseDetected.audit_kind(),
            &session,
            &client.client.id,
            ctx,
        );
        record.detail = serde_json::json!({ "presented_generation": generation, "current_generation": session.generation });
        self.store
            .end_session(
                &session.id,
                EndReason::ReuseDetected,
                now,
                self.revocation_until(now),
                &record,
            )
            .await?;
        tracing::warn!(session_id = %session.id, client_id = %client.client.id, presented = generation, current = session.generation, "session.reuse_detected: refresh token replayed, session revoked");
        Err(IssuerError::InvalidGrant("refresh token was already used"))
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
        let auth_time = req.auth_time.unwrap_or(now.unix_seconds());
        if auth_time <= 0 || auth_time > now.unix_seconds() + 60 {
            return Err(bad("auth_time must be a past Unix time in seconds"));
        }
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
        let mut record = self.record("session.elevated", &current, &caller.client.id, ctx);
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
            kind: EndReason::Revoked.audit_kind().into(),
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
        tracing::info!(subject = %subject, count = ended.len(), client_id = %actor, "subject sessions revoked");
        Ok(ended.len())
    }

    /// Access token (and the current refresh token) for a live session.
    pub(crate) fn tokens(
        &self,
        session: &Session,
        grant: &Grant<'_>,
        policy: &Policy,
        now: Timestamp,
    ) -> Result<TokenPair, IssuerError> {
        let format = match session.token_format.as_str() {
            "paseto" => TokenFormat::Paseto,
            _ => TokenFormat::Jwt,
        };
        let mut claims = self.base_claims(
            &session.subject,
            Audience(grant.audience.to_vec()),
            &session.client_id,
            now,
            policy.access_ttl,
        )?;
        claims.scope = grant.scope.as_deref().map(str::to_owned);
        claims.sid = Some(session.id.clone());
        claims.auth_time = session.auth_time.map(NumericDate::from_unix);
        claims.acr = session.acr.clone();
        claims.amr = (!session.amr.is_empty()).then(|| session.amr.clone());
        claims.cnf = session.dpop_jkt.clone().map(|jkt| Confirmation { jkt });
        claims.status = session.status_idx.map(|global| {
            let global = u64::try_from(global).unwrap_or(0);
            Status {
                status_list: StatusListRef {
                    idx: global % ENTRIES_PER_LIST,
                    uri: format!(
                        "{}/statuslists/{}",
                        self.config.issuer.trim_end_matches('/'),
                        global / ENTRIES_PER_LIST
                    ),
                },
            }
        });
        if let Some(map) = session.claims.as_object().filter(|m| !m.is_empty()) {
            claims.custom =
                CustomClaims::new(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .map_err(|e| bad(format!("stored claims: {e}")))?;
        }
        let access_token = self.sign(&claims, format)?;
        let session_bytes =
            session_bytes(&session.id).ok_or(IssuerError::InvalidGrant("session id"))?;
        let refresh = RefreshToken {
            session: session_bytes,
            generation: u64::try_from(session.generation).unwrap_or(0),
        };
        let ends = session.idle_expires_at.min(session.absolute_expires_at);
        Ok(TokenPair {
            session_id: None,
            access_token,
            token_type: "Bearer",
            expires_in: policy.access_ttl.as_secs(),
            refresh_token: Some(refresh.encode(&self.refresh_secret)),
            refresh_expires_in: Some(u64::try_from((ends.0 - now.0).max(0) / 1000).unwrap_or(0)),
            scope: claims.scope,
        })
    }

    pub(crate) fn base_claims(
        &self,
        subject: &str,
        aud: Audience,
        client_id: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<AccessClaims, IssuerError> {
        let iat = NumericDate::from_unix(now.unix_seconds());
        Ok(AccessClaims {
            nbf: Some(iat),
            ..AccessClaims::new(
                self.config.issuer.as_str(),
                subject,
                aud,
                client_id,
                tessera_core::b64::encode(tessera_core::random::<16>()?),
                iat,
                ttl,
            )
        })
    }

    pub(crate) fn sign(
        &self,
        claims: &AccessClaims,
        format: TokenFormat,
    ) -> Result<String, IssuerError> {
        let alg = match format {
            TokenFormat::Jwt => Algorithm::EdDsa,
            TokenFormat::Paseto => Algorithm::V4Public,
        };
        let key = self
            .keys
            .active(alg)
            .ok_or(IssuerError::NoSigningKey(format.as_str()))?;
        Ok(tessera_core::encode(claims, &key)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_round_trip_through_hex() {
        let bytes = [0xab_u8; 16];
        assert_eq!(session_bytes(&hex(&bytes)), Some(bytes));
        for bad in ["", "zz", &"g".repeat(32), &"a".repeat(31)] {
            assert_eq!(session_bytes(bad), None, "{bad}");
        }
    }

    #[test]
    fn scope_tokens() {
        assert!(check_scope("read write orders:read").is_ok());
        for bad in ["", "a  b", " a", "a\"b", "a\\b", "é", &"a".repeat(1025)] {
            assert!(check_scope(bad).is_err(), "{bad:?}");
        }
    }
}
