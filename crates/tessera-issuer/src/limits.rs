//! Rate limits: token buckets per client IP, per client id, and for failed
//! client authentications per IP. Over a limit the request is answered 429
//! with `Retry-After` before anything runs, so nothing changes.
//!
//! Memory is bounded: each limiter keeps at most [`MAX_KEYS`] buckets per
//! shard of [`SHARDS`]; a full shard first forgets buckets that have refilled
//! (an idle key is the same as a new one), then, if it is still full, starts
//! afresh, so a flood of distinct keys costs a bounded amount and can at
//! worst reset limits, never grow memory.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Shards per limiter (less lock contention on the hot path).
const SHARDS: usize = 16;
/// Most buckets per shard.
pub const MAX_KEYS: usize = 4096;

/// One limit: a sustained rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Bucket size: requests allowed at once after a quiet period.
    pub burst: f64,
}

/// The limits in force (`rate_limits.*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimitSettings {
    /// Off: nothing is counted (tests, or a gateway that limits already).
    pub enabled: bool,
    /// Requests per client IP on `/oauth/*` and `/v1/*`.
    pub per_ip: Rate,
    /// Requests per authenticated client.
    pub per_client: Rate,
    /// Failed client authentications per client IP.
    pub failed_auth: Rate,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            enabled: true,
            per_ip: Rate {
                per_second: 100.0,
                burst: 200.0,
            },
            per_client: Rate {
                per_second: 500.0,
                burst: 1000.0,
            },
            failed_auth: Rate {
                per_second: 1.0,
                burst: 20.0,
            },
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// Refused since it last had a token (the refusal is logged once).
    limited: bool,
}

/// A keyed token-bucket limiter with bounded memory.
pub struct Limiter<K> {
    rate: Rate,
    shards: Vec<Mutex<HashMap<K, Bucket>>>,
    hasher: std::collections::hash_map::RandomState,
}

impl<K> std::fmt::Debug for Limiter<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

/// What a limiter said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead.
    Allowed,
    /// Over the limit: retry after this long. `first` is true for the first
    /// refusal since the key last had a token (log that one).
    Limited {
        /// When a token will be there.
        retry_after: Duration,
        /// The first refusal of this episode.
        first: bool,
    },
}

impl<K: Hash + Eq> Limiter<K> {
    /// A limiter allowing `rate`.
    pub fn new(rate: Rate) -> Self {
        Limiter {
            rate,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> &Mutex<HashMap<K, Bucket>> {
        // `Borrow` guarantees a borrowed key hashes like its owned form.
        // SHARDS divides 256: the hash's low byte picks the shard evenly.
        let index = usize::from(self.hasher.hash_one(key).to_le_bytes()[0]) % SHARDS;
        &self.shards[index]
    }

    /// Takes one token for `key` at `now`, if there is one.
    pub fn take<Q>(&self, key: &Q, now: Instant) -> Verdict
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.spend(key, now, 1.0)
    }

    /// Whether `key` has a token at `now`, without taking it.
    pub fn peek<Q>(&self, key: &Q, now: Instant) -> Verdict
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.spend(key, now, 0.0)
    }

    fn spend<Q>(&self, key: &Q, now: Instant, cost: f64) -> Verdict
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut shard = self
            .shard(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !shard.contains_key(key) {
            // The key is owned (allocated) only when it is new.
            if shard.len() >= MAX_KEYS {
                let rate = self.rate;
                shard.retain(|_, b| refilled(b, rate, now) < rate.burst);
                if shard.len() >= MAX_KEYS {
                    shard.clear();
                }
            }
            shard.insert(
                key.to_owned(),
                Bucket {
                    tokens: self.rate.burst,
                    at: now,
                    limited: false,
                },
            );
        }
        let Some(bucket) = shard.get_mut(key) else {
            return Verdict::Allowed;
        };
        bucket.tokens = refilled(bucket, self.rate, now);
        bucket.at = now;
        // A cost of zero asks "is there a whole token?".
        if bucket.tokens >= cost.max(1.0) {
            bucket.tokens -= cost;
            bucket.limited = false;
            return Verdict::Allowed;
        }
        let missing = cost.max(1.0) - bucket.tokens;
        let first = !bucket.limited;
        bucket.limited = true;
        Verdict::Limited {
            retry_after: Duration::from_secs_f64(
                missing / self.rate.per_second.max(f64::MIN_POSITIVE),
            ),
            first,
        }
    }
}

fn refilled(bucket: &Bucket, rate: Rate, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    (bucket.tokens + elapsed * rate.per_second).min(rate.burst)
}

/// Every limiter of one issuer.
#[derive(Debug)]
pub struct RateLimits {
    settings: RateLimitSettings,
    per_ip: Limiter<IpAddr>,
    per_client: Limiter<String>,
    failed_auth: Limiter<IpAddr>,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// Requests per client IP.
    Ip,
    /// Requests per client id.
    Client,
    /// Failed authentications per client IP.
    FailedAuth,
}

impl LimitKind {
    /// Stable name (logs, audit).
    pub const fn as_str(self) -> &'static str {
        match self {
            LimitKind::Ip => "ip",
            LimitKind::Client => "client",
            LimitKind::FailedAuth => "failed_auth",
        }
    }
}

impl RateLimits {
    /// Limiters for `settings`.
    pub fn new(settings: RateLimitSettings) -> Self {
        RateLimits {
            settings,
            per_ip: Limiter::new(settings.per_ip),
            per_client: Limiter::new(settings.per_client),
            failed_auth: Limiter::new(settings.failed_auth),
        }
    }

    /// One request from `ip`; refused when it has no token left, or when it
    /// has used up its failed authentications.
    pub fn request(&self, ip: IpAddr) -> Result<(), (LimitKind, Duration)> {
        if !self.settings.enabled {
            return Ok(());
        }
        let now = Instant::now();
        let ip = limit_key(ip);
        check(LimitKind::FailedAuth, self.failed_auth.peek(&ip, now), &ip)?;
        check(LimitKind::Ip, self.per_ip.take(&ip, now), &ip)
    }

    /// One request by the authenticated client `id`.
    pub fn client(&self, id: &str) -> Result<(), (LimitKind, Duration)> {
        if !self.settings.enabled {
            return Ok(());
        }
        check(
            LimitKind::Client,
            self.per_client.take(id, Instant::now()),
            &id,
        )
    }

    /// A failed client authentication from `ip`.
    pub fn failed_auth(&self, ip: IpAddr) {
        if self.settings.enabled {
            let _ = self.failed_auth.take(&limit_key(ip), Instant::now());
        }
    }
}

/// The key an address is limited under: an IPv6 client controls at least a
/// /64, so the /64 is one key; IPv4 addresses are their own.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                // The network half: the low 64 bits cleared.
                (u128::from(v6) >> 64) << 64,
            )),
        },
        v4 => v4,
    }
}

/// The key is formatted only for the log line of a refusal: the allowed
/// path allocates nothing.
fn check(
    kind: LimitKind,
    verdict: Verdict,
    key: &dyn std::fmt::Display,
) -> Result<(), (LimitKind, Duration)> {
    match verdict {
        Verdict::Allowed => Ok(()),
        Verdict::Limited { retry_after, first } => {
            if first {
                tracing::warn!(
                    limit = kind.as_str(),
                    key = %key,
                    "rate limit reached; answering 429"
                );
            }
            Err((kind, retry_after))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let limiter = Limiter::new(Rate {
            per_second: 10.0,
            burst: 5.0,
        });
        let start = Instant::now();
        for _ in 0..5 {
            assert_eq!(limiter.take(&1u8, start), Verdict::Allowed);
        }
        let Verdict::Limited { retry_after, first } = limiter.take(&1u8, start) else {
            panic!("over the burst");
        };
        assert!(first);
        assert!(retry_after <= Duration::from_millis(100), "{retry_after:?}");
        assert!(matches!(
            limiter.take(&1u8, start),
            Verdict::Limited { first: false, .. }
        ));
        // Another key has its own bucket.
        assert_eq!(limiter.take(&2u8, start), Verdict::Allowed);
        // 100 ms later one token is back.
        let later = start + Duration::from_millis(100);
        assert_eq!(limiter.take(&1u8, later), Verdict::Allowed);
        assert!(matches!(limiter.take(&1u8, later), Verdict::Limited { .. }));
    }

    #[test]
    fn an_ipv6_64_is_one_key() {
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(limit_key(a), limit_key(b));
        assert_ne!(limit_key(a), limit_key(c));
        let v4: IpAddr = "192.0.2.1".parse().expect("ip");
        assert_eq!(limit_key(v4), v4);
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_keys() {
        let limiter = Limiter::new(Rate {
            per_second: 1.0,
            burst: 2.0,
        });
        let now = Instant::now();
        for key in 0..SHARDS * MAX_KEYS * 3 {
            let _ = limiter.take(&key, now);
        }
        let held: usize = limiter
            .shards
            .iter()
            .map(|s| s.lock().map(|m| m.len()).unwrap_or(0))
            .sum();
        assert!(held <= SHARDS * MAX_KEYS, "{held}");
    }
}
