//! DPoP at the token endpoint (RFC 9449 §4–§8): the proof a token request
//! carries, checked once across every instance, and the server nonce.
//!
//! The proof's signature, `typ`, `alg`, `htm`/`htu` and `iat` window are
//! [`tessera_core::dpop::verify_proof`]'s; here come the parts that need
//! the deployment: the token endpoint's URL, the nonce (stateless: a MAC
//! over a time window under a key derived from the refresh-token secret,
//! so every instance accepts every other's nonces), and the `jti` replay
//! record in the store (shared by every instance on PostgreSQL).

use std::time::Duration;

use tessera_core::dpop::{DpopError, ProofCheck, verify_proof};

use crate::Issuer;
use crate::error::IssuerError;

/// How old a proof's `iat` may be.
pub const PROOF_MAX_AGE: Duration = Duration::from_secs(60);
/// How far ahead of the clock a proof's `iat` may be.
pub const PROOF_LEEWAY: Duration = Duration::from_secs(5);
/// What the nonce key is derived for (from the refresh-token secret).
pub(crate) const NONCE_LABEL: &str = "tessera/dpop-nonce/v1";
/// How often recorded proofs are pruned.
pub(crate) const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// A DPoP proof the token endpoint accepted: the key the new tokens are
/// bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenProof {
    /// RFC 7638 thumbprint of the proof key (`cnf.jkt`).
    pub jkt: String,
}

/// Whether `text` can be an RFC 7638 SHA-256 thumbprint: 43 base64url
/// characters that decode to 32 bytes.
pub(crate) fn is_thumbprint(text: &str) -> bool {
    tessera_core::b64::decode_array::<32>(text).is_ok()
}

impl Issuer {
    /// The token endpoint's URL, as proofs name it (`htu`).
    pub fn token_endpoint(&self) -> String {
        format!("{}/oauth/token", self.config.issuer.trim_end_matches('/'))
    }

    /// The nonce to hand out now, when this deployment requires nonces
    /// (`dpop.require_nonce`).
    pub fn dpop_nonce(&self) -> Option<String> {
        self.config
            .dpop_require_nonce
            .then(|| self.nonce_key.issue(self.now().to_numeric_date()))
    }

    /// Checks the `DPoP` header of a `POST /oauth/token` (`None`: no header).
    /// A proof that passes is recorded, so it is never accepted again by
    /// any instance sharing the store.
    pub async fn token_proof(
        &self,
        proof: Option<&str>,
    ) -> Result<Option<TokenProof>, IssuerError> {
        let Some(proof) = proof else { return Ok(None) };
        let now = self.now().to_numeric_date();
        let url = self.token_endpoint();
        let verified = verify_proof(
            proof,
            &ProofCheck {
                method: "POST",
                url: &url,
                now,
                max_age: PROOF_MAX_AGE,
                leeway: PROOF_LEEWAY,
                access_token: None,
                nonce: None,
            },
        )
        .map_err(|error| match error {
            DpopError::NonceRequired => IssuerError::UseDpopNonce,
            other => IssuerError::DpopProof(other.to_string()),
        })?;
        if self.config.dpop_require_nonce
            && !verified
                .nonce
                .as_deref()
                .is_some_and(|nonce| self.nonce_key.accepts(nonce, now))
        {
            return Err(IssuerError::UseDpopNonce);
        }
        // Unique per key: another key's `jti` never collides with this one.
        let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        digest.update(verified.jkt.as_bytes());
        digest.update(&[0]);
        digest.update(verified.jti.as_bytes());
        let id = tessera_core::b64::encode(digest.finish());
        // Kept until the proof's iat window has closed (with the leeway
        // again for clocks that differ between instances).
        let expires_at = verified
            .iat
            .plus(PROOF_MAX_AGE + PROOF_LEEWAY)
            .to_timestamp();
        if !self
            .store
            .remember_proof(&id, self.now(), expires_at)
            .await?
        {
            return Err(IssuerError::DpopProof(
                "the DPoP proof was already used (jti replay)".into(),
            ));
        }
        Ok(Some(TokenProof { jkt: verified.jkt }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprints_are_43_base64url_characters_of_32_bytes() {
        assert!(is_thumbprint("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"));
        for bad in [
            "",
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4",
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4kA",
            "kPrK+qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4=",
        ] {
            assert!(!is_thumbprint(bad), "{bad:?}");
        }
    }
}
