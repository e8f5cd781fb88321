//! Public test vectors, read at run time from `tests/vectors/` in this crate
//! (data files, never pasted here): PASETO v4 and PASERK k4
//! from paseto-standard, Wycheproof Ed25519 and ECDSA P-256 (P1363), and the
//! RFC 8037 / RFC 7515 JWS examples. `tests/vectors/README.md` gives each
//! file's source, version and licence. A missing file fails the test.
//! Every assertion names the vector case it checks.

use std::path::Path;

use serde_json::Value;
use tessera_core::error::KeyError;
use tessera_core::jws::UntrustedJws;
use tessera_core::paseto::{self, UntrustedPaseto};
use tessera_core::{
    Algorithm, Jwk, MalformedError, SigningKey, UntrustedToken, VerificationKey, VerifyError, b64,
    paserk,
};

/// The limit `UntrustedToken::parse` gets in these tests (the default).
const MAX_LEN: usize = 8192;

fn load(file: &str) -> Value {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors")).join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read vector file {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("vector file {} is not JSON: {e}", path.display()))
}

/// Decodes lowercase or uppercase hex; panics (naming `what`) on anything else.
fn hex(text: &str, what: &str) -> Vec<u8> {
    fn nibble(c: u8, what: &str) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("{what}: {:?} is not a hex digit", char::from(c)),
        }
    }
    let bytes = text.as_bytes();
    assert!(bytes.len().is_multiple_of(2), "{what}: odd-length hex");
    bytes
        .chunks_exact(2)
        .map(|pair| nibble(pair[0], what) << 4 | nibble(pair[1], what))
        .collect()
}

fn field<'a>(case: &'a Value, name: &str, key: &str) -> &'a str {
    case[key]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: field {key:?} is missing or not a string"))
}

fn hex_field(case: &Value, name: &str, key: &str) -> Vec<u8> {
    hex(field(case, name, key), &format!("{name}.{key}"))
}

fn case_name(case: &Value) -> &str {
    case["name"].as_str().expect("every case has a name")
}

fn expect_fail(case: &Value) -> bool {
    case["expect-fail"]
        .as_bool()
        .unwrap_or_else(|| panic!("{}: expect-fail is not a bool", case_name(case)))
}

fn tests_of(doc: &Value, file: &str) -> Vec<Value> {
    let tests = doc["tests"]
        .as_array()
        .unwrap_or_else(|| panic!("{file}: no tests array"))
        .clone();
    assert!(!tests.is_empty(), "{file}: no tests");
    tests
}

fn array32(bytes: &[u8], what: &str) -> [u8; 32] {
    bytes
        .try_into()
        .unwrap_or_else(|_| panic!("{what}: expected 32 bytes, got {}", bytes.len()))
}

// ---------------------------------------------------------------- PASETO v4

#[test]
fn paseto_v4_vectors() {
    let doc = load("v4.json");
    let tests = tests_of(&doc, "v4.json");

    // 4-F-2 carries no public key; it must fail under the key of the signing
    // vectors, as the upstream suite intends.
    let reference = tests
        .iter()
        .find(|c| case_name(c) == "4-S-1")
        .expect("v4.json has 4-S-1");
    let reference_public = hex_field(reference, "4-S-1", "public-key");

    let (mut signed, mut local, mut failing) = (0, 0, 0);
    for case in &tests {
        let name = case_name(case);
        let token = field(case, name, "token");
        let implicit = case["implicit-assertion"].as_str().unwrap_or("").as_bytes();

        if expect_fail(case) {
            failing += 1;
            assert_paseto_rejected(case, name, token, implicit, &reference_public);
        } else if name.starts_with("4-S-") {
            signed += 1;
            check_v4_public_success(case, name, token, implicit);
        } else if name.starts_with("4-E-") {
            local += 1;
            // v4.local is not implemented: such a token is not an access token.
            assert_eq!(
                UntrustedToken::parse(token, MAX_LEN).expect_err(name),
                VerifyError::Malformed(MalformedError::UnsupportedPaseto),
                "{name}: v4.local must be refused by UntrustedToken::parse"
            );
            assert_eq!(
                UntrustedPaseto::parse(token).expect_err(name),
                VerifyError::Malformed(MalformedError::UnsupportedPaseto),
                "{name}: v4.local must be refused by UntrustedPaseto::parse"
            );
        } else {
            panic!("{name}: unexpected case in v4.json");
        }
    }
    assert!(signed > 0 && local > 0 && failing > 0, "v4.json categories");
    assert_eq!(signed + local + failing, tests.len(), "v4.json case count");
}

fn check_v4_public_success(case: &Value, name: &str, token: &str, implicit: &[u8]) {
    let public = hex_field(case, name, "public-key");
    let seed = hex_field(case, name, "secret-key-seed");
    let payload = field(case, name, "payload").as_bytes();
    let footer = field(case, name, "footer").as_bytes();

    let key = VerificationKey::ed25519(Algorithm::V4Public, &public, None)
        .unwrap_or_else(|e| panic!("{name}: public key refused: {e}"));
    let parsed =
        UntrustedPaseto::parse(token).unwrap_or_else(|e| panic!("{name}: parse failed: {e}"));
    assert_eq!(parsed.untrusted_footer(), footer, "{name}: footer");
    let message = parsed
        .verify(&key, implicit)
        .unwrap_or_else(|e| panic!("{name}: verify failed: {e}"));
    assert_eq!(message, payload, "{name}: verified payload");

    // The implicit assertion is bound by the signature: any other value fails.
    let mut other_implicit = implicit.to_vec();
    other_implicit.push(b'!');
    assert_eq!(
        UntrustedPaseto::parse(token)
            .expect(name)
            .verify(&key, &other_implicit),
        Err(VerifyError::BadSignature),
        "{name}: a different implicit assertion must not verify"
    );

    // Ed25519 is deterministic: signing again gives the token byte for byte.
    let signing = SigningKey::from_secret_bytes(Algorithm::V4Public, &seed)
        .unwrap_or_else(|e| panic!("{name}: seed refused: {e}"));
    assert_eq!(
        signing.verification_key().ed25519_bytes().map(|b| &b[..]),
        Some(&public[..]),
        "{name}: public key derived from the seed"
    );
    assert_eq!(
        signing.kid(),
        key.kid(),
        "{name}: signing and verification key ids"
    );
    let again = paseto::sign(payload, footer, implicit, &signing)
        .unwrap_or_else(|e| panic!("{name}: sign failed: {e}"));
    assert_eq!(again, token, "{name}: re-signed token");
}

fn assert_paseto_rejected(
    case: &Value,
    name: &str,
    token: &str,
    implicit: &[u8],
    reference_public: &[u8],
) {
    if token.starts_with("v4.public.") {
        // A v4.public token that must not verify: use its own key if it has one.
        let public = match case["public-key"].as_str() {
            Some(hex_key) => hex(hex_key, &format!("{name}.public-key")),
            None => reference_public.to_vec(),
        };
        let key = VerificationKey::ed25519(Algorithm::V4Public, &public, None)
            .unwrap_or_else(|e| panic!("{name}: public key refused: {e}"));
        let verdict = UntrustedPaseto::parse(token).and_then(|t| t.verify(&key, implicit));
        assert!(
            verdict.is_err(),
            "{name}: expect-fail v4.public token was accepted"
        );
    } else {
        // Other versions and purposes are refused before any key is involved.
        assert_eq!(
            UntrustedPaseto::parse(token).expect_err(name),
            VerifyError::Malformed(MalformedError::UnsupportedPaseto),
            "{name}: UntrustedPaseto::parse"
        );
        assert_eq!(
            UntrustedToken::parse(token, MAX_LEN).expect_err(name),
            VerifyError::Malformed(MalformedError::UnsupportedPaseto),
            "{name}: UntrustedToken::parse"
        );
    }
}

// ---------------------------------------------------------------- PASERK k4

#[test]
fn paserk_k4_public_vectors() {
    let doc = load("k4.public.json");
    for case in tests_of(&doc, "k4.public.json") {
        let name = case_name(&case);
        let key = hex_field(&case, name, "key");
        if expect_fail(&case) {
            // Where we take public keys, a key that is not 32 bytes (here a
            // key of another PASETO version) is refused: the typed API cannot
            // even be called with it, construction fails, and a PASERK built
            // around it, under our prefix or its own version's, does not decode.
            assert!(
                <[u8; 32]>::try_from(&key[..]).is_err(),
                "{name}: must not be 32 bytes"
            );
            assert!(
                VerificationKey::ed25519(Algorithm::V4Public, &key, None).is_err(),
                "{name}: VerificationKey::ed25519 must refuse it"
            );
            for prefix in ["k4.public.", "k3.public."] {
                let forged = format!("{prefix}{}", b64::encode(&key));
                assert!(
                    paserk::decode_public(&forged).is_err(),
                    "{name}: decode_public must refuse {prefix}"
                );
            }
            continue;
        }
        let expected = field(&case, name, "paserk");
        let key = array32(&key, name);
        assert_eq!(paserk::encode_public(&key), expected, "{name}: encode");
        assert_eq!(
            paserk::decode_public(expected),
            Ok(key),
            "{name}: decode inverts encode"
        );
        // The same key must not decode under another version's prefix.
        let k3 = expected.replacen("k4.", "k3.", 1);
        assert!(
            paserk::decode_public(&k3).is_err(),
            "{name}: k3 prefix must be refused"
        );
    }
}

#[test]
fn paserk_k4_secret_vectors() {
    let doc = load("k4.secret.json");
    let tests = tests_of(&doc, "k4.secret.json");
    for case in &tests {
        let name = case_name(case);
        let key = hex_field(case, name, "key");
        // The PASERK body is base64url of the vector's 64-byte `key` (seed ‖
        // public key); this is also how the expect-fail keys are presented.
        let as_paserk = format!("k4.secret.{}", b64::encode(&key));
        if expect_fail(case) {
            // Rejections: the body is not 64 bytes, so decode_secret refuses
            // the PASERK; the bytes are not a 32-byte seed, so
            // SigningKey::from_secret_bytes refuses them; a public half that is
            // not a 32-byte Ed25519 key (fail-2 has a PEM of another curve)
            // is refused by VerificationKey::ed25519.
            assert!(
                paserk::decode_secret(&as_paserk).is_err(),
                "{name}: decode_secret must refuse it"
            );
            assert!(
                SigningKey::from_secret_bytes(Algorithm::V4Public, &key).is_err(),
                "{name}: from_secret_bytes must refuse it"
            );
            if let Some(public) = case["public-key"].as_str() {
                let public = hex(public, &format!("{name}.public-key"));
                assert!(
                    VerificationKey::ed25519(Algorithm::V4Public, &public, None).is_err(),
                    "{name}: VerificationKey::ed25519 must refuse the public key"
                );
            }
            continue;
        }
        let expected = field(case, name, "paserk");
        let seed = hex_field(case, name, "secret-key-seed");
        let public = hex_field(case, name, "public-key");
        assert_eq!(as_paserk, expected, "{name}: PASERK layout");

        let decoded = paserk::decode_secret(expected)
            .unwrap_or_else(|e| panic!("{name}: decode_secret failed: {e}"));
        assert_eq!(decoded.alg(), Algorithm::V4Public, "{name}: algorithm");
        assert_eq!(
            decoded.verification_key().ed25519_bytes().map(|b| &b[..]),
            Some(&public[..]),
            "{name}: public key"
        );
        assert_eq!(
            &decoded.to_secret_bytes().expect(name)[..],
            &seed[..],
            "{name}: seed"
        );
        let encoded = paserk::encode_secret(&decoded)
            .unwrap_or_else(|e| panic!("{name}: encode_secret failed: {e}"));
        assert_eq!(encoded.as_str(), expected, "{name}: encode_secret");

        let from_seed = SigningKey::from_secret_bytes(Algorithm::V4Public, &seed).expect(name);
        assert_eq!(
            paserk::encode_secret(&from_seed).expect(name).as_str(),
            expected,
            "{name}: encode_secret of the key built from the seed"
        );
    }

    // A secret PASERK whose public half belongs to another seed is refused.
    let good: Vec<&Value> = tests.iter().filter(|c| !expect_fail(c)).collect();
    assert!(good.len() >= 2, "k4.secret.json: need two good cases");
    let (a, b) = (good[0], good[1]);
    let mut mixed = hex_field(a, case_name(a), "secret-key-seed");
    mixed.extend(hex_field(b, case_name(b), "public-key"));
    let mixed = format!("k4.secret.{}", b64::encode(&mixed));
    assert!(
        matches!(
            paserk::decode_secret(&mixed),
            Err(KeyError::InvalidPaserk(_))
        ),
        "{} seed with {} public key must be refused",
        case_name(a),
        case_name(b)
    );
}

#[test]
fn paserk_k4_pid_vectors() {
    let doc = load("k4.pid.json");
    for case in tests_of(&doc, "k4.pid.json") {
        let name = case_name(&case);
        let key = hex_field(&case, name, "key");
        if expect_fail(&case) {
            // `paserk::pid` takes exactly 32 bytes, so a short key or a key of
            // another version has no id: the conversion to its argument type
            // fails, and the key is refused where a key id would be derived
            // (VerificationKey::ed25519 names V4Public keys by their pid).
            assert!(
                <[u8; 32]>::try_from(&key[..]).is_err(),
                "{name}: must not be 32 bytes"
            );
            assert!(
                VerificationKey::ed25519(Algorithm::V4Public, &key, None).is_err(),
                "{name}: VerificationKey::ed25519 must refuse it"
            );
            continue;
        }
        let expected = field(&case, name, "paserk");
        let key = array32(&key, name);
        assert_eq!(paserk::pid(&key), expected, "{name}: pid");
        assert!(paserk::is_pid(expected), "{name}: is_pid");
        // Random 32 bytes need not be a curve point; when they are, the
        // verification key is named by the same id.
        if let Ok(vk) = VerificationKey::ed25519(Algorithm::V4Public, &key, None) {
            assert_eq!(vk.kid(), expected, "{name}: VerificationKey kid");
        }
    }
}

// ---------------------------------------------------------------- Wycheproof

/// Runs one Wycheproof file: `make_key` builds the key of a group (or refuses
/// it), and every test's verdict must match its `result`.
fn run_wycheproof(file: &str, make_key: impl Fn(&Value, &str) -> Option<VerificationKey>) {
    let doc = load(file);
    let expected_count = doc["numberOfTests"]
        .as_u64()
        .unwrap_or_else(|| panic!("{file}: numberOfTests"));
    let groups = doc["testGroups"]
        .as_array()
        .unwrap_or_else(|| panic!("{file}: testGroups"));
    let mut count = 0u64;
    let mut wrong = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        let group_name = format!("{file} group {g}");
        let key = make_key(&group["publicKey"], &group_name);
        let tests = group["tests"]
            .as_array()
            .unwrap_or_else(|| panic!("{group_name}: tests"));
        for test in tests {
            count += 1;
            let id = test["tcId"].as_u64().expect("tcId");
            let name = format!("{file} tcId {id} ({})", test["comment"]);
            let valid = match test["result"].as_str() {
                Some("valid") => true,
                Some("invalid") => false,
                other => panic!("{name}: unexpected result {other:?}"),
            };
            let msg = hex(test["msg"].as_str().expect("msg"), &name);
            let sig = hex(test["sig"].as_str().expect("sig"), &name);
            let accepted = key.as_ref().is_some_and(|k| k.verify_signature(&msg, &sig));
            if accepted != valid {
                wrong.push(format!(
                    "{name}: expected {}, got {} (key {})",
                    if valid { "valid" } else { "invalid" },
                    if accepted { "accepted" } else { "rejected" },
                    if key.is_some() { "accepted" } else { "refused" },
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{file} mismatches:\n{}", wrong.join("\n"));
    assert_eq!(count, expected_count, "{file}: numberOfTests");
}

#[test]
fn wycheproof_ed25519() {
    run_wycheproof("ed25519_test.json", |public, group| {
        let pk = hex(public["pk"].as_str().expect("pk"), group);
        VerificationKey::ed25519(Algorithm::EdDsa, &pk, None).ok()
    });
}

#[test]
fn wycheproof_ecdsa_p256_sha256_p1363() {
    run_wycheproof("ecdsa_secp256r1_sha256_p1363_test.json", |public, group| {
        let point = hex(
            public["uncompressed"].as_str().expect("uncompressed"),
            group,
        );
        assert_eq!(point.len(), 65, "{group}: uncompressed point length");
        assert_eq!(point[0], 0x04, "{group}: uncompressed point tag");
        VerificationKey::p256(&point[1..33], &point[33..], None).ok()
    });
}

// ---------------------------------------------------------------- RFC JWS examples

#[test]
fn rfc8037_ed25519_jws() {
    let name = "rfc8037-ed25519-jws";
    let doc = load("rfc8037-ed25519-jws.json");

    let jwk: Jwk = serde_json::from_value(doc["public_jwk"].clone()).expect(name);
    let key = jwk
        .to_key()
        .unwrap_or_else(|e| panic!("{name}: JWK refused: {e}"))
        .unwrap_or_else(|| panic!("{name}: JWK skipped as unusable"));
    assert_eq!(key.alg(), Algorithm::EdDsa, "{name}: algorithm");
    assert_eq!(
        key.kid(),
        field(&doc, name, "jwk_thumbprint_sha256_b64url"),
        "{name}: kid is the RFC 7638 thumbprint"
    );
    assert_eq!(
        key.ed25519_bytes().map(|b| &b[..]),
        Some(&hex_field(&doc, name, "public_key_hex")[..]),
        "{name}: public key bytes"
    );

    let compact = field(&doc, name, "compact_jws");
    let jws = UntrustedJws::parse(compact).unwrap_or_else(|e| panic!("{name}: parse: {e}"));
    assert_eq!(jws.header().alg, Algorithm::EdDsa, "{name}: header alg");
    assert_eq!(jws.header().kid, None, "{name}: header kid");
    let payload = jws
        .verify_signature(&key)
        .unwrap_or_else(|e| panic!("{name}: verify: {e}"));
    assert_eq!(
        payload,
        field(&doc, name, "payload").as_bytes(),
        "{name}: payload"
    );

    // A different payload under the same signature does not verify.
    let signature = field(&doc, name, "signature_b64url");
    let forged = format!(
        "{}.{}.{signature}",
        field(&doc, name, "protected_header_b64url"),
        b64::encode("Example of Ed25519 signinG")
    );
    assert_eq!(
        UntrustedJws::parse(&forged)
            .expect(name)
            .verify_signature(&key),
        Err(VerifyError::BadSignature),
        "{name}: altered payload"
    );

    // Signing is deterministic: the private key reproduces the signature.
    let secret = hex_field(&doc, name, "private_key_hex");
    assert_eq!(
        b64::decode(doc["private_jwk"]["d"].as_str().expect("d")).ok(),
        Some(secret.clone()),
        "{name}: private_jwk.d is private_key_hex"
    );
    let signing = SigningKey::from_secret_bytes(Algorithm::EdDsa, &secret)
        .unwrap_or_else(|e| panic!("{name}: private key refused: {e}"));
    assert_eq!(signing.kid(), key.kid(), "{name}: signing key id");
    let sig = signing
        .sign(field(&doc, name, "signing_input").as_bytes())
        .expect(name);
    assert_eq!(b64::encode(sig), signature, "{name}: signature");

    // The private JWK is never accepted as a public key document.
    let private: Jwk = serde_json::from_value(doc["private_jwk"].clone()).expect(name);
    assert_eq!(
        private.to_key().err(),
        Some(KeyError::PrivatePartInPublicDocument),
        "{name}: private JWK"
    );
}

#[test]
fn rfc7515_a3_es256_jws() {
    let name = "rfc7515-a3-es256";
    let doc = load("rfc7515-a3-es256.json");

    let jwk: Jwk = serde_json::from_value(doc["public_jwk"].clone()).expect(name);
    let key = jwk
        .to_key()
        .unwrap_or_else(|e| panic!("{name}: JWK refused: {e}"))
        .unwrap_or_else(|| panic!("{name}: JWK skipped as unusable"));
    assert_eq!(key.alg(), Algorithm::Es256, "{name}: algorithm");

    let compact = field(&doc, name, "compact_jws");
    let payload = UntrustedJws::parse(compact)
        .unwrap_or_else(|e| panic!("{name}: parse: {e}"))
        .verify_signature(&key)
        .unwrap_or_else(|e| panic!("{name}: verify: {e}"));
    let expected_payload = field(&doc, name, "payload");
    assert!(
        expected_payload.contains("\r\n"),
        "{name}: payload keeps CRLF"
    );
    assert_eq!(payload, expected_payload.as_bytes(), "{name}: payload");

    // The compact signature is R ‖ S.
    let signature = b64::decode(field(&doc, name, "signature_b64url")).expect(name);
    let mut r_s = hex_field(&doc, name, "signature_r_hex");
    r_s.extend(hex_field(&doc, name, "signature_s_hex"));
    assert_eq!(signature, r_s, "{name}: signature is R||S");

    // Any one-byte change of the signature fails, at the first, a middle and the last byte.
    let signing_input = field(&doc, name, "signing_input");
    for at in [0, 31, 32, 63] {
        let mut bad = signature.clone();
        bad[at] ^= 0x01;
        let token = format!("{signing_input}.{}", b64::encode(&bad));
        assert_eq!(
            UntrustedJws::parse(&token)
                .expect(name)
                .verify_signature(&key),
            Err(VerifyError::BadSignature),
            "{name}: signature byte {at} changed"
        );
    }

    // The private scalar gives the same public key.
    let d = b64::decode(doc["jwk"]["d"].as_str().expect("d")).expect(name);
    let signing = SigningKey::from_secret_bytes(Algorithm::Es256, &d)
        .unwrap_or_else(|e| panic!("{name}: private key refused: {e}"));
    assert_eq!(signing.kid(), key.kid(), "{name}: key id from d");
    assert_eq!(
        signing.verification_key().p256_coordinates(),
        key.p256_coordinates(),
        "{name}: coordinates from d"
    );
    // A fresh (randomized) signature verifies under the published key.
    let fresh = signing.sign(signing_input.as_bytes()).expect(name);
    assert!(
        key.verify_signature(signing_input.as_bytes(), &fresh),
        "{name}: fresh signature"
    );

    let private: Jwk = serde_json::from_value(doc["jwk"].clone()).expect(name);
    assert_eq!(
        private.to_key().err(),
        Some(KeyError::PrivatePartInPublicDocument),
        "{name}: private JWK"
    );
}
