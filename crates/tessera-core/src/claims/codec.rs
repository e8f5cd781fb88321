//! The strict JSON codec of [`AccessClaims`].

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::{
    AccessClaims, Audience, Confirmation, CustomClaims, NumericDate, Status, TimeEncoding,
};
use crate::error::ClaimError;
use crate::strict_json::{Issue, Name, StrictValue};

impl AccessClaims {
    /// JSON with the given time encoding. A date RFC 3339 cannot write (a
    /// year past 9999) is [`ClaimError::Unencodable`].
    pub fn to_json(&self, times: TimeEncoding) -> Result<Vec<u8>, ClaimError> {
        if times == TimeEncoding::Rfc3339 {
            let dates = [
                ("exp", Some(self.exp)),
                ("iat", Some(self.iat)),
                ("nbf", self.nbf),
            ];
            for (claim, date) in dates {
                if date.is_some_and(|d| d.to_rfc3339().is_none()) {
                    return Err(ClaimError::Unencodable { claim });
                }
            }
        }
        serde_json::to_vec(&ClaimsJson {
            claims: self,
            times,
        })
        .map_err(|_| ClaimError::Unencodable { claim: "claims" })
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
                TimeEncoding::Numeric => map.next_value::<i64>().ok().map(NumericDate::from_unix),
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
