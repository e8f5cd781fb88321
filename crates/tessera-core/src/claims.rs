//! The access-token claim set: RFC 9068 plus Tessera's session claims, and
//! its strict JSON codec.
//!
//! Parsing refuses duplicate members at every depth (RFC 8725 §3.1 asks for
//! one meaning per token) and claims of the wrong type; times are NumericDate
//! numbers in JWTs and RFC 3339 strings in PASETO, as each format specifies.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::ClaimError;

/// Seconds since the Unix epoch (RFC 7519 NumericDate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NumericDate(i64);

impl NumericDate {
    /// The date `secs` seconds after the epoch.
    pub const fn from_unix(secs: i64) -> Self {
        NumericDate(secs)
    }

    /// Seconds since the epoch.
    pub const fn unix(self) -> i64 {
        self.0
    }

    /// A wall-clock time, rounded down to the second.
    pub fn from_system_time(at: SystemTime) -> Self {
        match at.duration_since(UNIX_EPOCH) {
            Ok(after) => NumericDate(i64::try_from(after.as_secs()).unwrap_or(i64::MAX)),
            Err(before) => {
                NumericDate(-i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX))
            }
        }
    }

    /// This date moved later by `by`, saturating.
    pub fn plus(self, by: Duration) -> Self {
        NumericDate(
            self.0
                .saturating_add(i64::try_from(by.as_secs()).unwrap_or(i64::MAX)),
        )
    }

    /// This date moved earlier by `by`, saturating.
    pub fn minus(self, by: Duration) -> Self {
        NumericDate(
            self.0
                .saturating_sub(i64::try_from(by.as_secs()).unwrap_or(i64::MAX)),
        )
    }

    fn to_rfc3339(self) -> Option<String> {
        OffsetDateTime::from_unix_timestamp(self.0)
            .ok()?
            .format(&Rfc3339)
            .ok()
    }

    fn from_rfc3339(text: &str) -> Option<Self> {
        Some(NumericDate(
            OffsetDateTime::parse(text, &Rfc3339).ok()?.unix_timestamp(),
        ))
    }
}

impl fmt::Display for NumericDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

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

    /// JSON with the given time encoding.
    pub fn to_json(&self, times: TimeEncoding) -> Vec<u8> {
        // invariant: every field serializes; the map holds only JSON values.
        serde_json::to_vec(&ClaimsJson {
            claims: self,
            times,
        })
        .unwrap_or_default()
    }

    /// Strict parse: duplicate members and mistyped claims are errors.
    pub fn from_json(json: &[u8], times: TimeEncoding) -> Result<Self, ParseError> {
        let issue = Cell::new(None);
        let mut de = serde_json::Deserializer::from_slice(json);
        let parsed = ClaimsSeed {
            times,
            issue: &issue,
        }
        .deserialize(&mut de);
        let parsed = parsed.and_then(|b| de.end().map(|()| b));
        match (parsed, issue.take()) {
            (_, Some(Issue::Duplicate)) => Err(ParseError::DuplicateKey),
            (_, Some(Issue::Invalid(claim))) => {
                Err(ParseError::Claim(ClaimError::Invalid { claim }))
            }
            (Err(_), None) => Err(ParseError::Json),
            (Ok(builder), None) => builder.build().map_err(ParseError::Claim),
        }
    }
}

/// Serializes [`AccessClaims`] with a chosen time encoding.
pub struct ClaimsJson<'a> {
    /// The claims.
    pub claims: &'a AccessClaims,
    /// How to write `exp`, `iat`, `nbf`.
    pub times: TimeEncoding,
}

struct TimeOut(NumericDate, TimeEncoding);

impl Serialize for TimeOut {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.1 {
            TimeEncoding::Numeric => s.serialize_i64(self.0.unix()),
            TimeEncoding::Rfc3339 => match self.0.to_rfc3339() {
                Some(text) => s.serialize_str(&text),
                None => Err(serde::ser::Error::custom("date out of range")),
            },
        }
    }
}

impl Serialize for ClaimsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.claims;
        let t = self.times;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("iss", &c.iss)?;
        m.serialize_entry("sub", &c.sub)?;
        m.serialize_entry("aud", &c.aud)?;
        m.serialize_entry("exp", &TimeOut(c.exp, t))?;
        m.serialize_entry("iat", &TimeOut(c.iat, t))?;
        if let Some(nbf) = c.nbf {
            m.serialize_entry("nbf", &TimeOut(nbf, t))?;
        }
        m.serialize_entry("jti", &c.jti)?;
        m.serialize_entry("client_id", &c.client_id)?;
        if let Some(v) = &c.scope {
            m.serialize_entry("scope", v)?;
        }
        if let Some(v) = &c.sid {
            m.serialize_entry("sid", v)?;
        }
        if let Some(v) = &c.auth_time {
            m.serialize_entry("auth_time", v)?;
        }
        if let Some(v) = &c.acr {
            m.serialize_entry("acr", v)?;
        }
        if let Some(v) = &c.amr {
            m.serialize_entry("amr", v)?;
        }
        if let Some(v) = &c.cnf {
            m.serialize_entry("cnf", v)?;
        }
        if let Some(v) = &c.status {
            m.serialize_entry("status", v)?;
        }
        for (k, v) in &c.custom.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Why a claims object could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not a single JSON object.
    Json,
    /// A member name appears twice.
    DuplicateKey,
    /// A claim is missing or mistyped.
    Claim(ClaimError),
}

#[derive(Debug, Clone, Copy)]
enum Issue {
    Duplicate,
    Invalid(&'static str),
}

/// A member name, borrowed from the input when it has no escapes.
struct Name<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

#[derive(Default)]
struct Builder {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<NumericDate>,
    iat: Option<NumericDate>,
    nbf: Option<NumericDate>,
    jti: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
    sid: Option<String>,
    auth_time: Option<NumericDate>,
    acr: Option<String>,
    amr: Option<Vec<String>>,
    cnf: Option<Confirmation>,
    status: Option<Status>,
    custom: BTreeMap<String, Value>,
}

impl Builder {
    fn build(self) -> Result<AccessClaims, ClaimError> {
        fn need<T>(v: Option<T>, claim: &'static str) -> Result<T, ClaimError> {
            v.ok_or(ClaimError::Missing { claim })
        }
        Ok(AccessClaims {
            iss: need(self.iss, "iss")?,
            sub: need(self.sub, "sub")?,
            aud: need(self.aud, "aud")?,
            exp: need(self.exp, "exp")?,
            iat: need(self.iat, "iat")?,
            nbf: self.nbf,
            jti: need(self.jti, "jti")?,
            client_id: need(self.client_id, "client_id")?,
            scope: self.scope,
            sid: self.sid,
            auth_time: self.auth_time,
            acr: self.acr,
            amr: self.amr,
            cnf: self.cnf,
            status: self.status,
            custom: CustomClaims(self.custom),
        })
    }
}

struct ClaimsSeed<'c> {
    times: TimeEncoding,
    issue: &'c Cell<Option<Issue>>,
}

impl<'de> DeserializeSeed<'de> for ClaimsSeed<'_> {
    type Value = Builder;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Builder, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ClaimsSeed<'_> {
    type Value = Builder;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a claims object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Builder, A::Error> {
        let issue = self.issue;
        let mut b = Builder::default();

        fn put<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
            map: &mut A,
            slot: &mut Option<T>,
            claim: &'static str,
            issue: &Cell<Option<Issue>>,
        ) -> Result<(), A::Error> {
            if slot.is_some() {
                issue.set(Some(Issue::Duplicate));
                return Err(de::Error::custom("duplicate member"));
            }
            match map.next_value::<T>() {
                Ok(v) => {
                    *slot = Some(v);
                    Ok(())
                }
                Err(e) => {
                    if issue.get().is_none() {
                        issue.set(Some(Issue::Invalid(claim)));
                    }
                    Err(e)
                }
            }
        }
        // Objects go through the strict value first, so a duplicate inside
        // them is reported as a duplicate, not as a type error.
        fn put_object<'de, A: MapAccess<'de>, T: serde::de::DeserializeOwned>(
            map: &mut A,
            slot: &mut Option<T>,
            claim: &'static str,
            issue: &Cell<Option<Issue>>,
        ) -> Result<(), A::Error> {
            if slot.is_some() {
                issue.set(Some(Issue::Duplicate));
                return Err(de::Error::custom("duplicate member"));
            }
            let value = map.next_value_seed(StrictValue(issue))?;
            match serde_json::from_value::<T>(value) {
                Ok(v) => {
                    *slot = Some(v);
                    Ok(())
                }
                Err(_) => {
                    issue.set(Some(Issue::Invalid(claim)));
                    Err(de::Error::custom("invalid claim"))
                }
            }
        }
        fn put_time<'de, A: MapAccess<'de>>(
            map: &mut A,
            slot: &mut Option<NumericDate>,
            claim: &'static str,
            times: TimeEncoding,
            issue: &Cell<Option<Issue>>,
        ) -> Result<(), A::Error> {
            if slot.is_some() {
                issue.set(Some(Issue::Duplicate));
                return Err(de::Error::custom("duplicate member"));
            }
            let parsed = match times {
                TimeEncoding::Numeric => map.next_value::<i64>().ok().map(NumericDate),
                TimeEncoding::Rfc3339 => map
                    .next_value::<Cow<'_, str>>()
                    .ok()
                    .and_then(|t| NumericDate::from_rfc3339(&t)),
            };
            match parsed {
                Some(v) => {
                    *slot = Some(v);
                    Ok(())
                }
                None => {
                    issue.set(Some(Issue::Invalid(claim)));
                    Err(de::Error::custom("invalid date"))
                }
            }
        }

        while let Some(Name(name)) = map.next_key::<Name<'de>>()? {
            let t = self.times;
            match name.as_ref() {
                "iss" => put(&mut map, &mut b.iss, "iss", issue)?,
                "sub" => put(&mut map, &mut b.sub, "sub", issue)?,
                "aud" => put(&mut map, &mut b.aud, "aud", issue)?,
                "exp" => put_time(&mut map, &mut b.exp, "exp", t, issue)?,
                "iat" => put_time(&mut map, &mut b.iat, "iat", t, issue)?,
                "nbf" => put_time(&mut map, &mut b.nbf, "nbf", t, issue)?,
                "jti" => put(&mut map, &mut b.jti, "jti", issue)?,
                "client_id" => put(&mut map, &mut b.client_id, "client_id", issue)?,
                "scope" => put(&mut map, &mut b.scope, "scope", issue)?,
                "sid" => put(&mut map, &mut b.sid, "sid", issue)?,
                "auth_time" => put(&mut map, &mut b.auth_time, "auth_time", issue)?,
                "acr" => put(&mut map, &mut b.acr, "acr", issue)?,
                "amr" => put(&mut map, &mut b.amr, "amr", issue)?,
                "cnf" => put_object(&mut map, &mut b.cnf, "cnf", issue)?,
                "status" => put_object(&mut map, &mut b.status, "status", issue)?,
                _ => {
                    let value = map.next_value_seed(StrictValue(issue))?;
                    if b.custom.insert(name.into_owned(), value).is_some() {
                        issue.set(Some(Issue::Duplicate));
                        return Err(de::Error::custom("duplicate member"));
                    }
                }
            }
        }
        Ok(b)
    }
}

/// A JSON value whose objects, at any depth, have no duplicate members.
struct StrictValue<'c>(&'c Cell<Option<Issue>>);

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictValue(self.0))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(Name(name)) = map.next_key::<Name<'de>>()? {
            let value = map.next_value_seed(StrictValue(self.0))?;
            if out.insert(name.into_owned(), value).is_some() {
                self.0.set(Some(Issue::Duplicate));
                return Err(de::Error::custom("duplicate member"));
            }
        }
        Ok(Value::Object(out))
    }
}

/// Strictly parses any JSON object (no duplicate members at any depth).
pub fn parse_strict_object(json: &[u8]) -> Result<serde_json::Map<String, Value>, ParseError> {
    let issue = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(json);
    let parsed = StrictValue(&issue).deserialize(&mut de);
    let parsed = parsed.and_then(|v| de.end().map(|()| v));
    match (parsed, issue.take()) {
        (_, Some(Issue::Duplicate)) => Err(ParseError::DuplicateKey),
        (Ok(Value::Object(map)), _) => Ok(map),
        _ => Err(ParseError::Json),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AccessClaims {
        AccessClaims {
            iss: "https://issuer.example".into(),
            sub: "alice".into(),
            aud: Audience(vec!["api".into()]),
            exp: NumericDate::from_unix(1_700_000_300),
            iat: NumericDate::from_unix(1_700_000_000),
            nbf: Some(NumericDate::from_unix(1_700_000_000)),
            jti: "j1".into(),
            client_id: "web".into(),
            scope: Some("read write".into()),
            sid: Some("s1".into()),
            auth_time: Some(NumericDate::from_unix(1_699_999_000)),
            acr: Some("urn:mace:incommon:iap:silver".into()),
            amr: Some(vec!["pwd".into(), "otp".into()]),
            cnf: Some(Confirmation {
                jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into(),
            }),
            status: Some(Status {
                status_list: StatusListRef {
                    idx: 7,
                    uri: "https://issuer.example/statuslists/1".into(),
                },
            }),
            custom: CustomClaims::new(BTreeMap::from([("tenant".into(), Value::from("t1"))]))
                .expect("custom"),
        }
    }

    #[test]
    fn round_trips_in_both_time_encodings() {
        for times in [TimeEncoding::Numeric, TimeEncoding::Rfc3339] {
            let json = sample().to_json(times);
            assert_eq!(
                AccessClaims::from_json(&json, times),
                Ok(sample()),
                "{times:?}"
            );
        }
        let rfc = String::from_utf8(sample().to_json(TimeEncoding::Rfc3339)).expect("utf8");
        assert!(rfc.contains(r#""exp":"2023-11-14T22:18:20Z""#), "{rfc}");
        let jwt = String::from_utf8(sample().to_json(TimeEncoding::Numeric)).expect("utf8");
        assert!(jwt.contains(r#""exp":1700000300"#), "{jwt}");
        assert!(
            jwt.contains(r#""aud":"api""#),
            "one audience is a string: {jwt}"
        );
    }

    #[test]
    fn rejects_duplicates_at_any_depth() {
        let cases = [
            r#"{"sub":"a","sub":"b"}"#,
            r#"{"x":1,"x":2}"#,
            r#"{"x":{"y":1,"y":2}}"#,
            r#"{"x":[{"y":1,"y":2}]}"#,
            r#"{"cnf":{"jkt":"a","jkt":"b"}}"#,
        ];
        for case in cases {
            let got = AccessClaims::from_json(case.as_bytes(), TimeEncoding::Numeric);
            assert_eq!(got, Err(ParseError::DuplicateKey), "{case}");
        }
    }

    #[test]
    fn wrong_types_name_the_claim() {
        let base = String::from_utf8(sample().to_json(TimeEncoding::Numeric)).expect("utf8");
        let cases = [
            (
                base.replace(r#""exp":1700000300"#, r#""exp":"1700000300""#),
                "exp",
            ),
            (
                base.replace(r#""sub":"alice""#, r#""sub":["alice"]"#),
                "sub",
            ),
            (base.replace(r#""aud":"api""#, r#""aud":5"#), "aud"),
            (
                base.replace(r#""amr":["pwd","otp"]"#, r#""amr":"pwd""#),
                "amr",
            ),
        ];
        for (json, claim) in cases {
            let got = AccessClaims::from_json(json.as_bytes(), TimeEncoding::Numeric);
            assert_eq!(
                got,
                Err(ParseError::Claim(ClaimError::Invalid { claim })),
                "{json}"
            );
        }
        let rfc_as_number = AccessClaims::from_json(base.as_bytes(), TimeEncoding::Rfc3339);
        assert_eq!(
            rfc_as_number,
            Err(ParseError::Claim(ClaimError::Invalid { claim: "exp" }))
        );
    }

    #[test]
    fn missing_required_claims_are_named() {
        for claim in ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"] {
            let mut map: serde_json::Map<String, Value> =
                serde_json::from_slice(&sample().to_json(TimeEncoding::Numeric)).expect("json");
            map.remove(claim);
            let json = serde_json::to_vec(&map).expect("json");
            let got = AccessClaims::from_json(&json, TimeEncoding::Numeric);
            assert_eq!(
                got,
                Err(ParseError::Claim(ClaimError::Missing { claim })),
                "{claim}"
            );
        }
    }

    #[test]
    fn trailing_data_and_non_objects_are_json_errors() {
        let json = sample().to_json(TimeEncoding::Numeric);
        let mut trailing = json.clone();
        trailing.extend_from_slice(b" {}");
        for bad in [&trailing[..], b"[]", b"null", b"", b"{"] {
            assert_eq!(
                AccessClaims::from_json(bad, TimeEncoding::Numeric),
                Err(ParseError::Json)
            );
        }
    }

    #[test]
    fn custom_claims_are_bounded() {
        let reserved = BTreeMap::from([("sub".to_owned(), Value::Null)]);
        assert_eq!(
            CustomClaims::new(reserved),
            Err(CustomClaimError::Reserved("sub".into()))
        );
        let many = (0..33).map(|i| (format!("c{i}"), Value::Null)).collect();
        assert_eq!(CustomClaims::new(many), Err(CustomClaimError::TooMany));
        let big = BTreeMap::from([("blob".to_owned(), Value::from("x".repeat(3000)))]);
        assert_eq!(CustomClaims::new(big), Err(CustomClaimError::TooLarge));
        let long = BTreeMap::from([("n".repeat(65), Value::Null)]);
        assert_eq!(CustomClaims::new(long), Err(CustomClaimError::BadName));
    }
}
