//! Access tokens: encoding with a signing key, and verification as data.
//!
//! [`UntrustedToken::parse`] does every check that needs no key (size first,
//! then layout, base64url, header); [`UntrustedToken::verify`] checks the
//! signature with the key the caller looked up by [`UntrustedToken::kid`], then
//! the claims against a [`Validation`] built once.

use std::time::Duration;

use crate::claims::{AccessClaims, NumericDate, ParseError, TimeEncoding};
use crate::error::{ClaimError, HeaderError, KeyError, MalformedError, Part, VerifyError};
use crate::jws::UntrustedJws;
use crate::key::{Algorithm, SigningKey, VerificationKey, is_valid_kid};
use crate::paseto::UntrustedPaseto;

/// Every Tessera refresh token starts with this; it is never an access token.
pub const REFRESH_TOKEN_PREFIX: &str = "trt_";

/// The JWS `typ` of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Default leeway for clock skew.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// Largest leeway a [`Validation`] accepts.
pub const MAX_LEEWAY: Duration = Duration::from_secs(120);
/// Default limit on a token's length, checked before any decoding.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

/// The two access-token formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenFormat {
    /// JWT (RFC 9068), EdDSA or ES256.
    Jwt,
    /// PASETO v4.public.
    Paseto,
}

impl TokenFormat {
    /// `jwt` or `paseto`; anything else is `None`.
    pub fn parse(text: &str) -> Option<TokenFormat> {
        match text {
            "jwt" => Some(TokenFormat::Jwt),
            "paseto" => Some(TokenFormat::Paseto),
            _ => None,
        }
    }

    /// The name, as [`TokenFormat::parse`] reads it.
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenFormat::Jwt => "jwt",
            TokenFormat::Paseto => "paseto",
        }
    }

    fn times(self) -> TimeEncoding {
        match self {
            TokenFormat::Jwt => TimeEncoding::Numeric,
            TokenFormat::Paseto => TimeEncoding::Rfc3339,
        }
    }
}

/// A [`Validation`] that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// Leeway over [`MAX_LEEWAY`].
    #[error("leeway {0:?} exceeds the maximum of 120 s")]
    LeewayTooLarge(Duration),
    /// An empty issuer or audience.
    #[error("issuer and audiences must be non-empty")]
    Empty,
}

/// What a verifier accepts: built once, reused for every token.
#[derive(Debug, Clone)]
pub struct Validation {
    issuer: String,
    audiences: Vec<String>,
    check_audience: bool,
    leeway: Duration,
    max_token_len: usize,
}

impl Validation {
    /// Accept tokens from `issuer` for any of `audiences`, 30 s leeway.
    pub fn new(
        issuer: impl Into<String>,
        audiences: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Self, ValidationError> {
        let issuer = issuer.into();
        let audiences: Vec<String> = audiences.into_iter().map(Into::into).collect();
        if issuer.is_empty() || audiences.is_empty() || audiences.iter().any(String::is_empty) {
            return Err(ValidationError::Empty);
        }
        Ok(Validation {
            issuer,
            audiences,
            check_audience: true,
            leeway: DEFAULT_LEEWAY,
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
        })
    }

    /// Accept tokens from `issuer` for **any** audience. Unsafe for a resource
    /// server (a token minted for another API would pass); for tools only.
    pub fn any_audience(issuer: impl Into<String>) -> Result<Self, ValidationError> {
        let mut v = Validation::new(issuer, ["*"])?;
        v.audiences.clear();
        v.check_audience = false;
        Ok(v)
    }

    /// Sets the clock-skew leeway (at most 120 s).
    pub fn with_leeway(mut self, leeway: Duration) -> Result<Self, ValidationError> {
        if leeway > MAX_LEEWAY {
            return Err(ValidationError::LeewayTooLarge(leeway));
        }
        self.leeway = leeway;
        Ok(self)
    }

    /// Sets the length limit checked before any decoding.
    pub fn with_max_token_len(mut self, max: usize) -> Self {
        self.max_token_len = max;
        self
    }

    /// The accepted issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The leeway.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// The length limit.
    pub fn max_token_len(&self) -> usize {
        self.max_token_len
    }

    /// Whether the audience is checked.
    pub fn checks_audience(&self) -> bool {
        self.check_audience
    }

    /// Checks `iss`, `aud`, `exp`, `nbf` and `iat` at `now`.
    pub fn check(&self, claims: &AccessClaims, now: NumericDate) -> Result<(), ClaimError> {
        if claims.iss != self.issuer {
            return Err(ClaimError::WrongIssuer);
        }
        if self.check_audience && !self.audiences.iter().any(|a| claims.aud.contains(a)) {
            return Err(ClaimError::WrongAudience);
        }
        let late = now.minus(self.leeway);
        let early = now.plus(self.leeway);
        if claims.exp <= late {
            return Err(ClaimError::Expired {
                exp: claims.exp,
                now,
            });
        }
        if let Some(nbf) = claims.nbf
            && nbf > early
        {
            return Err(ClaimError::NotYetValid { nbf, now });
        }
        if claims.iat > early {
            return Err(ClaimError::IssuedInFuture {
                iat: claims.iat,
                now,
            });
        }
        Ok(())
    }
}

/// An access token that has been decoded but not yet verified.
#[derive(Debug)]
pub struct UntrustedToken<'t> {
    kind: Kind<'t>,
    kid: String,
}

#[derive(Debug)]
enum Kind<'t> {
    Jwt(UntrustedJws<'t>),
    Paseto(UntrustedPaseto),
}

impl<'t> UntrustedToken<'t> {
    /// Every check that needs no key: length (before anything else), refresh
    /// token shape, layout, base64url, header parameters, `typ`, `kid`.
    pub fn parse(token: &'t str, max_len: usize) -> Result<Self, VerifyError> {
        if token.len() > max_len {
            return Err(VerifyError::TooLarge {
                len: token.len(),
                max: max_len,
            });
        }
        if token.starts_with(REFRESH_TOKEN_PREFIX) {
            return Err(VerifyError::RefreshToken);
        }
        if is_paseto_shaped(token) {
            let paseto = UntrustedPaseto::parse(token)?;
            let kid = footer_kid(paseto.untrusted_footer())?;
            return Ok(UntrustedToken {
                kind: Kind::Paseto(paseto),
                kid,
            });
        }
        let mut jws = UntrustedJws::parse(token)?;
        match jws.header().typ_at_jwt {
            None => return Err(HeaderError::MissingType.into()),
            Some(false) => return Err(HeaderError::WrongType.into()),
            Some(true) => {}
        }
        let kid = jws.take_kid().ok_or(HeaderError::MissingKeyId)?;
        if !is_valid_kid(&kid) {
            return Err(HeaderError::InvalidKeyId.into());
        }
        Ok(UntrustedToken {
            kind: Kind::Jwt(jws),
            kid,
        })
    }

    /// The id of the key that must verify this token.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// JWT or PASETO.
    pub fn format(&self) -> TokenFormat {
        match self.kind {
            Kind::Jwt(_) => TokenFormat::Jwt,
            Kind::Paseto(_) => TokenFormat::Paseto,
        }
    }

    /// The algorithm the token claims (to be matched against the key's).
    pub fn alg(&self) -> Algorithm {
        match &self.kind {
            Kind::Jwt(jws) => jws.header().alg,
            Kind::Paseto(_) => Algorithm::V4Public,
        }
    }

    /// Verifies the signature under `key`, then the claims under `validation` at `now`.
    pub fn verify(
        self,
        key: &VerificationKey,
        validation: &Validation,
        now: NumericDate,
    ) -> Result<AccessClaims, VerifyError> {
        let format = self.format();
        let payload = match self.kind {
            Kind::Jwt(jws) => jws.verify_signature(key)?,
            Kind::Paseto(paseto) => paseto.verify(key, b"")?,
        };
        checked_claims(&payload, format, validation, now)
    }
}

/// Verifies many tokens, each with its key, as [`UntrustedToken::verify`]
/// would one by one, but with the Ed25519 signatures of the EdDSA JWTs
/// checked together (ed25519-dalek's batch verification, about twice as
/// fast per signature for dozens of tokens). If the batch fails, each of
/// its tokens is verified alone to find the culprits; other tokens (ES256,
/// PASETO) are verified alone. The answers are in the order of `tokens`.
///
/// Batch verification checks the cofactored equation where single
/// verification checks the cofactorless one; they can disagree only on
/// signatures crafted by the holder of the private key (with small-order
/// components), never on a forgery, and only the issuer holds the key.
pub fn verify_batch(
    tokens: Vec<(UntrustedToken<'_>, &VerificationKey)>,
    validation: &Validation,
    now: NumericDate,
) -> Vec<Result<AccessClaims, VerifyError>> {
    let mut messages: Vec<&[u8]> = Vec::with_capacity(tokens.len());
    let mut signatures = Vec::with_capacity(tokens.len());
    let mut keys = Vec::with_capacity(tokens.len());
    let mut batched = Vec::with_capacity(tokens.len());
    for (token, key) in &tokens {
        let parts = match (&token.kind, key.ed25519_key()) {
            (Kind::Jwt(jws), Some(ed)) => jws.ed25519_parts(key).map(|p| (p, *ed)),
            _ => None,
        };
        batched.push(parts.is_some());
        if let Some(((message, signature), ed)) = parts {
            messages.push(message);
            signatures.push(ed25519_dalek::Signature::from_bytes(&signature));
            keys.push(ed);
        }
    }
    let batch_ok =
        !messages.is_empty() && ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok();
    tokens
        .into_iter()
        .zip(batched)
        .map(|((token, key), in_batch)| match token.kind {
            Kind::Jwt(jws) if in_batch && batch_ok => checked_claims(
                &jws.into_batch_verified_payload(),
                TokenFormat::Jwt,
                validation,
                now,
            ),
            _ => token.verify(key, validation, now),
        })
        .collect()
}

/// The claims of an authenticated payload, checked under `validation` at `now`.
fn checked_claims(
    payload: &[u8],
    format: TokenFormat,
    validation: &Validation,
    now: NumericDate,
) -> Result<AccessClaims, VerifyError> {
    let claims = AccessClaims::from_json(payload, format.times()).map_err(|e| match e {
        ParseError::Json => VerifyError::Malformed(MalformedError::Json(Part::Payload)),
        ParseError::DuplicateKey => MalformedError::DuplicateKey(Part::Payload).into(),
        ParseError::Claim(c) => VerifyError::Claims(c),
    })?;
    validation.check(&claims, now)?;
    Ok(claims)
}

fn is_paseto_shaped(token: &str) -> bool {
    // "v" + version digits + "." : never the start of a JWS, whose first
    // segment is base64url of "{" (always "ey").
    let b = token.as_bytes();
    b.first() == Some(&b'v')
        && b.get(1).is_some_and(u8::is_ascii_digit)
        && token[1..]
            .find('.')
            .is_some_and(|dot| token[1..1 + dot].bytes().all(|c| c.is_ascii_digit()))
}

fn footer_kid(footer: &[u8]) -> Result<String, VerifyError> {
    if footer.is_empty() {
        return Err(HeaderError::MissingKeyId.into());
    }
    let map = crate::claims::parse_strict_object(footer).map_err(|e| match e {
        ParseError::DuplicateKey => VerifyError::from(MalformedError::DuplicateKey(Part::Footer)),
        _ => MalformedError::Json(Part::Footer).into(),
    })?;
    let kid = match map.get("kid") {
        Some(serde_json::Value::String(kid)) => kid,
        Some(_) => return Err(HeaderError::InvalidKeyId.into()),
        None => return Err(HeaderError::MissingKeyId.into()),
    };
    if !crate::paserk::is_pid(kid) {
        return Err(HeaderError::InvalidKeyId.into());
    }
    Ok(kid.clone())
}

/// Encodes `claims` as an access token with `key`: a JWT (`typ: at+jwt`) for
/// EdDSA and ES256 keys, a `v4.public` PASETO whose footer names the key's
/// `k4.pid` for v4.public keys.
pub fn encode(claims: &AccessClaims, key: &SigningKey) -> Result<String, KeyError> {
    match key.alg() {
        Algorithm::EdDsa | Algorithm::Es256 => crate::jws::sign_compact(
            Some(ACCESS_TOKEN_TYP),
            &claims.to_json(TimeEncoding::Numeric)?,
            key,
        ),
        Algorithm::V4Public => {
            let footer = serde_json::to_vec(&serde_json::json!({ "kid": key.kid() }))
                .map_err(|_| KeyError::Unsupported("footer"))?;
            crate::paseto::sign(&claims.to_json(TimeEncoding::Rfc3339)?, &footer, b"", key)
        }
    }
}
