//! Minting: the access token (and the current refresh token) for a live
//! session, and the claims and signature every token shares.

use std::time::Duration;

use tessera_core::SessionId;
use tessera_core::refresh::RefreshToken;
use tessera_core::{AccessClaims, Algorithm, Audience, Confirmation, CustomClaims, Status};
use tessera_store::{Session, Timestamp};

use super::*;
use crate::Issuer;
use crate::error::IssuerError;
use crate::policy::Policy;

impl Issuer {
    /// Access token (and the current refresh token) for a live session.
    pub(crate) fn tokens(
        &self,
        session: &Session,
        grant: &Grant<'_>,
        policy: &Policy,
        now: Timestamp,
    ) -> Result<TokenPair, IssuerError> {
        let format = session.token_format;
        let mut claims = self.base_claims(
            &session.subject,
            Audience(grant.audience.to_vec()),
            &session.client_id,
            now,
            policy.access_ttl,
        )?;
        claims.scope = grant.scope.as_deref().map(str::to_owned);
        claims.sid = Some(session.id.clone());
        claims.auth_time = session.auth_time;
        claims.acr = session.acr.clone();
        claims.amr = (!session.amr.is_empty()).then(|| session.amr.clone());
        claims.cnf = grant.jkt.map(|jkt| Confirmation {
            jkt: jkt.to_owned(),
        });
        claims.status = session.status_idx.map(|index| Status {
            status_list: index.reference(&self.config.issuer),
        });
        if let Some(map) = session.claims.as_object().filter(|m| !m.is_empty()) {
            claims.custom =
                CustomClaims::new(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .map_err(|e| bad(format!("stored claims: {e}")))?;
        }
        let access_token = self.sign(&claims, policy.algorithm(format))?;
        let id = SessionId::parse(&session.id).ok_or(IssuerError::InvalidGrant("session id"))?;
        let refresh = RefreshToken {
            session: id.to_bytes(),
            generation: session.generation.get(),
        };
        let ends = session.idle_expires_at.min(session.absolute_expires_at);
        Ok(TokenPair {
            session_id: None,
            access_token,
            token_type: token_type(grant.jkt),
            expires_in: policy.access_ttl.as_secs(),
            refresh_token: Some(refresh.encode(&self.refresh_secret)),
            refresh_expires_in: Some(ends.since(now).as_secs()),
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
        let iat = now.to_numeric_date();
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
        alg: Algorithm,
    ) -> Result<String, IssuerError> {
        let key = self
            .keys
            .active(alg)
            .ok_or(IssuerError::NoSigningKey(alg.as_str()))?;
        Ok(tessera_core::encode(claims, &key)?)
    }
}

/// RFC 9449 §5: `DPoP` for a token bound to a key, `Bearer` otherwise.
pub(crate) fn token_type(jkt: Option<&str>) -> &'static str {
    if jkt.is_some() { "DPoP" } else { "Bearer" }
}
