//! Refresh tokens: `trt_` + base64url(session id ‖ generation ‖ MAC).
//!
//! The MAC (HMAC-SHA-256 under a server secret) authenticates the session id
//! and generation, so any generation can be checked without storing it, the
//! store keeps O(1) state per session, and a grace retry can re-derive the
//! exact next token. A token whose MAC fails is rejected before any session
//! is looked up: a forger cannot revoke someone else's session.

use aws_lc_rs::hmac;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::b64;
use crate::token::REFRESH_TOKEN_PREFIX;

const MAC_DOMAIN: &[u8] = b"tessera refresh token v1";
const SESSION_LEN: usize = 16;
const BODY_LEN: usize = SESSION_LEN + 8 + 32;
/// Length of an encoded refresh token.
pub const REFRESH_TOKEN_LEN: usize = REFRESH_TOKEN_PREFIX.len() + (BODY_LEN * 4).div_ceil(3);

/// The server secret that authenticates refresh tokens. 32 random bytes,
/// zeroized on drop, never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct RefreshSecret([u8; 32]);

impl RefreshSecret {
    /// Wraps existing secret bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        RefreshSecret(bytes)
    }

    /// A fresh secret from the operating system's random source.
    pub fn generate() -> Result<Self, crate::KeyError> {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| crate::KeyError::Rng)?;
        Ok(RefreshSecret(bytes))
    }

    /// The bytes, for sealing at rest.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0)
    }

    fn mac(&self, session: &[u8; SESSION_LEN], generation: u64) -> hmac::Tag {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(MAC_DOMAIN);
        ctx.update(session);
        ctx.update(&generation.to_be_bytes());
        ctx.sign()
    }
}

impl std::fmt::Debug for RefreshSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshSecret(..)")
    }
}

/// An authenticated refresh token: which session, which generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshToken {
    /// The session (= refresh family) id.
    pub session: [u8; SESSION_LEN],
    /// The generation; 1 for the token handed out when the session opened.
    pub generation: u64,
}

impl RefreshToken {
    /// The session this token belongs to.
    pub const fn session_id(&self) -> SessionId {
        SessionId(self.session)
    }
}

/// A session id: 16 random bytes, written as 32 lowercase hex characters
/// (the form the store keeps and the API shows).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId([u8; SESSION_LEN]);

impl SessionId {
    /// A fresh random id.
    pub fn random() -> Result<Self, crate::KeyError> {
        crate::random().map(SessionId)
    }

    /// The id with these bytes.
    pub const fn from_bytes(bytes: [u8; SESSION_LEN]) -> Self {
        SessionId(bytes)
    }

    /// Its bytes (as a refresh token carries them).
    pub const fn to_bytes(self) -> [u8; SESSION_LEN] {
        self.0
    }

    /// Parses the 32 lowercase hex characters of [`SessionId::to_hex`];
    /// anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        fn nibble(c: u8) -> Option<u8> {
            match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            }
        }
        let text = text.as_bytes();
        if text.len() != 2 * SESSION_LEN {
            return None;
        }
        let mut out = [0u8; SESSION_LEN];
        for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
            *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Some(SessionId(out))
    }

    /// The id as 32 lowercase hex characters.
    pub fn to_hex(self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(2 * SESSION_LEN);
        for byte in self.0 {
            out.push(char::from(DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        out
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionId({})", self.to_hex())
    }
}

/// Why a presented refresh token is not authentic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshTokenError {
    /// Not the `trt_` form, wrong length or not base64url.
    #[error("not a refresh token")]
    Malformed,
    /// The MAC does not verify: forged or altered.
    #[error("refresh token is not authentic")]
    BadMac,
}

impl RefreshToken {
    /// The token text, MAC'd under `secret`.
    pub fn encode(&self, secret: &RefreshSecret) -> String {
        let mut body = [0u8; BODY_LEN];
        body[..SESSION_LEN].copy_from_slice(&self.session);
        body[SESSION_LEN..SESSION_LEN + 8].copy_from_slice(&self.generation.to_be_bytes());
        body[SESSION_LEN + 8..]
            .copy_from_slice(secret.mac(&self.session, self.generation).as_ref());
        let mut out = String::with_capacity(REFRESH_TOKEN_LEN);
        out.push_str(REFRESH_TOKEN_PREFIX);
        b64::encode_into(body, &mut out);
        out
    }

    /// Parses `text` and checks its MAC in constant time.
    pub fn authenticate(text: &str, secret: &RefreshSecret) -> Result<Self, RefreshTokenError> {
        if text.len() != REFRESH_TOKEN_LEN {
            return Err(RefreshTokenError::Malformed);
        }
        let body = text
            .strip_prefix(REFRESH_TOKEN_PREFIX)
            .ok_or(RefreshTokenError::Malformed)?;
        let body = b64::decode_array::<BODY_LEN>(body).map_err(|_| RefreshTokenError::Malformed)?;
        let mut session = [0u8; SESSION_LEN];
        session.copy_from_slice(&body[..SESSION_LEN]);
        let mut generation = [0u8; 8];
        generation.copy_from_slice(&body[SESSION_LEN..SESSION_LEN + 8]);
        let generation = u64::from_be_bytes(generation);
        let expected = secret.mac(&session, generation);
        let ok: bool =
            subtle::ConstantTimeEq::ct_eq(expected.as_ref(), &body[SESSION_LEN + 8..]).into();
        if !ok {
            return Err(RefreshTokenError::BadMac);
        }
        Ok(RefreshToken {
            session,
            generation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secret() -> RefreshSecret {
        RefreshSecret::from_bytes([9; 32])
    }

    #[test]
    fn round_trip_and_prefix() {
        let token = RefreshToken {
            session: [1; 16],
            generation: 7,
        };
        let text = token.encode(&secret());
        assert!(text.starts_with("trt_"));
        assert_eq!(text.len(), REFRESH_TOKEN_LEN);
        assert_eq!(RefreshToken::authenticate(&text, &secret()), Ok(token));
        let other = RefreshSecret::from_bytes([8; 32]);
        assert_eq!(
            RefreshToken::authenticate(&text, &other),
            Err(RefreshTokenError::BadMac)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        for bad in [
            "",
            "trt_",
            "trt_abc",
            "eyJhbGciOi.x.y",
            &"A".repeat(REFRESH_TOKEN_LEN),
        ] {
            assert_eq!(
                RefreshToken::authenticate(bad, &secret()),
                Err(RefreshTokenError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        assert_eq!(format!("{:?}", secret()), "RefreshSecret(..)");
    }

    proptest! {
        #[test]
        fn session_ids_round_trip_and_only_lowercase_hex_parses(bytes in proptest::array::uniform16(proptest::num::u8::ANY)) {
            let id = SessionId::from_bytes(bytes);
            let hex = id.to_hex();
            prop_assert_eq!(hex.len(), 32);
            prop_assert_eq!(SessionId::parse(&hex), Some(id));
            prop_assert_eq!(SessionId::parse(&hex.to_uppercase()).is_some(), !hex.bytes().any(|b| b.is_ascii_alphabetic()));
            prop_assert_eq!(id.to_string(), hex);
        }


        #[test]
        fn any_single_character_change_is_rejected(pos in 4usize..REFRESH_TOKEN_LEN, c in proptest::char::range('-', 'z')) {
            let text = RefreshToken { session: [3; 16], generation: 2 }.encode(&secret());
            let mut bytes = text.clone().into_bytes();
            let c = u8::try_from(c).expect("ASCII range");
            prop_assume!(bytes[pos] != c);
            bytes[pos] = c;
            let changed = String::from_utf8(bytes).expect("ascii");
            prop_assert!(RefreshToken::authenticate(&changed, &secret()).is_err());
        }
    }
}
