//! DPoP proofs (RFC 9449): a client proves, per request, that it holds the
//! private key a token is bound to (`cnf.jkt`).
//!
//! [`verify_proof`] checks a proof JWT the way §4.3 lists: one compact JWS,
//! `typ: dpop+jwt`, `alg` EdDSA or ES256 and equal to the key's, a public
//! `jwk` only (its RFC 7638 thumbprint is the `jkt`), the signature, `htm`
//! and `htu` (normalised: no query or fragment, lowercase scheme and host,
//! no default port), `iat` within a window, `ath` when an access token is
//! presented, and the server nonce when one is required. Replay (`jti`) is
//! the caller's to track: it needs state.
//!
//! [`sign_proof`] makes proofs (tests, the CLI, example clients).

use std::time::Duration;

use serde_json::Value;

use crate::b64;
use crate::jwk::Jwk;
use crate::key::{Algorithm, SigningKey, VerificationKey};
use crate::strict_json::parse_strict_object;
use crate::time::NumericDate;

/// The `typ` of a DPoP proof.
pub const PROOF_TYP: &str = "dpop+jwt";
/// Longest proof accepted.
pub const MAX_PROOF_LEN: usize = 4096;
/// Longest `jti` accepted.
pub const MAX_JTI_LEN: usize = 256;

/// Why a proof was refused (RFC 9449 `invalid_dpop_proof`, or
/// `use_dpop_nonce` for [`DpopError::NonceRequired`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// Not a well-formed proof JWT.
    #[error("malformed DPoP proof: {0}")]
    Malformed(&'static str),
    /// The header is not a DPoP proof header.
    #[error("invalid DPoP proof header: {0}")]
    Header(&'static str),
    /// The signature does not verify under the proof's own key.
    #[error("DPoP proof signature does not verify")]
    Signature,
    /// `htm` is not the request's method.
    #[error("DPoP proof htm does not match the request method")]
    Method,
    /// `htu` is not the request's URL.
    #[error("DPoP proof htu does not match the request URL")]
    Url,
    /// `iat` is too old or too far ahead.
    #[error("DPoP proof iat is outside the accepted window")]
    Time,
    /// `ath` is missing or is not the presented access token's hash.
    #[error("DPoP proof ath does not match the access token")]
    AccessTokenHash,
    /// The server requires a nonce the proof does not carry (or it is stale).
    #[error("a DPoP nonce is required")]
    NonceRequired,
}

/// A proof that passed every check.
#[derive(Debug, Clone)]
pub struct VerifiedProof {
    /// RFC 7638 thumbprint of the proof key (base64url SHA-256): what
    /// `cnf.jkt` binds a token to.
    pub jkt: String,
    /// `jti`: the caller must refuse a second use.
    pub jti: String,
    /// `iat`.
    pub iat: NumericDate,
    /// The `nonce` the proof carries, if any (a server that issues
    /// nonces checks it with [`NonceKey::accepts`]).
    pub nonce: Option<String>,
}

/// What a proof must match.
#[derive(Debug, Clone, Copy)]
pub struct ProofCheck<'a> {
    /// The request method (`POST`).
    pub method: &'a str,
    /// The request URL (normalised before comparison).
    pub url: &'a str,
    /// Now.
    pub now: NumericDate,
    /// How old `iat` may be.
    pub max_age: Duration,
    /// How far ahead of `now` `iat` may be (clock skew).
    pub leeway: Duration,
    /// The access token presented with the proof: `ath` must be its hash.
    pub access_token: Option<&'a str>,
    /// The nonce the server currently requires, if any.
    pub nonce: Option<&'a str>,
}

/// `ath`: base64url SHA-256 of the access token (RFC 9449 §4.2).
pub fn access_token_hash(access_token: &str) -> String {
    b64::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        access_token.as_bytes(),
    ))
}

/// `htu` as RFC 9449 §4.3 compares it: without query and fragment, scheme
/// and host in lowercase, without the scheme's default port. `None` for
/// anything but an absolute `http(s)` URL.
pub fn normalize_htu(url: &str) -> Option<String> {
    let url = url.split(['?', '#']).next()?;
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    Some(format!("{scheme}://{authority}{path}"))
}

/// The proof key's RFC 7638 thumbprint (its JWK without `kid` names itself).
pub fn jwk_thumbprint(key: &VerificationKey) -> String {
    key.kid().to_owned()
}

/// Verifies `proof` against `check`; answers the key's thumbprint and the
/// `jti` the caller must not accept twice.
pub fn verify_proof(proof: &str, check: &ProofCheck<'_>) -> Result<VerifiedProof, DpopError> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(DpopError::Malformed("too long"));
    }
    let mut parts = proof.split('.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(DpopError::Malformed("not three segments"));
    };
    let header = b64::decode(header_b64).map_err(|_| DpopError::Malformed("header encoding"))?;
    let header = parse_strict_object(&header).map_err(|_| DpopError::Malformed("header JSON"))?;
    if header.get("typ").and_then(Value::as_str) != Some(PROOF_TYP) {
        return Err(DpopError::Header("typ must be dpop+jwt"));
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Algorithm::from_jws_name)
        .filter(|alg| matches!(alg, Algorithm::EdDsa | Algorithm::Es256))
        .ok_or(DpopError::Header("alg must be EdDSA or ES256"))?;
    for forbidden in ["crit", "jku", "x5u", "x5c", "kid", "b64"] {
        if header.contains_key(forbidden) {
            return Err(DpopError::Header("unsupported header parameter"));
        }
    }
    let jwk = header
        .get("jwk")
        .ok_or(DpopError::Header("jwk is required"))?;
    let mut jwk: Jwk =
        serde_json::from_value(jwk.clone()).map_err(|_| DpopError::Header("jwk is not a JWK"))?;
    if jwk.d.is_some() {
        return Err(DpopError::Header("jwk must not carry a private key"));
    }
    // The thumbprint, not a name the client picked, identifies the key.
    jwk.kid = None;
    let key = jwk.to_key().ok().flatten().ok_or(DpopError::Header(
        "jwk is not an Ed25519 or P-256 public key",
    ))?;
    if key.alg() != alg {
        return Err(DpopError::Header("alg does not match the jwk"));
    }
    let signature = b64::decode(sig_b64).map_err(|_| DpopError::Malformed("signature encoding"))?;
    let signing_input = &proof[..header_b64.len() + 1 + payload_b64.len()];
    if !key.verify_signature(signing_input.as_bytes(), &signature) {
        return Err(DpopError::Signature);
    }

    let payload = b64::decode(payload_b64).map_err(|_| DpopError::Malformed("payload encoding"))?;
    let claims = parse_strict_object(&payload).map_err(|_| DpopError::Malformed("payload JSON"))?;
    let text = |name: &'static str| claims.get(name).and_then(Value::as_str);
    let jti = text("jti")
        .filter(|jti| !jti.is_empty() && jti.len() <= MAX_JTI_LEN)
        .ok_or(DpopError::Malformed("jti is required"))?;
    if text("htm") != Some(check.method) {
        return Err(DpopError::Method);
    }
    let htu = text("htu").and_then(normalize_htu);
    if htu.is_none() || htu != normalize_htu(check.url) {
        return Err(DpopError::Url);
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .map(NumericDate::from_unix)
        .ok_or(DpopError::Malformed("iat is required"))?;
    if iat < check.now.minus(check.max_age) || iat > check.now.plus(check.leeway) {
        return Err(DpopError::Time);
    }
    if let Some(token) = check.access_token
        && text("ath") != Some(access_token_hash(token).as_str())
    {
        return Err(DpopError::AccessTokenHash);
    }
    let nonce = text("nonce");
    if let Some(required) = check.nonce
        && nonce != Some(required)
    {
        return Err(DpopError::NonceRequired);
    }
    Ok(VerifiedProof {
        jkt: jwk_thumbprint(&key),
        jti: jti.to_owned(),
        iat,
        nonce: nonce.map(str::to_owned),
    })
}

/// Server nonces (RFC 9449 §8) without shared state: a nonce names a time
/// window and carries a MAC over it, so every instance holding the same
/// key mints and accepts the same nonces. One is accepted during its own
/// window and the next ([`NONCE_WINDOW`] to twice that).
pub struct NonceKey(aws_lc_rs::hmac::Key);

/// How long one nonce window lasts.
pub const NONCE_WINDOW: Duration = Duration::from_secs(300);

/// Bytes of MAC a nonce carries.
const NONCE_MAC_LEN: usize = 16;

impl NonceKey {
    /// A key derived from `secret` (at least 32 bytes of key material shared
    /// by every instance) for the purpose `label`.
    pub fn derive(secret: &[u8], label: &str) -> Self {
        let outer = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
        let derived = aws_lc_rs::hmac::sign(&outer, label.as_bytes());
        NonceKey(aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            derived.as_ref(),
        ))
    }

    fn window(now: NumericDate) -> u64 {
        u64::try_from(now.unix()).unwrap_or(0) / NONCE_WINDOW.as_secs()
    }

    fn for_window(&self, window: u64) -> String {
        let tag = aws_lc_rs::hmac::sign(&self.0, &window.to_be_bytes());
        let mut bytes = [0_u8; 8 + NONCE_MAC_LEN];
        bytes[..8].copy_from_slice(&window.to_be_bytes());
        bytes[8..].copy_from_slice(&tag.as_ref()[..NONCE_MAC_LEN]);
        b64::encode(bytes)
    }

    /// The nonce to hand out at `now`.
    pub fn issue(&self, now: NumericDate) -> String {
        self.for_window(Self::window(now))
    }

    /// Whether `nonce` was issued by this key in the current or the
    /// previous window (constant time in the MAC).
    pub fn accepts(&self, nonce: &str, now: NumericDate) -> bool {
        let Ok(bytes) = b64::decode(nonce) else {
            return false;
        };
        let Some((window, _)) = bytes.split_first_chunk::<8>() else {
            return false;
        };
        let window = u64::from_be_bytes(*window);
        let current = Self::window(now);
        if bytes.len() != 8 + NONCE_MAC_LEN
            || (window != current && window.checked_add(1) != Some(current))
        {
            return false;
        }
        let expected = self.for_window(window);
        subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), nonce.as_bytes()).into()
    }
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey(..)")
    }
}

/// What a new proof says.
#[derive(Debug, Clone, Copy)]
pub struct ProofClaims<'a> {
    /// `htm`.
    pub method: &'a str,
    /// `htu`.
    pub url: &'a str,
    /// `iat`.
    pub iat: NumericDate,
    /// `jti`.
    pub jti: &'a str,
    /// The access token it goes with (`ath`), if any.
    pub access_token: Option<&'a str>,
    /// The server's nonce, if it asked for one.
    pub nonce: Option<&'a str>,
}

/// Signs a proof with `key` (EdDSA or ES256), its public JWK in the header.
pub fn sign_proof(key: &SigningKey, claims: &ProofClaims<'_>) -> Result<String, crate::KeyError> {
    let jwk = Jwk::from_key(key.verification_key()).ok_or(crate::KeyError::Unsupported(
        "DPoP needs an EdDSA or ES256 key",
    ))?;
    let jwk = Jwk {
        kid: None,
        alg: None,
        use_: None,
        ..jwk
    };
    let header = serde_json::json!({ "typ": PROOF_TYP, "alg": key.alg().as_str(), "jwk": jwk });
    let mut payload = serde_json::json!({
        "jti": claims.jti,
        "htm": claims.method,
        "htu": claims.url,
        "iat": claims.iat.unix(),
    });
    if let Some(token) = claims.access_token {
        payload["ath"] = access_token_hash(token).into();
    }
    if let Some(nonce) = claims.nonce {
        payload["nonce"] = nonce.into();
    }
    let encode = |value: &Value| {
        serde_json::to_vec(value).map_err(|_| crate::KeyError::Unsupported("proof JSON"))
    };
    let mut out = b64::encode(encode(&header)?);
    out.push('.');
    b64::encode_into(&encode(&payload)?, &mut out);
    let signature = key.sign(out.as_bytes())?;
    out.push('.');
    b64::encode_into(signature, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests;
