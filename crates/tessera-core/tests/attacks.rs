//! Hand-built malicious tokens against `KeySet::verify`, one table.
//!
//! Where a check sits behind the signature, the token carries a valid
//! signature by a trusted key, so each row proves its own check and not
//! merely the signature check. Every row names the exact error.

use std::sync::LazyLock;
use std::time::Duration;

use aws_lc_rs::hmac;
use serde_json::{Map, Value, json};
use tessera_core::claims::TimeEncoding;
use tessera_core::{
    AccessClaims, Algorithm, Audience, ClaimError, CustomClaims, HeaderError, KeySet,
    MalformedError, NumericDate, Part, SigningKey, Validation, VerifyError, b64, encode, paseto,
};

const ISSUER: &str = "https://issuer.test";
const NOW: i64 = 1_750_000_000;

struct Keys {
    ed: SigningKey,
    es: SigningKey,
    v4: SigningKey,
    /// Not trusted: an attacker's own key.
    rogue_ed: SigningKey,
    rogue_v4: SigningKey,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    let make = |alg| SigningKey::generate(alg).expect("generate key");
    Keys {
        ed: make(Algorithm::EdDsa),
        es: make(Algorithm::Es256),
        v4: make(Algorithm::V4Public),
        rogue_ed: make(Algorithm::EdDsa),
        rogue_v4: make(Algorithm::V4Public),
    }
});

fn now() -> NumericDate {
    NumericDate::from_unix(NOW)
}

fn trusted() -> KeySet {
    let k = &*KEYS;
    KeySet::new([
        k.ed.verification_key().clone(),
        k.es.verification_key().clone(),
        k.v4.verification_key().clone(),
    ])
}

fn validation() -> Validation {
    Validation::new(ISSUER, ["api"]).expect("validation")
}

/// A JWT payload that passes every claim check at `NOW`.
fn payload() -> Map<String, Value> {
    let Value::Object(map) = json!({
        "iss": ISSUER,
        "sub": "alice",
        "aud": "api",
        "exp": NOW + 300,
        "iat": NOW - 10,
        "jti": "token-1",
        "client_id": "web",
        "scope": "read",
    }) else {
        unreachable!("a JSON object literal")
    };
    map
}

fn payload_with(edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut map = payload();
    edit(&mut map);
    Value::Object(map).to_string()
}

/// The header Tessera writes for `key`, plus `extra` members.
fn header_for(key: &SigningKey, extra: Value) -> String {
    let mut header = json!({ "alg": key.alg().as_str(), "typ": "at+jwt", "kid": key.kid() });
    if let (Value::Object(h), Value::Object(extra)) = (&mut header, extra) {
        h.extend(extra);
    }
    header.to_string()
}

/// `header` and `payload` JSON, base64url-encoded and signed with `key`.
fn signed(header: &str, payload: &str, key: &SigningKey) -> String {
    sign_segments(&b64::encode(header), &b64::encode(payload), key)
}

/// Already-encoded segments (possibly non-canonical), signed as they stand.
fn sign_segments(header_b64: &str, payload_b64: &str, key: &SigningKey) -> String {
    let input = format!("{header_b64}.{payload_b64}");
    let signature = key.sign(input.as_bytes()).expect("sign");
    format!("{input}.{}", b64::encode(signature))
}

fn with_signature(header: &str, payload: &str, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64::encode(header),
        b64::encode(payload),
        b64::encode(signature)
    )
}

/// A token whose only defect is the `edit` of its claims, signed by the trusted EdDSA key.
fn ed_claims(edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let k = &KEYS.ed;
    signed(&header_for(k, json!({})), &payload_with(edit), k)
}

/// A fully valid EdDSA token.
fn good_jwt() -> String {
    ed_claims(|_| {})
}

/// The claims of the v4.public rows (PASETO times are RFC 3339 strings).
fn access_claims() -> AccessClaims {
    AccessClaims {
        iss: ISSUER.into(),
        sub: "alice".into(),
        aud: Audience(vec!["api".into()]),
        exp: now().plus(Duration::from_secs(300)),
        iat: now().minus(Duration::from_secs(10)),
        nbf: None,
        jti: "token-1".into(),
        client_id: "web".into(),
        scope: Some("read".into()),
        sid: None,
        auth_time: None,
        acr: None,
        amr: None,
        cnf: None,
        status: None,
        custom: CustomClaims::default(),
    }
}

fn paseto_with_footer(footer: &[u8], key: &SigningKey) -> String {
    let message = access_claims()
        .to_json(TimeEncoding::Rfc3339)
        .expect("encodable");
    paseto::sign(&message, footer, b"", key).expect("sign v4.public")
}

/// JSON whose base64url form has a partial last quantum, by adding spaces
/// after the object (insignificant whitespace).
fn with_partial_quantum(json: &str) -> String {
    (0..3)
        .map(|n| format!("{json}{}", " ".repeat(n)))
        .find(|j| !b64::encode(j).len().is_multiple_of(4))
        .expect("one of three lengths leaves a partial quantum")
}

/// The same segment with standard `=` padding.
fn padded(segment: &str) -> String {
    assert!(!segment.len().is_multiple_of(4), "segment needs padding");
    let mut out = segment.to_owned();
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    out
}

/// The same segment with a non-zero unused bit in its last character: a
/// lenient decoder would give the same bytes.
fn with_trailing_bits(segment: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    assert!(
        !segment.len().is_multiple_of(4),
        "segment has no unused bits"
    );
    let last = *segment.as_bytes().last().expect("non-empty");
    let index = ALPHABET.iter().position(|&c| c == last).expect("base64url");
    assert_eq!(index & 1, 0, "canonical last character has clear low bit");
    let mut out = segment[..segment.len() - 1].to_owned();
    out.push(char::from(ALPHABET[index | 1]));
    out
}

/// A valid token of exactly `len` bytes (a padding claim fills it up).
fn valid_token_of_len(len: usize) -> String {
    let k = &KEYS.ed;
    for spaces in 0..4 {
        let header = format!("{}{}", header_for(k, json!({})), " ".repeat(spaces));
        // Base64url grows by four characters per three bytes: start a little short.
        for pad in (len * 3 / 4).saturating_sub(400)..len {
            let token = signed(
                &header,
                &payload_with(|m| {
                    m.insert("pad".into(), Value::from("x".repeat(pad)));
                }),
                k,
            );
            if token.len() == len {
                return token;
            }
            if token.len() > len {
                break;
            }
        }
    }
    panic!("no token of exactly {len} bytes");
}

/// The token with its signature segment rewritten by `f`.
fn map_signature(token: &str, f: fn(&str) -> String) -> String {
    let (input, signature) = token.rsplit_once('.').expect("three segments");
    format!("{input}.{}", f(signature))
}

fn malformed(e: MalformedError) -> VerifyError {
    VerifyError::Malformed(e)
}

fn header(e: HeaderError) -> VerifyError {
    VerifyError::Header(e)
}

fn claims(e: ClaimError) -> VerifyError {
    VerifyError::Claims(e)
}

fn attack_table() -> Vec<(String, String, VerifyError)> {
    let k = &*KEYS;
    let good_payload = Value::Object(payload()).to_string();
    let mut cases: Vec<(String, String, VerifyError)> = Vec::new();
    let mut add = |name: &str, token: String, want: VerifyError| {
        cases.push((name.to_owned(), token, want));
    };

    // --- algorithm confusion
    for none in ["none", "None", "NONE", "nOnE"] {
        let h = json!({ "alg": none, "typ": "at+jwt", "kid": k.ed.kid() }).to_string();
        add(
            &format!("alg {none:?}, empty signature"),
            format!("{}.{}.", b64::encode(&h), b64::encode(&good_payload)),
            header(HeaderError::UnsupportedAlgorithm),
        );
    }
    {
        // HS256 keyed with the published Ed25519 public key bytes.
        let h = json!({ "alg": "HS256", "typ": "at+jwt", "kid": k.ed.kid() }).to_string();
        let input = format!("{}.{}", b64::encode(&h), b64::encode(&good_payload));
        let public = k.ed.verification_key().ed25519_bytes().expect("ed25519");
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, public), input.as_bytes());
        add(
            "HS256 keyed with the EdDSA public key",
            format!("{input}.{}", b64::encode(tag.as_ref())),
            header(HeaderError::UnsupportedAlgorithm),
        );
    }
    {
        let h = json!({ "alg": "RS256", "typ": "at+jwt", "kid": k.ed.kid() }).to_string();
        add(
            "RS256",
            with_signature(&h, &good_payload, &[7; 256]),
            header(HeaderError::UnsupportedAlgorithm),
        );
    }
    add(
        "ES256 token relabelled EdDSA under the ES256 key's kid",
        signed(
            &json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": k.es.kid() }).to_string(),
            &good_payload,
            &k.es,
        ),
        VerifyError::AlgorithmMismatch {
            expected: Algorithm::Es256,
            found: Algorithm::EdDsa,
        },
    );
    add(
        "JWT naming the PASETO key (same curve), signed by it",
        signed(
            &json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": k.v4.kid() }).to_string(),
            &good_payload,
            &k.v4,
        ),
        VerifyError::AlgorithmMismatch {
            expected: Algorithm::V4Public,
            found: Algorithm::EdDsa,
        },
    );

    // --- keys the token brings along
    let rogue_jwk = json!({
        "kty": "OKP", "crv": "Ed25519",
        "x": b64::encode(k.rogue_ed.verification_key().ed25519_bytes().expect("ed25519")),
    });
    add(
        "embedded jwk, signed by the embedded (rogue) key",
        signed(
            &header_for(&k.rogue_ed, json!({ "jwk": rogue_jwk })),
            &good_payload,
            &k.rogue_ed,
        ),
        header(HeaderError::EmbeddedKey { param: "jwk" }),
    );
    add(
        "embedded jwk on an otherwise valid token",
        signed(
            &header_for(&k.ed, json!({ "jwk": rogue_jwk })),
            &good_payload,
            &k.ed,
        ),
        header(HeaderError::EmbeddedKey { param: "jwk" }),
    );
    for (param, value) in [
        ("jku", json!("https://attacker.test/jwks.json")),
        ("x5u", json!("https://attacker.test/cert.pem")),
        ("x5c", json!(["MIIBszCCAVmgAwIBAgIUQ"])),
        ("x5t", json!("bm90IGEgdGh1bWJwcmludA")),
        ("x5t#S256", json!("bm90IGEgdGh1bWJwcmludA")),
    ] {
        add(
            &format!("header {param}"),
            signed(
                &header_for(&k.ed, json!({ param: value })),
                &good_payload,
                &k.ed,
            ),
            header(HeaderError::EmbeddedKey { param }),
        );
    }

    // --- key ids
    for kid in ["../../etc/passwd", "x' OR '1'='1", "kid\u{0}", ""] {
        add(
            &format!("kid {kid:?}"),
            signed(
                &json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": kid }).to_string(),
                &good_payload,
                &k.ed,
            ),
            header(HeaderError::InvalidKeyId),
        );
    }
    add(
        "kid of 129 characters",
        signed(
            &json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": "a".repeat(129) }).to_string(),
            &good_payload,
            &k.ed,
        ),
        header(HeaderError::InvalidKeyId),
    );
    add(
        "no kid",
        signed(
            &json!({ "alg": "EdDSA", "typ": "at+jwt" }).to_string(),
            &good_payload,
            &k.ed,
        ),
        header(HeaderError::MissingKeyId),
    );
    add(
        "well-formed unknown kid",
        signed(
            &json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": "unknown-key-1" }).to_string(),
            &good_payload,
            &k.rogue_ed,
        ),
        VerifyError::UnknownKey {
            kid: "unknown-key-1".into(),
        },
    );

    // --- header parameters that change processing
    add(
        "crit naming an unknown extension",
        signed(
            &header_for(&k.ed, json!({ "crit": ["urn:x-ext"], "urn:x-ext": true })),
            &good_payload,
            &k.ed,
        ),
        header(HeaderError::CriticalExtension),
    );
    add(
        "b64 false with crit",
        signed(
            &header_for(&k.ed, json!({ "b64": false, "crit": ["b64"] })),
            &good_payload,
            &k.ed,
        ),
        header(HeaderError::UnencodedPayload),
    );
    add(
        "b64 false without crit",
        signed(
            &header_for(&k.ed, json!({ "b64": false })),
            &good_payload,
            &k.ed,
        ),
        header(HeaderError::UnencodedPayload),
    );

    // --- typ
    for (label, typ) in [("JWT", json!("JWT")), ("rt+jwt", json!("rt+jwt"))] {
        add(
            &format!("typ {label}"),
            signed(
                &header_for(&k.ed, json!({ "typ": typ })),
                &good_payload,
                &k.ed,
            ),
            header(HeaderError::WrongType),
        );
    }
    add(
        "typ with a multi-byte character across byte 12",
        signed(
            &header_for(&k.ed, json!({ "typ": "aaaaaaaaaaa\u{e9}/at+jwt" })),
            &good_payload,
            &k.ed,
        ),
        header(HeaderError::WrongType),
    );
    add(
        "typ missing",
        signed(
            &json!({ "alg": "EdDSA", "kid": k.ed.kid() }).to_string(),
            &good_payload,
            &k.ed,
        ),
        header(HeaderError::MissingType),
    );

    // --- refresh tokens
    add(
        "refresh token",
        format!("trt_{}", b64::encode([42u8; 32])),
        VerifyError::RefreshToken,
    );

    // --- signatures
    add(
        "ES256 signature r = s = 0",
        with_signature(&header_for(&k.es, json!({})), &good_payload, &[0; 64]),
        VerifyError::BadSignature,
    );
    add(
        "EdDSA signature of zeros",
        with_signature(&header_for(&k.ed, json!({})), &good_payload, &[0; 64]),
        VerifyError::BadSignature,
    );
    add(
        "EdDSA token signed by an untrusted key under the trusted kid",
        signed(&header_for(&k.ed, json!({})), &good_payload, &k.rogue_ed),
        VerifyError::BadSignature,
    );
    add(
        "empty signature",
        format!(
            "{}.{}.",
            b64::encode(header_for(&k.ed, json!({}))),
            b64::encode(&good_payload)
        ),
        VerifyError::BadSignature,
    );

    // --- claims (all validly signed)
    add(
        "expired beyond the 30 s leeway",
        ed_claims(|m| {
            m.insert("exp".into(), json!(NOW - 31));
        }),
        claims(ClaimError::Expired {
            exp: NumericDate::from_unix(NOW - 31),
            now: now(),
        }),
    );
    add(
        "expired exactly at the leeway edge",
        ed_claims(|m| {
            m.insert("exp".into(), json!(NOW - 30));
        }),
        claims(ClaimError::Expired {
            exp: NumericDate::from_unix(NOW - 30),
            now: now(),
        }),
    );
    add(
        "nbf beyond the leeway",
        ed_claims(|m| {
            m.insert("nbf".into(), json!(NOW + 31));
        }),
        claims(ClaimError::NotYetValid {
            nbf: NumericDate::from_unix(NOW + 31),
            now: now(),
        }),
    );
    add(
        "iat beyond the leeway",
        ed_claims(|m| {
            m.insert("iat".into(), json!(NOW + 31));
        }),
        claims(ClaimError::IssuedInFuture {
            iat: NumericDate::from_unix(NOW + 31),
            now: now(),
        }),
    );
    add(
        "wrong iss",
        ed_claims(|m| {
            m.insert("iss".into(), json!("https://issuer.test.attacker.test"));
        }),
        claims(ClaimError::WrongIssuer),
    );
    add(
        "wrong aud",
        ed_claims(|m| {
            m.insert("aud".into(), json!("billing"));
        }),
        claims(ClaimError::WrongAudience),
    );
    add(
        "wrong aud list",
        ed_claims(|m| {
            m.insert("aud".into(), json!(["billing", "API", "api "]));
        }),
        claims(ClaimError::WrongAudience),
    );
    add(
        "missing jti",
        ed_claims(|m| {
            m.remove("jti");
        }),
        claims(ClaimError::Missing { claim: "jti" }),
    );
    add(
        "missing exp",
        ed_claims(|m| {
            m.remove("exp");
        }),
        claims(ClaimError::Missing { claim: "exp" }),
    );
    add(
        "exp as a string",
        ed_claims(|m| {
            m.insert("exp".into(), json!((NOW + 300).to_string()));
        }),
        claims(ClaimError::Invalid { claim: "exp" }),
    );
    add(
        "exp as RFC 3339 in a JWT",
        ed_claims(|m| {
            m.insert("exp".into(), json!("2099-01-01T00:00:00Z"));
        }),
        claims(ClaimError::Invalid { claim: "exp" }),
    );

    // --- size
    add(
        "9000 bytes",
        valid_token_of_len(9000),
        VerifyError::TooLarge {
            len: 9000,
            max: 8192,
        },
    );

    // --- duplicate members (signed, so only the JSON check can refuse them)
    let kid = k.ed.kid();
    add(
        "duplicate kid in header",
        signed(
            &format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","kid":"{kid}"}}"#),
            &good_payload,
            &k.ed,
        ),
        malformed(MalformedError::DuplicateKey(Part::Header)),
    );
    add(
        "duplicate alg in header (EdDSA then none)",
        signed(
            &format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","alg":"none"}}"#),
            &good_payload,
            &k.ed,
        ),
        malformed(MalformedError::DuplicateKey(Part::Header)),
    );
    add(
        "duplicate sub in payload",
        signed(
            &header_for(&k.ed, json!({})),
            &good_payload.replacen(r#""sub":"alice""#, r#""sub":"alice","sub":"admin""#, 1),
            &k.ed,
        ),
        malformed(MalformedError::DuplicateKey(Part::Payload)),
    );
    add(
        "duplicate aud in payload",
        signed(
            &header_for(&k.ed, json!({})),
            &good_payload.replacen('{', r#"{"aud":"other","#, 1),
            &k.ed,
        ),
        malformed(MalformedError::DuplicateKey(Part::Payload)),
    );

    // --- non-canonical base64url (re-signed over the altered text)
    let h_b64 = b64::encode(with_partial_quantum(&header_for(&k.ed, json!({}))));
    let p_b64 = b64::encode(with_partial_quantum(&good_payload));
    add(
        "header with = padding",
        sign_segments(&padded(&h_b64), &p_b64, &k.ed),
        malformed(MalformedError::Base64(Part::Header)),
    );
    add(
        "payload with = padding",
        sign_segments(&h_b64, &padded(&p_b64), &k.ed),
        malformed(MalformedError::Base64(Part::Payload)),
    );
    add(
        "signature with == padding",
        map_signature(&good_jwt(), padded),
        malformed(MalformedError::Base64(Part::Signature)),
    );
    add(
        "header with non-zero trailing bits",
        sign_segments(&with_trailing_bits(&h_b64), &p_b64, &k.ed),
        malformed(MalformedError::Base64(Part::Header)),
    );
    add(
        "payload with non-zero trailing bits",
        sign_segments(&h_b64, &with_trailing_bits(&p_b64), &k.ed),
        malformed(MalformedError::Base64(Part::Payload)),
    );
    add(
        "signature with non-zero trailing bits",
        map_signature(&good_jwt(), with_trailing_bits),
        malformed(MalformedError::Base64(Part::Signature)),
    );
    {
        // Nine '>' and nine '?' in a row give "-" and "_" in base64url
        // whatever their alignment; the standard alphabet writes "+" and "/".
        let noisy = payload_with(|m| {
            m.insert("note".into(), json!(">>>>>>>>>?????????"));
        });
        let url = b64::encode(&noisy);
        assert!(url.contains('-') && url.contains('_'), "{url}");
        add(
            "payload in the standard alphabet (+)",
            sign_segments(&h_b64, &url.replace('-', "+"), &k.ed),
            malformed(MalformedError::Base64(Part::Payload)),
        );
        add(
            "payload in the standard alphabet (/)",
            sign_segments(&h_b64, &url.replace('_', "/"), &k.ed),
            malformed(MalformedError::Base64(Part::Payload)),
        );
    }
    add(
        "whitespace inside the payload segment",
        sign_segments(&h_b64, &format!("{} {}", &p_b64[..8], &p_b64[8..]), &k.ed),
        malformed(MalformedError::Base64(Part::Payload)),
    );

    // --- trailing data
    add(
        "a fourth segment",
        format!("{}.{}", good_jwt(), b64::encode("{}")),
        malformed(MalformedError::SegmentCount),
    );
    add(
        "two segments",
        good_jwt()
            .rsplit_once('.')
            .expect("three segments")
            .0
            .to_owned(),
        malformed(MalformedError::SegmentCount),
    );
    add(
        "trailing bytes after the payload JSON",
        signed(
            &header_for(&k.ed, json!({})),
            &format!("{good_payload}{{}}"),
            &k.ed,
        ),
        malformed(MalformedError::Json(Part::Payload)),
    );
    add(
        "trailing bytes after the header JSON",
        signed(
            &format!("{}x", header_for(&k.ed, json!({}))),
            &good_payload,
            &k.ed,
        ),
        malformed(MalformedError::Json(Part::Header)),
    );
    for extra in ["A", "AA", "AAAA"] {
        add(
            &format!("{extra:?} appended to the signature"),
            format!("{}{extra}", good_jwt()),
            VerifyError::BadSignature,
        );
    }

    // --- PASETO
    add(
        "v4.local",
        format!("v4.local.{}", b64::encode([9u8; 96])),
        malformed(MalformedError::UnsupportedPaseto),
    );
    add(
        "v3.public",
        format!("v3.public.{}", b64::encode([9u8; 160])),
        malformed(MalformedError::UnsupportedPaseto),
    );
    add(
        "v4.public without footer",
        paseto_with_footer(b"", &k.v4),
        header(HeaderError::MissingKeyId),
    );
    add(
        "v4.public footer without kid",
        paseto_with_footer(br#"{"wpk":"x"}"#, &k.v4),
        header(HeaderError::MissingKeyId),
    );
    add(
        "v4.public footer kid is a JWT thumbprint",
        paseto_with_footer(json!({ "kid": k.ed.kid() }).to_string().as_bytes(), &k.v4),
        header(HeaderError::InvalidKeyId),
    );
    add(
        "v4.public footer kid is a path",
        paseto_with_footer(br#"{"kid":"../../etc/passwd"}"#, &k.v4),
        header(HeaderError::InvalidKeyId),
    );
    add(
        "v4.public footer kid is a number",
        paseto_with_footer(br#"{"kid":7}"#, &k.v4),
        header(HeaderError::InvalidKeyId),
    );
    add(
        "v4.public footer with duplicate kid",
        paseto_with_footer(
            format!(r#"{{"kid":"{0}","kid":"{0}"}}"#, k.v4.kid()).as_bytes(),
            &k.v4,
        ),
        malformed(MalformedError::DuplicateKey(Part::Footer)),
    );
    add(
        "v4.public signed by another key naming the trusted pid",
        paseto_with_footer(
            json!({ "kid": k.v4.kid() }).to_string().as_bytes(),
            &k.rogue_v4,
        ),
        VerifyError::BadSignature,
    );
    add(
        "v4.public with RFC 3339 exp in the past",
        {
            let mut c = access_claims();
            c.exp = now().minus(Duration::from_secs(31));
            let footer = json!({ "kid": k.v4.kid() }).to_string();
            paseto::sign(
                &c.to_json(TimeEncoding::Rfc3339).expect("encodable"),
                footer.as_bytes(),
                b"",
                &k.v4,
            )
            .expect("sign")
        },
        claims(ClaimError::Expired {
            exp: now().minus(Duration::from_secs(31)),
            now: now(),
        }),
    );
    add(
        "v4.public with numeric exp",
        {
            let footer = json!({ "kid": k.v4.kid() }).to_string();
            paseto::sign(
                access_claims()
                    .to_json(TimeEncoding::Numeric)
                    .expect("encodable")
                    .as_slice(),
                footer.as_bytes(),
                b"",
                &k.v4,
            )
            .expect("sign")
        },
        claims(ClaimError::Invalid { claim: "exp" }),
    );

    cases
}

#[test]
fn malicious_tokens_are_rejected_with_the_exact_error() {
    let keys = trusted();
    let validation = validation();
    let cases = attack_table();
    let mut wrong = Vec::new();
    for (name, token, want) in &cases {
        match keys.verify(token, &validation, now()) {
            Err(got) if &got == want => {}
            got => wrong.push(format!("{name}: expected Err({want:?}), got {got:?}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} rows wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

/// The rows above are only meaningful if the same construction, without the
/// defect, is accepted.
#[test]
fn the_unaltered_constructions_verify() {
    let k = &*KEYS;
    let keys = trusted();
    let validation = validation();
    let good_payload = Value::Object(payload()).to_string();
    let rows: Vec<(&str, String)> = vec![
        ("hand-built EdDSA", good_jwt()),
        (
            "hand-built ES256",
            signed(&header_for(&k.es, json!({})), &good_payload, &k.es),
        ),
        (
            "typ application/at+jwt",
            signed(
                &header_for(&k.ed, json!({ "typ": "application/at+jwt" })),
                &good_payload,
                &k.ed,
            ),
        ),
        (
            "unknown non-critical header member",
            signed(
                &header_for(&k.ed, json!({ "x-note": 1 })),
                &good_payload,
                &k.ed,
            ),
        ),
        (
            "b64 true",
            signed(
                &header_for(&k.ed, json!({ "b64": true })),
                &good_payload,
                &k.ed,
            ),
        ),
        (
            "exp within the leeway",
            ed_claims(|m| {
                m.insert("exp".into(), json!(NOW - 29));
            }),
        ),
        (
            "nbf at the leeway edge",
            ed_claims(|m| {
                m.insert("nbf".into(), json!(NOW + 30));
            }),
        ),
        (
            "iat at the leeway edge",
            ed_claims(|m| {
                m.insert("iat".into(), json!(NOW + 30));
            }),
        ),
        (
            "aud list containing api",
            ed_claims(|m| {
                m.insert("aud".into(), json!(["billing", "api"]));
            }),
        ),
        (
            "payload with whitespace padding",
            sign_segments(
                &b64::encode(header_for(&k.ed, json!({}))),
                &b64::encode(with_partial_quantum(&good_payload)),
                &k.ed,
            ),
        ),
        (
            "v4.public naming its pid",
            paseto_with_footer(json!({ "kid": k.v4.kid() }).to_string().as_bytes(), &k.v4),
        ),
    ];
    for (name, token) in &rows {
        let verified = keys
            .verify(token, &validation, now())
            .unwrap_or_else(|e| panic!("{name}: rejected with {e:?}"));
        assert_eq!(verified.sub, "alice", "{name}");
    }

    // The 9000-byte row is refused for its size alone.
    let big = valid_token_of_len(9000);
    let roomy = validation.clone().with_max_token_len(10_000);
    assert!(
        keys.verify(&big, &roomy, now()).is_ok(),
        "9000 bytes: accepted under a 10000-byte limit"
    );
}

#[test]
fn encoded_tokens_of_every_algorithm_verify() {
    let k = &*KEYS;
    let keys = trusted();
    let validation = validation();
    let claims = access_claims();
    for key in [&k.ed, &k.es, &k.v4] {
        let token = encode(&claims, key).unwrap_or_else(|e| panic!("{}: encode: {e}", key.alg()));
        let verified = keys
            .verify(&token, &validation, now())
            .unwrap_or_else(|e| panic!("{}: rejected: {e:?}", key.alg()));
        assert_eq!(verified, claims, "{}: claims", key.alg());
        // And a rogue set, without this key, does not know it.
        let stranger = KeySet::new([k.rogue_ed.verification_key().clone()]);
        assert!(
            matches!(
                stranger.verify(&token, &validation, now()),
                Err(VerifyError::UnknownKey { .. })
            ),
            "{}: unknown to another set",
            key.alg()
        );
    }
}
