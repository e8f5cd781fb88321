//! DPoP at the resource server (RFC 9449 §7): the proof checks of
//! `tessera_core::dpop`, plus the one thing that needs state, a bounded
//! cache of proof ids seen, so a captured proof cannot be replayed.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tessera_core::NumericDate;

/// How old a proof's `iat` may be. Proofs are made for one request.
pub const PROOF_MAX_AGE: Duration = Duration::from_secs(60);
/// How far ahead of the verifier's clock a proof's `iat` may be.
pub const PROOF_LEEWAY: Duration = Duration::from_secs(5);
/// Most proof ids remembered at once.
pub const MAX_REMEMBERED: usize = 200_000;

/// Proof ids (`jkt` + `jti`) seen and not yet expired. Bounded: when full of
/// unexpired ids, new proofs are refused (a flood costs its sender, never a
/// replay window).
#[derive(Debug, Default)]
pub struct ReplayCache {
    seen: Mutex<HashMap<Box<str>, NumericDate>>,
}

impl ReplayCache {
    /// Records the proof `jti` of key `jkt`, usable until `expires`; false if
    /// it was seen before (a replay) or there is no room.
    pub fn first_use(&self, jkt: &str, jti: &str, now: NumericDate, expires: NumericDate) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= MAX_REMEMBERED {
            seen.retain(|_, until| *until >= now);
            if seen.len() >= MAX_REMEMBERED {
                tracing::warn!("DPoP replay cache full; refusing new proofs until entries expire");
                return false;
            }
        }
        let id: Box<str> = format!("{jkt}.{jti}").into();
        match seen.get(&id) {
            Some(until) if *until >= now => false,
            _ => {
                seen.insert(id, expires);
                true
            }
        }
    }

    /// Ids remembered now.
    pub fn len(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_id_is_accepted_once_until_it_expires() {
        let cache = ReplayCache::default();
        let now = NumericDate::from_unix(100);
        let until = NumericDate::from_unix(165);
        assert!(cache.first_use("k", "j1", now, until));
        assert!(!cache.first_use("k", "j1", now, until), "replay");
        assert!(
            cache.first_use("other-key", "j1", now, until),
            "another key's jti"
        );
        // After expiry the id may be forgotten (its proof is too old anyway).
        assert!(cache.first_use("k", "j1", NumericDate::from_unix(166), until));
        assert_eq!(cache.len(), 2);
    }
}
