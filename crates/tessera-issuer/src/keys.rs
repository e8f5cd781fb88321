//! The issuer's view of signing keys: the active key per algorithm (opened
//! from the store with the master key) and every published public key (for
//! introspection). Reloaded from the store, so a newly activated key is used
//! without a restart.

use std::sync::{Arc, PoisonError, RwLock};

use tessera_core::{Algorithm, KeySet, MasterKey, SigningKey, VerificationKey};
use tessera_store::{KeyState, Store};

use crate::error::IssuerError;

#[derive(Default)]
struct Loaded {
    active: Vec<Arc<SigningKey>>,
    published: Arc<KeySet>,
}

/// Signing keys, from the store.
pub struct SigningKeys {
    store: Arc<dyn Store>,
    master: Arc<MasterKey>,
    loaded: RwLock<Loaded>,
}

impl SigningKeys {
    /// Loads the keys now.
    pub async fn load(store: Arc<dyn Store>, master: Arc<MasterKey>) -> Result<Self, IssuerError> {
        let keys = SigningKeys {
            store,
            master,
            loaded: RwLock::default(),
        };
        keys.reload().await?;
        Ok(keys)
    }

    /// Rereads the store: active keys are opened, published keys collected.
    pub async fn reload(&self) -> Result<(), IssuerError> {
        let stored = self.store.keys().await?;
        let mut active: Vec<Arc<SigningKey>> = Vec::new();
        let mut published = Vec::new();
        for row in &stored {
            let alg = row.alg;
            if row.state.is_published() {
                published.push(VerificationKey::from_public_bytes(alg, &row.public)?);
            }
            if row.state == KeyState::Active {
                // The newest active key of an algorithm wins.
                let key = Arc::new(self.master.open_signing_key(
                    alg,
                    &row.kid,
                    &row.sealed_secret,
                )?);
                active.retain(|k| k.alg() != alg);
                active.push(key);
            }
        }
        let mut loaded = self.loaded.write().unwrap_or_else(PoisonError::into_inner);
        *loaded = Loaded {
            active,
            published: Arc::new(KeySet::new(published)),
        };
        Ok(())
    }

    /// The active key for `alg`.
    pub fn active(&self, alg: Algorithm) -> Option<Arc<SigningKey>> {
        let loaded = self.loaded.read().unwrap_or_else(PoisonError::into_inner);
        loaded.active.iter().find(|k| k.alg() == alg).cloned()
    }

    /// Every published public key.
    pub fn published(&self) -> Arc<KeySet> {
        self.loaded
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .published
            .clone()
    }
}
