//! Secrets at rest: private keys and server secrets sealed with
//! XChaCha20-Poly1305 under the master key, each bound to its name (the
//! AEAD's associated data), so a sealed value cannot be swapped for another's.
//! The 24-byte random nonce makes nonce reuse a non-issue however many
//! values are sealed. Values sealed by earlier builds (version 1, AES-256-GCM)
//! still open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::b64;
use crate::error::KeyError;

/// Sealed by earlier builds: AES-256-GCM, 12-byte nonce (opened, never written).
const VERSION_AES_GCM: u8 = 1;
/// XChaCha20-Poly1305, 24-byte nonce.
const VERSION: u8 = 2;
const XNONCE_LEN: usize = 24;

/// An HMAC-SHA256 key for values the server makes and later reads back
/// ([`MasterKey::mac_key`]). Never printed.
pub struct MacKey(aws_lc_rs::hmac::Key);

impl MacKey {
    /// The 32-byte tag of `data`.
    pub fn tag(&self, data: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(aws_lc_rs::hmac::sign(&self.0, data).as_ref());
        out
    }

    /// Whether `tag` is `data`'s (compared in constant time).
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        aws_lc_rs::hmac::verify(&self.0, data, tag).is_ok()
    }
}

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey(..)")
    }
}

/// The 32-byte master key. Zeroized on drop, never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    /// From base64url text (the `master_key` setting).
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let bytes = Zeroizing::new(b64::decode_array::<32>(text.trim()).map_err(|_| {
            KeyError::InvalidDocument("master key must be 32 bytes of base64url".into())
        })?);
        Ok(MasterKey(*bytes))
    }

    /// A fresh random master key.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| KeyError::Rng)?;
        Ok(MasterKey(bytes))
    }

    /// The base64url text, for writing the key file once.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(b64::encode(self.0))
    }

    /// A MAC key for one `purpose` (console cookies, login links), derived
    /// from this key: HMAC-SHA256(master, purpose). Every instance and the
    /// CLI with the same master key derive the same key.
    pub fn mac_key(&self, purpose: &str) -> MacKey {
        let outer = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.0);
        let derived = Zeroizing::new(
            aws_lc_rs::hmac::sign(&outer, purpose.as_bytes())
                .as_ref()
                .to_vec(),
        );
        MacKey(aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            &derived,
        ))
    }

    fn aes_key(&self) -> Result<LessSafeKey, KeyError> {
        UnboundKey::new(&AES_256_GCM, &self.0)
            .map(LessSafeKey::new)
            .map_err(|_| KeyError::Rng)
    }

    fn xchacha(&self) -> Result<XChaCha20Poly1305, KeyError> {
        XChaCha20Poly1305::new_from_slice(&self.0).map_err(|_| KeyError::Rng)
    }

    /// Seals `secret` under this key, bound to `name`:
    /// version ‖ nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, name: &str, secret: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; XNONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| KeyError::Rng)?;
        let body = self
            .xchacha()?
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| KeyError::Rng)?;
        let mut out = Vec::with_capacity(1 + XNONCE_LEN + body.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens what [`MasterKey::seal`] produced for the same `name`.
    pub fn open(&self, name: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let wrong = || {
            KeyError::InvalidDocument(format!(
                "sealed secret {name:?} does not open under this master key"
            ))
        };
        match sealed.first() {
            Some(&VERSION) if sealed.len() >= 1 + XNONCE_LEN + 16 => {
                let mut nonce = [0u8; XNONCE_LEN];
                nonce.copy_from_slice(&sealed[1..1 + XNONCE_LEN]);
                self.xchacha()?
                    .decrypt(
                        &XNonce::from(nonce),
                        Payload {
                            msg: &sealed[1 + XNONCE_LEN..],
                            aad: name.as_bytes(),
                        },
                    )
                    .map(Zeroizing::new)
                    .map_err(|_| wrong())
            }
            Some(&VERSION_AES_GCM) if sealed.len() >= 1 + NONCE_LEN + 16 => {
                let mut nonce = [0u8; NONCE_LEN];
                nonce.copy_from_slice(&sealed[1..1 + NONCE_LEN]);
                let mut body = Zeroizing::new(sealed[1 + NONCE_LEN..].to_vec());
                let len = self
                    .aes_key()?
                    .open_in_place(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(name.as_bytes()),
                        &mut body,
                    )
                    .map_err(|_| wrong())?
                    .len();
                body.truncate(len);
                Ok(body)
            }
            _ => Err(wrong()),
        }
    }
}

/// The name a signing key's secret is sealed under.
fn signing_key_name(kid: &str) -> String {
    format!("signing-key:{kid}")
}

impl MasterKey {
    /// Seals a signing key's secret bytes, bound to its kid.
    pub fn seal_signing_key(&self, key: &crate::SigningKey) -> Result<Vec<u8>, KeyError> {
        self.seal(&signing_key_name(key.kid()), &key.to_secret_bytes()?)
    }

    /// Opens a sealed signing key; the rebuilt key must have the expected kid.
    pub fn open_signing_key(
        &self,
        alg: crate::Algorithm,
        kid: &str,
        sealed: &[u8],
    ) -> Result<crate::SigningKey, KeyError> {
        let secret = self.open(&signing_key_name(kid), sealed)?;
        let key = crate::SigningKey::from_secret_bytes(alg, &secret)?;
        if key.kid() != kid {
            return Err(KeyError::InvalidDocument(format!(
                "sealed key {kid:?} holds another key"
            )));
        }
        Ok(key)
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn mac_keys_are_per_purpose_and_verify_only_their_tags() {
        let master = MasterKey([9u8; 32]);
        let same = MasterKey([9u8; 32]);
        let console = master.mac_key("console");
        let tag = console.tag(b"value");
        assert!(
            same.mac_key("console").verify(b"value", &tag),
            "same master, same key"
        );
        assert!(!console.verify(b"valuf", &tag));
        assert!(!console.verify(b"value", &tag[..31]));
        assert!(
            !master.mac_key("login").verify(b"value", &tag),
            "another purpose"
        );
        assert!(
            !MasterKey([8u8; 32])
                .mac_key("console")
                .verify(b"value", &tag)
        );
        assert_eq!(format!("{console:?}"), "MacKey(..)");
    }

    use super::*;

    #[test]
    fn seal_open_round_trip_bound_to_name() {
        let master = MasterKey::generate().expect("key");
        let sealed = master.seal("key:abc", b"very secret").expect("seal");
        assert!(
            !sealed.windows(11).any(|w| w == b"very secret"),
            "ciphertext hides the secret"
        );
        assert_eq!(
            &*master.open("key:abc", &sealed).expect("open"),
            b"very secret"
        );
        assert!(
            master.open("key:other", &sealed).is_err(),
            "bound to its name"
        );
        let other = MasterKey::generate().expect("key");
        assert!(
            other.open("key:abc", &sealed).is_err(),
            "bound to the master key"
        );
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(master.open("key:abc", &flipped).is_err(), "authenticated");
    }

    #[test]
    fn writes_xchacha_and_still_opens_aes_gcm_values() {
        let master = MasterKey::generate().expect("key");
        let sealed = master.seal("n", b"secret").expect("seal");
        assert_eq!(sealed[0], VERSION);
        assert_eq!(sealed.len(), 1 + XNONCE_LEN + 6 + 16);
        // A value sealed by an earlier build (version 1, AES-256-GCM).
        let nonce = [7u8; NONCE_LEN];
        let mut body = b"secret".to_vec();
        master
            .aes_key()
            .expect("aes")
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(b"n".as_slice()),
                &mut body,
            )
            .expect("seal v1");
        let v1 = [&[VERSION_AES_GCM][..], &nonce, &body].concat();
        assert_eq!(&*master.open("n", &v1).expect("open v1"), b"secret");
        assert!(master.open("m", &v1).is_err(), "v1 is name-bound too");
        for bad in [&[][..], &[VERSION][..], &[9u8; 64][..]] {
            assert!(master.open("n", bad).is_err());
        }
    }

    #[test]
    fn signing_keys_round_trip() {
        let master = MasterKey::generate().expect("key");
        for alg in [
            crate::Algorithm::EdDsa,
            crate::Algorithm::Es256,
            crate::Algorithm::V4Public,
        ] {
            let key = crate::SigningKey::generate(alg).expect("key");
            let sealed = master.seal_signing_key(&key).expect("seal");
            let opened = master
                .open_signing_key(alg, key.kid(), &sealed)
                .expect("open");
            assert_eq!(opened.kid(), key.kid());
            assert!(master.open_signing_key(alg, "other-kid", &sealed).is_err());
            let public = key.verification_key().public_bytes();
            let rebuilt = crate::VerificationKey::from_public_bytes(alg, &public).expect("public");
            assert_eq!(rebuilt.kid(), key.kid());
            assert_eq!(crate::Algorithm::from_name(alg.as_str()), Some(alg));
        }
    }

    #[test]
    fn base64_round_trip_and_debug() {
        let master = MasterKey::generate().expect("key");
        let again = MasterKey::from_base64(&master.to_base64()).expect("parse");
        let sealed = master.seal("n", b"x").expect("seal");
        assert!(again.open("n", &sealed).is_ok());
        assert_eq!(format!("{master:?}"), "MasterKey(..)");
        assert!(MasterKey::from_base64("short").is_err());
    }
}
