//! The verified-token cache: a token seen before skips its signature check.
//!
//! A resource server sees the same access token many times in its few
//! minutes of life. The cache remembers tokens that passed every check,
//! keyed by the SHA-256 of the token's bytes, so a repeat costs a digest and
//! a lookup instead of a signature verification. What can change between
//! two presentations is still checked on every hit, by the caller:
//! revocation (the feed or the status list), the key (revoked, or gone from
//! the issuer's key set), the bearer/DPoP distinction and per-route
//! requirements. An entry is never served at or after the token's `exp`.
//!
//! Bounded: [`TokenCache::new`]'s capacity, split over shards so that
//! concurrent requests rarely wait on one lock. Only tokens that verified
//! enter, so forged tokens (which cost an attacker nothing) cannot evict
//! anything; a full shard first drops its expired entries, then an
//! arbitrary one.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tessera_core::NumericDate;

use crate::VerifiedToken;

/// Entries kept by default.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// Shards (a power of two).
const SHARDS: usize = 16;

type Digest = [u8; 32];

/// The map's hash of a digest: its first eight bytes. The key is already a
/// SHA-256 output, and only verified tokens enter, so hashing it again
/// (SipHash) would buy nothing.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // `[u8; 32]` hashes as its bytes (arrays write no length).
        if let Some(first) = bytes.first_chunk::<8>() {
            self.0 = u64::from_le_bytes(*first);
        }
    }
}

type Shard = HashMap<Digest, Entry, BuildHasherDefault<DigestHasher>>;

struct Entry {
    token: VerifiedToken,
    /// The key that signed it, checked on every hit.
    kid: Arc<str>,
    exp: NumericDate,
}

/// A cache hit: the token and the key that signed it.
pub(crate) struct Hit {
    pub(crate) token: VerifiedToken,
    pub(crate) kid: Arc<str>,
}

/// A bounded map from token digests to verified tokens.
pub struct TokenCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    hits: AtomicU64,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("capacity", &(self.per_shard * SHARDS))
            .finish_non_exhaustive()
    }
}

fn digest(token: &str) -> Digest {
    let mut out = [0_u8; 32];
    out.copy_from_slice(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref(),
    );
    out
}

impl TokenCache {
    /// A cache of at most `capacity` tokens (at least one per shard).
    pub fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        TokenCache {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(HashMap::with_capacity_and_hasher(
                        per_shard.min(1024),
                        BuildHasherDefault::default(),
                    ))
                })
                .collect(),
            per_shard,
            hits: AtomicU64::new(0),
        }
    }

    /// Lookups answered from the cache so far (each still re-checked for
    /// revocation and its key by the verifier).
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    fn shard(&self, digest: &Digest) -> &Mutex<Shard> {
        &self.shards[usize::from(digest[31]) % SHARDS]
    }

    /// The cached token for these bytes, if one is cached and `now` is
    /// before its `exp`. A poisoned shard is treated as empty.
    pub(crate) fn get(&self, token: &str, now: NumericDate) -> Option<Hit> {
        let digest = digest(token);
        let mut shard = self.shard(&digest).lock().ok()?;
        let entry = shard.get(&digest)?;
        if now >= entry.exp {
            shard.remove(&digest);
            return None;
        }
        let hit = Hit {
            token: entry.token.clone(),
            kid: entry.kid.clone(),
        };
        drop(shard);
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(hit)
    }

    /// Forgets these bytes (their key is gone, or they were revoked).
    pub(crate) fn remove(&self, token: &str) {
        let digest = digest(token);
        if let Ok(mut shard) = self.shard(&digest).lock() {
            shard.remove(&digest);
        }
    }

    /// Remembers a token that passed every check at `now`, signed by `kid`.
    pub(crate) fn insert(
        &self,
        token: &str,
        kid: &str,
        verified: &VerifiedToken,
        now: NumericDate,
    ) {
        let digest = digest(token);
        let Ok(mut shard) = self.shard(&digest).lock() else {
            return;
        };
        if shard.len() >= self.per_shard && !shard.contains_key(&digest) {
            shard.retain(|_, entry| entry.exp > now);
            if shard.len() >= self.per_shard
                && let Some(victim) = shard.keys().next().copied()
            {
                shard.remove(&victim);
            }
        }
        shard.insert(
            digest,
            Entry {
                token: verified.clone(),
                kid: Arc::from(kid),
                exp: verified.claims.exp,
            },
        );
    }

    /// Tokens cached now (expired ones included until they are dropped).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().map_or(0, |s| s.len()))
            .sum()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops everything.
    pub fn clear(&self) {
        for shard in &self.shards {
            if let Ok(mut shard) = shard.lock() {
                shard.clear();
            }
        }
    }
}
