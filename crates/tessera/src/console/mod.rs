//! `/admin`: the admin console. Server-rendered HTML, no JavaScript, its
//! one stylesheet served from the binary.
//!
//! Sign-in is with an admin client's id and secret (the same check as the
//! admin API, failures counted against the caller's address), or with a
//! one-time link from `tessera admin login --client ID`, which opens a page
//! whose button signs in (a link preview or a mail scanner fetching the
//! link uses nothing). Either gives a cookie holding the admin client's id,
//! an expiry, a nonce and a fingerprint of the client's current secret,
//! under an HMAC (a key derived from the master key, so every instance
//! reads every other's cookies). Each request looks the client up again:
//! disabling it, removing `admin` or rotating its secret ends its console
//! sessions at once; signing out records the cookie's nonce in the store,
//! so a copy of the cookie is refused too. The cookie is `HttpOnly`,
//! `SameSite=Strict`, and over HTTPS `__Host-` prefixed and `Secure`; only
//! a plain-HTTP loopback issuer (a developer's machine) gets a plain one.
//! Sign-in forms refuse cross-site posts; every other form carries a CSRF
//! token bound to the cookie. Destructive actions ask again: revoking
//! sessions needs a confirmation step, an emergency key revocation the key
//! id typed out. Sign-ins are audit records (`console.signed_in`).

use std::fmt::Write as _;
use std::sync::Arc;

mod html;
mod pages;
mod signin;

use html::{page, redirect};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use serde::Deserialize;
use tessera_core::sealed::MacKey;
use tessera_core::time::{Clock as _, SystemClock};
use tessera_issuer::Issuer;
use tessera_issuer::clients::{Actor, AuthenticatedClient};
use tessera_revocation::KeyManager;
use tessera_store::{Permission, Store};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How long a console sign-in lasts.
const SESSION_SECS: i64 = 8 * 3600;
/// How long a login link may wait to be used.
pub const LINK_SECS: i64 = 10 * 60;
/// The cookie over HTTPS (`__Host-`: `Secure`, `Path=/`, no `Domain`, so a
/// sibling subdomain cannot plant one) and on a loopback HTTP issuer.
const COOKIE_SECURE: &str = "__Host-tessera_console";
const COOKIE_LOOPBACK: &str = "tessera_console";
/// Purpose labels of the derived MAC keys.
const COOKIE_PURPOSE: &str = "tessera console cookie v1";
const CSRF_PURPOSE: &str = "tessera console csrf v1";
const LINK_PURPOSE: &str = "tessera console login link v1";
/// Longest subject or audit filter the console reads.
const MAX_FIELD: usize = 256;

/// The console's state.
pub struct Console {
    issuer: Arc<Issuer>,
    manager: Arc<KeyManager>,
    keys_admin: crate::keys::IssuerKeyAdmin,
    store: Arc<dyn Store>,
    cookies: MacKey,
    csrf: MacKey,
    links: MacKey,
    secure: bool,
}

/// Whether `issuer_url` is plain HTTP on a loopback host (the only case
/// where the console's cookie is not `Secure`).
pub fn loopback_http(issuer_url: &str) -> bool {
    let Some(rest) = issuer_url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Console {
    pub fn new(
        issuer: Arc<Issuer>,
        manager: Arc<KeyManager>,
        store: Arc<dyn Store>,
        master: &tessera_core::MasterKey,
        issuer_url: &str,
    ) -> Console {
        // `Secure` cookies are never sent over plain HTTP: a plain one only
        // for a loopback issuer (a developer's machine).
        let secure = !loopback_http(issuer_url);
        if secure && !issuer_url.starts_with("https://") {
            tracing::warn!(issuer = %issuer_url, "the admin console's cookie is Secure but the issuer is plain HTTP and not loopback: set `issuer` to the HTTPS address it is served at, or console sign-in will not stick");
        }
        Console {
            keys_admin: crate::keys::IssuerKeyAdmin(issuer.clone()),
            issuer,
            manager,
            store,
            cookies: master.mac_key(COOKIE_PURPOSE),
            csrf: master.mac_key(CSRF_PURPOSE),
            links: master.mac_key(LINK_PURPOSE),
            secure,
        }
    }

    fn cookie_name(&self) -> &'static str {
        if self.secure {
            COOKIE_SECURE
        } else {
            COOKIE_LOOPBACK
        }
    }
}

/// The console's routes (HTML pages, described in the OpenAPI document
/// under the `console` tag).
pub fn routes(console: Arc<Console>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(signin::index))
        .routes(routes!(signin::style))
        .routes(routes!(signin::sign_in))
        .routes(routes!(signin::link))
        .routes(routes!(signin::link_sign_in))
        .routes(routes!(signin::sign_out))
        .routes(routes!(pages::sessions_page))
        .routes(routes!(pages::revoke_session))
        .routes(routes!(pages::revoke_subject))
        .routes(routes!(pages::keys_page))
        .routes(routes!(pages::rotate_keys))
        .routes(routes!(pages::revoke_key))
        .routes(routes!(pages::clients_page))
        .routes(routes!(pages::client_page))
        .routes(routes!(pages::client_action))
        .routes(routes!(pages::audit_page))
        .with_state(console)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}

/// 32 random hex digits (a nonce that makes each signed value unique and a
/// login link single-use); `None` if the system has no randomness.
fn random_hex() -> Option<String> {
    let bytes = tessera_core::random::<16>().ok()?;
    Some(bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}

/// `payload.tag`, both base64url.
fn signed(key: &MacKey, payload: &str) -> String {
    format!(
        "{}.{}",
        b64(payload.as_bytes()),
        b64(&key.tag(payload.as_bytes()))
    )
}

/// The payload of a [`signed`] value, if its tag is right.
fn verified(key: &MacKey, value: &str) -> Option<String> {
    let (payload, tag) = value.split_once('.')?;
    let payload = unb64(payload)?;
    let tag = unb64(tag)?;
    key.verify(&payload, &tag)
        .then(|| String::from_utf8(payload).ok())
        .flatten()
}

/// A signed value's contents: `v1|client_id|expires|nonce|fingerprint`.
struct Payload {
    client_id: String,
    expires: i64,
    nonce: String,
    fingerprint: String,
}

/// The payload if well-formed and unexpired at `now`.
fn read_payload(payload: &str, now: i64) -> Option<Payload> {
    let mut parts = payload.split('|');
    let (Some("v1"), Some(id), Some(expires), Some(nonce), Some(fingerprint), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let expires = expires.parse::<i64>().ok()?;
    (expires > now).then(|| Payload {
        client_id: id.to_owned(),
        expires,
        nonce: nonce.to_owned(),
        fingerprint: fingerprint.to_owned(),
    })
}

/// Binds a signed value to the client's current secret: rotating the
/// secret voids every console cookie and link made before.
fn fingerprint(key: &MacKey, client: &tessera_store::Client) -> String {
    let tag =
        key.tag(format!("fp|{}", client.secret_hash.as_deref().unwrap_or_default()).as_bytes());
    b64(&tag[..12])
}

fn new_payload(key: &MacKey, client: &tessera_store::Client, lifetime: i64) -> Option<String> {
    let id = client.id.as_str();
    if id.contains('|') || id.is_empty() || id.len() > 128 {
        return None;
    }
    let expires = SystemClock.now().unix_seconds().saturating_add(lifetime);
    Some(format!(
        "v1|{id}|{expires}|{}|{}",
        random_hex()?,
        fingerprint(key, client)
    ))
}

/// A one-time login link's token for admin client `client`
/// (`tessera admin login`).
pub fn login_token(
    master: &tessera_core::MasterKey,
    client: &tessera_store::Client,
) -> Option<String> {
    let key = master.mac_key(LINK_PURPOSE);
    Some(signed(&key, &new_payload(&key, client, LINK_SECS)?))
}

/// The signed-in admin of a console request, with the request's CSRF token.
struct Admin {
    client: Arc<AuthenticatedClient>,
    csrf: String,
    /// The cookie's nonce and expiry (for signing out).
    nonce: String,
    expires: i64,
}

/// The console cookie's value: exactly one cookie of that name, or none
/// (two would let a planted one shadow the real one).
fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(n, _)| *n == name)
        .map(|(_, value)| value);
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

fn csrf_for(console: &Console, cookie: &str) -> String {
    b64(&console.csrf.tag(cookie.as_bytes()))
}

/// A usable admin client: enabled, confidential, with `admin`.
async fn admin_client(console: &Console, id: &str) -> Option<Arc<AuthenticatedClient>> {
    console
        .issuer
        .clients()
        .get(id)
        .await
        .ok()
        .flatten()
        .filter(|c| {
            c.client.is_enabled()
                && c.client.kind == tessera_store::ClientKind::Confidential
                && c.has(Permission::Admin)
        })
}

/// The admin a request's cookie signs in, if it is valid and the client
/// still may use the console.
async fn signed_admin(console: &Console, headers: &HeaderMap) -> Option<Admin> {
    let cookie = cookie_value(headers, console.cookie_name())?;
    let payload = verified(&console.cookies, cookie)?;
    let now = SystemClock.now();
    let payload = read_payload(&payload, now.unix_seconds())?;
    let client = admin_client(console, &payload.client_id).await?;
    if payload.fingerprint != fingerprint(&console.cookies, &client.client) {
        return None;
    }
    // Signed out (on any instance): this cookie's nonce is recorded.
    match console
        .store
        .is_remembered(&format!("console-signed-out:{}", payload.nonce), now)
        .await
    {
        Ok(false) => {}
        Ok(true) => return None,
        Err(error) => {
            tracing::warn!(%error, "console: cannot check the sign-out record; refusing");
            return None;
        }
    }
    Some(Admin {
        client,
        csrf: csrf_for(console, cookie),
        nonce: payload.nonce,
        expires: payload.expires,
    })
}

impl FromRequestParts<Arc<Console>> for Admin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Self, Self::Rejection> {
        let admin = signed_admin(console, &parts.headers)
            .await
            .ok_or_else(|| redirect("/admin"))?;
        if let Some(notes) = parts.extensions.get::<tessera_issuer::http::RequestNotes>() {
            notes.set_client_id(&admin.client.client.id);
        }
        Ok(admin)
    }
}

impl Admin {
    /// The refusal of a form whose CSRF token is not this sign-in's.
    fn refuse(&self, csrf: &str) -> Option<Response> {
        use subtle::ConstantTimeEq as _;
        if bool::from(self.csrf.as_bytes().ct_eq(csrf.as_bytes())) {
            None
        } else {
            Some(page(
                StatusCode::FORBIDDEN,
                "Refused",
                None,
                "<p class=error>This form is stale or was not sent from the console. Reload the page and try again.</p>"
                    .to_owned(),
            ))
        }
    }

    fn actor(&self) -> Actor<'_> {
        Actor::Client(&self.client.client.id)
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use tessera_core::time::Timestamp;

    use super::html::{esc, url, when};
    use super::signin::cross_site;
    use super::*;

    fn client(id: &str, secret_hash: &str) -> tessera_store::Client {
        tessera_store::Client {
            id: id.to_owned(),
            name: "ops".to_owned(),
            kind: tessera_store::ClientKind::Confidential,
            secret_hash: Some(secret_hash.to_owned()),
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            allowed: vec![Permission::Admin],
            scopes: Vec::new(),
            audiences: Vec::new(),
            sessions_for: Vec::new(),
            policy: serde_json::json!({}),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            disabled_at: None,
        }
    }

    #[test]
    fn signed_values_verify_only_untouched_unexpired_and_current() {
        let master = tessera_core::MasterKey::generate().expect("key");
        let key = master.mac_key(COOKIE_PURPOSE);
        let admin = client("admin-1", "sha256:one");
        let payload = new_payload(&key, &admin, 60).expect("payload");
        let value = signed(&key, &payload);
        let read = verified(&key, &value).expect("verifies");
        let now = SystemClock.now().unix_seconds();
        let parsed = read_payload(&read, now).expect("unexpired");
        assert_eq!(parsed.client_id, "admin-1");
        assert_eq!(parsed.fingerprint, fingerprint(&key, &admin));
        assert_ne!(
            parsed.fingerprint,
            fingerprint(&key, &client("admin-1", "sha256:two")),
            "a rotated secret voids it"
        );
        assert!(read_payload(&read, now + 61).is_none(), "expired");
        // Another purpose's key, a changed payload, a changed tag: refused.
        assert_eq!(verified(&master.mac_key(LINK_PURPOSE), &value), None);
        let (p, t) = value.split_once('.').expect("dot");
        let forged = signed(&key, &payload.replace("admin-1", "admin-2"));
        assert_eq!(
            verified(
                &key,
                &format!("{}.{t}", forged.split_once('.').expect("dot").0)
            ),
            None
        );
        assert_eq!(verified(&key, &format!("{p}.{}", b64(&[0u8; 32]))), None);
        assert_eq!(verified(&key, "garbage"), None);
        // Ids that would break the format are refused.
        assert_eq!(new_payload(&key, &client("a|b", "x"), 60), None);
        assert_eq!(new_payload(&key, &client("", "x"), 60), None);
    }

    #[test]
    fn only_plain_http_loopback_issuers_get_a_plain_cookie() {
        for url in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080/",
            "http://127.0.0.2",
        ] {
            assert!(loopback_http(url), "{url}");
        }
        for url in [
            "https://127.0.0.1:8080",
            "http://localhost.corp.example",
            "http://127.0.0.1.nip.io",
            "http://0.0.0.0:8080",
            "http://auth.example",
            "http://[::2]:8080",
        ] {
            assert!(!loopback_http(url), "{url}");
        }
    }

    #[test]
    fn a_second_cookie_of_the_same_name_is_no_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; tessera_console=x"),
        );
        assert_eq!(cookie_value(&headers, COOKIE_LOOPBACK), Some("x"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("tessera_console=x; tessera_console=y"),
        );
        assert_eq!(cookie_value(&headers, COOKIE_LOOPBACK), None);
    }

    #[test]
    fn cross_site_sign_in_posts_are_recognised() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        let host = ("host", "auth.example");
        assert!(!cross_site(&headers(&[host])));
        assert!(!cross_site(&headers(&[
            host,
            ("origin", "https://auth.example")
        ])));
        assert!(cross_site(&headers(&[
            host,
            ("origin", "https://evil.example")
        ])));
        assert!(cross_site(&headers(&[host, ("origin", "null")])));
        assert!(cross_site(&headers(&[
            host,
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(cross_site(&headers(&[
            host,
            ("sec-fetch-site", "same-site")
        ])));
        assert!(!cross_site(&headers(&[
            host,
            ("origin", "null"),
            ("sec-fetch-site", "same-origin")
        ])));
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(url("a b/ü"), "a%20b%2F%C3%BC");
        assert_eq!(
            when(Timestamp(1_796_321_364_000)),
            "2026-12-03 18:09:24 UTC"
        );
    }
}
