//! JSON Web Keys and key sets (RFC 7517, RFC 8037), in both directions.

use serde::{Deserialize, Serialize};

use crate::b64;
use crate::error::KeyError;
use crate::key::{Algorithm, VerificationKey};

/// A public JWK as Tessera publishes and reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `OKP` (Ed25519) or `EC` (P-256); others are skipped when reading.
    pub kty: String,
    /// `Ed25519` or `P-256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// Public key (OKP) or x coordinate (EC), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// y coordinate (EC), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Algorithm the key is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Intended use; `sig` when present.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Permitted operations; must allow `verify` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<String>>,
    /// Private part. Never written; refused when read from a public document.
    #[serde(default, skip_serializing)]
    pub d: Option<serde_json::Value>,
}

impl Jwk {
    /// The public JWK of a JWT verification key (`None` for PASETO keys).
    pub fn from_key(key: &VerificationKey) -> Option<Self> {
        let (kty, crv, x, y) = match key.alg() {
            Algorithm::EdDsa => ("OKP", "Ed25519", b64::encode(key.ed25519_bytes()?), None),
            Algorithm::Es256 => {
                let (x, y) = key.p256_coordinates()?;
                ("EC", "P-256", b64::encode(x), Some(b64::encode(y)))
            }
            _ => return None,
        };
        Some(Jwk {
            kty: kty.to_owned(),
            crv: Some(crv.to_owned()),
            x: Some(x),
            y,
            kid: Some(key.kid().to_owned()),
            alg: Some(key.alg().as_str().to_owned()),
            use_: Some("sig".to_owned()),
            key_ops: None,
            d: None,
        })
    }

    /// The verification key this JWK describes.
    ///
    /// `Ok(None)` for key types Tessera never verifies with (RSA, `oct`,
    /// other curves): they are skipped, never reinterpreted.
    pub fn to_key(&self) -> Result<Option<VerificationKey>, KeyError> {
        if self.d.is_some() {
            return Err(KeyError::PrivatePartInPublicDocument);
        }
        if self.use_.as_deref().is_some_and(|u| u != "sig") {
            return Ok(None);
        }
        if self
            .key_ops
            .as_ref()
            .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
        {
            return Ok(None);
        }
        let alg = match (self.kty.as_str(), self.crv.as_deref()) {
            ("OKP", Some("Ed25519")) => Algorithm::EdDsa,
            ("EC", Some("P-256")) => Algorithm::Es256,
            _ => return Ok(None),
        };
        if let Some(named) = &self.alg
            && named != alg.as_str()
        {
            return Err(KeyError::InvalidJwk("alg does not fit kty/crv"));
        }
        let x = self.x.as_deref().ok_or(KeyError::InvalidJwk("missing x"))?;
        let x = b64::decode(x).map_err(|_| KeyError::InvalidJwk("x is not base64url"))?;
        let key = match alg {
            Algorithm::EdDsa => VerificationKey::ed25519(alg, &x, self.kid.as_deref())?,
            _ => {
                let y = self.y.as_deref().ok_or(KeyError::InvalidJwk("missing y"))?;
                let y = b64::decode(y).map_err(|_| KeyError::InvalidJwk("y is not base64url"))?;
                VerificationKey::p256(&x, &y, self.kid.as_deref())?
            }
        };
        Ok(Some(key))
    }
}

/// A JWK Set: `{"keys":[...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<Jwk>,
}

impl JwkSet {
    /// The set publishing these JWT keys (PASETO keys are left out).
    pub fn from_keys<'a>(keys: impl IntoIterator<Item = &'a VerificationKey>) -> Self {
        JwkSet {
            keys: keys.into_iter().filter_map(Jwk::from_key).collect(),
        }
    }

    /// The verification keys of the set; unusable key types are skipped,
    /// a malformed usable key or any private part fails the whole set.
    pub fn verification_keys(&self) -> Result<Vec<VerificationKey>, KeyError> {
        let mut out = Vec::with_capacity(self.keys.len());
        for jwk in &self.keys {
            if let Some(key) = jwk.to_key()? {
                out.push(key);
            }
        }
        Ok(out)
    }
}
