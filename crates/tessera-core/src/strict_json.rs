//! A strict JSON reader: objects whose members, at any depth, appear once
//! (RFC 8725 §3.1). Claims and JOSE headers both read through it.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::claims::ParseError;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Issue {
    Duplicate,
    Invalid(&'static str),
}

/// A member name or string value, borrowed from the input when it has no
/// escapes.
pub(crate) struct Name<'de>(pub(crate) Cow<'de, str>);

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

/// A JSON value whose objects, at any depth, have no duplicate members.
pub(crate) struct StrictValue<'c>(pub(crate) &'c Cell<Option<Issue>>);

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
