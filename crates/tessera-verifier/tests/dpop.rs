//! `Verifier::verify_dpop` (RFC 9449 §7) and the bearer path's refusal of
//! DPoP-bound tokens: each attack with its exact error.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::dpop::{DpopError, ProofClaims, sign_proof};
use tessera_core::time::{ManualClock, Timestamp};
use tessera_core::{
    AccessClaims, Algorithm, Audience, Confirmation, KeySet, NumericDate, SigningKey, Validation,
    encode,
};
use tessera_verifier::{Verifier, VerifyError};

const ISSUER: &str = "https://issuer.test";
const URL: &str = "https://api.test/orders";
const NOW: i64 = 1_800_000_000;

struct World {
    verifier: Verifier,
    issuer_key: SigningKey,
    clock: Arc<ManualClock>,
}

fn world() -> World {
    let issuer_key = SigningKey::generate(Algorithm::EdDsa).expect("issuer key");
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(NOW * 1000)));
    let verifier = Verifier::with_keys(
        Validation::new(ISSUER, ["api"]).expect("validation"),
        KeySet::new([issuer_key.verification_key().clone()]),
    )
    .with_clock(clock.clone());
    World {
        verifier,
        issuer_key,
        clock,
    }
}

impl World {
    /// An access token, bound to `holder` when given.
    fn token(&self, holder: Option<&SigningKey>) -> String {
        let claims = AccessClaims {
            cnf: holder.map(|key| Confirmation {
                jkt: key.verification_key().kid().to_owned(),
            }),
            ..AccessClaims::new(
                ISSUER,
                "alice",
                Audience(vec!["api".into()]),
                "app",
                "t-1",
                NumericDate::from_unix(NOW),
                Duration::from_secs(300),
            )
        };
        encode(&claims, &self.issuer_key).expect("encode")
    }
}

fn proof(key: &SigningKey, token: &str, jti: &str) -> String {
    proof_with(key, token, jti, "GET", URL, NOW)
}

fn proof_with(
    key: &SigningKey,
    token: &str,
    jti: &str,
    method: &str,
    url: &str,
    iat: i64,
) -> String {
    sign_proof(
        key,
        &ProofClaims {
            method,
            url,
            iat: NumericDate::from_unix(iat),
            jti,
            access_token: Some(token),
            nonce: None,
        },
    )
    .expect("proof")
}

#[test]
fn a_bound_token_verifies_with_its_proof_and_never_as_a_bearer_token() {
    for alg in [Algorithm::EdDsa, Algorithm::Es256] {
        let w = world();
        let holder = SigningKey::generate(alg).expect("holder");
        let token = w.token(Some(&holder));
        assert_eq!(
            w.verifier.verify(&token),
            Err(VerifyError::DpopBound),
            "{alg}"
        );
        let verified = w
            .verifier
            .verify_dpop(&token, &proof(&holder, &token, "j-1"), "GET", URL)
            .expect("verifies with a proof");
        assert_eq!(verified.claims.sub, "alice");
        // The URL is compared normalised.
        w.verifier
            .verify_dpop(
                &token,
                &proof(&holder, &token, "j-2"),
                "GET",
                "https://API.test:443/orders?page=2",
            )
            .expect("same resource");
    }
}

#[test]
fn each_attack_is_refused_with_its_reason() {
    let w = world();
    let holder = SigningKey::generate(Algorithm::EdDsa).expect("holder");
    let thief = SigningKey::generate(Algorithm::Es256).expect("thief");
    let token = w.token(Some(&holder));
    let unbound = w.token(None);
    let replayed = proof(&holder, &token, "seen");
    w.verifier
        .verify_dpop(&token, &replayed, "GET", URL)
        .expect("first use");
    let cases: Vec<(&str, String, &str, &str, String, VerifyError)> = vec![
        (
            "a replayed proof",
            token.clone(),
            "GET",
            URL,
            replayed,
            VerifyError::DpopReplay,
        ),
        (
            "a proof signed by another key",
            token.clone(),
            "GET",
            URL,
            proof(&thief, &token, "j-thief"),
            VerifyError::DpopKeyMismatch,
        ),
        (
            "the wrong method",
            token.clone(),
            "POST",
            URL,
            proof(&holder, &token, "j-m"),
            VerifyError::Dpop(DpopError::Method),
        ),
        (
            "another URL",
            token.clone(),
            "GET",
            "https://api.test/admin",
            proof(&holder, &token, "j-u"),
            VerifyError::Dpop(DpopError::Url),
        ),
        (
            "a proof made for another access token",
            token.clone(),
            "GET",
            URL,
            proof(&holder, &unbound, "j-ath"),
            VerifyError::Dpop(DpopError::AccessTokenHash),
        ),
        (
            "a stale proof",
            token.clone(),
            "GET",
            URL,
            proof_with(&holder, &token, "j-old", "GET", URL, NOW - 61),
            VerifyError::Dpop(DpopError::Time),
        ),
        (
            "a proof with a token that is not bound",
            unbound.clone(),
            "GET",
            URL,
            proof(&holder, &unbound, "j-unbound"),
            VerifyError::NotDpopBound,
        ),
        (
            "garbage for a proof",
            token.clone(),
            "GET",
            URL,
            "not.a.proof".to_owned(),
            VerifyError::Dpop(DpopError::Malformed("header encoding")),
        ),
    ];
    for (name, token, method, url, proof, want) in cases {
        assert_eq!(
            w.verifier
                .verify_dpop(&token, &proof, method, url)
                .map(|v| v.claims.sub.clone()),
            Err(want),
            "{name}"
        );
    }
    // The verifier's clock decides freshness: a minute later the first
    // proof is too old to be used, replay or not.
    w.clock.advance(Duration::from_secs(70));
    assert_eq!(
        w.verifier
            .verify_dpop(&token, &proof(&holder, &token, "late"), "GET", URL)
            .map(|v| v.claims.sub.clone()),
        Err(VerifyError::Dpop(DpopError::Time))
    );
}

/// The axum layer with DPoP enabled: `Authorization: DPoP` plus a proof for
/// this method and URL gets through; each refusal carries the RFC 9449 §7.1
/// challenge.
#[cfg(feature = "axum")]
#[tokio::test]
async fn the_axum_layer_accepts_dpop_and_challenges_with_its_scheme() {
    use axum::body::Body;
    use axum::routing::get;
    use http::{Request, StatusCode, header};
    use tessera_verifier::axum::{Authenticated, RequireToken};
    use tower::ServiceExt as _;

    let w = world();
    let holder = SigningKey::generate(Algorithm::Es256).expect("holder");
    let token = w.token(Some(&holder));
    let verifier = Arc::new(w.verifier);
    let app = axum::Router::new().route(
        "/orders",
        get(|t: Authenticated| async move { t.claims.sub.clone() })
            .layer(RequireToken::new(verifier).dpop("https://api.test")),
    );
    let call = |auth: String, proof: Option<String>| {
        let app = app.clone();
        async move {
            let mut request = Request::get("/orders");
            if !auth.is_empty() {
                request = request.header(header::AUTHORIZATION, auth);
            }
            if let Some(proof) = proof {
                request = request.header("DPoP", proof);
            }
            let response = app
                .oneshot(request.body(Body::empty()).expect("request"))
                .await
                .expect("response");
            let challenges: Vec<String> = response
                .headers()
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .map(|v| v.to_str().expect("ascii").to_owned())
                .collect();
            (response.status(), challenges)
        }
    };

    let (status, _) = call(format!("DPoP {token}"), Some(proof(&holder, &token, "ok"))).await;
    assert_eq!(status, StatusCode::OK);

    let (status, challenges) = call(format!("Bearer {token}"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        challenges[0].starts_with("Bearer") && challenges[0].contains("invalid_token"),
        "{challenges:?}"
    );

    let (status, challenges) =
        call(format!("DPoP {token}"), Some(proof(&holder, &token, "ok"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "replayed proof");
    assert!(
        challenges[0].starts_with("DPoP")
            && challenges[0].contains(r#"algs="EdDSA ES256""#)
            && challenges[0].contains(r#"error="invalid_dpop_proof""#),
        "{challenges:?}"
    );

    let (status, challenges) = call(format!("DPoP {token}"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no proof");
    assert!(
        challenges[0].contains("invalid_dpop_proof"),
        "{challenges:?}"
    );

    let post_proof = proof_with(&holder, &token, "m", "POST", URL, NOW);
    let (status, challenges) = call(format!("DPoP {token}"), Some(post_proof)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "proof for another method");
    assert!(challenges[0].contains("htm"), "{challenges:?}");

    let (status, challenges) = call(String::new(), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges.len(),
        2,
        "Bearer and DPoP offered: {challenges:?}"
    );
    assert!(challenges[1].starts_with("DPoP algs="), "{challenges:?}");
}
