//! Client credentials from requests (RFC 6749 §2.3.1) and request context.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, header};
use base64::Engine as _;
use zeroize::Zeroizing;

use crate::Issuer;
use crate::clients::{AuthenticatedClient, Credentials};
use crate::error::IssuerError;
use crate::sessions::RequestContext;

/// The client's address: as resolved by the rate-limit middleware, or the
/// peer's.
pub(crate) fn client_ip(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions
        .get::<super::ClientIp>()
        .map(|c| c.0)
        .or_else(|| {
            extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        })
}

/// Authenticates `credentials`, counting a failure against the caller's IP
/// and a confidential client's success against its own rate limit.
pub(crate) async fn authenticate(
    issuer: &Issuer,
    credentials: Credentials,
    extensions: &axum::http::Extensions,
) -> Result<std::sync::Arc<AuthenticatedClient>, IssuerError> {
    match issuer.clients.authenticate(credentials).await {
        Ok(client) => {
            // A public client's id is shared by every user of the app: its
            // traffic is limited per address, never as one client.
            if client.client.kind == tessera_store::ClientKind::Confidential
                && let Err(limited) = issuer.limits.client(&client.client.id)
            {
                crate::metrics::client_authentication("rate_limited");
                return Err(super::rate_limited(limited));
            }
            crate::metrics::client_authentication("ok");
            if let Some(notes) = extensions.get::<super::RequestNotes>() {
                notes.set_client_id(&client.client.id);
            }
            Ok(client)
        }
        Err(IssuerError::InvalidClient) => {
            crate::metrics::client_authentication("invalid_client");
            if let Some(ip) = client_ip(extensions) {
                issuer.limits.failed_auth(ip);
            }
            Err(IssuerError::InvalidClient)
        }
        Err(other) => Err(other),
    }
}

/// HTTP Basic credentials, if the request carries an `Authorization: Basic` header.
/// Id and secret are form-urlencoded inside the Base64, per RFC 6749 §2.3.1.
pub(crate) fn basic(headers: &HeaderMap) -> Result<Option<Credentials>, IssuerError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(IssuerError::InvalidRequest(
            "several Authorization headers".into(),
        ));
    }
    let value = value.to_str().map_err(|_| IssuerError::InvalidClient)?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(IssuerError::InvalidClient);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(IssuerError::InvalidClient);
    }
    let decoded = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| IssuerError::InvalidClient)?,
    );
    let text = std::str::from_utf8(&decoded).map_err(|_| IssuerError::InvalidClient)?;
    let (id, secret) = text.split_once(':').ok_or(IssuerError::InvalidClient)?;
    let id = form_decode(id).ok_or(IssuerError::InvalidClient)?;
    let secret = Zeroizing::new(form_decode(secret).ok_or(IssuerError::InvalidClient)?);
    if id.is_empty() || id.len() > 128 {
        return Err(IssuerError::InvalidClient);
    }
    Ok(Some(Credentials::Basic { id, secret }))
}

/// Requires Basic credentials (confidential clients).
pub(crate) fn require_basic(headers: &HeaderMap) -> Result<Credentials, IssuerError> {
    basic(headers)?.ok_or(IssuerError::InvalidClient)
}

/// `application/x-www-form-urlencoded` decoding of one component.
fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The caller's address and user agent, for audit records.
pub(crate) fn context(headers: &HeaderMap, extensions: &axum::http::Extensions) -> RequestContext {
    RequestContext {
        ip: client_ip(extensions).map(|ip| ip.to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("header"),
        );
        h
    }

    #[test]
    fn basic_credentials() {
        let enc = base64::engine::general_purpose::STANDARD.encode("my%20client:s3cr%3At+x");
        match basic(&with(&format!("Basic {enc}"))) {
            Ok(Some(Credentials::Basic { id, secret })) => {
                assert_eq!(id, "my client");
                assert_eq!(&*secret, "s3cr:t x");
            }
            other => panic!("{other:?}"),
        }
        assert!(basic(&HeaderMap::new()).expect("none").is_none());
        for bad in ["Basic !!!", "Bearer abc", "Basic", "Basic Zm9v"] {
            assert!(
                matches!(basic(&with(bad)), Err(IssuerError::InvalidClient)),
                "{bad}"
            );
        }
        assert_eq!(form_decode("%zz"), None);
        assert_eq!(form_decode("%4"), None);
    }
}
