//! The issuer against a real SQLite file, with a manual clock: rotation,
//! grace retries, reuse detection, forged tokens, policies, elevation.

mod common;

use std::time::Duration;

use std::sync::Arc;

use common::{Fixture, ISSUER, fixture, refresh_of};
use tessera_issuer::{Clock, IssuerError, OpenRequest, Policy, RequestContext};
use tessera_store::{EndReason, LimitPolicy};

#[tokio::test]
async fn rotation_advances_one_generation_per_refresh_and_tokens_verify() {
    let f = fixture("rotate", Policy::default()).await;
    let opened = f.open("alice").await;
    let sid = opened.session_id.clone().expect("sid");
    let claims = f.verify(&opened.access_token);
    assert_eq!(
        (claims.sub.as_str(), claims.sid.as_deref()),
        ("alice", Some(sid.as_str()))
    );
    let mut current = refresh_of(&opened);
    for generation in 2..=6 {
        f.clock.advance(Duration::from_secs(30));
        let next = f.refresh(&current).await.expect("refresh");
        assert_ne!(refresh_of(&next), current, "rotated");
        assert_eq!(f.verify(&next.access_token).sub, "alice");
        assert_eq!(f.session(&opened).await.generation.get(), generation);
        current = refresh_of(&next);
    }
    let kinds = f.audit_kinds(&sid).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "session.refreshed").count(),
        5,
        "{kinds:?}"
    );
}

#[tokio::test]
async fn grace_retry_returns_the_same_next_token_and_later_reuse_revokes() {
    let f = fixture("grace", Policy::default()).await;
    let opened = f.open("bob").await;
    let first = refresh_of(&opened);
    let won = f.refresh(&first).await.expect("refresh");
    f.clock.advance(Duration::from_secs(5));
    let retried = f.refresh(&first).await.expect("grace retry");
    assert_eq!(
        refresh_of(&retried),
        refresh_of(&won),
        "idempotent: the same next generation"
    );
    assert_ne!(
        retried.access_token, won.access_token,
        "a fresh access token"
    );
    assert_eq!(f.session(&opened).await.generation.get(), 2, "no branch");

    f.clock.advance(Duration::from_secs(6)); // past the 10 s grace
    assert!(matches!(
        f.refresh(&first).await,
        Err(IssuerError::InvalidGrant(_))
    ));
    let session = f.session(&opened).await;
    assert_eq!(session.revoked_reason, Some(EndReason::ReuseDetected));
    assert!(
        matches!(
            f.refresh(&refresh_of(&won)).await,
            Err(IssuerError::InvalidGrant(_))
        ),
        "family revoked"
    );
    assert!(
        f.audit_kinds(&session.id)
            .await
            .contains(&"session.reuse_detected".to_owned())
    );
}

#[tokio::test]
async fn old_generation_is_theft_and_introspection_turns_inactive() {
    let f = fixture("reuse", Policy::default()).await;
    let opened = f.open("carol").await;
    let gen1 = refresh_of(&opened);
    let gen2 = f.refresh(&gen1).await.expect("gen2");
    f.clock.advance(Duration::from_secs(1));
    let gen3 = f.refresh(&refresh_of(&gen2)).await.expect("gen3");
    let before = f
        .issuer
        .introspect(&f.backend, &gen3.access_token)
        .await
        .expect("introspect");
    assert_eq!(before["active"], true);

    assert!(
        matches!(f.refresh(&gen1).await, Err(IssuerError::InvalidGrant(_))),
        "gen 1 after gen 3"
    );
    let after = f
        .issuer
        .introspect(&f.backend, &gen3.access_token)
        .await
        .expect("introspect");
    assert_eq!(after, serde_json::json!({ "active": false }));
    let refresh_view = f
        .issuer
        .introspect(&f.backend, &refresh_of(&gen3))
        .await
        .expect("introspect");
    assert_eq!(refresh_view["active"], false);
    let events = f.store.revocations_after(0, 100).await.expect("events");
    assert!(
        events
            .iter()
            .any(|e| e.kind == "session" && Some(&e.id) == opened.session_id.as_ref()),
        "{events:?}"
    );
}

#[tokio::test]
async fn forged_foreign_and_garbage_tokens_change_nothing() {
    let f = fixture("forged", Policy::default()).await;
    let opened = f.open("dave").await;
    let token = refresh_of(&opened);
    let before = f.session(&opened).await;

    let mut flipped = token.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    // Same length and shape, but the MAC is under another secret: a foreign family.
    let foreign = tessera_core::refresh::RefreshToken {
        session: [7; 16],
        generation: 1,
    }
    .encode(&tessera_core::RefreshSecret::from_bytes([1; 32]));
    for bad in [
        flipped.as_str(),
        foreign.as_str(),
        "garbage",
        "",
        "trt_",
        &"x".repeat(5000),
    ] {
        assert!(
            matches!(f.refresh(bad).await, Err(IssuerError::InvalidGrant(_))),
            "{bad:.20}"
        );
    }
    // Another client presenting a genuine token: refused, and no theft verdict.
    let stolen = f
        .issuer
        .refresh(&f.other_spa, &token, None, &RequestContext::default())
        .await;
    assert!(matches!(stolen, Err(IssuerError::InvalidGrant(_))));
    assert_eq!(f.session(&opened).await, before, "no session changed");
    assert!(
        f.refresh(&token).await.is_ok(),
        "the genuine token still works"
    );
}

#[tokio::test]
async fn idle_timeout_ends_an_unused_session() {
    let policy = Policy {
        idle_timeout: Duration::from_secs(60),
        ..Policy::default()
    };
    let f = fixture("idle", policy).await;
    let opened = f.open("erin").await;
    f.clock.advance(Duration::from_secs(59));
    let next = f.refresh(&refresh_of(&opened)).await.expect("used in time");
    f.clock.advance(Duration::from_secs(61));
    assert!(matches!(
        f.refresh(&refresh_of(&next)).await,
        Err(IssuerError::InvalidGrant(_))
    ));
    let session = f.session(&opened).await;
    assert_eq!(session.revoked_reason, Some(EndReason::ExpiredIdle));
    assert!(
        f.audit_kinds(&session.id)
            .await
            .contains(&"session.expired_idle".to_owned())
    );
}

#[tokio::test]
async fn absolute_lifetime_is_never_extended() {
    let policy = Policy {
        idle_timeout: Duration::from_secs(60),
        absolute_lifetime: Duration::from_secs(100),
        ..Policy::default()
    };
    let f = fixture("absolute", policy).await;
    let opened = f.open("frank").await;
    let mut token = refresh_of(&opened);
    for _ in 0..2 {
        f.clock.advance(Duration::from_secs(45));
        token = refresh_of(&f.refresh(&token).await.expect("within both limits"));
    }
    let session = f.session(&opened).await;
    assert_eq!(
        session.idle_expires_at, session.absolute_expires_at,
        "idle clamped to absolute"
    );
    f.clock.advance(Duration::from_secs(11)); // 101 s after opening, used 11 s ago
    assert!(matches!(
        f.refresh(&token).await,
        Err(IssuerError::InvalidGrant(_))
    ));
    assert_eq!(
        f.session(&opened).await.revoked_reason,
        Some(EndReason::ExpiredAbsolute)
    );
}

#[tokio::test]
async fn session_limit_evicts_the_oldest() {
    let policy = Policy {
        max_per_subject: Some(2),
        limit_policy: LimitPolicy::EvictOldest,
        ..Policy::default()
    };
    let f = fixture("evict", policy).await;
    let first = f.open("gina").await;
    f.clock.advance(Duration::from_secs(1));
    let second = f.open("gina").await;
    f.clock.advance(Duration::from_secs(1));
    let third = f.open("gina").await;
    assert_eq!(
        f.session(&first).await.revoked_reason,
        Some(EndReason::Evicted)
    );
    assert!(matches!(
        f.refresh(&refresh_of(&first)).await,
        Err(IssuerError::InvalidGrant(_))
    ));
    for live in [&second, &third] {
        assert!(f.session(live).await.revoked_at.is_none());
    }
    let live = f
        .store
        .live_sessions("gina", f.clock.now(), None)
        .await
        .expect("live");
    assert_eq!(live.len(), 2);
}

#[tokio::test]
async fn session_limit_rejects_when_configured() {
    let policy = Policy {
        max_per_subject: Some(2),
        limit_policy: LimitPolicy::Reject,
        ..Policy::default()
    };
    let f = fixture("reject", policy).await;
    f.open("hana").await;
    f.open("hana").await;
    let request = OpenRequest {
        subject: "hana".into(),
        client_id: Some(f.spa.client.id.clone()),
        ..OpenRequest::default()
    };
    let third = f
        .issuer
        .open_session(&f.backend, request, &RequestContext::default())
        .await;
    assert!(matches!(third, Err(IssuerError::SessionLimit)));
    assert_eq!(
        f.store
            .live_sessions("hana", f.clock.now(), None)
            .await
            .expect("live")
            .len(),
        2
    );
}

#[tokio::test]
async fn elevate_updates_auth_time_and_acr_of_a_live_session_only() {
    let f = fixture("elevate", Policy::default()).await;
    let request = OpenRequest {
        subject: "ivan".into(),
        audience: Some(vec!["api".into()]),
        auth_time: Some(f.clock.now().unix_seconds() - 3600),
        acr: Some("pwd".into()),
        client_id: Some(f.spa.client.id.clone()),
        ..OpenRequest::default()
    };
    let opened = f
        .issuer
        .open_session(&f.backend, request, &RequestContext::default())
        .await
        .expect("open");
    let sid = opened.session_id.clone().expect("sid");
    f.clock.advance(Duration::from_secs(10));
    let step_up = tessera_issuer::ElevateRequest {
        auth_time: None,
        acr: Some("mfa".into()),
        amr: Some(vec!["otp".into()]),
    };
    let elevated = f
        .issuer
        .elevate(
            &f.backend,
            &sid,
            step_up.clone(),
            &RequestContext::default(),
        )
        .await
        .expect("elevate");
    let claims = f.verify(&elevated.access_token);
    assert_eq!(claims.acr.as_deref(), Some("mfa"));
    assert_eq!(
        claims.auth_time.map(|t| t.unix()),
        Some(f.clock.now().unix_seconds())
    );
    assert_eq!(
        elevated.refresh_token, None,
        "elevate answers an access token only: the refresh token stays with the app"
    );
    assert_eq!(f.session(&opened).await.generation.get(), 1, "no rotation");
    // Later refreshes carry the elevation.
    let refreshed = f.refresh(&refresh_of(&opened)).await.expect("refresh");
    assert_eq!(
        f.verify(&refreshed.access_token).acr.as_deref(),
        Some("mfa")
    );

    f.issuer
        .end_session(&f.backend, &sid, &RequestContext::default())
        .await
        .expect("end");
    let late = f
        .issuer
        .elevate(&f.backend, &sid, step_up, &RequestContext::default())
        .await;
    assert!(matches!(late, Err(IssuerError::SessionNotFound)));
}

#[tokio::test]
async fn a_client_policy_overrides_the_global_one_for_its_sessions() {
    use tessera_issuer::clients::{Actor, ClientSpec, Credentials};
    use tessera_store::{ClientKind, Permission};

    let f = fixture("client-policy", Policy::default()).await;
    let spec = |name: &str, policy: serde_json::Value| ClientSpec {
        name: name.into(),
        kind: ClientKind::Public,
        allowed: vec![Permission::RefreshToken],
        scopes: vec![],
        audiences: vec![],
        sessions_for: vec![],
        policy: Some(policy),
    };
    let bad = serde_json::json!({"sessions.idle_timeout": "soon"});
    let refused = f
        .issuer
        .clients()
        .register(spec("bad", bad), Actor::Cli)
        .await;
    assert!(
        matches!(refused, Err(IssuerError::InvalidRequest(m)) if m.contains("sessions.idle_timeout"))
    );

    let policy =
        serde_json::json!({"tokens.access_ttl": "1m", "sessions": {"idle_timeout": "30s"}});
    let (strict, _) = f
        .issuer
        .clients()
        .register(spec("strict", policy), Actor::Cli)
        .await
        .expect("register");
    let backend = f.backend_also_for(&[&strict.id]).await;
    let strict = f
        .issuer
        .clients()
        .authenticate(Credentials::Public { id: strict.id })
        .await
        .expect("authenticate");
    let request = OpenRequest {
        subject: "kim".into(),
        client_id: Some(strict.client.id.clone()),
        ..OpenRequest::default()
    };
    let opened = f
        .issuer
        .open_session(&backend, request, &RequestContext::default())
        .await
        .expect("open");
    assert_eq!(opened.expires_in, 60, "the client's access TTL");
    assert_eq!(
        opened.refresh_expires_in,
        Some(30),
        "the client's idle timeout"
    );
    f.clock.advance(Duration::from_secs(31));
    let late = f
        .issuer
        .refresh(
            &strict,
            &refresh_of(&opened),
            None,
            &RequestContext::default(),
        )
        .await;
    assert!(
        matches!(late, Err(IssuerError::InvalidGrant(_))),
        "idle after 30 s, not the global 14 d"
    );
}

#[tokio::test]
async fn a_client_may_take_es256_jwts_that_another_jose_library_verifies() {
    use tessera_issuer::clients::{Actor, ClientSpec, Credentials};
    use tessera_store::{ClientKind, Permission};

    let f = fixture("client-es256", Policy::default()).await;
    let spec = |name: &str, policy: serde_json::Value| ClientSpec {
        name: name.into(),
        kind: ClientKind::Public,
        allowed: vec![Permission::RefreshToken],
        scopes: vec![],
        audiences: vec!["api".into()],
        sessions_for: vec![],
        policy: Some(policy),
    };
    for bad in ["RS256", "HS256", "none", "v4.public"] {
        let refused = f
            .issuer
            .clients()
            .register(
                spec("bad", serde_json::json!({ "tokens.jwt_alg": bad })),
                Actor::Cli,
            )
            .await;
        assert!(
            matches!(&refused, Err(IssuerError::InvalidRequest(m)) if m.contains("tokens.jwt_alg")),
            "{bad}: {refused:?}"
        );
    }
    let (es, _) = f
        .issuer
        .clients()
        .register(
            spec("es", serde_json::json!({ "tokens.jwt_alg": "ES256" })),
            Actor::Cli,
        )
        .await
        .expect("register");
    let backend = f.backend_also_for(&[&es.id]).await;
    let es = f
        .issuer
        .clients()
        .authenticate(Credentials::Public { id: es.id })
        .await
        .expect("authenticate");
    let opened = f
        .issuer
        .open_session(
            &backend,
            OpenRequest {
                subject: "erin".into(),
                client_id: Some(es.client.id.clone()),
                audience: Some(vec!["api".into()]),
                ..OpenRequest::default()
            },
            &RequestContext::default(),
        )
        .await
        .expect("open");
    let refreshed = f
        .issuer
        .refresh(&es, &refresh_of(&opened), None, &RequestContext::default())
        .await
        .expect("refresh");

    let ours = tessera_core::JwkSet::from_keys(f.issuer.published_keys().iter());
    let theirs: jsonwebtoken::jwk::JwkSet =
        serde_json::from_str(&serde_json::to_string(&ours).expect("JWKS")).expect("their JWKS");
    for token in [&opened.access_token, &refreshed.access_token] {
        assert_eq!(f.verify(token).client_id, es.client.id);
        let header = jsonwebtoken::decode_header(token).expect("header");
        assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
        let kid = header.kid.expect("kid");
        let jwk = theirs.find(&kid).expect("the signing key is published");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&["api"]);
        validation.set_issuer(&[ISSUER]);
        // The fixture's clock is not the wall clock; Tessera's verifier above
        // checked the times.
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(
            token,
            &jsonwebtoken::DecodingKey::from_jwk(jwk).expect("decoding key"),
            &validation,
        )
        .expect("jsonwebtoken verifies the ES256 token from the JWKS alone");
        assert_eq!(data.claims["sub"], "erin");
    }
    // The global default stays EdDSA for everyone else.
    let other = f.open("frank").await;
    let header = jsonwebtoken::decode_header(&other.access_token).expect("header");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
}

/// A second backend (allowed to open sessions for the same SPA) and an admin.
async fn other_backend_and_admin(
    f: &Fixture,
) -> (
    Arc<tessera_issuer::clients::AuthenticatedClient>,
    Arc<tessera_issuer::clients::AuthenticatedClient>,
) {
    use tessera_issuer::clients::{Actor, ClientSpec};
    use tessera_store::{ClientKind, Permission};
    let mut made = Vec::new();
    for (name, allowed, sessions_for) in [
        (
            "backend-b",
            vec![Permission::Sessions],
            vec![f.spa.client.id.clone()],
        ),
        ("admin", vec![Permission::Admin], vec![]),
    ] {
        let (client, _) = f
            .issuer
            .clients()
            .register(
                ClientSpec {
                    name: name.into(),
                    kind: ClientKind::Confidential,
                    allowed,
                    scopes: vec![],
                    audiences: vec![],
                    sessions_for,
                    policy: None,
                },
                Actor::Cli,
            )
            .await
            .expect("register");
        made.push(
            f.issuer
                .clients()
                .get(&client.id)
                .await
                .expect("get")
                .expect("exists"),
        );
    }
    let admin = made.pop().expect("admin");
    (made.pop().expect("backend-b"), admin)
}

#[tokio::test]
async fn a_backend_manages_only_the_sessions_it_opened() {
    let f = fixture("ownership", Policy::default()).await;
    let (other, admin) = other_backend_and_admin(&f).await;
    let opened = f.open("ivy").await;
    let sid = opened.session_id.clone().expect("sid");
    let ctx = RequestContext::default();
    let step_up = || tessera_issuer::ElevateRequest {
        auth_time: None,
        acr: Some("mfa".into()),
        amr: None,
    };

    // Backend B: another backend's session is exactly an unknown one.
    assert!(matches!(
        f.issuer.managed_session(&other, &sid).await,
        Err(IssuerError::SessionNotFound)
    ));
    assert!(matches!(
        f.issuer.elevate(&other, &sid, step_up(), &ctx).await,
        Err(IssuerError::SessionNotFound)
    ));
    assert!(matches!(
        f.issuer.end_session(&other, &sid, &ctx).await,
        Err(IssuerError::SessionNotFound)
    ));
    assert!(
        f.issuer
            .managed_sessions(&other, "ivy")
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        f.issuer
            .end_subject(&other, "ivy", &ctx)
            .await
            .expect("end"),
        0
    );
    let filter = tessera_store::AuditFilter {
        session_id: Some(sid.clone()),
        limit: 100,
        ..Default::default()
    };
    assert!(
        f.issuer
            .audit_for(&other, filter.clone())
            .await
            .expect("audit")
            .is_empty()
    );
    assert!(f.session(&opened).await.is_live(f.clock.now()), "untouched");

    // Its owner and an admin see it.
    assert_eq!(
        f.issuer
            .managed_sessions(&f.backend, "ivy")
            .await
            .expect("list")
            .len(),
        1
    );
    assert_eq!(
        f.issuer
            .managed_sessions(&admin, "ivy")
            .await
            .expect("list")
            .len(),
        1
    );
    assert_eq!(
        f.issuer
            .audit_for(&f.backend, filter.clone())
            .await
            .expect("audit")
            .len(),
        1,
        "session.opened"
    );
    f.issuer
        .elevate(&admin, &sid, step_up(), &ctx)
        .await
        .expect("an admin may elevate any session");
    assert!(f.issuer.end_session(&admin, &sid, &ctx).await.expect("end"));
    let kinds = f.audit_kinds(&sid).await;
    assert_eq!(
        kinds,
        ["session.opened", "session.elevated", "session.revoked"]
    );
}

#[tokio::test]
async fn refresh_narrows_to_what_the_client_may_still_get() {
    use tessera_issuer::clients::{Actor, ClientChanges};
    let f = fixture("narrowing", Policy::default()).await;
    let opened = f.open("jo").await; // scope "read write", audience ["api"]
    let ctx = RequestContext::default();

    // An explicit narrower scope is honoured; a wider one is refused before
    // anything changes.
    let narrow = f
        .issuer
        .refresh(&f.spa, &refresh_of(&opened), Some("read"), &ctx)
        .await
        .expect("narrower scope");
    assert_eq!(narrow.scope.as_deref(), Some("read"));
    assert_eq!(
        f.verify(&narrow.access_token).scope.as_deref(),
        Some("read")
    );
    let generation = f.session(&opened).await.generation;
    for wider in ["read admin", "admin"] {
        assert!(
            matches!(
                f.issuer
                    .refresh(&f.spa, &refresh_of(&narrow), Some(wider), &ctx)
                    .await,
                Err(IssuerError::InvalidScope(_))
            ),
            "{wider}"
        );
    }
    assert_eq!(
        f.session(&opened).await.generation,
        generation,
        "refused: no rotation"
    );

    // The client loses "write": later tokens carry only "read" (RFC 6749
    // §3.3; the answer's `scope` says so).
    f.issuer
        .clients()
        .update(
            &f.spa.client.id,
            ClientChanges {
                scopes: Some(vec!["read".into()]),
                ..ClientChanges::default()
            },
            Actor::Cli,
        )
        .await
        .expect("update");
    let spa = f
        .issuer
        .clients()
        .get(&f.spa.client.id)
        .await
        .expect("get")
        .expect("spa");
    let next = f
        .issuer
        .refresh(&spa, &refresh_of(&narrow), None, &ctx)
        .await
        .expect("refresh");
    assert_eq!(next.scope.as_deref(), Some("read"));
    assert_eq!(f.verify(&next.access_token).scope.as_deref(), Some("read"));
}

#[tokio::test]
async fn a_grace_retry_is_audited_with_its_device() {
    let f = fixture("grace-audit", Policy::default()).await;
    let opened = f.open("kai").await;
    let first = refresh_of(&opened);
    f.refresh(&first).await.expect("won");
    let ctx = RequestContext {
        ip: Some("198.51.100.9".into()),
        user_agent: Some("second tab".into()),
    };
    f.issuer
        .refresh(&f.spa, &first, None, &ctx)
        .await
        .expect("grace retry");
    let sid = opened.session_id.clone().expect("sid");
    let records = f
        .store
        .audit(&tessera_store::AuditFilter {
            session_id: Some(sid),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("audit");
    let retried = records
        .iter()
        .find(|r| r.kind == "session.refresh_retried")
        .expect("a session.refresh_retried record");
    assert_eq!(retried.device.ip.as_deref(), Some("198.51.100.9"));
    assert_eq!(retried.device.user_agent.as_deref(), Some("second tab"));
}

#[test]
fn a_client_grace_is_capped_at_sixty_seconds() {
    let base = Policy::default();
    assert!(
        base.with_overrides(&serde_json::json!({"sessions.refresh_grace": "60s"}))
            .is_ok()
    );
    let err = base
        .with_overrides(&serde_json::json!({"sessions.refresh_grace": "61s"}))
        .expect_err("over the cap");
    assert_eq!(err.key, "sessions.refresh_grace");
}

#[tokio::test]
async fn an_argon2_hash_from_an_earlier_build_still_verifies_and_is_upgraded() {
    use argon2::password_hash::PasswordHasher as _;
    use tessera_issuer::clients::Credentials;
    use tessera_store::{AuditRecord, Client, ClientKind, Device, Permission};
    use zeroize::Zeroizing;

    let f = fixture("legacy-hash", Policy::default()).await;
    let secret = "tcs_secret-from-an-earlier-build";
    let legacy: String = argon2::Argon2::default()
        .hash_password_with_salt(secret.as_bytes(), &[9u8; 16])
        .expect("argon2")
        .to_string();
    let now = f.clock.now();
    let client = Client {
        id: "legacy".into(),
        name: "legacy".into(),
        kind: ClientKind::Confidential,
        secret_hash: Some(legacy.clone()),
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        allowed: vec![Permission::Introspect],
        scopes: vec![],
        audiences: vec![],
        sessions_for: vec![],
        policy: serde_json::json!({}),
        created_at: now,
        updated_at: now,
        disabled_at: None,
    };
    let created = AuditRecord {
        seq: 0,
        at: now,
        kind: "client.created".into(),
        subject: None,
        session_id: None,
        client_id: None,
        device: Device::default(),
        detail: serde_json::json!({}),
    };
    f.store
        .insert_client(&client, &created)
        .await
        .expect("insert");
    let basic = |s: &str| Credentials::Basic {
        id: "legacy".into(),
        secret: Zeroizing::new(s.to_owned()),
    };

    assert!(matches!(
        f.issuer.clients().authenticate(basic("tcs_wrong")).await,
        Err(IssuerError::InvalidClient)
    ));
    f.issuer
        .clients()
        .authenticate(basic(secret))
        .await
        .expect("the legacy hash verifies");
    let stored = f
        .store
        .client("legacy")
        .await
        .expect("read")
        .expect("client")
        .secret_hash
        .expect("hash");
    assert!(stored.starts_with("sha256:"), "upgraded in place: {stored}");
    // From now on the digest answers, for the right secret only.
    f.issuer
        .clients()
        .authenticate(basic(secret))
        .await
        .expect("the digest verifies");
    assert!(matches!(
        f.issuer.clients().authenticate(basic("tcs_wrong")).await,
        Err(IssuerError::InvalidClient)
    ));
    let records = f
        .store
        .audit(&tessera_store::AuditFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("audit");
    assert!(
        records.iter().any(|r| r.kind == "client.secret_upgraded"),
        "the upgrade is audited"
    );
}
