use super::*;

const URL: &str = "https://auth.example/oauth/token";
const NOW: NumericDate = NumericDate::from_unix(1_800_000_000);

fn check<'a>() -> ProofCheck<'a> {
    ProofCheck {
        method: "POST",
        url: URL,
        now: NOW,
        max_age: Duration::from_secs(60),
        leeway: Duration::from_secs(5),
        access_token: None,
        nonce: None,
    }
}

fn claims<'a>() -> ProofClaims<'a> {
    ProofClaims {
        method: "POST",
        url: URL,
        iat: NOW,
        jti: "j-1",
        access_token: None,
        nonce: None,
    }
}

fn key(alg: Algorithm) -> SigningKey {
    SigningKey::generate(alg).expect("key")
}

/// A proof with this header and payload, signed by `key`.
fn raw_proof(key: &SigningKey, header: &Value, payload: &Value) -> String {
    let mut out = b64::encode(serde_json::to_vec(header).expect("json"));
    out.push('.');
    b64::encode_into(serde_json::to_vec(payload).expect("json"), &mut out);
    let signature = key.sign(out.as_bytes()).expect("sign");
    out.push('.');
    b64::encode_into(signature, &mut out);
    out
}

fn public_jwk(key: &SigningKey) -> Value {
    let mut jwk =
        serde_json::to_value(Jwk::from_key(key.verification_key()).expect("jwk")).expect("json");
    let map = jwk.as_object_mut().expect("object");
    for member in ["kid", "alg", "use"] {
        map.remove(member);
    }
    jwk
}

fn good_payload() -> Value {
    serde_json::json!({ "jti": "j-1", "htm": "POST", "htu": URL, "iat": NOW.unix() })
}

#[test]
fn proofs_of_both_algorithms_verify_and_name_their_key() {
    for alg in [Algorithm::EdDsa, Algorithm::Es256] {
        let key = key(alg);
        let proof = sign_proof(&key, &claims()).expect("sign");
        let verified = verify_proof(&proof, &check()).expect("verifies");
        assert_eq!(
            verified.jkt,
            key.verification_key().kid(),
            "{alg}: thumbprint"
        );
        assert_eq!(verified.jti, "j-1");
        assert_eq!(verified.iat, NOW);
    }
}

#[test]
fn the_jkt_is_the_rfc_7638_thumbprint_of_rfc_8037_a() {
    // RFC 8037 Appendix A.1 (key) and A.3 (its thumbprint).
    let d = b64::decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A").expect("d");
    let key = SigningKey::from_secret_bytes(Algorithm::EdDsa, &d).expect("key");
    let proof = sign_proof(&key, &claims()).expect("sign");
    let verified = verify_proof(&proof, &check()).expect("verifies");
    assert_eq!(verified.jkt, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
}

#[test]
fn htu_is_compared_normalised() {
    for (given, want) in [
        (URL, Some(URL)),
        ("HTTPS://Auth.Example:443/oauth/token", Some(URL)),
        ("https://auth.example/oauth/token?x=1#f", Some(URL)),
        ("http://127.0.0.1:80/a", Some("http://127.0.0.1/a")),
        ("http://127.0.0.1:8080/a", Some("http://127.0.0.1:8080/a")),
        ("https://auth.example", Some("https://auth.example/")),
        ("ftp://auth.example/x", None),
        ("https://user@auth.example/x", None),
        ("/oauth/token", None),
        ("https:///x", None),
    ] {
        assert_eq!(normalize_htu(given).as_deref(), want, "{given}");
    }
    // The path stays as written: case matters there.
    assert_ne!(
        normalize_htu("https://auth.example/OAuth/token"),
        normalize_htu(URL)
    );
    let key = key(Algorithm::EdDsa);
    let proof = sign_proof(
        &key,
        &ProofClaims {
            url: "https://AUTH.example:443/oauth/token?ignored=1",
            ..claims()
        },
    )
    .expect("sign");
    verify_proof(&proof, &check()).expect("same URL once normalised");
}

#[test]
fn attacks_are_refused_with_their_reason() {
    let key = key(Algorithm::EdDsa);
    let other = self::key(Algorithm::EdDsa);
    let es = self::key(Algorithm::Es256);
    let header = |extra: Value| {
        let mut h =
            serde_json::json!({ "typ": PROOF_TYP, "alg": "EdDSA", "jwk": public_jwk(&key) });
        for (k, v) in extra.as_object().expect("object") {
            if v.is_null() {
                h.as_object_mut().expect("object").remove(k);
            } else {
                h[k] = v.clone();
            }
        }
        h
    };
    let good = raw_proof(&key, &header(serde_json::json!({})), &good_payload());
    verify_proof(&good, &check()).expect("the control verifies");

    let mut with_private = public_jwk(&key);
    with_private["d"] = "AAAA".into();
    let other_sig = {
        let proof = raw_proof(&other, &header(serde_json::json!({})), &good_payload());
        let (head, sig) = proof.rsplit_once('.').expect("sig");
        let _ = head;
        let (good_head, _) = good.rsplit_once('.').expect("sig");
        format!("{good_head}.{sig}")
    };
    let payload = |edit: Value| {
        let mut p = good_payload();
        for (k, v) in edit.as_object().expect("object") {
            if v.is_null() {
                p.as_object_mut().expect("object").remove(k);
            } else {
                p[k] = v.clone();
            }
        }
        p
    };
    let cases: Vec<(&str, String, ProofCheck<'_>, DpopError)> = vec![
        (
            "typ at+jwt",
            raw_proof(
                &key,
                &header(serde_json::json!({ "typ": "at+jwt" })),
                &good_payload(),
            ),
            check(),
            DpopError::Header("typ must be dpop+jwt"),
        ),
        (
            "no typ",
            raw_proof(
                &key,
                &header(serde_json::json!({ "typ": null })),
                &good_payload(),
            ),
            check(),
            DpopError::Header("typ must be dpop+jwt"),
        ),
        (
            "alg none",
            raw_proof(
                &key,
                &header(serde_json::json!({ "alg": "none" })),
                &good_payload(),
            ),
            check(),
            DpopError::Header("alg must be EdDSA or ES256"),
        ),
        (
            "alg HS256",
            raw_proof(
                &key,
                &header(serde_json::json!({ "alg": "HS256" })),
                &good_payload(),
            ),
            check(),
            DpopError::Header("alg must be EdDSA or ES256"),
        ),
        (
            "alg ES256 over an Ed25519 jwk",
            raw_proof(
                &key,
                &header(serde_json::json!({ "alg": "ES256" })),
                &good_payload(),
            ),
            check(),
            DpopError::Header("alg does not match the jwk"),
        ),
        (
            "no jwk",
            raw_proof(
                &key,
                &header(serde_json::json!({ "jwk": null })),
                &good_payload(),
            ),
            check(),
            DpopError::Header("jwk is required"),
        ),
        (
            "private jwk",
            raw_proof(
                &key,
                &header(serde_json::json!({ "jwk": with_private })),
                &good_payload(),
            ),
            check(),
            DpopError::Header("jwk must not carry a private key"),
        ),
        (
            "kid in the header",
            raw_proof(
                &key,
                &header(serde_json::json!({ "kid": "k" })),
                &good_payload(),
            ),
            check(),
            DpopError::Header("unsupported header parameter"),
        ),
        (
            "jku in the header",
            raw_proof(
                &key,
                &header(serde_json::json!({ "jku": "https://evil" })),
                &good_payload(),
            ),
            check(),
            DpopError::Header("unsupported header parameter"),
        ),
        (
            "signed by another key than the jwk",
            other_sig,
            check(),
            DpopError::Signature,
        ),
        (
            "the jwk of another algorithm's key",
            raw_proof(
                &key,
                &header(serde_json::json!({ "jwk": public_jwk(&es) })),
                &good_payload(),
            ),
            check(),
            DpopError::Header("alg does not match the jwk"),
        ),
        (
            "wrong htm",
            raw_proof(
                &key,
                &header(serde_json::json!({})),
                &payload(serde_json::json!({ "htm": "GET" })),
            ),
            check(),
            DpopError::Method,
        ),
        (
            "wrong htu",
            raw_proof(
                &key,
                &header(serde_json::json!({})),
                &payload(serde_json::json!({ "htu": "https://auth.example/oauth/revoke" })),
            ),
            check(),
            DpopError::Url,
        ),
        (
            "no htu",
            raw_proof(
                &key,
                &header(serde_json::json!({})),
                &payload(serde_json::json!({ "htu": null })),
            ),
            check(),
            DpopError::Url,
        ),
        (
            "stale iat",
            raw_proof(
                &key,
                &header(serde_json::json!({})),
                &payload(serde_json::json!({ "iat": NOW.unix() - 61 })),
            ),
            check(),
            DpopError::Time,
        ),
        (
            "iat in the future",
            raw_proof(
                &key,
                &header(serde_json::json!({})),
                &payload(serde_json::json!({ "iat": NOW.unix() + 6 })),
            ),
            check(),
            DpopError::Time,
        ),
        (
            "iat as text",
            raw_proof(
                &key,
                &header(serde_json::json!({})),
                &payload(serde_json::json!({ "iat": "1800000000" })),
            ),
            check(),
            DpopError::Malformed("iat is required"),
        ),
        (
            "no jti",
            raw_proof(
                &key,
                &header(serde_json::json!({})),
                &payload(serde_json::json!({ "jti": null })),
            ),
            check(),
            DpopError::Malformed("jti is required"),
        ),
        (
            "ath missing for an access token",
            good.clone(),
            ProofCheck {
                access_token: Some("at"),
                ..check()
            },
            DpopError::AccessTokenHash,
        ),
        (
            "ath of another token",
            raw_proof(
                &key,
                &header(serde_json::json!({})),
                &payload(serde_json::json!({ "ath": access_token_hash("other") })),
            ),
            ProofCheck {
                access_token: Some("at"),
                ..check()
            },
            DpopError::AccessTokenHash,
        ),
        (
            "nonce required, none sent",
            good.clone(),
            ProofCheck {
                nonce: Some("n-1"),
                ..check()
            },
            DpopError::NonceRequired,
        ),
        (
            "an old nonce",
            raw_proof(
                &key,
                &header(serde_json::json!({})),
                &payload(serde_json::json!({ "nonce": "n-0" })),
            ),
            ProofCheck {
                nonce: Some("n-1"),
                ..check()
            },
            DpopError::NonceRequired,
        ),
        (
            "four segments",
            format!("{good}.x"),
            check(),
            DpopError::Malformed("not three segments"),
        ),
        (
            "too long",
            "a".repeat(MAX_PROOF_LEN + 1),
            check(),
            DpopError::Malformed("too long"),
        ),
    ];
    for (name, proof, check, want) in cases {
        assert_eq!(
            verify_proof(&proof, &check).map(|p| p.jti),
            Err(want),
            "{name}"
        );
    }
}

#[test]
fn duplicate_members_are_refused() {
    let key = key(Algorithm::EdDsa);
    let header = serde_json::json!({ "typ": PROOF_TYP, "alg": "EdDSA", "jwk": public_jwk(&key) });
    let mut proof = b64::encode(serde_json::to_vec(&header).expect("json"));
    proof.push('.');
    let payload = format!(
        r#"{{"jti":"a","jti":"b","htm":"POST","htu":"{URL}","iat":{}}}"#,
        NOW.unix()
    );
    b64::encode_into(payload.as_bytes(), &mut proof);
    let signature = key.sign(proof.as_bytes()).expect("sign");
    proof.push('.');
    b64::encode_into(signature, &mut proof);
    assert_eq!(
        verify_proof(&proof, &check()).map(|p| p.jti),
        Err(DpopError::Malformed("payload JSON"))
    );
}

#[test]
fn nonce_and_ath_satisfied() {
    let key = key(Algorithm::Es256);
    let proof = sign_proof(
        &key,
        &ProofClaims {
            access_token: Some("the-token"),
            nonce: Some("n-1"),
            ..claims()
        },
    )
    .expect("sign");
    let verified = verify_proof(
        &proof,
        &ProofCheck {
            access_token: Some("the-token"),
            nonce: Some("n-1"),
            ..check()
        },
    )
    .expect("verifies");
    assert_eq!(verified.jkt, key.verification_key().kid());
}

#[test]
fn nonces_are_accepted_in_their_window_and_the_next_only() {
    let key = NonceKey::derive(&[7_u8; 32], "dpop-nonce");
    let nonce = key.issue(NOW);
    assert!(key.accepts(&nonce, NOW));
    assert!(
        key.accepts(&nonce, NOW.plus(NONCE_WINDOW)),
        "the next window"
    );
    assert!(
        !key.accepts(&nonce, NOW.plus(NONCE_WINDOW * 2)),
        "two windows on"
    );
    assert!(
        !key.accepts(&nonce, NOW.minus(NONCE_WINDOW)),
        "from the future"
    );
    // Another instance with the same secret agrees; another secret does not.
    assert!(NonceKey::derive(&[7_u8; 32], "dpop-nonce").accepts(&nonce, NOW));
    assert!(!NonceKey::derive(&[8_u8; 32], "dpop-nonce").accepts(&nonce, NOW));
    assert!(!NonceKey::derive(&[7_u8; 32], "other").accepts(&nonce, NOW));
    // Tampering with the window or the MAC, truncation, junk.
    let mut bytes = b64::decode(&nonce).expect("b64");
    bytes[7] ^= 1;
    assert!(!key.accepts(&b64::encode(&bytes), NOW));
    let mut bytes = b64::decode(&nonce).expect("b64");
    bytes[20] ^= 1;
    assert!(!key.accepts(&b64::encode(&bytes), NOW));
    assert!(!key.accepts(&nonce[..nonce.len() - 2], NOW));
    for junk in ["", "!!", "AAAA", &"A".repeat(4096)] {
        assert!(!key.accepts(junk, NOW), "{junk:?}");
    }
}

#[test]
fn a_verified_proof_reports_its_nonce() {
    let signer = key(Algorithm::EdDsa);
    let with = sign_proof(
        &signer,
        &ProofClaims {
            nonce: Some("n-1"),
            ..claims()
        },
    )
    .expect("proof");
    assert_eq!(
        verify_proof(&with, &check()).expect("ok").nonce.as_deref(),
        Some("n-1")
    );
    let without = sign_proof(&signer, &claims()).expect("proof");
    assert_eq!(verify_proof(&without, &check()).expect("ok").nonce, None);
}
