//! The example resource server (`crates/tessera-verifier/examples/resource_server.rs`)
//! run as a real process against an issuer's documents on 127.0.0.1, checked
//! against the API contract (README and docs/): `GET /me` → 200 with the
//! claims, `GET /admin` needs `auth_time` within 300 s, refusals carry
//! RFC 6750 / RFC 9470 challenges.

use std::process::Stdio;
use std::time::Duration;

use tessera_core::{Algorithm, JwkSet, NumericDate, PaserkSet, SigningKey, encode};
use tessera_testkit::{claims, example_bin, serve_key_documents};
use tessera_verifier::system_now;
use tokio::io::{AsyncBufReadExt, BufReader};

struct Server {
    base: String,
    _child: tokio::process::Child,
}

async fn start(issuer: &str) -> Server {
    let mut child = tokio::process::Command::new(example_bin("resource_server"))
        .args([
            "--issuer",
            issuer,
            "--audience",
            "api",
            "--listen",
            "127.0.0.1:0",
            // Static documents: no revocation feed to follow.
            "--revocation",
            "none",
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start resource_server");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("resource_server starts within 10 s")
        .expect("read stdout")
        .expect("a line");
    let addr = line
        .strip_prefix("listening on ")
        .expect("listening line")
        .to_owned();
    Server {
        base: format!("http://{addr}"),
        _child: child,
    }
}

async fn get(url: &str, token: Option<&str>) -> (u16, String, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default();
    (status, challenge, response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_and_admin_behave_as_the_contract_says() {
    let eddsa = SigningKey::generate(Algorithm::EdDsa).expect("key");
    let paseto = SigningKey::generate(Algorithm::V4Public).expect("key");
    let jwks = JwkSet::from_keys([eddsa.verification_key()]);
    let paserk = PaserkSet {
        keys: PaserkSet::entry(paseto.verification_key(), None)
            .into_iter()
            .collect(),
    };
    let issuer = serve_key_documents(jwks, paserk, None).await;
    let server = start(&issuer).await;
    let (me, admin) = (
        format!("{}/me", server.base),
        format!("{}/admin", server.base),
    );
    let now = system_now();

    for key in [&eddsa, &paseto] {
        let token = encode(&claims(&issuer, "api", now), key).expect("encode");
        let (status, _, body) = get(&me, Some(&token)).await;
        assert_eq!(status, 200, "{:?}: {body}", key.alg());
        let body: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(body["sub"], "alice");
        assert_eq!(body["iss"], issuer.as_str());
        let (status, _, _) = get(&admin, Some(&token)).await;
        assert_eq!(status, 200, "fresh login passes step-up");
    }

    let (status, challenge, _) = get(&me, None).await;
    assert_eq!((status, challenge.as_str()), (401, "Bearer"));

    let (status, challenge, _) = get(&me, Some("garbage")).await;
    assert_eq!(status, 401);
    assert!(
        challenge.starts_with(r#"Bearer error="invalid_token""#),
        "{challenge}"
    );

    let other_aud = encode(&claims(&issuer, "billing", now), &eddsa).expect("encode");
    let (status, challenge, _) = get(&me, Some(&other_aud)).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("audience"), "{challenge}");

    let mut old_login = claims(&issuer, "api", now);
    old_login.auth_time = Some(NumericDate::from_unix(now.unix() - 600));
    let token = encode(&old_login, &eddsa).expect("encode");
    assert_eq!(
        get(&me, Some(&token)).await.0,
        200,
        "/me has no step-up requirement"
    );
    let (status, challenge, _) = get(&admin, Some(&token)).await;
    assert_eq!(status, 401);
    assert!(
        challenge.contains(r#"error="insufficient_user_authentication""#),
        "{challenge}"
    );
    assert!(challenge.contains(r#"max_age="300""#), "{challenge}");

    let forged = encode(
        &claims(&issuer, "api", now),
        &SigningKey::generate(Algorithm::EdDsa).expect("key"),
    )
    .expect("encode");
    let (status, challenge, _) = get(&me, Some(&forged)).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("no trusted key"), "{challenge}");
}
