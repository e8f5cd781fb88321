//! Property tests of the token codecs: random claims survive `encode` and
//! `KeySet::verify` unchanged for every algorithm, and no single-byte change
//! or truncation of a signed token is ever accepted.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::Value;
use tessera_core::claims::REGISTERED_CLAIMS;
use tessera_core::{
    AccessClaims, Algorithm, Audience, Confirmation, CustomClaims, KeySet, NumericDate, SigningKey,
    Status, StatusListRef, Validation, b64, encode,
};

const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "api";
const ALGORITHMS: [Algorithm; 3] = [Algorithm::EdDsa, Algorithm::Es256, Algorithm::V4Public];

static KEYS: LazyLock<Vec<SigningKey>> = LazyLock::new(|| {
    ALGORITHMS
        .iter()
        .map(|&alg| SigningKey::generate(alg).expect("generate key"))
        .collect()
});

static TRUSTED: LazyLock<KeySet> =
    LazyLock::new(|| KeySet::new(KEYS.iter().map(|k| k.verification_key().clone())));

static VALIDATION: LazyLock<Validation> =
    LazyLock::new(|| Validation::new(ISSUER, [AUDIENCE]).expect("validation"));

/// Leaf and small nested JSON values for custom claims (no floats: they need
/// not survive a text round trip bit for bit).
fn custom_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        ".{0,16}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn custom_claims() -> impl Strategy<Value = CustomClaims> {
    prop::collection::btree_map(
        "[a-z][a-z0-9_]{0,15}".prop_filter("registered claim name", |name| {
            !REGISTERED_CLAIMS.contains(&name.as_str())
        }),
        custom_value(),
        0..4,
    )
    .prop_map(|map: BTreeMap<String, Value>| CustomClaims::new(map).expect("custom claims"))
}

/// The audiences: 0 to 3 random ones with `api` inserted at a random place.
fn audiences() -> impl Strategy<Value = Audience> {
    (
        prop::collection::vec("[a-z:/.]{1,20}", 0..4),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(mut others, at)| {
            let place = at.index(others.len() + 1);
            others.insert(place, AUDIENCE.to_owned());
            Audience(others)
        })
}

/// Random claims valid at the returned `now`.
fn claims_and_now() -> impl Strategy<Value = (AccessClaims, NumericDate)> {
    let identity = (
        ".{0,40}",                               // sub
        "[A-Za-z0-9_-]{1,32}",                   // jti
        "[ -~]{1,24}",                           // client_id
        proptest::option::of("[a-z:._ ]{0,40}"), // scope
        audiences(),
    );
    let times = (
        1_000_000_000i64..4_000_000_000,           // now
        -3_600i64..=30,                            // iat offset (leeway 30 s)
        -29i64..=86_400,                           // exp offset
        proptest::option::of(-3_600i64..=30),      // nbf offset
        proptest::option::of(0i64..1_000_000_000), // auth_time
    );
    let session = (
        proptest::option::of(".{0,20}"),     // sid
        proptest::option::of("[ -~]{0,20}"), // acr
        proptest::option::of(prop::collection::vec("[a-z]{1,8}", 0..4)), // amr
        proptest::option::of("[A-Za-z0-9_-]{43}"), // cnf.jkt
        proptest::option::of((any::<u64>(), "https://[a-z]{1,10}\\.test/[a-z0-9]{1,8}")), // status
        custom_claims(),
    );
    (identity, times, session).prop_map(
        |(
            (sub, jti, client_id, scope, aud),
            (now, iat, exp, nbf, auth_time),
            (sid, acr, amr, jkt, status, custom),
        )| {
            let at = |offset: i64| NumericDate::from_unix(now + offset);
            let claims = AccessClaims {
                iss: ISSUER.into(),
                sub,
                aud,
                exp: at(exp),
                iat: at(iat),
                nbf: nbf.map(at),
                jti,
                client_id,
                scope,
                sid,
                auth_time: auth_time.map(NumericDate::from_unix),
                acr,
                amr,
                cnf: jkt.map(|jkt| Confirmation { jkt }),
                status: status.map(|(idx, uri)| Status {
                    status_list: StatusListRef { idx, uri },
                }),
                custom,
            };
            (claims, NumericDate::from_unix(now))
        },
    )
}

/// A fixed valid token per algorithm, for the mutation properties.
static SIGNED: LazyLock<Vec<(String, NumericDate)>> = LazyLock::new(|| {
    let now = NumericDate::from_unix(1_750_000_000);
    let claims = AccessClaims {
        iss: ISSUER.into(),
        sub: "alice".into(),
        aud: Audience(vec![AUDIENCE.into()]),
        exp: now.plus(Duration::from_secs(300)),
        iat: now,
        nbf: Some(now),
        jti: "t-1".into(),
        client_id: "web".into(),
        scope: Some("read write".into()),
        sid: Some("s-1".into()),
        auth_time: None,
        acr: None,
        amr: Some(vec!["pwd".into()]),
        cnf: None,
        status: None,
        custom: CustomClaims::new(BTreeMap::from([("tenant".to_owned(), Value::from("t1"))]))
            .expect("custom"),
    };
    KEYS.iter()
        .map(|key| {
            let token = encode(&claims, key).expect("encode");
            assert!(
                TRUSTED.verify(&token, &VALIDATION, now).is_ok(),
                "{}: unmutated token verifies",
                key.alg()
            );
            (token, now)
        })
        .collect()
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn encode_then_verify_returns_the_claims((claims, now) in claims_and_now()) {
        for key in KEYS.iter() {
            let token = encode(&claims, key).expect("encode");
            let verified = TRUSTED.verify(&token, &VALIDATION, now);
            prop_assert_eq!(verified.as_ref(), Ok(&claims), "{}: {}", key.alg(), token);
        }
    }

    #[test]
    fn any_single_byte_change_is_rejected(
        which in 0..ALGORITHMS.len(),
        position in any::<prop::sample::Index>(),
        replacement in 0x20u8..=0x7e,
    ) {
        let (token, now) = &SIGNED[which];
        let mut bytes = token.as_bytes().to_vec();
        let at = position.index(bytes.len());
        // Always a different printable byte.
        let new = if replacement == bytes[at] {
            if replacement == 0x7e { 0x20 } else { replacement + 1 }
        } else {
            replacement
        };
        bytes[at] = new;
        let mutated = String::from_utf8(bytes).expect("printable ASCII");
        prop_assert_ne!(&mutated, token);
        let verdict = TRUSTED.verify(&mutated, &VALIDATION, *now);
        prop_assert!(
            verdict.is_err(),
            "{}: byte {} set to {:?} was accepted: {}",
            ALGORITHMS[which], at, char::from(new), mutated
        );
    }

    #[test]
    fn arbitrary_header_strings_never_panic_or_pass_unchecked(
        typ in any::<String>(),
        kid in prop_oneof![any::<String>(), Just(KEYS[0].kid().to_owned())],
    ) {
        let key = &KEYS[0];
        let (token, now) = &SIGNED[0];
        let payload = token.split('.').nth(1).expect("payload segment");
        let header = serde_json::json!({ "alg": key.alg().as_str(), "typ": typ, "kid": kid });
        let input = format!("{}.{payload}", b64::encode(header.to_string()));
        let signature = key.sign(input.as_bytes()).expect("sign");
        let token = format!("{input}.{}", b64::encode(signature));
        if TRUSTED.verify(&token, &VALIDATION, *now).is_ok() {
            let bare = typ.to_ascii_lowercase();
            let bare = bare.strip_prefix("application/").unwrap_or(&bare);
            prop_assert_eq!(bare, "at+jwt");
            prop_assert_eq!(&kid, key.kid());
        }
    }

    #[test]
    fn any_truncation_is_rejected(
        which in 0..ALGORITHMS.len(),
        cut in any::<prop::sample::Index>(),
    ) {
        let (token, now) = &SIGNED[which];
        let keep = cut.index(token.len());
        let verdict = TRUSTED.verify(&token[..keep], &VALIDATION, *now);
        prop_assert!(verdict.is_err(), "{}: prefix of {} bytes accepted", ALGORITHMS[which], keep);
    }
}
