use super::*;
use crate::error::ClaimError;

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
        let json = sample().to_json(times).expect("encodable");
        assert_eq!(
            AccessClaims::from_json(&json, times),
            Ok(sample()),
            "{times:?}"
        );
    }
    let rfc = String::from_utf8(sample().to_json(TimeEncoding::Rfc3339).expect("encodable"))
        .expect("utf8");
    assert!(rfc.contains(r#""exp":"2023-11-14T22:18:20Z""#), "{rfc}");
    let jwt = String::from_utf8(sample().to_json(TimeEncoding::Numeric).expect("encodable"))
        .expect("utf8");
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
    let base = String::from_utf8(sample().to_json(TimeEncoding::Numeric).expect("encodable"))
        .expect("utf8");
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
            serde_json::from_slice(&sample().to_json(TimeEncoding::Numeric).expect("encodable"))
                .expect("json");
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
    let json = sample().to_json(TimeEncoding::Numeric).expect("encodable");
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
