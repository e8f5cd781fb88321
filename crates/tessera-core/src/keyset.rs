//! A fixed set of trusted verification keys, looked up by id.

use crate::claims::{AccessClaims, NumericDate};
use crate::error::{KeyError, VerifyError};
use crate::jwk::JwkSet;
use crate::key::VerificationKey;
use crate::paserk::PaserkSet;
use crate::token::{UntrustedToken, Validation};

/// Trusted keys. A handful at a time (active, pending, retired), so a linear
/// scan beats hashing.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<VerificationKey>,
}

impl KeySet {
    /// A set of these keys. A later key with the same id replaces an earlier one.
    pub fn new(keys: impl IntoIterator<Item = VerificationKey>) -> Self {
        let mut set = KeySet::default();
        for key in keys {
            set.insert(key);
        }
        set
    }

    /// Adds or replaces a key.
    pub fn insert(&mut self, key: VerificationKey) {
        match self.keys.iter_mut().find(|k| k.kid() == key.kid()) {
            Some(slot) => *slot = key,
            None => self.keys.push(key),
        }
    }

    /// Reads a JWKS (`{"keys":[{"kty":...}]}`) or a PASERK set
    /// (`{"keys":[{"paserk":...}]}`), whichever `json` is.
    pub fn from_document(json: &[u8]) -> Result<Self, KeyError> {
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| KeyError::InvalidDocument(e.to_string()))?;
        let is_paserk = value
            .get("keys")
            .and_then(|k| k.as_array())
            .and_then(|k| k.first())
            .is_some_and(|first| first.get("paserk").is_some());
        let keys = if is_paserk {
            serde_json::from_value::<PaserkSet>(value)
                .map_err(|e| KeyError::InvalidDocument(e.to_string()))?
                .verification_keys()?
        } else {
            serde_json::from_value::<JwkSet>(value)
                .map_err(|e| KeyError::InvalidDocument(e.to_string()))?
                .verification_keys()?
        };
        Ok(KeySet::new(keys))
    }

    /// Adds every key of `other`.
    pub fn extend(&mut self, other: KeySet) {
        for key in other.keys {
            self.insert(key);
        }
    }

    /// The key with id `kid`.
    pub fn get(&self, kid: &str) -> Option<&VerificationKey> {
        self.keys.iter().find(|k| k.kid() == kid)
    }

    /// All keys.
    pub fn iter(&self) -> impl Iterator<Item = &VerificationKey> {
        self.keys.iter()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Parses, finds the key and verifies `token` at `now`.
    pub fn verify(
        &self,
        token: &str,
        validation: &Validation,
        now: NumericDate,
    ) -> Result<AccessClaims, VerifyError> {
        let untrusted = UntrustedToken::parse(token, validation.max_token_len())?;
        let key = self
            .get(untrusted.kid())
            .ok_or_else(|| VerifyError::UnknownKey {
                kid: untrusted.kid().to_owned(),
            })?;
        untrusted.verify(key, validation, now)
    }
}
