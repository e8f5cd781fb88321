//! The issuer's routes through `Router::oneshot`, over a real SQLite file:
//! every kind of bad input gets a 4xx in the right shape, and 1,000 random
//! bodies per endpoint produce no 5xx and no change to the store.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{Fixture, fixture, refresh_of};
use tessera_issuer::Policy;
use tessera_store::AuditFilter;
use tower::ServiceExt as _;

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

async fn call(
    f: &Fixture,
    method: &str,
    uri: &str,
    auth: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, serde_json::Value, axum::http::HeaderMap) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(auth) = auth {
        request = request.header(header::AUTHORIZATION, auth);
    }
    if let Some(ct) = content_type {
        request = request.header(header::CONTENT_TYPE, ct);
    }
    let response = f
        .issuer
        .router()
        .oneshot(request.body(Body::from(body)).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json, headers)
}

fn basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

/// What must not change: audit records, revocation events, and one session.
async fn snapshot(f: &Fixture, sid: &str) -> (usize, usize, tessera_store::Session) {
    let audit = f
        .store
        .audit(&AuditFilter {
            limit: 1000,
            ..AuditFilter::default()
        })
        .await
        .expect("audit")
        .len();
    let events = f
        .store
        .revocations_after(0, 1000)
        .await
        .expect("events")
        .len();
    (
        audit,
        events,
        f.store.session(sid).await.expect("read").expect("session"),
    )
}

/// (name, method, uri, auth, content type, body, status, "error" value)
type Case<'a> = (
    &'a str,
    &'a str,
    String,
    Option<String>,
    Option<&'a str>,
    String,
    u16,
    &'a str,
);

#[tokio::test]
async fn bad_input_gets_a_4xx_in_the_right_shape() {
    let f = fixture("http-bad", Policy::default()).await;
    let spa = f.spa.client.id.clone();
    let opened = f.open("alice").await;
    let sid = opened.session_id.clone().expect("sid");
    let before = snapshot(&f, &sid).await;
    let b = f.backend_basic.clone();
    let wrong_secret = basic(&f.backend.client.id, "tcs_wrong");
    let public_basic = basic(&spa, "anything");
    let refresh = refresh_of(&opened);

    // (name, method, uri, auth, content type, body, status, "error" value)
    let cases: Vec<Case> = vec![
        (
            "token: JSON content type",
            "POST",
            "/oauth/token".into(),
            None,
            Some(JSON),
            format!(r#"{{"grant_type":"refresh_token","client_id":"{spa}"}}"#),
            415,
            "invalid_request",
        ),
        (
            "token: no content type",
            "POST",
            "/oauth/token".into(),
            None,
            None,
            format!("grant_type=refresh_token&client_id={spa}"),
            415,
            "invalid_request",
        ),
        (
            "token: unknown grant",
            "POST",
            "/oauth/token".into(),
            None,
            Some(FORM),
            format!("grant_type=password&client_id={spa}"),
            400,
            "unsupported_grant_type",
        ),
        (
            "token: missing grant_type",
            "POST",
            "/oauth/token".into(),
            None,
            Some(FORM),
            format!("client_id={spa}"),
            400,
            "invalid_request",
        ),
        (
            "token: missing refresh_token",
            "POST",
            "/oauth/token".into(),
            None,
            Some(FORM),
            format!("grant_type=refresh_token&client_id={spa}"),
            400,
            "invalid_request",
        ),
        (
            "token: no client at all",
            "POST",
            "/oauth/token".into(),
            None,
            Some(FORM),
            format!("grant_type=refresh_token&refresh_token={refresh}"),
            401,
            "invalid_client",
        ),
        (
            "token: unknown client",
            "POST",
            "/oauth/token".into(),
            None,
            Some(FORM),
            format!("grant_type=refresh_token&client_id=nobody&refresh_token={refresh}"),
            401,
            "invalid_client",
        ),
        (
            "token: public client using Basic",
            "POST",
            "/oauth/token".into(),
            Some(public_basic.clone()),
            Some(FORM),
            format!("grant_type=refresh_token&refresh_token={refresh}"),
            401,
            "invalid_client",
        ),
        (
            "token: secret in body",
            "POST",
            "/oauth/token".into(),
            None,
            Some(FORM),
            format!(
                "grant_type=client_credentials&client_id={}&client_secret=x",
                f.backend.client.id
            ),
            400,
            "invalid_request",
        ),
        (
            "token: wrong secret",
            "POST",
            "/oauth/token".into(),
            Some(wrong_secret.clone()),
            Some(FORM),
            "grant_type=client_credentials".into(),
            401,
            "invalid_client",
        ),
        (
            "token: grant not allowed",
            "POST",
            "/oauth/token".into(),
            Some(b.clone()),
            Some(FORM),
            "grant_type=client_credentials".into(),
            400,
            "unauthorized_client",
        ),
        (
            "token: duplicate parameter",
            "POST",
            "/oauth/token".into(),
            None,
            Some(FORM),
            format!("grant_type=refresh_token&grant_type=refresh_token&client_id={spa}"),
            400,
            "invalid_request",
        ),
        (
            "token: garbage refresh token",
            "POST",
            "/oauth/token".into(),
            None,
            Some(FORM),
            format!("grant_type=refresh_token&client_id={spa}&refresh_token=trt_garbage"),
            400,
            "invalid_grant",
        ),
        (
            "token: GET",
            "GET",
            "/oauth/token".into(),
            None,
            None,
            String::new(),
            405,
            "",
        ),
        (
            "introspect: no auth",
            "POST",
            "/oauth/introspect".into(),
            None,
            Some(FORM),
            "token=x".into(),
            401,
            "invalid_client",
        ),
        (
            "introspect: missing token",
            "POST",
            "/oauth/introspect".into(),
            Some(b.clone()),
            Some(FORM),
            String::new(),
            400,
            "invalid_request",
        ),
        (
            "revoke: public client using Basic",
            "POST",
            "/oauth/revoke".into(),
            Some(public_basic),
            Some(FORM),
            format!("token={refresh}"),
            401,
            "invalid_client",
        ),
        (
            "sessions: no auth",
            "POST",
            "/v1/sessions".into(),
            None,
            Some(JSON),
            r#"{"subject":"x"}"#.into(),
            401,
            "unauthorized",
        ),
        (
            "sessions: wrong secret",
            "POST",
            "/v1/sessions".into(),
            Some(wrong_secret),
            Some(JSON),
            r#"{"subject":"x"}"#.into(),
            401,
            "unauthorized",
        ),
        (
            "sessions: malformed JSON",
            "POST",
            "/v1/sessions".into(),
            Some(b.clone()),
            Some(JSON),
            r#"{"subject":"#.into(),
            400,
            "invalid_request",
        ),
        (
            "sessions: wrong content type",
            "POST",
            "/v1/sessions".into(),
            Some(b.clone()),
            Some("text/plain"),
            r#"{"subject":"x"}"#.into(),
            415,
            "unsupported_media_type",
        ),
        (
            "sessions: unknown field",
            "POST",
            "/v1/sessions".into(),
            Some(b.clone()),
            Some(JSON),
            r#"{"subject":"x","admin":true}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "sessions: missing subject",
            "POST",
            "/v1/sessions".into(),
            Some(b.clone()),
            Some(JSON),
            r#"{"scope":"read"}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "sessions: empty subject",
            "POST",
            "/v1/sessions".into(),
            Some(b.clone()),
            Some(JSON),
            r#"{"subject":""}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "sessions: bad scope",
            "POST",
            "/v1/sessions".into(),
            Some(b.clone()),
            Some(JSON),
            r#"{"subject":"x","scope":"a\"b"}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "sessions: reserved claim",
            "POST",
            "/v1/sessions".into(),
            Some(b.clone()),
            Some(JSON),
            r#"{"subject":"x","claims":{"sub":"root"}}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "sessions: bad format",
            "POST",
            "/v1/sessions".into(),
            Some(b.clone()),
            Some(JSON),
            r#"{"subject":"x","token_format":"saml"}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "sessions: future auth_time",
            "POST",
            "/v1/sessions".into(),
            Some(b.clone()),
            Some(JSON),
            r#"{"subject":"x","auth_time":99999999999}"#.into(),
            400,
            "invalid_request",
        ),
        (
            // Not on the allow-list, exactly like a client id that exists.
            "sessions: unknown client_id",
            "POST",
            "/v1/sessions".into(),
            Some(b.clone()),
            Some(JSON),
            r#"{"subject":"x","client_id":"nobody"}"#.into(),
            403,
            "forbidden",
        ),
        (
            "sessions: scope beyond the client's",
            "POST",
            "/v1/sessions".into(),
            Some(b.clone()),
            Some(JSON),
            format!(r#"{{"subject":"x","client_id":"{spa}","scope":"read admin"}}"#),
            400,
            "invalid_scope",
        ),
        (
            "sessions: audience beyond the client's",
            "POST",
            "/v1/sessions".into(),
            Some(b.clone()),
            Some(JSON),
            format!(r#"{{"subject":"x","client_id":"{spa}","audience":["billing"]}}"#),
            400,
            "invalid_target",
        ),
        (
            "sessions: list without subject",
            "GET",
            "/v1/sessions".into(),
            Some(b.clone()),
            None,
            String::new(),
            400,
            "invalid_request",
        ),
        (
            "sessions: unknown query",
            "GET",
            "/v1/sessions?subject=a&evil=1".into(),
            Some(b.clone()),
            None,
            String::new(),
            400,
            "invalid_request",
        ),
        (
            "sessions: unknown id",
            "GET",
            "/v1/sessions/0123456789abcdef0123456789abcdef".into(),
            Some(b.clone()),
            None,
            String::new(),
            404,
            "session_not_found",
        ),
        (
            "sessions: delete unknown id",
            "DELETE",
            "/v1/sessions/nope".into(),
            Some(b.clone()),
            None,
            String::new(),
            404,
            "session_not_found",
        ),
        (
            "sessions: elevate unknown id",
            "POST",
            "/v1/sessions/nope/elevate".into(),
            Some(b.clone()),
            Some(JSON),
            "{}".into(),
            404,
            "session_not_found",
        ),
        (
            "sessions: elevate malformed",
            "POST",
            format!("/v1/sessions/{sid}/elevate"),
            Some(b.clone()),
            Some(JSON),
            "[".into(),
            400,
            "invalid_request",
        ),
        (
            "sessions: spa may not open",
            "POST",
            "/v1/sessions".into(),
            Some(basic(&spa, "x")),
            Some(JSON),
            r#"{"subject":"x"}"#.into(),
            401,
            "unauthorized",
        ),
        (
            "audit: bad after",
            "GET",
            "/v1/audit?after=abc".into(),
            Some(b.clone()),
            None,
            String::new(),
            400,
            "invalid_request",
        ),
    ];
    for (name, method, uri, auth, ct, body, status, error) in cases {
        let (got, json, headers) =
            call(&f, method, &uri, auth.as_deref(), ct, body.into_bytes()).await;
        assert_eq!(got.as_u16(), status, "{name}: {json}");
        if !error.is_empty() {
            assert_eq!(json["error"], error, "{name}: {json}");
            let has_text = json
                .get("error_description")
                .or_else(|| json.get("message"))
                .is_some_and(|m| m.is_string());
            assert!(has_text, "{name}: a message says why: {json}");
        }
        if got == StatusCode::UNAUTHORIZED {
            assert!(
                headers.contains_key(header::WWW_AUTHENTICATE),
                "{name}: 401 carries a challenge"
            );
        }
    }
    assert_eq!(
        snapshot(&f, &sid).await,
        before,
        "no bad request changed the store"
    );
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        let n = u64::try_from(n).expect("a small bound");
        usize::try_from(self.next() % n).expect("below a usize bound")
    }

    fn body(&mut self) -> Vec<u8> {
        const ALPHABET: &[u8] =
            b"{}[]\":,=&%+ 0123456789abcdefghijklmnopqrstuvwxyz_-.trueflsnu\\\n\t";
        let len = self.below(300);
        (0..len)
            .map(|_| {
                if self.below(10) == 0 {
                    self.next().to_le_bytes()[0]
                } else {
                    ALPHABET[self.below(ALPHABET.len())]
                }
            })
            .collect()
    }
}

#[tokio::test]
async fn a_thousand_random_bodies_per_endpoint_never_5xx_nor_change_the_store() {
    let f = fixture("http-fuzz", Policy::default()).await;
    let spa = f.spa.client.id.clone();
    let opened = f.open("fuzzy").await;
    let sid = opened.session_id.clone().expect("sid");
    let before = snapshot(&f, &sid).await;
    let elevate = format!("/v1/sessions/{sid}/elevate");
    let endpoints: Vec<(&str, Option<String>, Vec<u8>)> = vec![
        (
            "/oauth/token",
            None,
            format!("grant_type=refresh_token&client_id={spa}&refresh_token=").into_bytes(),
        ),
        (
            "/oauth/revoke",
            None,
            format!("client_id={spa}&token=").into_bytes(),
        ),
        (
            "/oauth/introspect",
            Some(f.backend_basic.clone()),
            b"token=".to_vec(),
        ),
        (
            "/v1/sessions",
            Some(f.backend_basic.clone()),
            br#"{"subject":"#.to_vec(),
        ),
        (
            elevate.as_str(),
            Some(f.backend_basic.clone()),
            br#"{"acr":"#.to_vec(),
        ),
    ];
    let mut random = Random(0x5eed_1234_abcd_ef01);
    for (uri, auth, prefix) in &endpoints {
        for i in 0..1000 {
            let mut body = if i % 3 == 0 {
                prefix.clone()
            } else {
                Vec::new()
            };
            body.extend(random.body());
            let content_type = [Some(FORM), Some(JSON), Some("text/plain"), None][random.below(4)];
            let (status, json, _) =
                call(&f, "POST", uri, auth.as_deref(), content_type, body.clone()).await;
            // RFC 7009 §2.2: revocation answers 200 even for an invalid token;
            // RFC 7662: introspection answers 200 {"active": false}.
            let acceptable = status.is_client_error()
                || (*uri == "/oauth/revoke" && status == StatusCode::OK)
                || (*uri == "/oauth/introspect"
                    && status == StatusCode::OK
                    && json == serde_json::json!({"active": false}));
            assert!(
                acceptable,
                "{uri} #{i} answered {status} {json} to {:?}",
                String::from_utf8_lossy(&body)
            );
        }
    }
    assert_eq!(
        snapshot(&f, &sid).await,
        before,
        "random input changed nothing"
    );
}
