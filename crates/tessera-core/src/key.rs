//! Signing keys (secret) and verification keys (public), with their ids.
//!
//! A key carries its algorithm; a token never chooses it (RFC 8725 §3.1).
//! JWT keys are named by their RFC 7638 thumbprint, PASETO keys by their
//! PASERK `k4.pid`.

use aws_lc_rs::encoding::AsBigEndian as _;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
    ParsedPublicKey,
};
use zeroize::Zeroizing;

use crate::b64;
use crate::error::KeyError;
use crate::paserk;

/// A signature algorithm, fixed by the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// JWS `EdDSA` with Ed25519 (RFC 8037). Tessera's default.
    EdDsa,
    /// JWS `ES256`: ECDSA P-256 with SHA-256, 64-byte `r‖s` signatures.
    Es256,
    /// PASETO `v4.public` (Ed25519 over PAE).
    V4Public,
}

impl PartialEq<&str> for Algorithm {
    /// Compares with a name as [`Algorithm::as_str`] writes it.
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Algorithm {
    /// The name as written in a JWS header or JWK (`v4.public` for PASETO).
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::EdDsa => "EdDSA",
            Algorithm::Es256 => "ES256",
            Algorithm::V4Public => "v4.public",
        }
    }

    /// The algorithm named by [`Algorithm::as_str`] (`EdDSA`, `ES256`, `v4.public`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "v4.public" => Some(Algorithm::V4Public),
            other => Self::from_jws_name(other),
        }
    }

    /// The JWS algorithm named exactly `name` (case-sensitive, RFC 7515 §4.1.1).
    pub fn from_jws_name(name: &str) -> Option<Self> {
        match name {
            "EdDSA" => Some(Algorithm::EdDsa),
            "ES256" => Some(Algorithm::Es256),
            _ => None,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest key id accepted from a token or document.
pub const MAX_KID_LEN: usize = 128;

/// Whether `kid` is a plain identifier: 1 to 128 of `A-Z a-z 0-9 - _ .`.
///
/// Thumbprints and `k4.pid` ids always are; anything else (paths, quotes,
/// spaces, control characters) is refused before it reaches a lookup or a log.
pub fn is_valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A public key that verifies signatures of one algorithm.
#[derive(Clone)]
pub struct VerificationKey {
    kid: String,
    alg: Algorithm,
    inner: PublicInner,
}

#[derive(Clone)]
enum PublicInner {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256 {
        parsed: ParsedPublicKey,
        x: [u8; 32],
        y: [u8; 32],
    },
}

impl VerificationKey {
    /// An Ed25519 key for `alg` (`EdDsa` or `V4Public`), named by `kid` or,
    /// when `None`, by its thumbprint (JWT) or `k4.pid` (PASETO).
    pub fn ed25519(alg: Algorithm, public: &[u8], kid: Option<&str>) -> Result<Self, KeyError> {
        if !matches!(alg, Algorithm::EdDsa | Algorithm::V4Public) {
            return Err(KeyError::InvalidKey { alg });
        }
        let bytes: [u8; 32] = public
            .try_into()
            .map_err(|_| KeyError::InvalidKey { alg })?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|_| KeyError::InvalidKey { alg })?;
        // A small-order key would let one signature verify for many messages.
        // Refusing it here, once, is what makes the per-token plain `verify`
        // below as strong as `verify_strict` for unforgeability.
        if key.is_weak() {
            return Err(KeyError::InvalidKey { alg });
        }
        let kid = match kid {
            Some(kid) => checked_kid(kid)?,
            None if alg == Algorithm::V4Public => paserk::pid(&bytes),
            None => thumbprint_okp(&bytes),
        };
        Ok(VerificationKey {
            kid,
            alg,
            inner: PublicInner::Ed25519(key),
        })
    }

    /// A P-256 key for ES256 from its affine coordinates.
    pub fn p256(x: &[u8], y: &[u8], kid: Option<&str>) -> Result<Self, KeyError> {
        let alg = Algorithm::Es256;
        let x: [u8; 32] = x.try_into().map_err(|_| KeyError::InvalidKey { alg })?;
        let y: [u8; 32] = y.try_into().map_err(|_| KeyError::InvalidKey { alg })?;
        let mut point = [0u8; 65];
        point[0] = 0x04;
        point[1..33].copy_from_slice(&x);
        point[33..].copy_from_slice(&y);
        // Parsing checks that the point is on the curve and not the identity.
        let parsed = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            .map_err(|_| KeyError::InvalidKey { alg })?;
        let kid = match kid {
            Some(kid) => checked_kid(kid)?,
            None => thumbprint_ec(&x, &y),
        };
        Ok(VerificationKey {
            kid,
            alg,
            inner: PublicInner::P256 { parsed, x, y },
        })
    }

    /// A key from the bytes of [`VerificationKey::public_bytes`], named by
    /// its thumbprint or `k4.pid`.
    pub fn from_public_bytes(alg: Algorithm, public: &[u8]) -> Result<Self, KeyError> {
        match alg {
            Algorithm::EdDsa | Algorithm::V4Public => Self::ed25519(alg, public, None),
            Algorithm::Es256 if public.len() == 64 => {
                Self::p256(&public[..32], &public[32..], None)
            }
            Algorithm::Es256 => Err(KeyError::InvalidKey { alg }),
        }
    }

    /// The public key as bytes: Ed25519's 32, or P-256's x ‖ y (64).
    pub fn public_bytes(&self) -> Vec<u8> {
        match &self.inner {
            PublicInner::Ed25519(key) => key.as_bytes().to_vec(),
            PublicInner::P256 { x, y, .. } => [&x[..], &y[..]].concat(),
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key verifies.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// Raw Ed25519 public key bytes, if this is an Ed25519 key.
    pub fn ed25519_bytes(&self) -> Option<&[u8; 32]> {
        match &self.inner {
            PublicInner::Ed25519(key) => Some(key.as_bytes()),
            PublicInner::P256 { .. } => None,
        }
    }

    /// P-256 affine coordinates, if this is a P-256 key.
    pub fn p256_coordinates(&self) -> Option<(&[u8; 32], &[u8; 32])> {
        match &self.inner {
            PublicInner::P256 { x, y, .. } => Some((x, y)),
            PublicInner::Ed25519(_) => None,
        }
    }

    /// The Ed25519 key, for batch verification (`token::verify_batch`).
    pub(crate) fn ed25519_key(&self) -> Option<&ed25519_dalek::VerifyingKey> {
        match &self.inner {
            PublicInner::Ed25519(key) => Some(key),
            PublicInner::P256 { .. } => None,
        }
    }

    /// Verifies a raw signature over `message`: the one place every token,
    /// vector and JWS signature check goes through.
    ///
    /// Ed25519: `S` must be canonical (`S < ℓ`) and `R` must equal the
    /// canonical encoding of the recomputed point; small-order keys were
    /// refused when the key was built. (`verify_strict` would also decompress
    /// `R` on every call to refuse small-order `R`, which costs 17% more per
    /// token and adds nothing against forgery once weak keys are excluded.)
    /// ECDSA takes only the fixed 64-byte `r‖s` form and rejects `r` or `s`
    /// outside `[1, n-1]`.
    pub fn verify_signature(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.inner {
            PublicInner::Ed25519(key) => {
                let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
                    return false;
                };
                use ed25519_dalek::Verifier as _;
                key.verify(message, &sig).is_ok()
            }
            PublicInner::P256 { parsed, .. } => {
                signature.len() == 64 && parsed.verify_sig(message, signature).is_ok()
            }
        }
    }
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// A private signing key. Never printed, serialized or cloned; zeroized on drop.
pub struct SigningKey {
    inner: SecretInner,
    /// Carries the key id and the algorithm.
    public: VerificationKey,
}

struct Ed25519Secret {
    key: ed25519_dalek::SigningKey,
    expanded: ed25519_dalek::hazmat::ExpandedSecretKey,
}

enum SecretInner {
    // ed25519-dalek zeroizes both on drop (feature `zeroize`). The expanded
    // key (clamped scalar and nonce prefix, RFC 8032 §5.1.5) is derived once
    // here rather than by a SHA-512 on every signature.
    Ed25519(Box<Ed25519Secret>),
    // aws-lc cleanses the key's memory when it is freed.
    P256(EcdsaKeyPair),
}

impl SigningKey {
    /// Generates a fresh key for `alg` from the operating system's random source.
    pub fn generate(alg: Algorithm) -> Result<Self, KeyError> {
        match alg {
            Algorithm::EdDsa | Algorithm::V4Public => {
                let mut seed = Zeroizing::new([0u8; 32]);
                aws_lc_rs::rand::fill(seed.as_mut()).map_err(|_| KeyError::Rng)?;
                Self::from_secret_bytes(alg, seed.as_ref())
            }
            Algorithm::Es256 => {
                let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| KeyError::Rng)?;
                Self::from_p256_pair(pair)
            }
        }
    }

    /// Rebuilds a key from the secret bytes of [`SigningKey::to_secret_bytes`]:
    /// the 32-byte Ed25519 seed, or the 32-byte big-endian P-256 scalar.
    pub fn from_secret_bytes(alg: Algorithm, secret: &[u8]) -> Result<Self, KeyError> {
        match alg {
            Algorithm::EdDsa | Algorithm::V4Public => {
                let seed: &[u8; 32] = secret
                    .try_into()
                    .map_err(|_| KeyError::InvalidKey { alg })?;
                let key = ed25519_dalek::SigningKey::from_bytes(seed);
                let expanded = ed25519_dalek::hazmat::ExpandedSecretKey::from(seed);
                let public = VerificationKey::ed25519(alg, key.verifying_key().as_bytes(), None)?;
                Ok(SigningKey {
                    inner: SecretInner::Ed25519(Box::new(Ed25519Secret { key, expanded })),
                    public,
                })
            }
            Algorithm::Es256 => {
                let pair = EcdsaKeyPair::from_private_key_der(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &p256_private_der(secret).ok_or(KeyError::InvalidKey { alg })?,
                )
                .map_err(|_| KeyError::InvalidKey { alg })?;
                Self::from_p256_pair(pair)
            }
        }
    }

    fn from_p256_pair(pair: EcdsaKeyPair) -> Result<Self, KeyError> {
        let alg = Algorithm::Es256;
        let point = pair.public_key().as_ref();
        if point.len() != 65 || point[0] != 0x04 {
            return Err(KeyError::InvalidKey { alg });
        }
        let public = VerificationKey::p256(&point[1..33], &point[33..], None)?;
        Ok(SigningKey {
            inner: SecretInner::P256(pair),
            public,
        })
    }

    /// The key id (the public key's id).
    pub fn kid(&self) -> &str {
        self.public.kid()
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> Algorithm {
        self.public.alg()
    }

    /// The matching public key.
    pub fn verification_key(&self) -> &VerificationKey {
        &self.public
    }

    /// The secret bytes, for encryption at rest; zeroized when dropped.
    pub fn to_secret_bytes(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        match &self.inner {
            SecretInner::Ed25519(secret) => Ok(Zeroizing::new(secret.key.to_bytes().to_vec())),
            SecretInner::P256(pair) => {
                let be = pair
                    .private_key()
                    .as_be_bytes()
                    .map_err(|_| KeyError::InvalidKey { alg: self.alg() })?;
                Ok(Zeroizing::new(be.as_ref().to_vec()))
            }
        }
    }

    /// Signs `message`: 64 bytes for every supported algorithm.
    pub fn sign(&self, message: &[u8]) -> Result<[u8; 64], KeyError> {
        match &self.inner {
            SecretInner::Ed25519(secret) => Ok(ed25519_dalek::hazmat::raw_sign::<sha2::Sha512>(
                &secret.expanded,
                message,
                secret.key.as_ref(),
            )
            .to_bytes()),
            SecretInner::P256(pair) => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let sig = pair.sign(&rng, message).map_err(|_| KeyError::Rng)?;
                sig.as_ref()
                    .try_into()
                    .map_err(|_| KeyError::InvalidKey { alg: self.alg() })
            }
        }
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid())
            .field("alg", &self.alg())
            .finish_non_exhaustive()
    }
}

fn checked_kid(kid: &str) -> Result<String, KeyError> {
    if is_valid_kid(kid) {
        Ok(kid.to_owned())
    } else {
        Err(KeyError::InvalidJwk("kid is not a plain identifier"))
    }
}

/// RFC 5915 `ECPrivateKey` DER for a bare P-256 scalar, as aws-lc wants it.
fn p256_private_der(scalar: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if scalar.len() != 32 {
        return None;
    }
    // SEQUENCE { INTEGER 1, OCTET STRING d, [0] OID prime256v1 }
    const PREFIX: [u8; 7] = [0x30, 0x31, 0x02, 0x01, 0x01, 0x04, 0x20];
    const SUFFIX: [u8; 12] = [
        0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    ];
    let mut der = Zeroizing::new(Vec::with_capacity(51));
    der.extend_from_slice(&PREFIX);
    der.extend_from_slice(scalar);
    der.extend_from_slice(&SUFFIX);
    Some(der)
}

fn sha256_b64(input: &[u8]) -> String {
    b64::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, input))
}

/// RFC 7638 thumbprint of an Ed25519 (OKP) public key.
pub fn thumbprint_okp(x: &[u8; 32]) -> String {
    let mut canon = String::with_capacity(96);
    canon.push_str(r#"{"crv":"Ed25519","kty":"OKP","x":""#);
    b64::encode_into(x, &mut canon);
    canon.push_str("\"}");
    sha256_b64(canon.as_bytes())
}

/// RFC 7638 thumbprint of a P-256 (EC) public key.
pub fn thumbprint_ec(x: &[u8; 32], y: &[u8; 32]) -> String {
    let mut canon = String::with_capacity(140);
    canon.push_str(r#"{"crv":"P-256","kty":"EC","x":""#);
    b64::encode_into(x, &mut canon);
    canon.push_str(r#"","y":""#);
    b64::encode_into(y, &mut canon);
    canon.push_str("\"}");
    sha256_b64(canon.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kid_rules() {
        for ok in [
            "abc",
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
            "k4.pid.abc-_",
        ] {
            assert!(is_valid_kid(ok), "{ok}");
        }
        let long = "a".repeat(129);
        for bad in [
            "",
            "../../etc/passwd",
            "x' OR '1'='1",
            "a b",
            "a\0",
            "é",
            long.as_str(),
        ] {
            assert!(!is_valid_kid(bad), "{bad:?}");
        }
    }

    #[test]
    fn secret_bytes_round_trip_for_every_algorithm() {
        for alg in [Algorithm::EdDsa, Algorithm::Es256, Algorithm::V4Public] {
            let key = SigningKey::generate(alg).expect("generate");
            let secret = key.to_secret_bytes().expect("export");
            assert_eq!(secret.len(), 32, "{alg}");
            let again = SigningKey::from_secret_bytes(alg, &secret).expect("import");
            assert_eq!(again.kid(), key.kid(), "{alg}");
            let sig = again.sign(b"message").expect("sign");
            assert!(
                key.verification_key().verify_signature(b"message", &sig),
                "{alg}"
            );
            assert!(
                !key.verification_key().verify_signature(b"massage", &sig),
                "{alg}"
            );
        }
    }

    #[test]
    fn pre_expanded_ed25519_signatures_match_rfc_8032_and_dalek() {
        fn unhex(s: &str) -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
                .collect()
        }
        // RFC 8032 §7.1, TEST 1 (empty message) and TEST 2 (one byte).
        for (seed, message, signature) in [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "72",
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
        ] {
            let key = SigningKey::from_secret_bytes(Algorithm::EdDsa, &unhex(seed)).expect("key");
            let sig = key.sign(&unhex(message)).expect("sign");
            assert_eq!(sig.to_vec(), unhex(signature));
        }
        // And the same bytes as ed25519-dalek's own signer, for any message.
        let seed = [0x5au8; 32];
        let key = SigningKey::from_secret_bytes(Algorithm::EdDsa, &seed).expect("key");
        let reference = ed25519_dalek::SigningKey::from_bytes(&seed);
        for len in [0usize, 1, 63, 64, 65, 1000] {
            let message = vec![0xa7u8; len];
            use ed25519_dalek::Signer as _;
            assert_eq!(
                key.sign(&message).expect("sign"),
                reference.sign(&message).to_bytes(),
                "{len}"
            );
        }
    }

    #[test]
    fn debug_never_shows_secret_material() {
        let key = SigningKey::from_secret_bytes(Algorithm::EdDsa, &[7u8; 32]).expect("key");
        let shown = format!("{key:?}");
        let secret = key.to_secret_bytes().expect("export");
        assert!(!shown.contains(&b64::encode(&*secret)));
        assert!(!shown.contains("7, 7, 7"));
        assert!(shown.contains(key.kid()));
    }

    #[test]
    fn small_order_keys_are_refused() {
        // The identity point as public key, R = identity and S = 0: the
        // cofactorless equation [S]B = R + [k]A holds for every message, so a
        // verifier that took this key would accept one signature for anything.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut signature = [0u8; 64];
        signature[0] = 1;
        let plain = ed25519_dalek::VerifyingKey::from_bytes(&identity).expect("decodes");
        use ed25519_dalek::Verifier as _;
        let sig = ed25519_dalek::Signature::from_bytes(&signature);
        assert!(
            plain.verify(b"any message", &sig).is_ok(),
            "the weakness being closed"
        );
        for alg in [Algorithm::EdDsa, Algorithm::V4Public] {
            let err = VerificationKey::ed25519(alg, &identity, None).expect_err("weak key");
            assert_eq!(err, KeyError::InvalidKey { alg });
        }
        // Every other small-order encoding too (the all-zero key has order 4).
        assert!(VerificationKey::ed25519(Algorithm::EdDsa, &[0; 32], None).is_err());
    }

    #[test]
    fn algorithm_mismatch_is_refused_at_construction() {
        assert!(VerificationKey::ed25519(Algorithm::Es256, &[1; 32], None).is_err());
        assert!(
            VerificationKey::p256(&[0; 32], &[0; 32], None).is_err(),
            "identity/off-curve"
        );
    }
}
