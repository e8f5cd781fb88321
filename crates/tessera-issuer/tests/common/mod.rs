//! Shared fixture: an issuer over a real SQLite file with a manual clock,
//! signing keys, a backend (confidential) and two SPAs (public clients).
#![allow(dead_code)] // each test file uses part of it

use std::sync::Arc;

use base64::Engine as _;
use tessera_core::{Algorithm, KeySet, MasterKey, NumericDate, SigningKey, Validation};
use tessera_issuer::clients::{Actor, AuthenticatedClient, ClientChanges, ClientSpec, Credentials};
use tessera_issuer::{
    Clock, Issuer, IssuerConfig, IssuerError, ManualClock, OpenRequest, Policy, RequestContext,
    TokenPair,
};
use tessera_store::sqlite::SqliteStore;
use tessera_store::{AuditFilter, ClientKind, Permission, Store, StoredKey, Timestamp};
use tessera_testkit::TempDir;

fn base64_standard(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

pub fn refresh_of(pair: &TokenPair) -> String {
    pair.refresh_token.clone().expect("refresh token")
}

pub const ISSUER: &str = "https://issuer.test";

pub struct Fixture {
    pub issuer: Arc<Issuer>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
    pub backend: Arc<AuthenticatedClient>,
    pub spa: Arc<AuthenticatedClient>,
    pub other_spa: Arc<AuthenticatedClient>,
    /// `Authorization` header value of the backend (HTTP Basic).
    pub backend_basic: String,
    _dir: TempDir,
}

fn temp_dir(name: &str) -> TempDir {
    TempDir::new(&format!("issuer-{name}"))
}

async fn seed_keys(store: &dyn Store, master: &MasterKey, now: Timestamp) {
    for alg in [Algorithm::EdDsa, Algorithm::Es256, Algorithm::V4Public] {
        let key = SigningKey::generate(alg).expect("key");
        store
            .insert_key(&StoredKey {
                kid: key.kid().to_owned(),
                alg,
                state: tessera_store::KeyState::Active,
                public: key.verification_key().public_bytes(),
                sealed_secret: master.seal_signing_key(&key).expect("seal"),
                created_at: now,
                activates_at: now,
                retired_at: None,
                expires_at: None,
            })
            .await
            .expect("insert key");
    }
}

pub async fn fixture(name: &str, policy: Policy) -> Fixture {
    let dir = temp_dir(name);
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open_path(&dir.path().join("tessera.db"))
            .await
            .expect("store"),
    );
    let clock = Arc::new(ManualClock::new(Timestamp(1_760_000_000_000)));
    let master = Arc::new(MasterKey::generate().expect("master"));
    seed_keys(store.as_ref(), &master, clock.now()).await;
    let issuer = Issuer::new(
        IssuerConfig {
            // Tests drive the issuer far faster than any real client.
            rate_limits: tessera_issuer::limits::RateLimitSettings {
                enabled: false,
                ..Default::default()
            },
            ..IssuerConfig::new(ISSUER, policy)
        },
        store.clone(),
        master,
        Arc::<ManualClock>::clone(&clock),
    )
    .await
    .expect("issuer");
    let mut spas = Vec::new();
    for name in ["spa", "other-spa"] {
        let (spa, none) = issuer
            .clients()
            .register(
                ClientSpec {
                    name: name.into(),
                    kind: ClientKind::Public,
                    allowed: vec![Permission::RefreshToken],
                    scopes: vec!["read".into(), "write".into()],
                    audiences: vec!["api".into()],
                    sessions_for: vec![],
                    policy: None,
                },
                Actor::Cli,
            )
            .await
            .expect("spa");
        assert!(none.is_none(), "public clients have no secret");
        spas.push(
            issuer
                .clients()
                .authenticate(Credentials::Public { id: spa.id })
                .await
                .expect("spa"),
        );
    }
    let other_spa = spas.pop().expect("other");
    let spa = spas.pop().expect("spa");
    let (backend, secret) = issuer
        .clients()
        .register(
            ClientSpec {
                name: "backend".into(),
                kind: ClientKind::Confidential,
                allowed: vec![Permission::Sessions, Permission::Introspect],
                scopes: vec![],
                audiences: vec![],
                sessions_for: vec![spa.client.id.clone(), other_spa.client.id.clone()],
                policy: None,
            },
            Actor::Cli,
        )
        .await
        .expect("backend");
    let secret = secret.expect("secret");
    let backend_basic = format!(
        "Basic {}",
        base64_standard(&format!("{}:{}", backend.id, secret.as_str()))
    );
    let backend = issuer
        .clients()
        .authenticate(Credentials::Basic {
            id: backend.id,
            secret,
        })
        .await
        .expect("backend authenticates");
    Fixture {
        issuer,
        store,
        clock,
        backend,
        spa,
        other_spa,
        backend_basic,
        _dir: dir,
    }
}

impl Fixture {
    pub async fn open(&self, subject: &str) -> TokenPair {
        let request = OpenRequest {
            subject: subject.into(),
            scope: Some("read write".into()),
            audience: Some(vec!["api".into()]),
            client_id: Some(self.spa.client.id.clone()),
            ..OpenRequest::default()
        };
        self.issuer
            .open_session(&self.backend, request, &RequestContext::default())
            .await
            .expect("open")
    }

    pub async fn refresh(&self, token: &str) -> Result<TokenPair, IssuerError> {
        self.issuer
            .refresh(&self.spa, token, None, &RequestContext::default())
            .await
    }

    /// The backend as it is after adding `ids` to its session allow-list.
    pub async fn backend_also_for(&self, ids: &[&str]) -> Arc<AuthenticatedClient> {
        let mut list = self.backend.client.sessions_for.clone();
        list.extend(ids.iter().map(|id| (*id).to_owned()));
        let changes = ClientChanges {
            sessions_for: Some(list),
            ..ClientChanges::default()
        };
        let id = &self.backend.client.id;
        self.issuer
            .clients()
            .update(id, changes, Actor::Cli)
            .await
            .expect("update backend");
        self.issuer
            .clients()
            .get(id)
            .await
            .expect("read backend")
            .expect("backend exists")
    }

    pub async fn session(&self, pair: &TokenPair) -> tessera_store::Session {
        let sid = pair.session_id.as_deref().expect("sid");
        self.store
            .session(sid)
            .await
            .expect("read")
            .expect("exists")
    }

    pub async fn audit_kinds(&self, sid: &str) -> Vec<String> {
        let filter = AuditFilter {
            session_id: Some(sid.into()),
            limit: 1000,
            ..AuditFilter::default()
        };
        self.store
            .audit(&filter)
            .await
            .expect("audit")
            .into_iter()
            .map(|r| r.kind.to_string())
            .collect()
    }

    pub fn verify(&self, access_token: &str) -> tessera_core::AccessClaims {
        let keys: Arc<KeySet> = self.issuer.published_keys();
        let now = NumericDate::from_unix(self.clock.now().unix_seconds());
        keys.verify(
            access_token,
            &Validation::new(ISSUER, ["api"]).expect("validation"),
            now,
        )
        .expect("access token verifies")
    }
}
