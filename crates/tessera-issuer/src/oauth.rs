//! The other OAuth grants and endpoints: client credentials, introspection
//! (RFC 7662), revocation (RFC 7009).

use tessera_core::refresh::RefreshToken;
use tessera_core::{Audience, NumericDate, Validation};
use tessera_store::{Permission, Session};

use crate::Issuer;
use crate::clients::AuthenticatedClient;
use crate::dpop::TokenProof;
use crate::error::IssuerError;
use crate::sessions::{RequestContext, TokenPair, check_scope, require_proof};

impl Issuer {
    /// `grant_type=client_credentials`: an access token for the client
    /// itself, no session; bound to the proof's key when a DPoP proof came.
    pub async fn client_credentials(
        &self,
        client: &AuthenticatedClient,
        scope: Option<&str>,
        audience: Option<&str>,
        proof: Option<&TokenProof>,
    ) -> Result<TokenPair, IssuerError> {
        client.require(Permission::ClientCredentials)?;
        require_proof(client, proof)?;
        if let Some(scope) = scope {
            check_scope(scope)?;
            client.check_scope(scope)?;
        }
        let aud = audience.unwrap_or(&client.client.id);
        if aud.is_empty() || aud.len() > 256 {
            return Err(IssuerError::InvalidRequest(
                "audience must be 1 to 256 characters".into(),
            ));
        }
        if !client.allows_audience(aud) {
            return Err(IssuerError::InvalidTarget(format!(
                "audience {aud:?} is not allowed for this client"
            )));
        }
        let now = self.now();
        let policy = &client.policy;
        let mut claims = self.base_claims(
            &client.client.id,
            Audience(vec![aud.to_owned()]),
            &client.client.id,
            now,
            policy.access_ttl,
        )?;
        claims.scope = scope.map(str::to_owned);
        let jkt = proof.map(|p| p.jkt.as_str());
        claims.cnf = jkt.map(|jkt| tessera_core::Confirmation {
            jkt: jkt.to_owned(),
        });
        Ok(TokenPair {
            session_id: None,
            access_token: self.sign(&claims, policy.algorithm(policy.default_format))?,
            token_type: crate::sessions::token_type(jkt),
            expires_in: policy.access_ttl.as_secs(),
            refresh_token: None,
            refresh_expires_in: None,
            scope: claims.scope,
        })
    }

    /// RFC 7662: whether `token` is active, with its claims. Never an error for
    /// a bad token: just `{"active": false}`.
    ///
    /// RFC 7662 §4: a caller learns about a token only when it is entitled
    /// to: the token was issued to it (`client_id`), its session was opened
    /// by it (the backend), its `aud` names the caller's client id, or the
    /// caller is an admin. Any other token answers `{"active": false}`,
    /// exactly as an invalid one does.
    pub async fn introspect(
        &self,
        caller: &AuthenticatedClient,
        token: &str,
    ) -> Result<serde_json::Value, IssuerError> {
        caller.require(Permission::Introspect)?;
        let inactive = serde_json::json!({ "active": false });
        let now = self.now();
        if let Ok(refresh) = RefreshToken::authenticate(token, &self.refresh_secret) {
            let sid = refresh.session_id().to_hex();
            let Some(session) = self.store.session(&sid).await?.filter(|s| {
                s.is_live(now) && entitled(caller, &s.client_id, Some(&s.opened_by), &[])
            }) else {
                return Ok(inactive);
            };
            let generation = tessera_store::Generation::new(refresh.generation);
            // A disabled or deleted client's token can no longer be used.
            let Some(owner) = self
                .clients
                .get(&session.client_id)
                .await?
                .filter(|c| c.client.is_enabled())
            else {
                return Ok(inactive);
            };
            let grace = owner.policy.refresh_grace;
            let current = generation == session.generation
                || (generation.next() == session.generation
                    && now < session.rotated_at.plus(grace));
            if !current {
                return Ok(inactive);
            }
            let ends = session.idle_expires_at.min(session.absolute_expires_at);
            return Ok(serde_json::json!({
                "active": true,
                "token_type": "refresh_token",
                "client_id": session.client_id,
                "sub": session.subject,
                "scope": session.scope,
                "sid": session.id,
                "iss": self.config.issuer,
                "iat": session.created_at.unix_seconds(),
                "exp": ends.unix_seconds(),
            }));
        }
        let Ok(validation) = Validation::any_audience(self.config.issuer.as_str()) else {
            return Ok(inactive);
        };
        let Ok(claims) = self.keys.published().verify(
            token,
            &validation,
            NumericDate::from_unix(now.unix_seconds()),
        ) else {
            return Ok(inactive);
        };
        let session = match &claims.sid {
            Some(sid) => match self.store.session(sid).await? {
                Some(s) if s.is_live(now) => Some(s),
                _ => return Ok(inactive),
            },
            None => None,
        };
        let opened_by = session.as_ref().map(|s| s.opened_by.as_str());
        if !entitled(caller, &claims.client_id, opened_by, &claims.aud.0) {
            return Ok(inactive);
        }
        if !self
            .clients
            .get(&claims.client_id)
            .await?
            .is_some_and(|c| c.client.is_enabled())
        {
            return Ok(inactive);
        }
        let mut body = serde_json::to_value(tessera_core::claims::ClaimsJson {
            claims: &claims,
            times: tessera_core::claims::TimeEncoding::Numeric,
        })
        .unwrap_or_else(|_| serde_json::json!({}));
        if let Some(map) = body.as_object_mut() {
            map.insert("active".into(), true.into());
            map.insert("token_type".into(), "access_token".into());
        }
        Ok(body)
    }

    /// RFC 7009: a refresh token (or an access token with a `sid`) of this
    /// client ends its session. Unknown or foreign tokens are ignored (200).
    pub async fn revoke_token(
        &self,
        client: &AuthenticatedClient,
        token: &str,
        ctx: &RequestContext,
    ) -> Result<(), IssuerError> {
        let now = self.now();
        let sid = if let Ok(refresh) = RefreshToken::authenticate(token, &self.refresh_secret) {
            Some(
                refresh
                    .session
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>(),
            )
        } else {
            Validation::any_audience(self.config.issuer.as_str())
                .ok()
                .and_then(|v| {
                    self.keys
                        .published()
                        .verify(token, &v, NumericDate::from_unix(now.unix_seconds()))
                        .ok()
                })
                .and_then(|claims| claims.sid)
        };
        let Some(sid) = sid else { return Ok(()) };
        if let Some(session) = self
            .store
            .session(&sid)
            .await?
            .filter(|s: &Session| s.client_id == client.client.id)
        {
            self.end(&client.client.id, &session, ctx).await?;
        }
        Ok(())
    }
}

/// RFC 7662 §4: whether `caller` may learn about a token issued to
/// `client_id`, in a session opened by `opened_by`, for audiences `aud`.
fn entitled(
    caller: &AuthenticatedClient,
    client_id: &str,
    opened_by: Option<&str>,
    aud: &[String],
) -> bool {
    let me = caller.client.id.as_str();
    caller.has(Permission::Admin)
        || client_id == me
        || opened_by == Some(me)
        || aud.iter().any(|a| a == me)
}
