//! Strict, canonical base64url without padding (RFC 7515 §2, RFC 4648 §5).
//!
//! Every token segment goes through here. Padding, the standard alphabet,
//! whitespace and non-zero trailing bits are all rejected, so a token has
//! exactly one spelling and cannot be altered without breaking its signature.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The input is not canonical unpadded base64url.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidBase64;

/// Encodes bytes as unpadded base64url.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Appends the unpadded base64url form of `bytes` to `out`.
pub fn encode_into(bytes: impl AsRef<[u8]>, out: &mut String) {
    URL_SAFE_NO_PAD.encode_string(bytes, out);
}

/// Decodes canonical unpadded base64url into a new vector.
pub fn decode(text: &str) -> Result<Vec<u8>, InvalidBase64> {
    URL_SAFE_NO_PAD.decode(text).map_err(|_| InvalidBase64)
}

/// Decodes canonical unpadded base64url into `out`, returning the used prefix.
///
/// Fails when the decoded form would not fit, so callers can decode small
/// segments (headers, signatures) onto the stack.
pub fn decode_into<'o>(text: &str, out: &'o mut [u8]) -> Result<&'o [u8], InvalidBase64> {
    if base64::decoded_len_estimate(text.len()) > out.len() {
        return Err(InvalidBase64);
    }
    let n = URL_SAFE_NO_PAD
        .decode_slice(text, out)
        .map_err(|_| InvalidBase64)?;
    Ok(&out[..n])
}

/// Decodes exactly `N` bytes.
pub fn decode_array<const N: usize>(text: &str) -> Result<[u8; N], InvalidBase64> {
    // Unpadded base64url of N bytes has exactly this many characters.
    if text.len() != (N * 4).div_ceil(3) {
        return Err(InvalidBase64);
    }
    let mut out = [0u8; N];
    let n = URL_SAFE_NO_PAD
        .decode_slice(text, &mut out)
        .map_err(|_| InvalidBase64)?;
    if n == N { Ok(out) } else { Err(InvalidBase64) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_non_canonical_spellings() {
        // "QQ" is the canonical form of "A"; "QR" has non-zero trailing bits.
        assert_eq!(decode("QQ").as_deref(), Ok(&b"A"[..]));
        for bad in [
            "QR", "QQ==", "QQ=", "Q", "Q Q", "+/8", "ab/c", " QQ", "QQ\n",
        ] {
            assert_eq!(decode(bad), Err(InvalidBase64), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn decode_into_refuses_oversized_input() {
        let mut small = [0u8; 2];
        assert_eq!(decode_into("QUJDRA", &mut small), Err(InvalidBase64));
        let mut big = [0u8; 8];
        assert_eq!(decode_into("QUJDRA", &mut big), Ok(&b"ABCD"[..]));
    }

    #[test]
    fn decode_array_checks_length() {
        assert!(decode_array::<3>("QUJD").is_ok());
        assert_eq!(decode_array::<4>("QUJD"), Err(InvalidBase64));
        assert_eq!(decode_array::<2>("QUJD"), Err(InvalidBase64));
    }

    proptest! {
        #[test]
        fn round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let text = encode(&bytes);
            prop_assert_eq!(decode(&text).ok(), Some(bytes));
        }
    }
}
