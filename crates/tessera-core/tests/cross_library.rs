//! Interoperability with independent implementations: `jsonwebtoken` (with
//! its aws-lc-rs backend) for JWTs, `pasetors` for PASETO v4.public.
//!
//! Both libraries read the wall clock, so these tests take `now` from it too.

use std::time::Duration;

use jsonwebtoken::{DecodingKey, EncodingKey, Header};
use pasetors::claims::{Claims, ClaimsValidationRules};
use pasetors::footer::Footer;
use pasetors::keys::{AsymmetricKeyPair, AsymmetricPublicKey, AsymmetricSecretKey, Generate};
use pasetors::paserk::{FormatAsPaserk, Id};
use pasetors::version4::V4;
use pasetors::{Public, public};
use serde_json::{Value, json};
use tessera_core::claims::TimeEncoding;
use tessera_core::{
    AccessClaims, Algorithm, Audience, CustomClaims, JwkSet, KeySet, NumericDate, SigningKey,
    Validation, VerificationKey, VerifyError, encode,
};

const ISSUER: &str = "https://issuer.test";

fn wall_clock() -> NumericDate {
    tessera_core::time::Clock::date(&tessera_core::time::SystemClock)
}

fn validation() -> Validation {
    Validation::new(ISSUER, ["api"]).expect("validation")
}

fn claims_at(now: NumericDate) -> AccessClaims {
    AccessClaims {
        iss: ISSUER.into(),
        sub: "alice".into(),
        aud: Audience(vec!["api".into()]),
        exp: now.plus(Duration::from_secs(300)),
        iat: now.minus(Duration::from_secs(5)),
        nbf: Some(now.minus(Duration::from_secs(5))),
        jti: "token-1".into(),
        client_id: "web".into(),
        scope: Some("read write".into()),
        sid: Some("session-1".into()),
        auth_time: Some(now.minus(Duration::from_secs(60))),
        acr: None,
        amr: Some(vec!["pwd".into()]),
        cnf: None,
        status: None,
        custom: CustomClaims::default(),
    }
}

fn jwt_alg(alg: Algorithm) -> jsonwebtoken::Algorithm {
    match alg {
        Algorithm::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        Algorithm::Es256 => jsonwebtoken::Algorithm::ES256,
        other => panic!("{other} is not a JWS algorithm"),
    }
}

/// Every check spelled out, nothing left to defaults.
fn jwt_validation(alg: Algorithm) -> jsonwebtoken::Validation {
    let mut v = jsonwebtoken::Validation::new(jwt_alg(alg));
    v.algorithms = vec![jwt_alg(alg)];
    v.set_issuer(&[ISSUER]);
    v.set_audience(&["api"]);
    v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    v.sub = Some("alice".into());
    v.leeway = 0;
    v.reject_tokens_expiring_in_less_than = 0;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.validate_aud = true;
    v
}

/// Our published JWKS, read by jsonwebtoken.
fn their_jwks(keys: &[&VerificationKey]) -> jsonwebtoken::jwk::JwkSet {
    let ours = JwkSet::from_keys(keys.iter().copied());
    let text = serde_json::to_string(&ours).expect("serialize JWKS");
    serde_json::from_str(&text).expect("jsonwebtoken reads our JWKS")
}

#[test]
fn jsonwebtoken_verifies_our_jwts_with_our_jwks() {
    let ed = SigningKey::generate(Algorithm::EdDsa).expect("key");
    let es = SigningKey::generate(Algorithm::Es256).expect("key");
    let jwks = their_jwks(&[ed.verification_key(), es.verification_key()]);
    assert_eq!(jwks.keys.len(), 2, "both keys published");

    let now = wall_clock();
    let claims = claims_at(now);
    let expected: Value =
        serde_json::from_slice(&claims.to_json(TimeEncoding::Numeric).expect("encodable"))
            .expect("claims JSON");

    for (key, other) in [(&ed, &es), (&es, &ed)] {
        let alg = key.alg();
        let token = encode(&claims, key).expect("encode");
        let jwk = jwks
            .find(key.kid())
            .unwrap_or_else(|| panic!("{alg}: kid {} not in JWKS", key.kid()));
        let decoding = DecodingKey::from_jwk(jwk).expect("decoding key from JWK");

        let data = jsonwebtoken::decode::<Value>(&token, &decoding, &jwt_validation(alg))
            .unwrap_or_else(|e| panic!("{alg}: jsonwebtoken rejected our token: {e}"));
        assert_eq!(data.header.alg, jwt_alg(alg), "{alg}: header alg");
        assert_eq!(data.header.typ.as_deref(), Some("at+jwt"), "{alg}: typ");
        assert_eq!(data.header.kid.as_deref(), Some(key.kid()), "{alg}: kid");
        assert_eq!(data.claims, expected, "{alg}: claims");

        // Negative controls: the other key, a changed signature, another audience.
        let wrong_key = DecodingKey::from_jwk(jwks.find(other.kid()).expect("other kid"))
            .expect("decoding key");
        assert!(
            jsonwebtoken::decode::<Value>(&token, &wrong_key, &jwt_validation(alg)).is_err(),
            "{alg}: verified under the other key"
        );
        let mut tampered = token.clone().into_bytes();
        let at = tampered.len() - 10;
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        assert!(
            jsonwebtoken::decode::<Value>(&tampered, &decoding, &jwt_validation(alg)).is_err(),
            "{alg}: tampered signature accepted"
        );
        let mut elsewhere = jwt_validation(alg);
        elsewhere.set_audience(&["billing"]);
        assert!(
            jsonwebtoken::decode::<Value>(&token, &decoding, &elsewhere).is_err(),
            "{alg}: accepted for another audience"
        );
    }
}

/// PKCS#8 v1 `PrivateKeyInfo` for an Ed25519 seed (RFC 8410).
fn ed25519_pkcs8(seed: &[u8]) -> Vec<u8> {
    assert_eq!(seed.len(), 32);
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(seed);
    der
}

/// PKCS#8 `PrivateKeyInfo` for a P-256 scalar (RFC 5208 around RFC 5915).
fn p256_pkcs8(scalar: &[u8]) -> Vec<u8> {
    assert_eq!(scalar.len(), 32);
    let mut der = vec![
        0x30, 0x41, // PrivateKeyInfo, 65 bytes
        0x02, 0x01, 0x00, // version 0
        0x30, 0x13, // AlgorithmIdentifier
        0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, // id-ecPublicKey
        0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, // prime256v1
        0x04, 0x27, // privateKey OCTET STRING
        0x30, 0x25, 0x02, 0x01, 0x01, // ECPrivateKey, version 1
        0x04, 0x20, // d
    ];
    der.extend_from_slice(scalar);
    der
}

#[test]
fn we_verify_jwts_signed_by_jsonwebtoken() {
    let now = wall_clock();
    for alg in [Algorithm::EdDsa, Algorithm::Es256] {
        // Our key pair; jsonwebtoken signs with the secret half, handed over as PKCS#8.
        let ours = SigningKey::generate(alg).expect("key");
        let secret = ours.to_secret_bytes().expect("secret bytes");
        let encoding = match alg {
            Algorithm::EdDsa => EncodingKey::from_ed_der(&ed25519_pkcs8(&secret)),
            _ => EncodingKey::from_ec_der(&p256_pkcs8(&secret)),
        };
        let public = ours.verification_key().clone();

        let mut header = Header::new(jwt_alg(alg));
        header.typ = Some("at+jwt".into());
        header.kid = Some(public.kid().to_owned());
        let claims = json!({
            "iss": ISSUER,
            "sub": "bob",
            "aud": ["api", "billing"],
            "exp": now.unix() + 120,
            "iat": now.unix(),
            "jti": "their-token",
            "client_id": "cli",
            "scope": "read",
            "tenant": "t1",
        });
        let token = jsonwebtoken::encode(&header, &claims, &encoding)
            .unwrap_or_else(|e| panic!("{alg}: jsonwebtoken encode: {e}"));

        let keys = KeySet::new([public.clone()]);
        let verified = keys
            .verify(&token, &validation(), now)
            .unwrap_or_else(|e| panic!("{alg}: we rejected jsonwebtoken's token: {e:?}"));
        assert_eq!(verified.sub, "bob", "{alg}: sub");
        assert_eq!(verified.jti, "their-token", "{alg}: jti");
        assert_eq!(verified.client_id, "cli", "{alg}: client_id");
        assert_eq!(
            verified.aud,
            Audience(vec!["api".into(), "billing".into()]),
            "{alg}: aud"
        );
        assert_eq!(
            verified.exp,
            NumericDate::from_unix(now.unix() + 120),
            "{alg}: exp"
        );
        assert_eq!(
            verified.custom.get("tenant"),
            Some(&json!("t1")),
            "{alg}: custom claim"
        );

        // jsonwebtoken's default typ "JWT" is not an access token.
        header.typ = Some("JWT".into());
        let plain = jsonwebtoken::encode(&header, &claims, &encoding).expect("encode");
        assert!(
            matches!(
                keys.verify(&plain, &validation(), now),
                Err(VerifyError::Header(_))
            ),
            "{alg}: typ JWT accepted"
        );
        // Signed by another key of the same algorithm: a bad signature.
        let stranger = SigningKey::generate(alg).expect("key");
        let stranger_secret = stranger.to_secret_bytes().expect("secret bytes");
        let stranger_encoding = match alg {
            Algorithm::EdDsa => EncodingKey::from_ed_der(&ed25519_pkcs8(&stranger_secret)),
            _ => EncodingKey::from_ec_der(&p256_pkcs8(&stranger_secret)),
        };
        header.typ = Some("at+jwt".into());
        let forged = jsonwebtoken::encode(&header, &claims, &stranger_encoding).expect("encode");
        assert_eq!(
            keys.verify(&forged, &validation(), now).err(),
            Some(VerifyError::BadSignature),
            "{alg}: stranger's signature"
        );
    }
}

fn pasetors_public(key: &VerificationKey) -> AsymmetricPublicKey<V4> {
    AsymmetricPublicKey::<V4>::from(key.ed25519_bytes().expect("Ed25519 key"))
        .expect("pasetors key")
}

#[test]
fn pasetors_verifies_our_paseto() {
    let ours = SigningKey::generate(Algorithm::V4Public).expect("key");
    let now = wall_clock();
    let claims = claims_at(now);
    let token = encode(&claims, &ours).expect("encode");

    let public_key = pasetors_public(ours.verification_key());
    // pasetors computes the same k4.pid for the key as we name it by.
    let mut their_pid = String::new();
    Id::from(&public_key)
        .fmt(&mut their_pid)
        .expect("format pid");
    assert_eq!(their_pid, ours.kid(), "k4.pid");

    let untrusted =
        pasetors::token::UntrustedToken::<Public, V4>::try_from(&token).expect("pasetors parse");
    let mut footer = Footer::new();
    footer
        .parse_bytes(untrusted.untrusted_footer())
        .expect("footer is JSON");
    assert_eq!(
        footer.get_claim("kid"),
        Some(&json!(ours.kid())),
        "footer names our pid"
    );

    let mut rules = ClaimsValidationRules::new();
    rules.validate_issuer_with(ISSUER);
    rules.validate_audience_with("api");
    rules.validate_subject_with("alice");
    rules.validate_token_identifier_with("token-1");
    let trusted = public::verify(&public_key, &untrusted, &rules, Some(&footer), None)
        .unwrap_or_else(|e| panic!("pasetors rejected our token: {e:?}"));
    let their_claims = trusted.payload_claims().expect("claims");
    assert_eq!(
        their_claims.get_claim("client_id"),
        Some(&json!("web")),
        "client_id"
    );
    assert_eq!(
        their_claims.get_claim("scope"),
        Some(&json!("read write")),
        "scope"
    );

    // Negative controls: another key; an implicit assertion we never signed.
    let other = pasetors_public(
        SigningKey::generate(Algorithm::V4Public)
            .expect("key")
            .verification_key(),
    );
    assert!(
        public::verify(&other, &untrusted, &rules, Some(&footer), None).is_err(),
        "verified under another key"
    );
    assert!(
        public::verify(&public_key, &untrusted, &rules, Some(&footer), Some(b"x")).is_err(),
        "verified with an implicit assertion"
    );
}

#[test]
fn we_verify_paseto_signed_by_pasetors() {
    let pair = AsymmetricKeyPair::<V4>::generate().expect("pasetors key pair");
    let public = VerificationKey::ed25519(Algorithm::V4Public, pair.public.as_bytes(), None)
        .expect("our key from pasetors' public key");

    let mut footer = Footer::new();
    footer
        .parse_string(&json!({ "kid": public.kid() }).to_string())
        .expect("footer");
    let mut claims = Claims::new_expires_in(&Duration::from_secs(300)).expect("claims");
    claims.issuer(ISSUER).expect("iss");
    claims.subject("carol").expect("sub");
    claims.audience("api").expect("aud");
    claims.token_identifier("pasetors-1").expect("jti");
    claims
        .add_additional("client_id", "svc")
        .expect("client_id");
    claims.add_additional("scope", "admin").expect("scope");
    claims.add_additional("tenant", "t9").expect("tenant");
    let token = public::sign(&pair.secret, &claims, Some(&footer), None).expect("pasetors sign");

    let now = wall_clock();
    let keys = KeySet::new([public.clone()]);
    let verified = keys
        .verify(&token, &validation(), now)
        .unwrap_or_else(|e| panic!("we rejected pasetors' token: {e:?}"));
    assert_eq!(verified.sub, "carol", "sub");
    assert_eq!(verified.jti, "pasetors-1", "jti");
    assert_eq!(verified.client_id, "svc", "client_id");
    assert_eq!(verified.scope.as_deref(), Some("admin"), "scope");
    assert_eq!(verified.aud, Audience(vec!["api".into()]), "aud");
    assert_eq!(
        verified.exp.unix() - verified.iat.unix(),
        300,
        "exp is iat + 300 s (RFC 3339 times read)"
    );
    assert_eq!(verified.nbf, Some(verified.iat), "nbf");
    assert!(
        (verified.iat.unix() - now.unix()).abs() <= 5,
        "iat is about now"
    );
    assert_eq!(verified.custom.get("tenant"), Some(&json!("t9")), "custom");

    // The same claims signed by another pasetors key but naming our pid.
    let rogue = AsymmetricKeyPair::<V4>::generate().expect("pasetors key pair");
    let forged = public::sign(&rogue.secret, &claims, Some(&footer), None).expect("sign");
    assert_eq!(
        keys.verify(&forged, &validation(), now).err(),
        Some(VerifyError::BadSignature),
        "rogue pasetors key"
    );
    // Secret keys travel between the libraries as seed ‖ public key.
    let ours = SigningKey::from_secret_bytes(Algorithm::V4Public, &pair.secret.as_bytes()[..32])
        .expect("our key from pasetors' secret key");
    assert_eq!(ours.kid(), public.kid(), "same key id from the secret half");
    let mut both = ours.to_secret_bytes().expect("secret").to_vec();
    both.extend_from_slice(ours.verification_key().ed25519_bytes().expect("ed25519"));
    assert!(
        AsymmetricSecretKey::<V4>::from(&both).is_ok_and(|k| k == pair.secret),
        "our secret key is pasetors' secret key"
    );
}
