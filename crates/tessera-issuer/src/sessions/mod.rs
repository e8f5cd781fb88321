//! The session lifecycle: open, refresh (rotation with theft detection),
//! elevate, end; and the tokens each step hands out.
//!
//! * `open.rs`: open, elevate, end (one session, or a subject's);
//! * `rotation.rs`: the refresh exchange and theft detection, in one place;
//! * `mint.rs`: access and refresh tokens for a live session;
//! * this file: the request types and the checks they share.

mod mint;
mod open;
mod rotation;

pub(crate) use mint::token_type;
pub(crate) use rotation::require_proof;

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::time::Duration;
use tessera_core::{NumericDate, TokenFormat};

use tessera_store::{AuditFilter, AuditKind, AuditRecord, Device, Permission, Session, Timestamp};

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
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
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
    #[schema(value_type = Option<Object>)]
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
    /// The app's DPoP key thumbprint (RFC 7638, base64url SHA-256): every
    /// token of the session is bound to that key (RFC 9449).
    #[serde(default)]
    pub dpop_jkt: Option<String>,
    /// Where the login happened.
    #[serde(default)]
    #[schema(value_type = Option<crate::http::schema::DeviceView>)]
    pub device: Option<Device>,
    /// The client that will refresh this session (default: the caller).
    #[serde(default)]
    pub client_id: Option<String>,
}

/// `POST /v1/sessions/{sid}/elevate` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    /// The session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The access token.
    pub access_token: String,
    /// `Bearer`, or `DPoP` when the access token is bound to a key.
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

/// `auth_time` as the backend gave it (Unix seconds; default: now): after
/// the epoch and not more than a minute ahead of the clock.
fn check_auth_time(given: Option<i64>, now: Timestamp) -> Result<NumericDate, IssuerError> {
    let now = now.to_numeric_date();
    let auth_time = given.map_or(now, NumericDate::from_unix);
    if auth_time.unix() <= 0 || auth_time > now.plus(Duration::from_secs(60)) {
        return Err(bad("auth_time must be a past Unix time in seconds"));
    }
    Ok(auth_time)
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
        Some(text) => TokenFormat::parse(text)
            .ok_or_else(|| bad("token_format must be \"jwt\" or \"paseto\"")),
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
    /// The DPoP key the token is bound to (`cnf.jkt`), if any.
    jkt: Option<&'a str>,
}

impl<'a> Grant<'a> {
    /// Everything the session was granted (checked when it opened).
    pub(crate) fn of(session: &'a Session) -> Self {
        Grant {
            scope: session.scope.as_deref().map(Cow::Borrowed),
            audience: Cow::Borrowed(&session.audience),
            jkt: session.dpop_jkt.as_deref(),
        }
    }

    /// The same grant, its token bound to the key a proof showed (a bound
    /// session's own key, or a confidential client's per-request key);
    /// without a proof, the session's binding as it is.
    pub(crate) fn bound_to(self, jkt: Option<&'a str>) -> Self {
        Grant {
            jkt: jkt.or(self.jkt),
            ..self
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
        Grant {
            scope,
            audience,
            jkt: session.dpop_jkt.as_deref(),
        }
    }
}

impl Issuer {
    fn record(
        &self,
        kind: AuditKind,
        session: &Session,
        client_id: &str,
        ctx: &RequestContext,
    ) -> AuditRecord {
        AuditRecord {
            seq: 0,
            at: self.now(),
            kind,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::SessionId;

    #[test]
    fn session_ids_round_trip_through_hex() {
        let bytes = [0xab_u8; 16];
        let id = SessionId::from_bytes(bytes);
        assert_eq!(SessionId::parse(&id.to_hex()), Some(id));
        for bad in ["", "zz", &"g".repeat(32), &"a".repeat(31)] {
            assert_eq!(SessionId::parse(bad), None, "{bad}");
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
