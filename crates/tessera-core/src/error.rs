//! Why a token, key or document was rejected.

use crate::claims::NumericDate;
use crate::key::Algorithm;

/// A part of a token, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Part {
    /// The JWS protected header.
    Header,
    /// The claims.
    Payload,
    /// The signature.
    Signature,
    /// The PASETO footer.
    Footer,
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Part::Header => "header",
            Part::Payload => "payload",
            Part::Signature => "signature",
            Part::Footer => "footer",
        })
    }
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Rejected before any decoding: longer than the configured limit.
    #[error("token is {len} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Length of the presented token.
        len: usize,
        /// Configured limit.
        max: usize,
    },
    /// The token is not well-formed.
    #[error("malformed token: {0}")]
    Malformed(#[from] MalformedError),
    /// The JWS header asks for something we never allow.
    #[error("unacceptable token header: {0}")]
    Header(#[from] HeaderError),
    /// A refresh token was presented where an access token belongs.
    #[error("a refresh token is not an access token")]
    RefreshToken,
    /// No trusted key has this id.
    #[error("no trusted key has id {kid:?}")]
    UnknownKey {
        /// The key id the token names (already checked to be a plain identifier).
        kid: String,
    },
    /// The header's algorithm is not the algorithm of the key it names.
    #[error("token claims algorithm {found} but key is {expected}")]
    AlgorithmMismatch {
        /// The key's algorithm.
        expected: Algorithm,
        /// What the token said.
        found: Algorithm,
    },
    /// The signature does not verify under the key.
    #[error("signature does not verify")]
    BadSignature,
    /// The signature verifies but the claims are not acceptable.
    #[error("claims rejected: {0}")]
    Claims(#[from] ClaimError),
    /// Authentic, but revoked since it was issued.
    #[error("token revoked: {0}")]
    Revoked(RevokedBy),
    /// A DPoP-bound token (`cnf.jkt`) presented without a proof, as a bearer
    /// token (RFC 9449 §7.2).
    #[error("token is DPoP-bound: present it with a DPoP proof")]
    DpopBound,
    /// A DPoP proof came with a token that is not DPoP-bound.
    #[error("token is not DPoP-bound")]
    NotDpopBound,
    /// The DPoP proof was refused.
    #[error("{0}")]
    Dpop(#[from] crate::dpop::DpopError),
    /// The proof is signed by another key than the one the token is bound to.
    #[error("the DPoP proof's key is not the key the token is bound to")]
    DpopKeyMismatch,
    /// The proof's `jti` was seen before.
    #[error("the DPoP proof was used before")]
    DpopReplay,
    /// The verifier's revocation data is older than its staleness bound, and
    /// it is configured to fail closed.
    #[error("revocation status unknown: {}; failing closed", describe_age(*age_secs))]
    RevocationStale {
        /// Seconds since the revocation data was last confirmed current;
        /// `None` when it never was (nothing fetched yet, or the token's
        /// status list is not held).
        age_secs: Option<u64>,
    },
}

fn describe_age(age_secs: Option<u64>) -> String {
    match age_secs {
        Some(age) => format!("revocation data is {age} s old"),
        None => "no current revocation data".to_owned(),
    }
}

/// What revoked a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RevokedBy {
    /// Its session ended.
    #[error("its session was ended")]
    Session,
    /// All of its subject's sessions were ended after it was issued.
    #[error("its subject's sessions were ended")]
    Subject,
    /// The key that signed it was revoked.
    #[error("its signing key was revoked")]
    Key,
    /// Its bit is set in the Token Status List.
    #[error("its status-list entry is set")]
    StatusList,
}

/// Structural defects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedError {
    /// Not three dot-separated segments (JWS), or a bad PASETO layout.
    #[error("wrong number of segments")]
    SegmentCount,
    /// A segment is not canonical unpadded base64url.
    #[error("{0} is not canonical base64url")]
    Base64(Part),
    /// A segment is not the JSON object it must be, or has data after it.
    #[error("{0} is not a valid JSON object")]
    Json(Part),
    /// A JSON object names the same member twice (RFC 7515 §5.2, RFC 8725 §3.1).
    #[error("{0} has a duplicate JSON member")]
    DuplicateKey(Part),
    /// A PASETO of another version or purpose (only `v4.public` is accepted).
    #[error("not a v4.public PASETO")]
    UnsupportedPaseto,
    /// Neither a JWS nor a PASETO.
    #[error("unrecognised token format")]
    UnknownFormat,
}

/// Header parameters we refuse (RFC 8725 §2 and §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// `alg` is missing.
    #[error("missing alg")]
    MissingAlgorithm,
    /// `alg` is not one we sign with (`none`, HMAC, RSA, unknown).
    #[error("algorithm not accepted")]
    UnsupportedAlgorithm,
    /// The header carries its own key or a pointer to one (`jwk`, `jku`, `x5u`, `x5c`, ...).
    #[error("embedded or referenced key ({param}) is never trusted")]
    EmbeddedKey {
        /// The offending header parameter.
        param: &'static str,
    },
    /// `crit` lists extensions; we understand none.
    #[error("unknown critical header extension")]
    CriticalExtension,
    /// `b64: false` (RFC 7797 unencoded payload).
    #[error("unencoded payload (b64) not accepted")]
    UnencodedPayload,
    /// `typ` is absent.
    #[error("missing typ (must be at+jwt)")]
    MissingType,
    /// `typ` is present but not `at+jwt`.
    #[error("typ is not at+jwt")]
    WrongType,
    /// No `kid` to select a key.
    #[error("missing kid")]
    MissingKeyId,
    /// `kid` is not a plain identifier (path, SQL, control characters, too long).
    #[error("kid is not a valid key identifier")]
    InvalidKeyId,
}

/// Claims that are missing, mistyped or outside their validity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimError {
    /// A claim cannot be written in the token's format (a date out of
    /// RFC 3339's range).
    #[error("claim {claim} cannot be encoded")]
    Unencodable {
        /// The claim name.
        claim: &'static str,
    },
    /// A required claim is absent.
    #[error("missing required claim {claim}")]
    Missing {
        /// The claim name.
        claim: &'static str,
    },
    /// A claim has the wrong type or form.
    #[error("claim {claim} has the wrong type or form")]
    Invalid {
        /// The claim name.
        claim: &'static str,
    },
    /// `exp` has passed (beyond leeway).
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// The token's expiry.
        exp: NumericDate,
        /// The verifier's clock.
        now: NumericDate,
    },
    /// `nbf` is in the future (beyond leeway).
    #[error("token not valid before {nbf} (now {now})")]
    NotYetValid {
        /// The token's not-before.
        nbf: NumericDate,
        /// The verifier's clock.
        now: NumericDate,
    },
    /// `iat` is in the future (beyond leeway).
    #[error("token issued in the future at {iat} (now {now})")]
    IssuedInFuture {
        /// The token's issued-at.
        iat: NumericDate,
        /// The verifier's clock.
        now: NumericDate,
    },
    /// `iss` is not the configured issuer.
    #[error("issuer does not match")]
    WrongIssuer,
    /// No `aud` value is one of the configured audiences.
    #[error("audience does not match")]
    WrongAudience,
}

/// Why a key or a key document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Key bytes of the wrong length or not a valid point/scalar.
    #[error("invalid {alg} key material")]
    InvalidKey {
        /// The algorithm the key was for.
        alg: Algorithm,
    },
    /// A JWK or PASERK this library does not use.
    #[error("unsupported key type: {0}")]
    Unsupported(&'static str),
    /// A PASERK string with the wrong prefix, length or encoding.
    #[error("invalid PASERK: {0}")]
    InvalidPaserk(&'static str),
    /// A JWK's fields contradict each other or the key.
    #[error("invalid JWK: {0}")]
    InvalidJwk(&'static str),
    /// A public document carries private key material.
    #[error("private key material in a public key document")]
    PrivatePartInPublicDocument,
    /// A document is not valid JSON of the expected shape.
    #[error("invalid key document: {0}")]
    InvalidDocument(String),
    /// The random source failed.
    #[error("random number generator failed")]
    Rng,
    /// The claims to sign cannot be encoded.
    #[error("cannot sign: {0}")]
    Claims(#[from] ClaimError),
}
