//! Token Status Lists: the list a token names is fetched from under the
//! issuer's prefix, verified with its keys, cached for its `ttl`.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use tessera_core::statuslist::{STATUS_LIST_MEDIA_TYPE, StatusList, verify_status_list};
use tessera_core::{AccessClaims, NumericDate, RevokedBy, VerifyError};

use super::{Mode, RevocationOptions, Revocations};
use crate::remote::{FetchError, RemoteKeys};

pub(super) struct CachedList {
    list: StatusList,
    fetched: NumericDate,
    /// The list's own `iat`: an older list never replaces it.
    iat: i64,
    ttl: Duration,
}

impl CachedList {
    fn age(&self, now: NumericDate) -> Duration {
        now.since(self.fetched)
    }
}

/// Status-list mode: where lists may come from and what is cached.
pub(super) struct Lists {
    pub(super) prefix: String,
    keys: Weak<RemoteKeys>,
    cache: RwLock<HashMap<String, Arc<CachedList>>>,
    /// When a fetch of each list last failed.
    failed: RwLock<HashMap<String, NumericDate>>,
    fetch_lock: tokio::sync::Mutex<()>,
}

/// Most lists whose last failure is remembered.
const MAX_FAILED_LISTS: usize = 1024;

impl Revocations {
    /// Checks tokens against the Token Status Lists they reference, which
    /// must live under `prefix` (the issuer's `status_list_uri_prefix`) and
    /// be signed by one of `keys`. Needs a Tokio runtime.
    pub fn status_lists(
        prefix: &str,
        keys: &Arc<RemoteKeys>,
        options: RevocationOptions,
    ) -> Result<Arc<Self>, FetchError> {
        let this = Arc::new(Self::new(
            Mode::Lists(Lists {
                prefix: prefix.to_owned(),
                keys: Arc::downgrade(keys),
                cache: RwLock::default(),
                failed: RwLock::default(),
                fetch_lock: tokio::sync::Mutex::new(()),
            }),
            Some(keys),
            options,
        )?);
        tokio::spawn(refresh_lists(Arc::downgrade(&this)));
        Ok(this)
    }

    pub(super) fn check_list(
        &self,
        lists: &Lists,
        claims: &AccessClaims,
        now: NumericDate,
    ) -> Result<(), VerifyError> {
        // A token without a status reference (a client-credentials token) has
        // no session to revoke.
        let Some(status) = &claims.status else {
            return Ok(());
        };
        let reference = &status.status_list;
        let cached = lists
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(reference.uri.as_str())
            .cloned();
        let fresh_for = |list: &CachedList| list.ttl + self.options.max_staleness;
        match cached {
            Some(list) if list.age(now) <= fresh_for(&list) => {
                let bit = usize::try_from(reference.idx)
                    .ok()
                    .and_then(|idx| list.list.get(idx));
                match bit {
                    Some(false) => Ok(()),
                    Some(true) => Err(VerifyError::Revoked(RevokedBy::StatusList)),
                    // Past the end: the issuer never publishes a list shorter
                    // than its indices, so this list is older than the token.
                    None => self.unknown_status(),
                }
            }
            _ => self.unknown_status(),
        }
    }

    fn unknown_status(&self) -> Result<(), VerifyError> {
        if self.options.fail_open {
            tracing::warn!("status list unavailable; accepting the token (fail_open)");
            Ok(())
        } else {
            Err(VerifyError::RevocationStale { age_secs: None })
        }
    }

    /// Status-list mode: makes sure the list `claims` reference is cached and
    /// current, fetching it now if not. Feed mode: nothing to do.
    pub async fn prepare(&self, claims: &AccessClaims) {
        let Mode::Lists(lists) = &self.mode else {
            return;
        };
        let Some(status) = &claims.status else { return };
        let uri = status.status_list.uri.as_str();
        let idx = usize::try_from(status.status_list.idx).ok();
        let now = self.clock.date();
        let usable = lists
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(uri)
            .is_some_and(|l| l.age(now) < l.ttl && idx.and_then(|i| l.list.get(i)).is_some());
        // While the issuer is failing, answer from what is held (or fail
        // closed) at once instead of making every request wait a timeout.
        let failed_recently = lists
            .failed
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(uri)
            .is_some_and(|at| {
                // `now` is whole seconds; round the backoff up.
                let backoff = self.options.failure_backoff.as_millis().div_ceil(1000);
                u128::from(now.since(*at).as_secs()) < backoff
            });
        if usable || failed_recently {
            return;
        }
        match self.fetch_list(lists, uri).await {
            Ok(()) => {
                lists
                    .failed
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(uri);
            }
            Err(error) => {
                tracing::warn!(%error, uri, "status list fetch failed");
                let mut failed = lists.failed.write().unwrap_or_else(PoisonError::into_inner);
                if failed.len() >= MAX_FAILED_LISTS {
                    failed.clear();
                }
                failed.insert(uri.to_owned(), now);
            }
        }
    }

    async fn fetch_list(&self, lists: &Lists, uri: &str) -> Result<(), FetchError> {
        let bad = |reason: String| FetchError::Document {
            url: uri.to_owned(),
            reason,
        };
        // Only the issuer's own lists: a token cannot make us fetch elsewhere.
        if !uri.starts_with(&lists.prefix) || uri[lists.prefix.len()..].contains(['/', '?', '#']) {
            return Err(bad("not under the issuer's status_list_uri_prefix".into()));
        }
        crate::remote::check_url(uri, self.options.allow_insecure_http)?;
        let asked_at = self.clock.date();
        let _guard = lists.fetch_lock.lock().await;
        // Another request may have fetched it while this one waited.
        if lists
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(uri)
            .is_some_and(|l| l.fetched >= asked_at && l.age(asked_at) < l.ttl)
        {
            return Ok(());
        }
        let response = self
            .http
            .get(uri)
            .header(reqwest::header::ACCEPT, STATUS_LIST_MEDIA_TYPE)
            .send()
            .await
            .map_err(|source| FetchError::Http {
                url: uri.to_owned(),
                source,
            })?;
        crate::remote::check_final_url(uri, &response)?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(FetchError::Status {
                url: uri.to_owned(),
                status,
            });
        }
        let body =
            crate::remote::read_capped(uri, response, self.options.max_response_bytes).await?;
        let body = String::from_utf8(body).map_err(|_| bad("not UTF-8".into()))?;
        let keys = lists.keys.upgrade();
        let now = self.clock.date();
        let (list, info) = verify_status_list(
            body.trim(),
            uri,
            now.unix(),
            self.options.max_status_list_bytes,
            |kid| keys.as_ref().and_then(|k| k.get(kid)).map(|k| (*k).clone()),
        )
        .map_err(|e| bad(e.to_string()))?;
        let ttl = Duration::from_secs(info.ttl.unwrap_or(60).clamp(1, 86_400));
        let mut cache = lists.cache.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = cache.get(uri)
            && held.iat > info.iat
        {
            // A replayed (or stale cached) older list would un-revoke sessions.
            return Err(bad(format!(
                "issued at {}, before the list held (issued at {})",
                info.iat, held.iat
            )));
        }
        cache.insert(
            uri.to_owned(),
            Arc::new(CachedList {
                list,
                fetched: now,
                iat: info.iat,
                ttl,
            }),
        );
        drop(cache);
        self.mark_fresh();
        Ok(())
    }
}

/// Refetches cached status lists as their `ttl` runs out.
async fn refresh_lists(weak: Weak<Revocations>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(this) = weak.upgrade() else { return };
        let Mode::Lists(lists) = &this.mode else {
            return;
        };
        let now = this.clock.date();
        let due: Vec<String> = lists
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, l)| l.age(now) >= l.ttl)
            .map(|(uri, _)| uri.clone())
            .collect();
        for uri in due {
            if let Err(error) = this.fetch_list(lists, &uri).await {
                tracing::warn!(%error, uri, "status list refresh failed; keeping the cached one");
            }
        }
    }
}
