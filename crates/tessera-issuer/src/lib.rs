//! # tessera-issuer
//!
//! The issuing side of Tessera: trusted backends open sessions; API clients
//! trade rotating refresh tokens for new token pairs; resource servers may
//! introspect. A session is one refresh-token family:
//!
//! * every refresh rotates the token; the store's compare-and-swap on the
//!   generation lets exactly one of many racing requests advance it;
//! * the immediately previous generation, within the grace window, gets the
//!   *same* next token back (an idempotent retry, never a branch);
//! * any older generation is theft: the whole session ends, with an audit
//!   record `session.reuse_detected` and a revocation event;
//! * a token whose MAC fails is rejected before any session is read.
//!
//! Idle timeout, absolute lifetime and the concurrent-session limit are
//! [`Policy`], global with per-client overrides. Time comes from a [`Clock`].
//!
//! Not here: key rotation, status lists and the revocation feed
//! (`tessera-revocation`); the two meet only in the store.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tessera_core::{MasterKey, RefreshSecret};
use tessera_store::{Store, Timestamp};

pub mod clients;
mod clock;
pub mod dpop;
mod error;
pub mod http;
mod keys;
pub mod limits;
pub mod metrics;
mod oauth;
mod policy;
mod sessions;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::IssuerError;
pub use policy::{
    MAX_REFRESH_GRACE, Policy, PolicyError, REVOCATION_MARGIN, parse_duration, parse_jwt_alg,
};
pub use sessions::{ElevateRequest, OpenRequest, RequestContext, TokenPair};

/// Name of the sealed refresh-token MAC secret in the store.
const REFRESH_SECRET_NAME: &str = "refresh-token-mac";
/// How often the issuer rereads signing keys from the store.
const KEY_RELOAD: Duration = Duration::from_secs(5);

/// What the issuer needs to know about its deployment.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// The public base URL (`iss`).
    pub issuer: String,
    /// Global policy (clients may override parts of it).
    pub policy: Policy,
    /// Rate limits (`rate_limits.*`).
    pub rate_limits: limits::RateLimitSettings,
    /// Proxies whose `X-Forwarded-For` is believed
    /// (`http.trusted_proxies`); none by default.
    pub trusted_proxies: Vec<http::Cidr>,
    /// `dpop.require_nonce`: DPoP proofs at the token endpoint must carry
    /// a server nonce (RFC 9449 §8). Off by default.
    pub dpop_require_nonce: bool,
}

impl IssuerConfig {
    /// `issuer` with `policy`, default rate limits and no trusted proxy.
    pub fn new(issuer: impl Into<String>, policy: Policy) -> Self {
        IssuerConfig {
            issuer: issuer.into(),
            policy,
            rate_limits: limits::RateLimitSettings::default(),
            trusted_proxies: Vec::new(),
            dpop_require_nonce: false,
        }
    }
}

/// The issuer: sessions, refresh rotation, token endpoint.
pub struct Issuer {
    config: IssuerConfig,
    store: Arc<dyn Store>,
    clients: clients::ClientDirectory,
    keys: keys::SigningKeys,
    refresh_secret: RefreshSecret,
    nonce_key: tessera_core::dpop::NonceKey,
    clock: Arc<dyn Clock>,
    limits: limits::RateLimits,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// Loads the refresh-token secret (created and sealed on first start) and
    /// the signing keys; keeps rereading keys in the background.
    pub async fn new(
        config: IssuerConfig,
        store: Arc<dyn Store>,
        master: Arc<MasterKey>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, IssuerError> {
        let candidate = RefreshSecret::generate()?;
        let sealed = master.seal(REFRESH_SECRET_NAME, candidate.to_bytes().as_ref())?;
        let stored = store.secret_or_insert(REFRESH_SECRET_NAME, &sealed).await?;
        let opened = master.open(REFRESH_SECRET_NAME, &stored)?;
        let bytes: [u8; 32] = opened.as_slice().try_into().map_err(|_| {
            IssuerError::Key(tessera_core::KeyError::InvalidDocument(
                "refresh secret length".into(),
            ))
        })?;
        let keys = keys::SigningKeys::load(store.clone(), master).await?;
        let rate_limits = limits::RateLimits::new(config.rate_limits);
        let issuer = Arc::new(Issuer {
            clients: clients::ClientDirectory::new(
                store.clone(),
                config.policy.clone(),
                clock.clone(),
            ),
            config,
            store,
            keys,
            nonce_key: tessera_core::dpop::NonceKey::derive(&bytes, dpop::NONCE_LABEL),
            refresh_secret: RefreshSecret::from_bytes(bytes),
            limits: rate_limits,
            clock,
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(reload_keys(Arc::downgrade(&issuer)));
            tokio::spawn(prune_proofs(Arc::downgrade(&issuer)));
        }
        Ok(issuer)
    }

    /// The HTTP routes: `/v1/sessions...`, `/v1/audit`, `/oauth/token`,
    /// `/oauth/revoke`, `/oauth/introspect`.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        http::router(self.clone())
    }

    /// [`Issuer::router`] with its OpenAPI description.
    pub fn openapi_router(self: &Arc<Self>) -> utoipa_axum::router::OpenApiRouter {
        http::routes(self.clone())
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The clock's now.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Whether an active signing key exists for every format (for `/readyz`).
    pub fn can_sign(&self) -> bool {
        self.keys.active(tessera_core::Algorithm::EdDsa).is_some()
            && self
                .keys
                .active(tessera_core::Algorithm::V4Public)
                .is_some()
    }

    /// The client directory (lookup and authentication).
    pub fn clients(&self) -> &clients::ClientDirectory {
        &self.clients
    }

    /// Every published verification key, as last loaded from the store.
    pub fn published_keys(&self) -> Arc<tessera_core::KeySet> {
        self.keys.published()
    }

    /// Rereads signing keys now.
    pub async fn reload_keys(&self) -> Result<(), IssuerError> {
        self.keys.reload().await
    }
}

/// Deletes expired DPoP proof records every [`dpop::PRUNE_EVERY`] (every
/// instance does; the statement is idempotent).
async fn prune_proofs(weak: Weak<Issuer>) {
    loop {
        tokio::time::sleep(dpop::PRUNE_EVERY).await;
        let Some(issuer) = weak.upgrade() else { return };
        if let Err(error) = issuer.store.prune_proofs(issuer.now()).await {
            tracing::warn!(%error, "pruning DPoP proof records failed; retrying later");
        }
    }
}

/// Rereads keys whenever the store says they changed (a rotation, an
/// emergency revocation by another instance or the CLI), and every
/// [`KEY_RELOAD`] regardless.
async fn reload_keys(weak: Weak<Issuer>) {
    let mut changes = match weak.upgrade() {
        Some(issuer) => issuer.store.changes(),
        None => return,
    };
    let mut seen = changes.borrow_and_update().keys;
    loop {
        let deadline = tokio::time::sleep(KEY_RELOAD);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => break,
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let now = changes.borrow_and_update().keys;
                    if now != seen {
                        seen = now;
                        break;
                    }
                }
            }
        }
        let Some(issuer) = weak.upgrade() else { return };
        if let Err(error) = issuer.keys.reload().await {
            tracing::warn!(%error, "reloading signing keys failed; keeping the loaded ones");
        }
    }
}
