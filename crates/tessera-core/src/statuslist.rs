//! Token Status List (draft-ietf-oauth-status-list) with one bit per entry:
//! the bit string, its `lst` encoding (zlib, then base64url), and the signed
//! Status List Token (`typ: statuslist+jwt`) in both directions.
//!
//! Bit order follows the draft: entry `i` is bit `i % 8` of byte `i / 8`,
//! counted from the least significant bit. `1` means invalid (revoked).

use std::io::{Read as _, Write as _};

use serde::{Deserialize, Serialize};

use crate::b64;
use crate::error::{KeyError, VerifyError};
use crate::jws::{UntrustedJws, sign_compact};
use crate::key::{SigningKey, VerificationKey};

/// The `typ` of a Status List Token.
pub const STATUS_LIST_TYP: &str = "statuslist+jwt";
/// The media type a Status List Token is served with.
pub const STATUS_LIST_MEDIA_TYPE: &str = "application/statuslist+jwt";
/// Entries in each of Tessera's lists: 16 KiB of bits, a few hundred bytes
/// compressed while few are set. A session's global index `g` lives in list
/// `g / ENTRIES_PER_LIST` at `g % ENTRIES_PER_LIST`.
pub const ENTRIES_PER_LIST: u64 = 1 << 17;

/// A session's position in the status lists: list `idx / ENTRIES_PER_LIST`,
/// entry `idx % ENTRIES_PER_LIST`. Indices are global, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusIndex(u64);

impl StatusIndex {
    /// The index `global`.
    pub const fn new(global: u64) -> Self {
        StatusIndex(global)
    }

    /// The index as the store keeps it (a non-negative `BIGINT`); `None`
    /// for a negative value, which no store ever hands out.
    pub fn from_stored(stored: i64) -> Option<Self> {
        u64::try_from(stored).ok().map(StatusIndex)
    }

    /// The global index.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Which list holds it.
    pub const fn list(self) -> u64 {
        self.0 / ENTRIES_PER_LIST
    }

    /// Its entry within that list.
    pub const fn entry(self) -> u64 {
        self.0 % ENTRIES_PER_LIST
    }

    /// The `status.status_list` claim for a token of `issuer`.
    pub fn reference(self, issuer: &str) -> crate::StatusListRef {
        crate::StatusListRef {
            idx: self.entry(),
            uri: status_list_uri(issuer, self.list()),
        }
    }
}

/// Where `issuer` publishes its lists (discovery's `status_list_uri_prefix`):
/// the one place this path is written.
pub fn status_list_uri_prefix(issuer: &str) -> String {
    format!("{}/statuslists/", issuer.trim_end_matches('/'))
}

/// Where `issuer` publishes list `list`.
pub fn status_list_uri(issuer: &str, list: u64) -> String {
    format!("{}{list}", status_list_uri_prefix(issuer))
}

/// Why a status list or its token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatusListError {
    /// `lst` is not canonical base64url.
    #[error("status list: lst is not base64url")]
    Base64,
    /// `lst` does not inflate as zlib.
    #[error("status list: lst is not zlib data")]
    Compression,
    /// The decompressed list is larger than the caller allows.
    #[error("status list: over {max} bytes once decompressed")]
    TooLarge {
        /// The caller's limit.
        max: usize,
    },
    /// `bits` is not 1.
    #[error("status list: only bits = 1 is supported")]
    Bits,
    /// The token's header or signature is wrong.
    #[error("status list token: {0}")]
    Token(#[from] VerifyError),
    /// The header's `typ` is not `statuslist+jwt`.
    #[error("status list token: typ is not statuslist+jwt")]
    Typ,
    /// The claims are not a status list token's.
    #[error("status list token: {0}")]
    Claims(&'static str),
    /// `sub` is not the URI the list was fetched from.
    #[error("status list token: sub is not the list's URI")]
    Subject,
    /// Past `exp`.
    #[error("status list token: expired")]
    Expired,
}

/// A bit string, one bit per referenced token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusList {
    bytes: Vec<u8>,
}

impl StatusList {
    /// A list of `len` valid entries (rounded up to whole bytes).
    pub fn new(len: usize) -> Self {
        StatusList {
            bytes: vec![0; len.div_ceil(8)],
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.bytes.len() * 8
    }

    /// Whether the list has no entries.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Marks entry `idx` invalid; false if `idx` is out of range.
    pub fn set(&mut self, idx: usize) -> bool {
        match self.bytes.get_mut(idx / 8) {
            Some(byte) => {
                *byte |= 1 << (idx % 8);
                true
            }
            None => false,
        }
    }

    /// Whether entry `idx` is invalid; `None` if out of range.
    pub fn get(&self, idx: usize) -> Option<bool> {
        self.bytes
            .get(idx / 8)
            .map(|byte| byte & (1 << (idx % 8)) != 0)
    }

    /// How many entries are invalid.
    pub fn count_set(&self) -> usize {
        self.bytes
            .iter()
            .map(|b| usize::from(u8::try_from(b.count_ones()).unwrap_or(8)))
            .sum()
    }

    /// The raw bit string.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `lst`: the bit string, zlib-compressed (best compression), base64url.
    pub fn to_lst(&self) -> String {
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        // Writing to a Vec cannot fail.
        let compressed = encoder
            .write_all(&self.bytes)
            .and_then(|()| encoder.finish())
            .unwrap_or_default();
        b64::encode(compressed)
    }

    /// Parses `lst`, refusing lists that inflate past `max_bytes` (a small
    /// `lst` can inflate a thousandfold).
    pub fn from_lst(lst: &str, max_bytes: usize) -> Result<Self, StatusListError> {
        let compressed = b64::decode(lst).map_err(|_| StatusListError::Base64)?;
        let limit = crate::len_u64(max_bytes).saturating_add(1);
        let mut bytes = Vec::new();
        flate2::read::ZlibDecoder::new(compressed.as_slice())
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|_| StatusListError::Compression)?;
        if bytes.len() > max_bytes {
            return Err(StatusListError::TooLarge { max: max_bytes });
        }
        Ok(StatusList { bytes })
    }
}

/// `status_list` inside a Status List Token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListClaim {
    bits: u8,
    lst: String,
}

/// The claims of a Status List Token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TokenClaims {
    sub: String,
    iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    status_list: ListClaim,
}

/// What a Status List Token says besides the bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusListInfo {
    /// The list's URI (`sub`).
    pub uri: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds), if set.
    pub exp: Option<i64>,
    /// How long a consumer may cache it, in seconds, if set.
    pub ttl: Option<u64>,
    /// The issuer, if named.
    pub iss: Option<String>,
}

/// Signs `list` as a Status List Token for `info` with `key` (a JWS key).
pub fn sign_status_list(
    list: &StatusList,
    info: &StatusListInfo,
    key: &SigningKey,
) -> Result<String, KeyError> {
    let claims = TokenClaims {
        sub: info.uri.clone(),
        iat: info.iat,
        exp: info.exp,
        ttl: info.ttl,
        iss: info.iss.clone(),
        status_list: ListClaim {
            bits: 1,
            lst: list.to_lst(),
        },
    };
    let payload =
        serde_json::to_vec(&claims).map_err(|_| KeyError::Unsupported("status list claims"))?;
    sign_compact(Some(STATUS_LIST_TYP), &payload, key)
}

/// Verifies a Status List Token fetched from `uri`: `typ`, the signature
/// under the key `key_for(kid)` gives, `sub == uri`, `exp` against `now`
/// (Unix seconds), `bits = 1`; then inflates the list (at most `max_bytes`).
pub fn verify_status_list(
    token: &str,
    uri: &str,
    now: i64,
    max_bytes: usize,
    key_for: impl FnOnce(&str) -> Option<VerificationKey>,
) -> Result<(StatusList, StatusListInfo), StatusListError> {
    let mut jws = UntrustedJws::parse(token)?;
    if !jws.header().typ_status_list {
        return Err(StatusListError::Typ);
    }
    let kid = jws
        .take_kid()
        .ok_or(StatusListError::Claims("the header names no kid"))?;
    let key = key_for(&kid).ok_or(VerifyError::UnknownKey { kid })?;
    let payload = jws.verify_signature(&key)?;
    let claims: TokenClaims = serde_json::from_slice(&payload)
        .map_err(|_| StatusListError::Claims("not a status list token's claims"))?;
    if claims.sub != uri {
        return Err(StatusListError::Subject);
    }
    if claims.exp.is_some_and(|exp| exp <= now) {
        return Err(StatusListError::Expired);
    }
    if claims.status_list.bits != 1 {
        return Err(StatusListError::Bits);
    }
    let list = StatusList::from_lst(&claims.status_list.lst, max_bytes)?;
    Ok((
        list,
        StatusListInfo {
            uri: claims.sub,
            iat: claims.iat,
            exp: claims.exp,
            ttl: claims.ttl,
            iss: claims.iss,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Algorithm;

    #[test]
    fn bit_order_is_least_significant_first() {
        let mut list = StatusList::new(16);
        assert!(list.set(0));
        assert!(list.set(2));
        assert!(list.set(9));
        assert_eq!(list.as_bytes(), &[0b0000_0101, 0b0000_0010]);
        assert_eq!(list.get(2), Some(true));
        assert_eq!(list.get(1), Some(false));
        assert_eq!(list.get(16), None);
        assert!(!list.set(16));
        assert_eq!(list.count_set(), 3);
    }

    #[test]
    fn draft_example_decodes() {
        // draft-ietf-oauth-status-list §4.1: bits=1, statuses
        // [1,0,0,1,1,1,0,1, 1,1,0,0,0,1,0,1] encode as this lst.
        let list = StatusList::from_lst("eNrbuRgAAhcBXQ", 1024).expect("lst");
        assert_eq!(list.as_bytes(), &[0xb9, 0xa3]);
        let expected = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1];
        for (idx, bit) in expected.iter().enumerate() {
            assert_eq!(list.get(idx), Some(*bit == 1), "index {idx}");
        }
    }

    #[test]
    fn lst_round_trips_and_bombs_are_refused() {
        let mut list = StatusList::new(100_000);
        for idx in (0..100_000).step_by(7) {
            list.set(idx);
        }
        let lst = list.to_lst();
        assert_eq!(StatusList::from_lst(&lst, 12_500), Ok(list.clone()));
        assert_eq!(
            StatusList::from_lst(&lst, 12_499),
            Err(StatusListError::TooLarge { max: 12_499 })
        );
        assert_eq!(
            StatusList::from_lst("not base64!", 10),
            Err(StatusListError::Base64)
        );
        assert_eq!(
            StatusList::from_lst(&b64::encode(b"plain"), 10),
            Err(StatusListError::Compression)
        );
    }

    #[test]
    fn tokens_round_trip_and_are_checked() {
        let key = SigningKey::generate(Algorithm::EdDsa).expect("key");
        let other = SigningKey::generate(Algorithm::EdDsa).expect("key");
        let mut list = StatusList::new(64);
        list.set(5);
        let info = StatusListInfo {
            uri: "https://auth.example/statuslists/0".into(),
            iat: 1_700_000_000,
            exp: Some(1_700_000_600),
            ttl: Some(60),
            iss: Some("https://auth.example".into()),
        };
        let token = sign_status_list(&list, &info, &key).expect("sign");
        let public = || Some(key.verification_key().clone());
        let (got, got_info) =
            verify_status_list(&token, &info.uri, 1_700_000_001, 1024, |_| public())
                .expect("verify");
        assert_eq!(got, list);
        assert_eq!(got_info, info);

        let wrong = |t: &str, uri: &str, now: i64, k: &SigningKey| {
            verify_status_list(t, uri, now, 1024, |_| Some(k.verification_key().clone()))
                .expect_err("must fail")
        };
        assert_eq!(
            wrong(
                &token,
                "https://auth.example/statuslists/1",
                1_700_000_001,
                &key
            ),
            StatusListError::Subject
        );
        assert_eq!(
            wrong(&token, &info.uri, 1_700_000_600, &key),
            StatusListError::Expired
        );
        assert_eq!(
            wrong(&token, &info.uri, 1_700_000_001, &other),
            StatusListError::Token(VerifyError::BadSignature)
        );
        // An access token's typ is not a status list's.
        let at = sign_compact(Some("at+jwt"), b"{}", &key).expect("sign");
        assert_eq!(
            wrong(&at, &info.uri, 1_700_000_001, &key),
            StatusListError::Typ
        );
    }
}
