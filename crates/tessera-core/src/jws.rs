//! JWS compact serialization (RFC 7515) with the checks of RFC 8725.
//!
//! [`UntrustedJws::parse`] splits, decodes and reads the protected header,
//! refusing every header parameter that would let a token pick its own key or
//! change how it is verified. Nothing in it is trusted until
//! [`UntrustedJws::verify_signature`] succeeds under a key the caller chose.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};

use crate::b64;
use crate::error::{HeaderError, KeyError, MalformedError, Part, VerifyError};
use crate::key::{Algorithm, SigningKey, VerificationKey};
use crate::strict_json::Name;

/// Largest protected header accepted, decoded.
pub const MAX_HEADER_LEN: usize = 1024;
/// Most distinct parameters in a protected header.
const MAX_HEADER_PARAMS: usize = 16;

/// What the protected header says, after the RFC 8725 checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwsHeader {
    /// The algorithm the token claims (one we support; still to be matched to the key).
    pub alg: Algorithm,
    /// `kid`, when present.
    pub kid: Option<String>,
    /// `typ`: `None` when absent, else whether it is `at+jwt`.
    pub typ_at_jwt: Option<bool>,
    /// Whether `typ` is `statuslist+jwt` (a Token Status List).
    pub typ_status_list: bool,
}

/// A decoded but unverified compact JWS.
#[derive(Debug)]
pub struct UntrustedJws<'t> {
    header: JwsHeader,
    signing_input: &'t str,
    payload: Vec<u8>,
    signature: [u8; 64],
    signature_len: usize,
}

impl<'t> UntrustedJws<'t> {
    /// Splits and decodes `token`: three segments of canonical base64url, a
    /// header that is one JSON object without duplicates or forbidden parameters.
    pub fn parse(token: &'t str) -> Result<Self, VerifyError> {
        let (signing_input, sig_b64) =
            token.rsplit_once('.').ok_or(MalformedError::SegmentCount)?;
        let (header_b64, payload_b64) = signing_input
            .split_once('.')
            .ok_or(MalformedError::SegmentCount)?;
        if payload_b64.contains('.') {
            return Err(MalformedError::SegmentCount.into());
        }

        let mut header_buf = [0u8; MAX_HEADER_LEN];
        let header_json = b64::decode_into(header_b64, &mut header_buf)
            .map_err(|_| MalformedError::Base64(Part::Header))?;
        let header = parse_header(header_json)?;

        let payload =
            b64::decode(payload_b64).map_err(|_| MalformedError::Base64(Part::Payload))?;

        // Both supported algorithms sign with exactly 64 bytes; anything
        // longer cannot verify, so decode at most a little more to know.
        let mut sig_buf = [0u8; 66];
        let sig = b64::decode_into(sig_b64, &mut sig_buf).map_err(|_| {
            if sig_b64.len() > 88 {
                VerifyError::BadSignature
            } else {
                MalformedError::Base64(Part::Signature).into()
            }
        })?;
        let mut signature = [0u8; 64];
        let signature_len = sig.len();
        if signature_len == 64 {
            signature.copy_from_slice(sig);
        }
        Ok(UntrustedJws {
            header,
            signing_input,
            payload,
            signature,
            signature_len,
        })
    }

    /// The checked header.
    pub fn header(&self) -> &JwsHeader {
        &self.header
    }

    /// Moves the `kid` out of the header (for callers that keep it themselves).
    pub fn take_kid(&mut self) -> Option<String> {
        self.header.kid.take()
    }

    /// The payload, not yet authenticated.
    pub fn untrusted_payload(&self) -> &[u8] {
        &self.payload
    }

    /// The signing input and the 64-byte signature, when this is an EdDSA
    /// JWS `key` could verify (for batch verification).
    pub(crate) fn ed25519_parts(&self, key: &VerificationKey) -> Option<(&'t [u8], [u8; 64])> {
        (self.header.alg == Algorithm::EdDsa
            && key.alg() == Algorithm::EdDsa
            && self.signature_len == 64)
            .then_some((self.signing_input.as_bytes(), self.signature))
    }

    /// The payload, once a batch verification has checked the signature
    /// [`UntrustedJws::ed25519_parts`] gave out.
    pub(crate) fn into_batch_verified_payload(self) -> Vec<u8> {
        self.payload
    }

    /// Verifies the signature with `key`; the key's algorithm must be the header's.
    /// Returns the now-authenticated payload.
    pub fn verify_signature(self, key: &VerificationKey) -> Result<Vec<u8>, VerifyError> {
        if key.alg() != self.header.alg {
            return Err(VerifyError::AlgorithmMismatch {
                expected: key.alg(),
                found: self.header.alg,
            });
        }
        if self.signature_len != 64
            || !key.verify_signature(self.signing_input.as_bytes(), &self.signature)
        {
            return Err(VerifyError::BadSignature);
        }
        Ok(self.payload)
    }
}

/// Signs `payload` with a protected header naming `key`'s algorithm and id.
pub fn sign_compact(
    typ: Option<&str>,
    payload: &[u8],
    key: &SigningKey,
) -> Result<String, KeyError> {
    if !matches!(key.alg(), Algorithm::EdDsa | Algorithm::Es256) {
        return Err(KeyError::Unsupported("JWS needs an EdDSA or ES256 key"));
    }
    #[derive(serde::Serialize)]
    struct Header<'a> {
        alg: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        typ: Option<&'a str>,
        kid: &'a str,
    }
    let header = serde_json::to_vec(&Header {
        alg: key.alg().as_str(),
        typ,
        kid: key.kid(),
    })
    .map_err(|_| KeyError::Unsupported("header"))?;
    let mut out = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 90);
    b64::encode_into(&header, &mut out);
    out.push('.');
    b64::encode_into(payload, &mut out);
    let signature = key.sign(out.as_bytes())?;
    out.push('.');
    b64::encode_into(signature, &mut out);
    Ok(out)
}

#[derive(Default)]
struct RawHeader<'a> {
    alg: Option<Cow<'a, str>>,
    typ: Option<Cow<'a, str>>,
    kid: Option<Cow<'a, str>>,
    crit: bool,
    b64_false: bool,
    embedded: Option<&'static str>,
    others: Vec<Cow<'a, str>>,
    duplicate: bool,
}

fn parse_header(json: &[u8]) -> Result<JwsHeader, VerifyError> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let raw = serde::Deserializer::deserialize_map(&mut de, HeaderVisitor)
        .and_then(|raw| de.end().map(|()| raw));
    let raw = match raw {
        Ok(raw) if raw.duplicate => return Err(MalformedError::DuplicateKey(Part::Header).into()),
        Ok(raw) => raw,
        Err(_) => return Err(MalformedError::Json(Part::Header).into()),
    };
    if let Some(param) = raw.embedded {
        return Err(HeaderError::EmbeddedKey { param }.into());
    }
    if raw.b64_false {
        return Err(HeaderError::UnencodedPayload.into());
    }
    if raw.crit {
        return Err(HeaderError::CriticalExtension.into());
    }
    let alg = raw.alg.ok_or(HeaderError::MissingAlgorithm)?;
    let alg = Algorithm::from_jws_name(&alg).ok_or(HeaderError::UnsupportedAlgorithm)?;
    // RFC 7515 §4.1.9: the "application/" prefix may be omitted; media
    // types compare case-insensitively.
    let bare_typ = raw.typ.as_deref().map(|typ| {
        // `get`, not indexing: byte 12 may fall inside a multi-byte character.
        match typ.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
            _ => typ,
        }
    });
    let typ_at_jwt = bare_typ.map(|bare| bare.eq_ignore_ascii_case("at+jwt"));
    let typ_status_list = bare_typ.is_some_and(|bare| bare.eq_ignore_ascii_case("statuslist+jwt"));
    Ok(JwsHeader {
        alg,
        kid: raw.kid.map(Cow::into_owned),
        typ_at_jwt,
        typ_status_list,
    })
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = RawHeader<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JOSE header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHeader<'de>, A::Error> {
        let mut h = RawHeader::default();
        while let Some(name) = map.next_key::<Cow<'de, str>>()? {
            let seen_before = match name.as_ref() {
                "alg" => store(&mut h.alg, map.next_value::<Name<'de>>()?.0),
                "typ" => store(&mut h.typ, map.next_value::<Name<'de>>()?.0),
                "kid" => store(&mut h.kid, map.next_value::<Name<'de>>()?.0),
                other => {
                    let value = map.next_value::<serde_json::Value>()?;
                    match other {
                        "crit" => h.crit = true,
                        "b64" => h.b64_false |= value == serde_json::Value::Bool(false),
                        "jwk" => h.embedded = h.embedded.or(Some("jwk")),
                        "jku" => h.embedded = h.embedded.or(Some("jku")),
                        "x5u" => h.embedded = h.embedded.or(Some("x5u")),
                        "x5c" => h.embedded = h.embedded.or(Some("x5c")),
                        "x5t" => h.embedded = h.embedded.or(Some("x5t")),
                        "x5t#S256" => h.embedded = h.embedded.or(Some("x5t#S256")),
                        _ => {}
                    }
                    if h.others.iter().any(|o| o == &name) {
                        true
                    } else if h.others.len() >= MAX_HEADER_PARAMS {
                        return Err(de::Error::custom("too many header parameters"));
                    } else {
                        h.others.push(name);
                        false
                    }
                }
            };
            h.duplicate |= seen_before;
        }
        Ok(h)
    }
}

/// Returns whether the slot was already filled.
fn store<'a>(slot: &mut Option<Cow<'a, str>>, value: Cow<'a, str>) -> bool {
    let seen = slot.is_some();
    *slot = Some(value);
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_err(json: &str) -> VerifyError {
        match parse_header(json.as_bytes()) {
            Ok(h) => panic!("{json} was accepted as {h:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn typ_spellings() {
        for (typ, ok) in [
            ("at+jwt", true),
            ("AT+JWT", true),
            ("application/at+jwt", true),
            ("JWT", false),
            ("rt+jwt", false),
            ("application/", false),
        ] {
            let json = format!(r#"{{"alg":"EdDSA","typ":"{typ}","kid":"k"}}"#);
            let h = parse_header(json.as_bytes()).expect("header");
            assert_eq!(h.typ_at_jwt, Some(ok), "{typ}");
        }
    }

    #[test]
    fn header_table() {
        let cases: &[(&str, VerifyError)] = &[
            (
                r#"{"alg":"EdDSA","alg":"none"}"#,
                MalformedError::DuplicateKey(Part::Header).into(),
            ),
            (
                r#"{"alg":"EdDSA","x":1,"x":2}"#,
                MalformedError::DuplicateKey(Part::Header).into(),
            ),
            (
                r#"{"alg":"EdDSA"}{}"#,
                MalformedError::Json(Part::Header).into(),
            ),
            (r#"["EdDSA"]"#, MalformedError::Json(Part::Header).into()),
            (r#"{"alg":5}"#, MalformedError::Json(Part::Header).into()),
            (r#"{"typ":"at+jwt"}"#, HeaderError::MissingAlgorithm.into()),
            (
                r#"{"alg":"eddsa"}"#,
                HeaderError::UnsupportedAlgorithm.into(),
            ),
            (
                r#"{"alg":"EdDSA","crit":["exp"]}"#,
                HeaderError::CriticalExtension.into(),
            ),
        ];
        for (json, want) in cases {
            assert_eq!(&header_err(json), want, "{json}");
        }
    }
}
