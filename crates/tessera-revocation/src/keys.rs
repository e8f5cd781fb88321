//! Signing keys as the store keeps them: creating the first key of each
//! algorithm, and rebuilding public (and, for the signer, private) keys from
//! stored rows.
//!
//! A stored row carries the public key in clear and the private key sealed
//! under the master key, bound to the name `signing-key:{kid}` so a sealed
//! secret cannot be moved onto another key's row.

use serde_json::json;
use tessera_core::{Algorithm, KeyError, MasterKey, SigningKey, VerificationKey};
use tessera_store::{AuditKind, AuditRecord, Device, Store, StoreError, StoredKey, Timestamp};

pub use tessera_store::KeyState;

/// Why a signing key could not be created, read or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeysError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Key generation or sealing failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A stored key's public bytes are not a key of its algorithm, or its id
    /// is not the id of those bytes.
    #[error("stored key {kid} is corrupt: {reason}")]
    Corrupt {
        /// The key id.
        kid: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The name a key's secret is sealed under (the AEAD's associated data).
pub fn sealing_name(kid: &str) -> String {
    format!("signing-key:{kid}")
}

/// Makes sure each of `algs` has an `active` key, generating, sealing and
/// storing one (with a `key.created` audit record) where none is.
///
/// Answers the active key of each algorithm, in the order of `algs` (the
/// newest one when several are active).
pub async fn ensure_signing_keys(
    store: &dyn Store,
    master: &MasterKey,
    algs: &[Algorithm],
    now: Timestamp,
) -> Result<Vec<StoredKey>, KeysError> {
    let existing = store.keys().await?;
    let mut out = Vec::with_capacity(algs.len());
    for &alg in algs {
        // `keys()` is oldest first: the last active one is the newest.
        let active = existing
            .iter()
            .rev()
            .find(|k| k.alg == alg && k.state == KeyState::Active);
        match active {
            Some(key) => out.push(key.clone()),
            None => {
                match create_key_unless_state(store, master, alg, KeyState::Active, now, now)
                    .await?
                {
                    Some(key) => out.push(key),
                    // Another instance starting at the same time made it.
                    None => {
                        let keys = store.keys().await?;
                        let theirs = keys
                            .into_iter()
                            .rev()
                            .find(|k| k.alg == alg && k.state == KeyState::Active);
                        out.extend(theirs);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Generates a key for `alg`, seals its secret, stores it in `state`
/// (activating at `activates_at`) and appends its `key.created` audit record.
pub async fn create_key(
    store: &dyn Store,
    master: &MasterKey,
    alg: Algorithm,
    state: KeyState,
    now: Timestamp,
    activates_at: Timestamp,
) -> Result<StoredKey, KeysError> {
    let stored = new_key(master, alg, state, now, activates_at)?;
    store.insert_key(&stored).await?;
    log_created(store, &stored, now).await?;
    Ok(stored)
}

/// Like [`create_key`], unless a key of `alg` is in `state` already (stored
/// by another instance meanwhile): then nothing is stored and `None` answered.
pub async fn create_key_unless_state(
    store: &dyn Store,
    master: &MasterKey,
    alg: Algorithm,
    state: KeyState,
    now: Timestamp,
    activates_at: Timestamp,
) -> Result<Option<StoredKey>, KeysError> {
    let stored = new_key(master, alg, state, now, activates_at)?;
    if !store.insert_key_unless_state(&stored).await? {
        return Ok(None);
    }
    log_created(store, &stored, now).await?;
    Ok(Some(stored))
}

fn new_key(
    master: &MasterKey,
    alg: Algorithm,
    state: KeyState,
    now: Timestamp,
    activates_at: Timestamp,
) -> Result<StoredKey, KeysError> {
    let key = SigningKey::generate(alg)?;
    let kid = key.kid().to_owned();
    let secret = key.to_secret_bytes()?;
    let sealed_secret = master.seal(&sealing_name(&kid), &secret)?;
    let stored = StoredKey {
        kid: kid.clone(),
        alg,
        state,
        public: public_bytes(key.verification_key()),
        sealed_secret,
        created_at: now,
        activates_at,
        retired_at: None,
        expires_at: None,
    };
    Ok(stored)
}

async fn log_created(
    store: &dyn Store,
    stored: &StoredKey,
    now: Timestamp,
) -> Result<(), KeysError> {
    let (kid, alg, state, activates_at) =
        (&stored.kid, &stored.alg, &stored.state, stored.activates_at);
    let record = AuditRecord {
        seq: 0,
        at: now,
        kind: AuditKind::KEY_CREATED,
        subject: None,
        session_id: None,
        client_id: None,
        device: Device::default(),
        detail: json!({
            "kid": kid,
            "alg": alg.as_str(),
            "state": state.as_str(),
            "activates_at": activates_at.0,
        }),
    };
    store.append_audit(&record).await?;
    tracing::info!(kid = %kid, alg = %alg, state = %state, "signing key created");
    Ok(())
}

/// The stored public form of a key: Ed25519 32 bytes, P-256 `x ‖ y`.
pub fn public_bytes(key: &VerificationKey) -> Vec<u8> {
    if let Some(bytes) = key.ed25519_bytes() {
        return bytes.to_vec();
    }
    match key.p256_coordinates() {
        Some((x, y)) => [x.as_slice(), y.as_slice()].concat(),
        None => Vec::new(),
    }
}

/// The public key of a stored row. Its id must be the id its bytes give
/// (thumbprint or `k4.pid`), so a tampered row is refused rather than
/// published under a name it does not own.
pub fn verification_key(stored: &StoredKey) -> Result<VerificationKey, KeysError> {
    let alg = stored.alg;
    let corrupt = |reason| KeysError::Corrupt {
        kid: stored.kid.clone(),
        reason,
    };
    let key = match alg {
        Algorithm::Es256 => {
            if stored.public.len() != 64 {
                return Err(corrupt("P-256 public key is not 64 bytes"));
            }
            let (x, y) = stored.public.split_at(32);
            VerificationKey::p256(x, y, None)
        }
        _ => VerificationKey::ed25519(alg, &stored.public, None),
    }
    .map_err(|_| corrupt("public key bytes are not a valid key"))?;
    if key.kid() != stored.kid {
        return Err(corrupt("key id does not match the public key"));
    }
    Ok(key)
}

/// The private key of a stored row, opened with the master key; it must
/// match the row's public key.
pub fn signing_key(stored: &StoredKey, master: &MasterKey) -> Result<SigningKey, KeysError> {
    let public = verification_key(stored)?;
    let secret = master.open(&sealing_name(&stored.kid), &stored.sealed_secret)?;
    let key = SigningKey::from_secret_bytes(public.alg(), &secret)?;
    if key.kid() != stored.kid {
        return Err(KeysError::Corrupt {
            kid: stored.kid.clone(),
            reason: "sealed secret does not belong to this key",
        });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &SigningKey, master: &MasterKey) -> StoredKey {
        let secret = key.to_secret_bytes().expect("export");
        StoredKey {
            kid: key.kid().to_owned(),
            alg: key.alg(),
            state: KeyState::Active,
            public: public_bytes(key.verification_key()),
            sealed_secret: master
                .seal(&sealing_name(key.kid()), &secret)
                .expect("seal"),
            created_at: Timestamp(0),
            activates_at: Timestamp(0),
            retired_at: None,
            expires_at: None,
        }
    }

    #[test]
    fn stored_rows_round_trip_for_every_algorithm() {
        let master = MasterKey::generate().expect("master");
        for alg in [Algorithm::EdDsa, Algorithm::Es256, Algorithm::V4Public] {
            let key = SigningKey::generate(alg).expect("generate");
            let stored = row(&key, &master);
            let expected_len = if alg == Algorithm::Es256 { 64 } else { 32 };
            assert_eq!(stored.public.len(), expected_len, "{alg}");
            let public = verification_key(&stored).expect("public");
            assert_eq!(public.kid(), key.kid(), "{alg}");
            assert_eq!(public.alg(), alg, "{alg}");
            let opened = signing_key(&stored, &master).expect("open");
            let sig = opened.sign(b"m").expect("sign");
            assert!(public.verify_signature(b"m", &sig), "{alg}");
        }
    }

    #[test]
    fn tampered_rows_are_refused() {
        let master = MasterKey::generate().expect("master");
        let key = SigningKey::generate(Algorithm::EdDsa).expect("generate");
        let other = SigningKey::generate(Algorithm::EdDsa).expect("generate");

        let mut wrong_kid = row(&key, &master);
        wrong_kid.kid = other.kid().to_owned();
        assert!(matches!(
            verification_key(&wrong_kid),
            Err(KeysError::Corrupt { .. })
        ));

        // An algorithm that disagrees with the key's bytes and id (a row
        // tampered from EdDSA to ES256). An unknown algorithm name cannot
        // reach here: the store refuses it as `Corrupt` when reading.
        let mut wrong_alg = row(&key, &master);
        wrong_alg.alg = Algorithm::Es256;
        assert!(matches!(
            verification_key(&wrong_alg),
            Err(KeysError::Corrupt { .. })
        ));

        let mut short = row(&key, &master);
        short.public.pop();
        assert!(matches!(
            verification_key(&short),
            Err(KeysError::Corrupt { .. })
        ));

        // A secret sealed for another key does not open under this key's name.
        let mut swapped = row(&key, &master);
        swapped.sealed_secret = row(&other, &master).sealed_secret;
        assert!(matches!(
            signing_key(&swapped, &master),
            Err(KeysError::Key(_))
        ));

        let stranger = MasterKey::generate().expect("master");
        assert!(signing_key(&row(&key, &master), &stranger).is_err());
    }

    #[test]
    fn states_round_trip() {
        for state in [
            KeyState::Pending,
            KeyState::Active,
            KeyState::Retired,
            KeyState::Revoked,
        ] {
            assert_eq!(KeyState::parse(state.as_str()), Some(state));
        }
        assert!(!KeyState::Revoked.is_published());
        assert_eq!(KeyState::parse("Active"), None);
    }
}
