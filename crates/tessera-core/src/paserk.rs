//! PASERK `k4.public`, `k4.secret` and `k4.pid`, and the PASERK-set document
//! served at `/.well-known/paserk.json`.
//!
//! All are simple enough to keep here (a key id is one BLAKE2b hash), with
//! the official vectors as their check and `pasetors` as an independent
//! cross-check in the tests; the server links no second Ed25519 stack.

use blake2::digest::consts::U33;
use blake2::{Blake2b, Digest as _};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::b64;
use crate::error::KeyError;
use crate::key::{Algorithm, SigningKey, VerificationKey};

const PUBLIC: &str = "k4.public.";
const SECRET: &str = "k4.secret.";
const PID: &str = "k4.pid.";

/// `k4.public.` + base64url of the 32-byte Ed25519 public key.
pub fn encode_public(public: &[u8; 32]) -> String {
    let mut out = String::with_capacity(PUBLIC.len() + 43);
    out.push_str(PUBLIC);
    b64::encode_into(public, &mut out);
    out
}

/// The 32 public-key bytes of a `k4.public.` PASERK.
pub fn decode_public(paserk: &str) -> Result<[u8; 32], KeyError> {
    let body = paserk
        .strip_prefix(PUBLIC)
        .ok_or(KeyError::InvalidPaserk("not a k4.public PASERK"))?;
    b64::decode_array::<32>(body).map_err(|_| KeyError::InvalidPaserk("k4.public body"))
}

/// `k4.secret.` + base64url of seed ‖ public key (64 bytes).
pub fn encode_secret(key: &SigningKey) -> Result<Zeroizing<String>, KeyError> {
    let public = key
        .verification_key()
        .ed25519_bytes()
        .ok_or(KeyError::Unsupported("k4.secret holds Ed25519 keys only"))?;
    let seed = key.to_secret_bytes()?;
    let mut both = Zeroizing::new([0u8; 64]);
    both[..32].copy_from_slice(&seed);
    both[32..].copy_from_slice(public);
    let mut out = Zeroizing::new(String::with_capacity(SECRET.len() + 86));
    out.push_str(SECRET);
    b64::encode_into(both.as_ref(), &mut out);
    Ok(out)
}

/// A PASETO v4.public signing key from a `k4.secret.` PASERK. The embedded
/// public half must match the seed.
pub fn decode_secret(paserk: &str) -> Result<SigningKey, KeyError> {
    let body = paserk
        .strip_prefix(SECRET)
        .ok_or(KeyError::InvalidPaserk("not a k4.secret PASERK"))?;
    let both = Zeroizing::new(
        b64::decode_array::<64>(body).map_err(|_| KeyError::InvalidPaserk("k4.secret body"))?,
    );
    let key = SigningKey::from_secret_bytes(Algorithm::V4Public, &both[..32])?;
    let derived = key.verification_key().ed25519_bytes().copied();
    if derived.as_ref().map(|d| &d[..]) != Some(&both[32..]) {
        return Err(KeyError::InvalidPaserk(
            "k4.secret public half does not match",
        ));
    }
    Ok(key)
}

/// The `k4.pid` of a 32-byte Ed25519 public key: `k4.pid.` + base64url of
/// BLAKE2b-264(`k4.pid.` ‖ its `k4.public` PASERK) (PASERK `pid` spec).
pub fn pid(public: &[u8; 32]) -> String {
    let digest = Blake2b::<U33>::new()
        .chain_update(PID.as_bytes())
        .chain_update(encode_public(public).as_bytes())
        .finalize();
    let mut out = String::with_capacity(PID.len() + 44);
    out.push_str(PID);
    b64::encode_into(digest.as_slice(), &mut out);
    out
}

/// Whether `text` is a well-formed `k4.pid` (prefix and 33 encoded bytes).
pub fn is_pid(text: &str) -> bool {
    text.strip_prefix(PID)
        .is_some_and(|body| b64::decode_array::<33>(body).is_ok())
}

/// Where a key is in its lifecycle, as published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishedStatus {
    /// Published ahead of signing.
    Pending,
    /// Signing now.
    Active,
    /// No longer signing; kept until its tokens expire.
    Retired,
}

/// One entry of the PASERK-set document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaserkEntry {
    /// The `k4.pid` of the key.
    pub kid: String,
    /// The `k4.public` serialization.
    pub paserk: String,
    /// Lifecycle state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PublishedStatus>,
}

/// `{"keys":[{"kid":"k4.pid...","paserk":"k4.public...","status":"active"}]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaserkSet {
    /// The published keys.
    pub keys: Vec<PaserkEntry>,
}

impl PaserkSet {
    /// The entry for a v4.public verification key.
    pub fn entry(key: &VerificationKey, status: Option<PublishedStatus>) -> Option<PaserkEntry> {
        if key.alg() != Algorithm::V4Public {
            return None;
        }
        let public = key.ed25519_bytes()?;
        Some(PaserkEntry {
            kid: key.kid().to_owned(),
            paserk: encode_public(public),
            status,
        })
    }

    /// The verification keys of the document. Every `kid` must be the
    /// `k4.pid` of its key: an entry that lies about its id is an error.
    pub fn verification_keys(&self) -> Result<Vec<VerificationKey>, KeyError> {
        self.keys
            .iter()
            .map(|entry| {
                if entry.paserk.starts_with(SECRET) {
                    return Err(KeyError::PrivatePartInPublicDocument);
                }
                let public = decode_public(&entry.paserk)?;
                let key = VerificationKey::ed25519(Algorithm::V4Public, &public, None)?;
                if key.kid() != entry.kid {
                    return Err(KeyError::InvalidPaserk("kid is not the k4.pid of the key"));
                }
                Ok(key)
            })
            .collect()
    }
}
