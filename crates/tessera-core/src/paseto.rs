//! PASETO `v4.public` (Ed25519 over PAE), signed and verified with
//! ed25519-dalek directly: the official vectors in `tests/vectors/v4.json`
//! check this path, and it avoids a second Ed25519 implementation on the hot path.

use crate::b64;
use crate::error::{KeyError, MalformedError, Part, VerifyError};
use crate::key::{Algorithm, SigningKey, VerificationKey};

const HEADER: &str = "v4.public.";
const SIG_LEN: usize = 64;
/// Largest footer accepted, decoded.
pub const MAX_FOOTER_LEN: usize = 512;

/// A decoded but unverified `v4.public` token.
#[derive(Debug)]
pub struct UntrustedPaseto {
    body: Vec<u8>,
    footer: Vec<u8>,
}

impl UntrustedPaseto {
    /// Splits and decodes a `v4.public` token. Other versions and purposes are
    /// refused, as are non-canonical base64url and bodies too short to be signed.
    pub fn parse(token: &str) -> Result<Self, VerifyError> {
        let rest = token
            .strip_prefix(HEADER)
            .ok_or(MalformedError::UnsupportedPaseto)?;
        let (body_b64, footer_b64) = match rest.split_once('.') {
            Some((body, footer)) => {
                if footer.is_empty() || footer.contains('.') {
                    return Err(MalformedError::SegmentCount.into());
                }
                (body, Some(footer))
            }
            None => (rest, None),
        };
        let body = b64::decode(body_b64).map_err(|_| MalformedError::Base64(Part::Payload))?;
        if body.len() < SIG_LEN {
            return Err(VerifyError::BadSignature);
        }
        let footer = match footer_b64 {
            Some(f) => {
                let mut buf = [0u8; MAX_FOOTER_LEN];
                b64::decode_into(f, &mut buf)
                    .map_err(|_| MalformedError::Base64(Part::Footer))?
                    .to_vec()
            }
            None => Vec::new(),
        };
        Ok(UntrustedPaseto { body, footer })
    }

    /// The message (claims), not yet authenticated.
    pub fn untrusted_message(&self) -> &[u8] {
        &self.body[..self.body.len() - SIG_LEN]
    }

    /// The footer, not yet authenticated (it is covered by the signature).
    pub fn untrusted_footer(&self) -> &[u8] {
        &self.footer
    }

    /// Verifies with `key` and the implicit assertion; returns the message.
    pub fn verify(
        mut self,
        key: &VerificationKey,
        implicit: &[u8],
    ) -> Result<Vec<u8>, VerifyError> {
        if key.alg() != Algorithm::V4Public {
            return Err(VerifyError::AlgorithmMismatch {
                expected: key.alg(),
                found: Algorithm::V4Public,
            });
        }
        let split = self.body.len() - SIG_LEN;
        let (message, signature) = self.body.split_at(split);
        let pae = pae(&[HEADER.as_bytes(), message, &self.footer, implicit]);
        if !key.verify_signature(&pae, signature) {
            return Err(VerifyError::BadSignature);
        }
        self.body.truncate(split);
        Ok(self.body)
    }
}

/// Signs `message` as a `v4.public` token with `footer` and implicit assertion.
pub fn sign(
    message: &[u8],
    footer: &[u8],
    implicit: &[u8],
    key: &SigningKey,
) -> Result<String, KeyError> {
    if key.alg() != Algorithm::V4Public {
        return Err(KeyError::Unsupported("v4.public needs a v4.public key"));
    }
    let signature = key.sign(&pae(&[HEADER.as_bytes(), message, footer, implicit]))?;
    let mut body = Vec::with_capacity(message.len() + SIG_LEN);
    body.extend_from_slice(message);
    body.extend_from_slice(&signature);
    let mut out = String::with_capacity(HEADER.len() + (body.len() + footer.len()) * 4 / 3 + 8);
    out.push_str(HEADER);
    b64::encode_into(&body, &mut out);
    if !footer.is_empty() {
        out.push('.');
        b64::encode_into(footer, &mut out);
    }
    Ok(out)
}

/// Pre-authentication encoding: the count, then each piece prefixed by its length.
fn pae(pieces: &[&[u8]]) -> Vec<u8> {
    let total = 8 + pieces.iter().map(|p| 8 + p.len()).sum::<usize>();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&le64(pieces.len()));
    for piece in pieces {
        out.extend_from_slice(&le64(piece.len()));
        out.extend_from_slice(piece);
    }
    out
}

fn le64(n: usize) -> [u8; 8] {
    // PAE clears the top bit so the length is a valid signed integer everywhere.
    (crate::len_u64(n) & !(1 << 63)).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_specification_examples() {
        // The examples of the PASETO specification, "Authentication Padding".
        assert_eq!(pae(&[]), b"\x00\x00\x00\x00\x00\x00\x00\x00");
        assert_eq!(
            pae(&[b""]),
            b"\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        );
        assert_eq!(
            pae(&[b"test"]),
            b"\x01\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00test"
        );
        assert_eq!(le64(usize::MAX)[7], 0x7f, "top bit cleared");
    }

    #[test]
    fn rejects_other_versions_and_layouts() {
        for bad in [
            "v4.local.AAAA",
            "v3.public.AAAA",
            "v4.public.",
            "v4.public.AAAA..",
            "v4.public.AA.BB.CC",
        ] {
            assert!(UntrustedPaseto::parse(bad).is_err(), "{bad}");
        }
    }
}
