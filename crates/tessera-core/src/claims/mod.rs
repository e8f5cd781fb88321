//! The access-token claim set: RFC 9068 plus Tessera's session claims.
//!
//! * [`AccessClaims`] and the claim types (this file);
//! * the strict JSON codec (`codec.rs`): parsing refuses duplicate members at
//!   every depth (RFC 8725 §3.1 asks for one meaning per token) and claims of
//!   the wrong type; times are NumericDate numbers in JWTs and RFC 3339
//!   strings in PASETO, as each format specifies.

mod codec;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

pub use crate::strict_json::parse_strict_object;
pub use crate::time::NumericDate;
pub use codec::{ClaimsJson, ParseError};

/// How `exp`, `iat` and `nbf` are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeEncoding {
    /// NumericDate numbers (JWT, RFC 7519).
    Numeric,
    /// RFC 3339 strings (PASETO registered claims).
    Rfc3339,
}

/// `aud`: one or more audiences; written as a string when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Audience(pub Vec<String>);

impl Audience {
    /// Whether any audience is `aud`.
    pub fn contains(&self, aud: &str) -> bool {
        self.0.iter().any(|a| a == aud)
    }
}

impl Serialize for Audience {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(Audience(match OneOrMany::deserialize(d)? {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }))
    }
}

/// `cnf`: the key a DPoP-bound token is bound to (RFC 9449 §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirmation {
    /// JWK SHA-256 thumbprint of the client's DPoP key.
    pub jkt: String,
}

/// `status`: where this token's revocation bit lives (Token Status List).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {
    /// The status-list reference.
    pub status_list: StatusListRef,
}

/// `status.status_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusListRef {
    /// Index of this token's bit.
    pub idx: u64,
    /// URI of the Status List Token.
    pub uri: String,
}

/// Claim names with a meaning of their own: a custom claim cannot use them.
pub const REGISTERED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "client_id",
    "scope",
    "sid",
    "auth_time",
    "acr",
    "amr",
    "cnf",
    "status",
    "azp",
    "typ",
    "token_use",
    "act",
    "may_act",
    "groups",
    "roles",
    "entitlements",
];

/// Most custom claims one token may carry.
pub const MAX_CUSTOM_CLAIMS: usize = 32;
/// Longest custom claim name.
pub const MAX_CUSTOM_CLAIM_NAME: usize = 64;
/// Most bytes the custom claims may take, as JSON.
pub const MAX_CUSTOM_CLAIMS_BYTES: usize = 2048;

/// Why custom claims were refused at issuance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CustomClaimError {
    /// More than [`MAX_CUSTOM_CLAIMS`].
    #[error("at most {MAX_CUSTOM_CLAIMS} custom claims")]
    TooMany,
    /// A registered name such as `sub` or `exp`.
    #[error("claim {0:?} is reserved")]
    Reserved(String),
    /// Empty or longer than [`MAX_CUSTOM_CLAIM_NAME`].
    #[error("custom claim names must be 1 to {MAX_CUSTOM_CLAIM_NAME} characters")]
    BadName,
    /// Larger than [`MAX_CUSTOM_CLAIMS_BYTES`] as JSON.
    #[error("custom claims exceed {MAX_CUSTOM_CLAIMS_BYTES} bytes")]
    TooLarge,
}

/// Application claims beside the registered ones, bounded in number and size.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomClaims(BTreeMap<String, Value>);

impl CustomClaims {
    /// Checks the bounds and the names.
    pub fn new(claims: BTreeMap<String, Value>) -> Result<Self, CustomClaimError> {
        if claims.len() > MAX_CUSTOM_CLAIMS {
            return Err(CustomClaimError::TooMany);
        }
        for name in claims.keys() {
            if name.is_empty() || name.chars().count() > MAX_CUSTOM_CLAIM_NAME {
                return Err(CustomClaimError::BadName);
            }
            if REGISTERED_CLAIMS.contains(&name.as_str()) {
                return Err(CustomClaimError::Reserved(name.clone()));
            }
        }
        let size = serde_json::to_vec(&claims)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > MAX_CUSTOM_CLAIMS_BYTES {
            return Err(CustomClaimError::TooLarge);
        }
        Ok(CustomClaims(claims))
    }

    /// The claim named `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// All custom claims.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The claims of a Tessera access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    /// Issuer (the public base URL).
    pub iss: String,
    /// Subject.
    pub sub: String,
    /// Audience(s).
    pub aud: Audience,
    /// Expiry.
    pub exp: NumericDate,
    /// Issued at.
    pub iat: NumericDate,
    /// Not before.
    pub nbf: Option<NumericDate>,
    /// Unique token id.
    pub jti: String,
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// Space-separated scopes.
    pub scope: Option<String>,
    /// Session id.
    pub sid: Option<String>,
    /// When the subject last authenticated.
    pub auth_time: Option<NumericDate>,
    /// Authentication context class.
    pub acr: Option<String>,
    /// Authentication methods.
    pub amr: Option<Vec<String>>,
    /// DPoP binding.
    pub cnf: Option<Confirmation>,
    /// Revocation status reference.
    pub status: Option<Status>,
    /// Application claims.
    pub custom: CustomClaims,
}

impl AccessClaims {
    /// The required claims, valid from `issued_at` for `ttl`; every optional
    /// claim empty (set them with struct update syntax).
    pub fn new(
        iss: impl Into<String>,
        sub: impl Into<String>,
        aud: Audience,
        client_id: impl Into<String>,
        jti: impl Into<String>,
        issued_at: NumericDate,
        ttl: Duration,
    ) -> Self {
        AccessClaims {
            iss: iss.into(),
            sub: sub.into(),
            aud,
            exp: issued_at.plus(ttl),
            iat: issued_at,
            nbf: None,
            jti: jti.into(),
            client_id: client_id.into(),
            scope: None,
            sid: None,
            auth_time: None,
            acr: None,
            amr: None,
            cnf: None,
            status: None,
            custom: CustomClaims::default(),
        }
    }

    /// The granted scopes.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.as_deref().unwrap_or("").split_ascii_whitespace()
    }

    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }
}

#[cfg(test)]
mod tests;
