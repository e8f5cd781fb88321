//! Keys fetched from the issuer: RFC 8414 discovery, JWKS and PASERK-set
//! documents, a `moka` cache whose entries live as long as the documents'
//! `Cache-Control: max-age` plus a bounded stale-if-error window.
//!
//! * Freshness: a background task refetches when `max-age` runs out (with
//!   `If-None-Match`, so an unchanged set costs a 304).
//! * Unknown `kid`: [`RemoteKeys::refetch_for_unknown_kid`] lets every
//!   concurrent caller share one fetch, and allows such fetches at most once
//!   per [`RemoteOptions::unknown_kid_interval`], so forged kids cannot make
//!   the verifier hammer the issuer.
//! * Issuer down: cached keys keep verifying until `max-age` +
//!   [`RemoteOptions::stale_if_error`], then expire from the cache.
//! * A key that leaves the documents (retired past its tokens, revoked) is
//!   dropped from the cache at the next successful fetch.

mod http;

pub(crate) use http::{build_client, check_final_url, check_url, client, fetch, read_capped};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use moka::Expiry;
use reqwest::header::{ACCEPT, CACHE_CONTROL, ETAG, HeaderMap, IF_NONE_MATCH};
use tessera_core::{JwkSet, PaserkSet, VerificationKey};

/// Tuning of the remote key source. The defaults suit production.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// How long cached keys keep verifying past `max-age` while the issuer
    /// cannot be reached. Default 10 minutes.
    pub stale_if_error: Duration,
    /// Least time between two refetches caused by unknown key ids. Default 5 s.
    pub unknown_kid_interval: Duration,
    /// Floor on the refresh period, whatever `max-age` says. Default 1 s.
    pub min_refresh: Duration,
    /// Refresh period when the issuer sends no `max-age`. Default 5 minutes.
    pub default_max_age: Duration,
    /// Ceiling on the refresh period. Default 1 day.
    pub max_max_age: Duration,
    /// Timeout of each HTTP request. Default 5 s.
    pub http_timeout: Duration,
    /// Largest accepted document. Default 256 KiB.
    pub max_document_bytes: usize,
    /// Accept `http://` URLs to hosts other than loopback (127.0.0.0/8,
    /// `::1`, `localhost`). Default false: keys and metadata come over
    /// HTTPS, where a network attacker cannot swap them. Unsafe; for tests
    /// and closed networks only.
    pub allow_insecure_http: bool,
    /// The HTTP client to use (a custom CA, a proxy, mTLS). It should not
    /// follow redirects (`reqwest::redirect::Policy::none()`); any answer
    /// from another URL than the one asked is refused anyway. Default: a
    /// client with `http_timeout` that follows no redirects.
    pub http_client: Option<reqwest::Client>,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            stale_if_error: Duration::from_secs(600),
            unknown_kid_interval: Duration::from_secs(5),
            min_refresh: Duration::from_secs(1),
            default_max_age: Duration::from_secs(300),
            max_max_age: Duration::from_secs(86_400),
            http_timeout: Duration::from_secs(5),
            max_document_bytes: 256 * 1024,
            allow_insecure_http: false,
            http_client: None,
        }
    }
}

/// Why keys could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The request failed (connection, timeout, TLS).
    #[error("fetching {url}: {source}")]
    Http {
        /// What was fetched.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// An event stream sent nothing, not even a heartbeat, for the read
    /// timeout.
    #[error("{url}: no data or heartbeat within the read timeout")]
    Quiet {
        /// The stream.
        url: String,
    },
    /// The HTTP client could not be built (TLS roots, settings).
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// Revocation checking was asked of a verifier whose keys are not
    /// fetched from an issuer.
    #[error("revocation checking needs keys fetched from the issuer")]
    NotRemote,
    /// The issuer's metadata lacks an endpoint this needs.
    #[error("the issuer's metadata has no {name}")]
    NoEndpoint {
        /// The metadata member, e.g. `revocation_events_endpoint`.
        name: &'static str,
    },
    /// The issuer answered with an error status.
    #[error("fetching {url}: HTTP {status}")]
    Status {
        /// What was fetched.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The document is larger than [`RemoteOptions::max_document_bytes`].
    #[error("{url}: document too large")]
    TooLarge {
        /// What was fetched.
        url: String,
    },
    /// The document is not valid metadata or a valid key set.
    #[error("{url}: {reason}")]
    Document {
        /// What was fetched.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Not an `https` URL (and not loopback), or the answer came from
    /// another URL (a redirect).
    #[error("{url}: {reason}")]
    Insecure {
        /// The URL refused.
        url: String,
        /// Why.
        reason: &'static str,
    },
    /// Discovery metadata names another issuer (RFC 8414 §3.3).
    #[error("metadata issuer {found:?} is not the configured issuer {expected:?}")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// What the metadata says.
        found: String,
    },
}

#[derive(Clone)]
struct CachedKey {
    key: Arc<VerificationKey>,
    stale_until: Instant,
}

struct UntilStale;

impl Expiry<Arc<str>, CachedKey> for UntilStale {
    fn expire_after_create(&self, _: &Arc<str>, v: &CachedKey, at: Instant) -> Option<Duration> {
        Some(v.stale_until.saturating_duration_since(at))
    }
    fn expire_after_update(
        &self,
        _: &Arc<str>,
        v: &CachedKey,
        at: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.stale_until.saturating_duration_since(at))
    }
}

#[derive(Default)]
struct Document {
    etag: Option<String>,
    keys: Vec<Arc<VerificationKey>>,
}

struct State {
    jwks: Document,
    paserk: Document,
    fresh_until: Instant,
    last_unknown_refetch: Option<Instant>,
}

/// Keys fetched from an issuer and kept fresh.
pub struct RemoteKeys {
    http: reqwest::Client,
    jwks_uri: String,
    paserk_uri: Option<String>,
    options: RemoteOptions,
    cache: moka::sync::Cache<Arc<str>, CachedKey>,
    state: Mutex<State>,
    fetch_lock: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    endpoints: Mutex<Endpoints>,
}

/// Revocation endpoints named by the issuer's metadata.
#[derive(Debug, Clone, Default)]
pub(crate) struct Endpoints {
    pub(crate) revocation_events: Option<String>,
    pub(crate) status_list_prefix: Option<String>,
}

pub(crate) enum Fetched {
    NotModified {
        max_age: Option<Duration>,
    },
    Fresh {
        body: Vec<u8>,
        etag: Option<String>,
        max_age: Option<Duration>,
    },
}

impl RemoteKeys {
    /// Reads the issuer's RFC 8414 metadata, then starts as [`RemoteKeys::start`].
    pub async fn discover(issuer: &str, options: RemoteOptions) -> Result<Arc<Self>, FetchError> {
        #[derive(serde::Deserialize)]
        struct Metadata {
            issuer: String,
            jwks_uri: String,
            #[serde(default)]
            paserk_uri: Option<String>,
            #[serde(default)]
            revocation_events_endpoint: Option<String>,
            #[serde(default)]
            status_list_uri_prefix: Option<String>,
        }
        let http = client(&options)?;
        let url = format!(
            "{}/.well-known/oauth-authorization-server",
            issuer.trim_end_matches('/')
        );
        let body = match fetch(&http, &url, None, &options).await? {
            Fetched::Fresh { body, .. } => body,
            Fetched::NotModified { .. } => {
                return Err(FetchError::Status { url, status: 304 });
            }
        };
        let meta: Metadata = serde_json::from_slice(&body).map_err(|e| FetchError::Document {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        if meta.issuer != issuer {
            return Err(FetchError::IssuerMismatch {
                expected: issuer.to_owned(),
                found: meta.issuer,
            });
        }
        let this = Self::start_with(http, meta.jwks_uri, meta.paserk_uri, options).await?;
        let mut endpoints = this
            .endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        endpoints.revocation_events = meta.revocation_events_endpoint;
        endpoints.status_list_prefix = meta.status_list_uri_prefix;
        drop(endpoints);
        Ok(this)
    }

    /// Fetches the documents now (failing if that fails) and keeps them fresh
    /// from a background task that ends when the last handle is dropped.
    pub async fn start(
        jwks_uri: String,
        paserk_uri: Option<String>,
        options: RemoteOptions,
    ) -> Result<Arc<Self>, FetchError> {
        let http = client(&options)?;
        Self::start_with(http, jwks_uri, paserk_uri, options).await
    }

    async fn start_with(
        http: reqwest::Client,
        jwks_uri: String,
        paserk_uri: Option<String>,
        options: RemoteOptions,
    ) -> Result<Arc<Self>, FetchError> {
        let this = Arc::new(RemoteKeys {
            http,
            jwks_uri,
            paserk_uri,
            cache: moka::sync::Cache::builder()
                .max_capacity(1024)
                .expire_after(UntilStale)
                .build(),
            options,
            state: Mutex::new(State {
                jwks: Document::default(),
                paserk: Document::default(),
                fresh_until: Instant::now(),
                last_unknown_refetch: None,
            }),
            fetch_lock: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            endpoints: Mutex::new(Endpoints::default()),
        });
        {
            let _guard = this.fetch_lock.lock().await;
            this.refresh_locked().await?;
        }
        tokio::spawn(refresh_loop(Arc::downgrade(&this)));
        Ok(this)
    }

    /// The cached key `kid`, if it is published and not past its stale deadline.
    pub fn get(&self, kid: &str) -> Option<Arc<VerificationKey>> {
        self.cache.get(kid).map(|cached| cached.key)
    }

    /// Counts successful fetches; changes whenever the cached set may have changed.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Fetches the key documents now, whatever the cache says (a key was
    /// revoked: drop it and pick up its replacement at once).
    pub async fn refresh_now(&self) -> Result<(), FetchError> {
        let _guard = self.fetch_lock.lock().await;
        self.refresh_locked().await
    }

    pub(crate) fn endpoints(&self) -> Endpoints {
        self.endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The JWKS URL in use.
    pub fn jwks_uri(&self) -> &str {
        &self.jwks_uri
    }

    /// Refetches because a token named an unknown key, unless another caller
    /// already refetched since `seen` (then shares its result) or the last
    /// such refetch was less than `unknown_kid_interval` ago. Returns whether
    /// trying the token again can help.
    pub async fn refetch_for_unknown_kid(&self, seen: u64) -> bool {
        let _guard = self.fetch_lock.lock().await;
        if self.generation() != seen {
            return true;
        }
        {
            let mut state = self.state();
            let now = Instant::now();
            if state
                .last_unknown_refetch
                .is_some_and(|at| now.duration_since(at) < self.options.unknown_kid_interval)
            {
                return false;
            }
            state.last_unknown_refetch = Some(now);
        }
        match self.refresh_locked().await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, "key refetch for an unknown kid failed");
                false
            }
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fetches both documents and replaces the cached set. The caller holds `fetch_lock`.
    async fn refresh_locked(&self) -> Result<(), FetchError> {
        let (jwks_etag, paserk_etag) = {
            let state = self.state();
            (state.jwks.etag.clone(), state.paserk.etag.clone())
        };
        let options = &self.options;
        let jwks = fetch(&self.http, &self.jwks_uri, jwks_etag.as_deref(), options).await?;
        let paserk = match &self.paserk_uri {
            Some(url) => Some(fetch(&self.http, url, paserk_etag.as_deref(), options).await?),
            None => None,
        };

        let mut max_age: Option<Duration> = None;
        let mut fold_age = |age: Option<Duration>| {
            if let Some(age) = age {
                max_age = Some(max_age.map_or(age, |m| m.min(age)));
            }
        };
        let jwks = match jwks {
            Fetched::NotModified { max_age } => {
                fold_age(max_age);
                None
            }
            Fetched::Fresh {
                body,
                etag,
                max_age,
            } => {
                fold_age(max_age);
                let set: JwkSet =
                    serde_json::from_slice(&body).map_err(|e| self.bad(&self.jwks_uri, e))?;
                let keys = set
                    .verification_keys()
                    .map_err(|e| self.bad(&self.jwks_uri, e))?;
                Some(Document {
                    etag,
                    keys: keys.into_iter().map(Arc::new).collect(),
                })
            }
        };
        let paserk = match (paserk, &self.paserk_uri) {
            (
                Some(Fetched::Fresh {
                    body,
                    etag,
                    max_age,
                }),
                Some(url),
            ) => {
                fold_age(max_age);
                let set: PaserkSet = serde_json::from_slice(&body).map_err(|e| self.bad(url, e))?;
                let keys = set.verification_keys().map_err(|e| self.bad(url, e))?;
                Some(Document {
                    etag,
                    keys: keys.into_iter().map(Arc::new).collect(),
                })
            }
            (Some(Fetched::NotModified { max_age }), _) => {
                fold_age(max_age);
                None
            }
            _ => None,
        };

        let max_age = max_age.unwrap_or(self.options.default_max_age).clamp(
            self.options.min_refresh,
            self.options.max_max_age.max(self.options.min_refresh),
        );
        let now = Instant::now();
        let stale_until = now + max_age + self.options.stale_if_error;
        let all: Vec<Arc<VerificationKey>> = {
            let mut state = self.state();
            if let Some(doc) = jwks {
                state.jwks = doc;
            }
            if let Some(doc) = paserk {
                state.paserk = doc;
            }
            state.fresh_until = now + max_age;
            state
                .jwks
                .keys
                .iter()
                .chain(&state.paserk.keys)
                .cloned()
                .collect()
        };
        let keep: HashSet<&str> = all.iter().map(|k| k.kid()).collect();
        for key in &all {
            self.cache.insert(
                Arc::from(key.kid()),
                CachedKey {
                    key: Arc::clone(key),
                    stale_until,
                },
            );
        }
        for (kid, _) in self.cache.iter() {
            if !keep.contains(&kid[..]) {
                self.cache.invalidate(&*kid);
            }
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        tracing::debug!(
            keys = all.len(),
            max_age_s = max_age.as_secs(),
            "verification keys refreshed"
        );
        Ok(())
    }

    fn bad(&self, url: &str, error: impl std::fmt::Display) -> FetchError {
        FetchError::Document {
            url: url.to_owned(),
            reason: error.to_string(),
        }
    }
}

impl std::fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKeys")
            .field("jwks_uri", &self.jwks_uri)
            .field("paserk_uri", &self.paserk_uri)
            .finish_non_exhaustive()
    }
}

async fn refresh_loop(weak: Weak<RemoteKeys>) {
    const MAX_BACKOFF: Duration = Duration::from_secs(30);
    let mut backoff = Duration::from_millis(500);
    loop {
        let wait = match weak.upgrade() {
            Some(this) => this
                .state()
                .fresh_until
                .saturating_duration_since(Instant::now()),
            None => return,
        };
        tokio::time::sleep(wait).await;
        let Some(this) = weak.upgrade() else { return };
        let result = {
            let _guard = this.fetch_lock.lock().await;
            // An unknown-kid refetch may have refreshed the set meanwhile.
            if this.state().fresh_until > Instant::now() {
                Ok(())
            } else {
                this.refresh_locked().await
            }
        };
        drop(this);
        match result {
            Ok(()) => backoff = Duration::from_millis(500),
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "key refresh failed; serving cached keys");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
