//! The issuer against a real SQLite file, with a manual clock: rotation,
//! grace retries, reuse detection, forged tokens, policies, elevation.

mod common;

use std::time::Duration;

use common::{fixture, refresh_of};
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
        assert_eq!(f.session(&opened).await.generation, generation);
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
    assert_eq!(f.session(&opened).await.generation, 2, "no branch");

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
        .refresh(&f.other_spa, &token, &RequestContext::default())
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
        .live_sessions("gina", f.clock.now())
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
            .live_sessions("hana", f.clock.now())
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
        refresh_of(&elevated),
        refresh_of(&opened),
        "same session, same refresh generation"
    );
    // Later refreshes carry the elevation.
    let refreshed = f.refresh(&refresh_of(&opened)).await.expect("refresh");
    assert_eq!(
        f.verify(&refreshed.access_token).acr.as_deref(),
        Some("mfa")
    );

    f.issuer
        .end_session(&f.backend.client.id, &sid, &RequestContext::default())
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
    use tessera_issuer::clients::{Credentials, register};
    use tessera_store::{ClientKind, Permission};

    let f = fixture("client-policy", Policy::default()).await;
    let bad = serde_json::json!({"sessions.idle_timeout": "soon"});
    let refused = register(
        f.store.as_ref(),
        "bad",
        ClientKind::Public,
        &[Permission::RefreshToken],
        Some(bad),
        f.clock.now(),
    )
    .await;
    assert!(
        matches!(refused, Err(IssuerError::InvalidRequest(m)) if m.contains("sessions.idle_timeout"))
    );

    let policy =
        serde_json::json!({"tokens.access_ttl": "1m", "sessions": {"idle_timeout": "30s"}});
    let (strict, _) = register(
        f.store.as_ref(),
        "strict",
        ClientKind::Public,
        &[Permission::RefreshToken],
        Some(policy),
        f.clock.now(),
    )
    .await
    .expect("register");
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
        .open_session(&f.backend, request, &RequestContext::default())
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
        .refresh(&strict, &refresh_of(&opened), &RequestContext::default())
        .await;
    assert!(
        matches!(late, Err(IssuerError::InvalidGrant(_))),
        "idle after 30 s, not the global 14 d"
    );
}
