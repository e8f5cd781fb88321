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

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use tessera_core::sealed::MacKey;
use tessera_core::time::{Clock as _, SystemClock, Timestamp};
use tessera_issuer::Issuer;
use tessera_issuer::clients::{Actor, AuthenticatedClient};
use tessera_revocation::{KeyAdmin as _, KeyManager};
use tessera_store::{AuditFilter, KeyState, Permission, Store};
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
        .routes(routes!(index))
        .routes(routes!(style))
        .routes(routes!(sign_in))
        .routes(routes!(link))
        .routes(routes!(link_sign_in))
        .routes(routes!(sign_out))
        .routes(routes!(sessions_page))
        .routes(routes!(revoke_session))
        .routes(routes!(revoke_subject))
        .routes(routes!(keys_page))
        .routes(routes!(rotate_keys))
        .routes(routes!(revoke_key))
        .routes(routes!(clients_page))
        .routes(routes!(client_page))
        .routes(routes!(client_action))
        .routes(routes!(audit_page))
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

/// HTML-escapes `text`.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Form-urlencodes `text` for a link.
fn url(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// A time for people: `2026-12-03 18:52:06 UTC`.
fn when(t: Timestamp) -> String {
    t.to_rfc3339().replacen('T', " ", 1).replace('Z', " UTC")
}

fn when_opt(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "—".to_owned(), when)
}

fn redirect(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

/// A whole page: the layout, the navigation when signed in, `body`.
fn page(status: StatusCode, title: &str, admin: Option<&Admin>, body: String) -> Response {
    let mut html = String::with_capacity(body.len() + 1024);
    let _ = write!(
        html,
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width, initial-scale=1\">\
         <title>{} · Tessera</title><link rel=stylesheet href=\"/admin/style.css\"></head><body>\
         <header><strong>Tessera</strong>",
        esc(title)
    );
    if let Some(admin) = admin {
        let _ = write!(
            html,
            "<nav><a href=\"/admin/sessions\">Sessions</a><a href=\"/admin/keys\">Keys</a>\
             <a href=\"/admin/clients\">Clients</a><a href=\"/admin/audit\">Audit</a></nav>\
             <form method=post action=\"/admin/logout\" class=inline>\
             <input type=hidden name=csrf value=\"{}\"><span class=who>{}</span>\
             <button>Sign out</button></form>",
            esc(&admin.csrf),
            esc(&admin.client.client.id)
        );
    }
    let _ = write!(
        html,
        "</header><main><h1>{}</h1>{body}</main></body></html>",
        esc(title)
    );
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                ),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        html,
    )
        .into_response()
}

fn ok_page(title: &str, admin: &Admin, body: String) -> Response {
    page(StatusCode::OK, title, Some(admin), body)
}

fn failure(admin: &Admin, error: impl std::fmt::Display) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Not done",
        Some(admin),
        format!("<p class=error>{}</p>", esc(&error.to_string())),
    )
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=hidden name=\"{}\" value=\"{}\">",
        esc(name),
        esc(value)
    )
}

fn sign_in_page(status: StatusCode, message: Option<&str>) -> Response {
    let mut body = String::new();
    if let Some(message) = message {
        let _ = write!(body, "<p class=error>{}</p>", esc(message));
    }
    body.push_str(
        "<form method=post action=\"/admin/login\" class=card>\
         <label>Admin client id <input name=client_id autocomplete=username required></label>\
         <label>Client secret <input name=client_secret type=password autocomplete=current-password required></label>\
         <button>Sign in</button></form>\
         <p class=hint>Or run <code>tessera admin login --client ID</code> on the server for a one-time link.</p>",
    );
    page(status, "Sign in", None, body)
}

fn set_cookie(console: &Console, value: &str) -> HeaderValue {
    let (name, attributes) = if console.secure {
        (COOKIE_SECURE, "; Path=/; Secure")
    } else {
        (COOKIE_LOOPBACK, "; Path=/admin")
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}{attributes}"
    ))
    .unwrap_or_else(|_| clear_cookie(console))
}

fn clear_cookie(console: &Console) -> HeaderValue {
    HeaderValue::from_static(if console.secure {
        "__Host-tessera_console=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"
    } else {
        "tessera_console=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0"
    })
}

/// Signs `client` in: an audit record, the cookie, then the sessions page.
async fn signed_in(
    console: &Console,
    client: &tessera_store::Client,
    method: &str,
    headers: &HeaderMap,
    extensions: &Extensions,
) -> Response {
    let Some(payload) = new_payload(&console.cookies, client, SESSION_SECS) else {
        return sign_in_page(StatusCode::BAD_REQUEST, Some("That client cannot sign in."));
    };
    let ctx = context(headers, extensions);
    let record = tessera_store::AuditRecord {
        seq: 0,
        at: SystemClock.now(),
        kind: tessera_store::AuditKind::from("console.signed_in"),
        subject: None,
        session_id: None,
        client_id: Some(client.id.clone()),
        device: tessera_store::Device {
            ip: ctx.ip,
            user_agent: ctx.user_agent,
            label: None,
        },
        detail: serde_json::json!({ "method": method }),
    };
    if let Err(error) = console.store.append_audit(&record).await {
        tracing::warn!(%error, "console sign-in: cannot write the audit record; refusing");
        return sign_in_page(
            StatusCode::SERVICE_UNAVAILABLE,
            Some("The store is unavailable; try again."),
        );
    }
    if let Some(notes) = extensions.get::<tessera_issuer::http::RequestNotes>() {
        notes.set_client_id(&client.id);
    }
    tracing::info!(client_id = %client.id, method, "console sign-in");
    let cookie = signed(&console.cookies, &payload);
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::LOCATION,
                HeaderValue::from_static("/admin/sessions"),
            ),
            (header::SET_COOKIE, set_cookie(console, &cookie)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response()
}

/// Whether a sign-in post may come from another page than the console's
/// own (login CSRF). A browser says where the request comes from in
/// `Sec-Fetch-Site` (only `same-origin`, or `none` for a typed address,
/// passes); without it, `Origin` must name this host. (With `no-referrer`
/// a browser may send `Origin: null` even from the same origin, so
/// `Sec-Fetch-Site` comes first.)
fn cross_site(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (text("origin"), text("host")) {
        (None, _) => false,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_none_or(|(_, authority)| !authority.eq_ignore_ascii_case(host)),
        (Some(_), None) => true,
    }
}

fn refused_cross_site() -> Response {
    sign_in_page(
        StatusCode::FORBIDDEN,
        Some("Sign in from the console's own page."),
    )
}

/// The console: the sign-in form, or the sessions page when signed in.
#[utoipa::path(operation_id = "console_index", get, path = "/admin", tag = "console", responses((status = 200, description = "HTML: the sign-in form"), (status = 303, description = "Signed in: to the sessions page")))]
async fn index(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    match signed_admin(&console, &headers).await {
        Some(_) => redirect("/admin/sessions"),
        None => sign_in_page(StatusCode::OK, None),
    }
}

/// The console's stylesheet.
#[utoipa::path(operation_id = "console_style", get, path = "/admin/style.css", tag = "console", responses((status = 200, description = "CSS")))]
async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("console.css"),
    )
        .into_response()
}

#[derive(Deserialize)]
struct SignInForm {
    client_id: String,
    client_secret: String,
}

/// Signs in with an admin client's credentials.
#[utoipa::path(operation_id = "console_sign_in", post, path = "/admin/login", tag = "console", responses((status = 303, description = "Signed in (cookie set)"), (status = 401, description = "HTML: refused"), (status = 403, description = "HTML: not an admin, or posted from another site")))]
async fn sign_in(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    extensions: Extensions,
    form: Result<axum::Form<SignInForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if cross_site(&headers) {
        return refused_cross_site();
    }
    let Ok(axum::Form(form)) = form else {
        return sign_in_page(
            StatusCode::BAD_REQUEST,
            Some("Send the client id and secret."),
        );
    };
    // The admin API's own check (failed attempts count against this
    // address; past the limit every sign-in from it is refused).
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", url(&form.client_id), url(&form.client_secret)).as_bytes());
    let mut basic_headers = HeaderMap::new();
    let Ok(value) = HeaderValue::from_str(&format!("Basic {basic}")) else {
        return sign_in_page(StatusCode::UNAUTHORIZED, Some("Wrong client id or secret."));
    };
    basic_headers.insert(header::AUTHORIZATION, value);
    match tessera_issuer::http::authenticate_admin(&console.issuer, &basic_headers, &extensions)
        .await
    {
        Ok(client) => signed_in(&console, &client.client, "secret", &headers, &extensions).await,
        Err(error) => {
            let status = error.into_response().status();
            let message = match status {
                StatusCode::TOO_MANY_REQUESTS => {
                    "Too many attempts from this address; wait a minute."
                }
                StatusCode::FORBIDDEN => "That client is not an admin.",
                _ => "Wrong client id or secret.",
            };
            sign_in_page(status, Some(message))
        }
    }
}

#[derive(Deserialize)]
struct LinkQuery {
    token: String,
}

/// The checked payload of a login link, and its client, if the link is
/// valid now (not yet whether it was used).
async fn link_client(
    console: &Console,
    token: &str,
) -> Option<(Payload, Arc<AuthenticatedClient>)> {
    let payload = verified(&console.links, token)?;
    let payload = read_payload(&payload, SystemClock.now().unix_seconds())?;
    let client = admin_client(console, &payload.client_id).await?;
    (payload.fingerprint == fingerprint(&console.links, &client.client))
        .then_some((payload, client))
}

fn link_refused() -> Response {
    sign_in_page(
        StatusCode::UNAUTHORIZED,
        Some("This sign-in link is used, expired or not valid. Run `tessera admin login` again."),
    )
}

/// A one-time link from `tessera admin login`: a page whose button signs
/// in. Opening the link uses nothing, so a link preview or a mail scanner
/// that fetches it cannot take the sign-in.
#[utoipa::path(operation_id = "console_link", get, path = "/admin/login", tag = "console", params(("token" = String, Query, description = "The link's token")), responses((status = 200, description = "HTML: sign in as the link's client"), (status = 401, description = "HTML: the link is used, expired or forged")))]
async fn link(
    State(console): State<Arc<Console>>,
    query: Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return link_refused();
    };
    let Some((payload, client)) = link_client(&console, &query.token).await else {
        return link_refused();
    };
    let used = console
        .store
        .is_remembered(
            &format!("console-link:{}", payload.nonce),
            SystemClock.now(),
        )
        .await;
    if !matches!(used, Ok(false)) {
        return link_refused();
    }
    page(
        StatusCode::OK,
        "Sign in",
        None,
        format!(
            "<form method=post action=\"/admin/login/link\" class=card>{}\
             <p>Sign in to the console as <code>{}</code> ({}). This link works once.</p>\
             <button>Sign in</button></form>",
            hidden("token", &query.token),
            esc(&client.client.id),
            esc(&client.client.name)
        ),
    )
}

/// Signs in with a one-time link (the button of its page).
#[utoipa::path(operation_id = "console_link_sign_in", post, path = "/admin/login/link", tag = "console", responses((status = 303, description = "Signed in (cookie set)"), (status = 401, description = "HTML: the link is used, expired or forged"), (status = 403, description = "HTML: posted from another site")))]
async fn link_sign_in(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    extensions: Extensions,
    form: Result<axum::Form<LinkQuery>, axum::extract::rejection::FormRejection>,
) -> Response {
    if cross_site(&headers) {
        return refused_cross_site();
    }
    let Ok(axum::Form(form)) = form else {
        return link_refused();
    };
    let Some((payload, client)) = link_client(&console, &form.token).await else {
        return link_refused();
    };
    // One use, across every instance sharing the store.
    let now = SystemClock.now();
    let until = Timestamp::from_millis(payload.expires.saturating_mul(1000));
    match console
        .store
        .remember_proof(&format!("console-link:{}", payload.nonce), now, until)
        .await
    {
        Ok(true) => signed_in(&console, &client.client, "link", &headers, &extensions).await,
        Ok(false) => link_refused(),
        Err(error) => {
            tracing::warn!(%error, "console link: store unavailable");
            sign_in_page(
                StatusCode::SERVICE_UNAVAILABLE,
                Some("The store is unavailable; try again."),
            )
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// Signs out: the cookie's nonce is recorded (a copy of the cookie is
/// refused from now on, on every instance) and the cookie cleared.
#[utoipa::path(operation_id = "console_sign_out", post, path = "/admin/logout", tag = "console", responses((status = 303, description = "Signed out")))]
async fn sign_out(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    form: Result<axum::Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if let (Some(admin), Ok(axum::Form(form))) = (signed_admin(&console, &headers).await, form)
        && admin.refuse(&form.csrf).is_none()
    {
        let until = Timestamp::from_millis(admin.expires.saturating_mul(1000));
        let recorded = console
            .store
            .remember_proof(
                &format!("console-signed-out:{}", admin.nonce),
                SystemClock.now(),
                until,
            )
            .await;
        if let Err(error) = recorded {
            tracing::warn!(%error, "console sign-out: cannot record it; the cookie is only cleared");
        }
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, HeaderValue::from_static("/admin")),
            (header::SET_COOKIE, clear_cookie(&console)),
        ],
    )
        .into_response()
}

#[derive(Deserialize)]
struct SubjectQuery {
    subject: Option<String>,
}

/// Sessions by subject.
#[utoipa::path(operation_id = "console_sessions_page", get, path = "/admin/sessions", tag = "console", params(("subject" = Option<String>, Query, description = "The subject")), responses((status = 200, description = "HTML")))]
async fn sessions_page(
    State(console): State<Arc<Console>>,
    admin: Admin,
    Query(query): Query<SubjectQuery>,
) -> Response {
    let subject = query.subject.unwrap_or_default();
    if subject.len() > MAX_FIELD {
        return failure(&admin, "The subject is longer than 256 bytes.");
    }
    let mut body = format!(
        "<form method=get class=search><label>Subject <input name=subject value=\"{}\" required></label><button>Show sessions</button></form>",
        esc(&subject)
    );
    if subject.is_empty() {
        return ok_page("Sessions", &admin, body);
    }
    let sessions = match console
        .issuer
        .managed_sessions(&admin.client, &subject)
        .await
    {
        Ok(s) => s,
        Err(e) => return failure(&admin, e),
    };
    if sessions.is_empty() {
        let _ = write!(
            body,
            "<p>No live sessions for <b>{}</b>.</p>",
            esc(&subject)
        );
        return ok_page("Sessions", &admin, body);
    }
    let _ = write!(
        body,
        "<p>{} live session(s) for <b>{}</b>.</p><div class=scroll><table><thead><tr>\
         <th>Device</th><th>Client</th><th>Created</th><th>Last used</th><th>Expires</th><th></th>\
         </tr></thead><tbody>",
        sessions.len(),
        esc(&subject)
    );
    for s in &sessions {
        let device = [&s.device.label, &s.device.user_agent, &s.device.ip]
            .into_iter()
            .flatten()
            .map(|d| esc(d))
            .collect::<Vec<_>>()
            .join("<br>");
        let _ = write!(
            body,
            "<tr data-session=\"{sid}\"><td>{device}</td><td>{client}</td><td>{created}</td><td>{used}</td><td>{expires}</td>\
             <td><form method=post action=\"/admin/sessions/revoke\">{csrf}{sidf}{subj}<button class=danger>Revoke</button></form></td></tr>",
            sid = esc(&s.id),
            device = if device.is_empty() {
                "—".to_owned()
            } else {
                device
            },
            client = esc(&s.client_id),
            created = when(s.created_at),
            used = when(s.last_used_at),
            expires = when(s.idle_expires_at.min(s.absolute_expires_at)),
            csrf = hidden("csrf", &admin.csrf),
            sidf = hidden("sid", &s.id),
            subj = hidden("subject", &subject),
        );
    }
    let _ = write!(
        body,
        "</tbody></table></div><form method=post action=\"/admin/sessions/revoke-all\">{}{}\
         <button class=danger>Revoke all of {}'s sessions</button></form>",
        hidden("csrf", &admin.csrf),
        hidden("subject", &subject),
        esc(&subject)
    );
    ok_page("Sessions", &admin, body)
}

/// Who acted, for the audit record: the address and the browser.
fn context(headers: &HeaderMap, extensions: &Extensions) -> tessera_issuer::RequestContext {
    tessera_issuer::RequestContext {
        ip: tessera_issuer::http::client_ip_of(extensions),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect()),
    }
}

#[derive(Deserialize)]
struct RevokeSessionForm {
    csrf: String,
    sid: String,
    subject: Option<String>,
    confirm: Option<String>,
}

/// Revokes one session (after a confirmation step).
#[utoipa::path(operation_id = "console_revoke_session", post, path = "/admin/sessions/revoke", tag = "console", responses((status = 200, description = "HTML: confirm, or done")))]
async fn revoke_session(
    State(console): State<Arc<Console>>,
    admin: Admin,
    headers: HeaderMap,
    extensions: Extensions,
    axum::Form(form): axum::Form<RevokeSessionForm>,
) -> Response {
    if let Some(refused) = admin.refuse(&form.csrf) {
        return refused;
    }
    let subject = form.subject.unwrap_or_default();
    if form.confirm.as_deref() != Some("yes") {
        return ok_page(
            "Revoke this session?",
            &admin,
            format!(
                "<p>Session <code>{}</code> of <b>{}</b> ends now: its refresh token stops working and verifiers refuse its access tokens within a second.</p>\
                 <form method=post action=\"/admin/sessions/revoke\">{}{}{}{}<button class=danger>Yes, revoke it</button> \
                 <a href=\"/admin/sessions?subject={}\">Cancel</a></form>",
                esc(&form.sid),
                esc(&subject),
                hidden("csrf", &admin.csrf),
                hidden("sid", &form.sid),
                hidden("subject", &subject),
                hidden("confirm", "yes"),
                url(&subject)
            ),
        );
    }
    let ctx = context(&headers, &extensions);
    match console
        .issuer
        .end_session(&admin.client, &form.sid, &ctx)
        .await
    {
        Ok(_) => ok_page(
            "Session revoked",
            &admin,
            format!(
                "<p class=done>Session <code>{}</code> has ended.</p><p><a href=\"/admin/sessions?subject={}\">Back to {}'s sessions</a></p>",
                esc(&form.sid),
                url(&subject),
                esc(&subject)
            ),
        ),
        Err(e) => failure(&admin, e),
    }
}

#[derive(Deserialize)]
struct RevokeSubjectForm {
    csrf: String,
    subject: String,
    confirm: Option<String>,
}

/// Revokes every session of a subject (after a confirmation step).
#[utoipa::path(operation_id = "console_revoke_subject", post, path = "/admin/sessions/revoke-all", tag = "console", responses((status = 200, description = "HTML: confirm, or done")))]
async fn revoke_subject(
    State(console): State<Arc<Console>>,
    admin: Admin,
    headers: HeaderMap,
    extensions: Extensions,
    axum::Form(form): axum::Form<RevokeSubjectForm>,
) -> Response {
    if let Some(refused) = admin.refuse(&form.csrf) {
        return refused;
    }
    if form.confirm.as_deref() != Some("yes") {
        return ok_page(
            "Revoke every session?",
            &admin,
            format!(
                "<p>Every live session of <b>{}</b> ends now.</p>\
                 <form method=post action=\"/admin/sessions/revoke-all\">{}{}{}<button class=danger>Yes, revoke them all</button> \
                 <a href=\"/admin/sessions?subject={}\">Cancel</a></form>",
                esc(&form.subject),
                hidden("csrf", &admin.csrf),
                hidden("subject", &form.subject),
                hidden("confirm", "yes"),
                url(&form.subject)
            ),
        );
    }
    let ctx = context(&headers, &extensions);
    match console
        .issuer
        .end_subject(&admin.client, &form.subject, &ctx)
        .await
    {
        Ok(n) => ok_page(
            "Sessions revoked",
            &admin,
            format!(
                "<p class=done>{n} session(s) of <b>{}</b> ended.</p><p><a href=\"/admin/sessions?subject={}\">Back</a></p>",
                esc(&form.subject),
                url(&form.subject)
            ),
        ),
        Err(e) => failure(&admin, e),
    }
}

/// The signing keys' timeline.
#[utoipa::path(operation_id = "console_keys_page", get, path = "/admin/keys", tag = "console", responses((status = 200, description = "HTML")))]
async fn keys_page(State(console): State<Arc<Console>>, admin: Admin) -> Response {
    let mut keys = match console.store.keys().await {
        Ok(k) => k,
        Err(e) => return failure(&admin, e),
    };
    keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
    let mut body = String::from(
        "<p>Newest first. A pending key is published and signs from its activation; a retired key still verifies until its tokens expire; a revoked key verifies nothing.</p>\
         <div class=scroll><table><thead><tr><th>Key id</th><th>Algorithm</th><th>State</th><th>Created</th><th>Activates</th><th>Retired</th><th>Expires</th><th></th></tr></thead><tbody>",
    );
    for k in &keys {
        let revoke = if k.state == KeyState::Revoked {
            String::new()
        } else {
            format!(
                "<form method=post action=\"/admin/keys/revoke\" class=stack>{}{}\
                 <label>Type the key id to revoke it <input name=confirm_kid autocomplete=off></label>\
                 <button class=danger>Emergency revoke</button></form>",
                hidden("csrf", &admin.csrf),
                hidden("kid", &k.kid)
            )
        };
        let _ = write!(
            body,
            "<tr data-kid=\"{kid}\" class=\"state-{state}\"><td><code>{kid}</code></td><td>{alg}</td><td><span class=\"badge {state}\">{state}</span></td>\
             <td>{created}</td><td>{activates}</td><td>{retired}</td><td>{expires}</td><td>{revoke}</td></tr>",
            kid = esc(&k.kid),
            alg = esc(k.alg.as_str()),
            state = k.state.as_str(),
            created = when(k.created_at),
            activates = when(k.activates_at),
            retired = when_opt(k.retired_at),
            expires = when_opt(k.expires_at),
        );
    }
    let _ = write!(
        body,
        "</tbody></table></div><form method=post action=\"/admin/keys/rotate\">{}<button>Rotate now</button> \
         <span class=hint>each algorithm gets a pending key that signs after the publish-ahead delay</span></form>",
        hidden("csrf", &admin.csrf)
    );
    ok_page("Keys", &admin, body)
}

/// Starts a key rotation.
#[utoipa::path(operation_id = "console_rotate_keys", post, path = "/admin/keys/rotate", tag = "console", responses((status = 200, description = "HTML: the pending keys")))]
async fn rotate_keys(
    State(console): State<Arc<Console>>,
    admin: Admin,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    if let Some(refused) = admin.refuse(&form.csrf) {
        return refused;
    }
    match console.manager.rotate(SystemClock.now()).await {
        Ok(pending) => {
            let mut body = String::from("<p class=done>Rotation started.</p><ul>");
            for k in &pending {
                let _ = write!(
                    body,
                    "<li><code>{}</code> ({}) signs from {}</li>",
                    esc(&k.kid),
                    esc(k.alg.as_str()),
                    when(k.activates_at)
                );
            }
            body.push_str("</ul><p><a href=\"/admin/keys\">Back to the keys</a></p>");
            tracing::warn!(client_id = %admin.client.client.id, "console: key rotation started");
            ok_page("Rotation started", &admin, body)
        }
        Err(e) => failure(&admin, e),
    }
}

#[derive(Deserialize)]
struct RevokeKeyForm {
    csrf: String,
    kid: String,
    confirm_kid: String,
}

/// Emergency-revokes a key (the key id typed out).
#[utoipa::path(operation_id = "console_revoke_key", post, path = "/admin/keys/revoke", tag = "console", responses((status = 200, description = "HTML: done"), (status = 400, description = "HTML: the typed key id did not match")))]
async fn revoke_key(
    State(console): State<Arc<Console>>,
    admin: Admin,
    axum::Form(form): axum::Form<RevokeKeyForm>,
) -> Response {
    if let Some(refused) = admin.refuse(&form.csrf) {
        return refused;
    }
    if !tessera_core::key::is_valid_kid(&form.kid) {
        return failure(&admin, "That is not a key id.");
    }
    if form.confirm_kid.trim() != form.kid {
        return failure(
            &admin,
            "The key id you typed does not match: nothing was revoked.",
        );
    }
    match console.manager.revoke(&form.kid, SystemClock.now()).await {
        Ok(revoked) => {
            console.keys_admin.key_revoked().await;
            tracing::warn!(client_id = %admin.client.client.id, kid = %form.kid, "console: key revoked");
            let replacement = revoked.replacement.as_ref().map_or_else(String::new, |k| {
                format!("<p>Now signing with <code>{}</code>.</p>", esc(&k.kid))
            });
            ok_page(
                "Key revoked",
                &admin,
                format!(
                    "<p class=done>Key <code>{}</code> is revoked: unpublished, and verifiers refuse its tokens.</p>{replacement}<p><a href=\"/admin/keys\">Back to the keys</a></p>",
                    esc(&form.kid)
                ),
            )
        }
        Err(e) => failure(&admin, e),
    }
}

/// Every client.
#[utoipa::path(operation_id = "console_clients_page", get, path = "/admin/clients", tag = "console", responses((status = 200, description = "HTML")))]
async fn clients_page(State(console): State<Arc<Console>>, admin: Admin) -> Response {
    let clients = match console.issuer.clients().list().await {
        Ok(c) => c,
        Err(e) => return failure(&admin, e),
    };
    let mut body = String::from(
        "<div class=scroll><table><thead><tr><th>Client</th><th>Name</th><th>Kind</th><th>Allowed</th><th>Enabled</th><th>Created</th></tr></thead><tbody>",
    );
    for c in &clients {
        let _ = write!(
            body,
            "<tr data-client=\"{id}\"><td><a href=\"/admin/clients/{uid}\"><code>{id}</code></a></td><td>{name}</td><td>{kind}</td><td>{allowed}</td><td>{enabled}</td><td>{created}</td></tr>",
            id = esc(&c.id),
            uid = url(&c.id),
            name = esc(&c.name),
            kind = if c.kind == tessera_store::ClientKind::Confidential {
                "confidential"
            } else {
                "public"
            },
            allowed = esc(&c
                .allowed
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")),
            enabled = if c.is_enabled() { "yes" } else { "<b>no</b>" },
            created = when(c.created_at),
        );
    }
    body.push_str("</tbody></table></div>");
    ok_page("Clients", &admin, body)
}

/// One client, with its actions.
#[utoipa::path(operation_id = "console_client_page", get, path = "/admin/clients/{id}", tag = "console", params(("id" = String, Path, description = "The client id")), responses((status = 200, description = "HTML")))]
async fn client_page(
    State(console): State<Arc<Console>>,
    admin: Admin,
    Path(id): Path<String>,
) -> Response {
    let c = match console.issuer.clients().show(&id).await {
        Ok(c) => c,
        Err(e) => return failure(&admin, e),
    };
    let row = |name: &str, value: String| format!("<tr><th>{name}</th><td>{value}</td></tr>");
    let mut body = String::from("<table class=facts>");
    body.push_str(&row("Client id", format!("<code>{}</code>", esc(&c.id))));
    body.push_str(&row("Name", esc(&c.name)));
    body.push_str(&row(
        "Kind",
        (if c.kind == tessera_store::ClientKind::Confidential {
            "confidential"
        } else {
            "public"
        })
        .to_owned(),
    ));
    body.push_str(&row(
        "Allowed",
        esc(&c
            .allowed
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")),
    ));
    body.push_str(&row("Scopes", esc(&c.scopes.join(" "))));
    body.push_str(&row("Audiences", esc(&c.audiences.join(" "))));
    body.push_str(&row("Opens sessions for", esc(&c.sessions_for.join(" "))));
    body.push_str(&row(
        "Enabled",
        if c.is_enabled() {
            "yes".to_owned()
        } else {
            format!("no (since {})", when_opt(c.disabled_at))
        },
    ));
    body.push_str(&row("Created", when(c.created_at)));
    body.push_str(&row("Updated", when(c.updated_at)));
    body.push_str("</table><div class=actions>");
    let action = |name: &str, label: &str, danger: bool, extra: &str| {
        format!(
            "<form method=post action=\"/admin/clients/{}/{name}\">{}{extra}<button{}>{label}</button></form>",
            url(&c.id),
            hidden("csrf", &admin.csrf),
            if danger { " class=danger" } else { "" }
        )
    };
    if c.is_enabled() {
        body.push_str(&action(
            "disable",
            "Disable",
            true,
            "<label class=check><input type=checkbox name=end_sessions value=yes> and end its sessions</label>",
        ));
    } else {
        body.push_str(&action("enable", "Enable", false, ""));
    }
    if c.kind == tessera_store::ClientKind::Confidential {
        body.push_str(&action(
            "rotate-secret",
            "Rotate secret",
            false,
            "<label>Old secret keeps working for <input name=overlap placeholder=\"e.g. 1h\" size=6></label>",
        ));
    }
    body.push_str("</div><p><a href=\"/admin/clients\">All clients</a></p>");
    ok_page("Client", &admin, body)
}

#[derive(Deserialize)]
struct ClientActionForm {
    csrf: String,
    end_sessions: Option<String>,
    overlap: Option<String>,
}

/// Disables, enables or rotates the secret of a client.
#[utoipa::path(operation_id = "console_client_action", post, path = "/admin/clients/{id}/{action}", tag = "console", params(("id" = String, Path, description = "The client id"), ("action" = String, Path, description = "`disable`, `enable` or `rotate-secret`")), responses((status = 200, description = "HTML: done (a new secret is shown once)")))]
async fn client_action(
    State(console): State<Arc<Console>>,
    admin: Admin,
    Path((id, action)): Path<(String, String)>,
    axum::Form(form): axum::Form<ClientActionForm>,
) -> Response {
    if let Some(refused) = admin.refuse(&form.csrf) {
        return refused;
    }
    let clients = console.issuer.clients();
    let back = format!(
        "<p><a href=\"/admin/clients/{}\">Back to the client</a></p>",
        url(&id)
    );
    let done = match action.as_str() {
        "disable" => clients
            .disable(&id, form.end_sessions.as_deref() == Some("yes"), admin.actor())
            .await
            .map(|(_, ended)| format!("<p class=done>Client <code>{}</code> is disabled; {ended} session(s) ended.</p>", esc(&id))),
        "enable" => clients
            .enable(&id, admin.actor())
            .await
            .map(|_| format!("<p class=done>Client <code>{}</code> is enabled.</p>", esc(&id))),
        "rotate-secret" => {
            let overlap = match form.overlap.as_deref().map(str::trim).filter(|o| !o.is_empty()) {
                None => None,
                Some(text) => match tessera_issuer::parse_duration(text) {
                    Some(d) => Some(d),
                    None => return failure(&admin, "The overlap must be a duration like 10m or 1h."),
                },
            };
            clients
                .rotate_secret(&id, overlap, admin.actor())
                .await
                .map(|(_, secret)| {
                    format!(
                        "<p class=done>New secret for <code>{}</code>, shown this once (only its digest is stored):</p><p><code class=secret>{}</code></p>",
                        esc(&id),
                        esc(&secret)
                    )
                })
        }
        _ => return failure(&admin, "Unknown action."),
    };
    match done {
        Ok(html) => {
            tracing::warn!(client_id = %admin.client.client.id, target = %id, action = %action, "console: client changed");
            ok_page("Client changed", &admin, html + &back)
        }
        Err(e) => failure(&admin, e),
    }
}

#[derive(Deserialize)]
struct AuditQuery {
    subject: Option<String>,
    session: Option<String>,
    client: Option<String>,
    kind: Option<String>,
    since: Option<String>,
    until: Option<String>,
    after: Option<i64>,
}

/// The audit trail, searchable and paginated.
#[utoipa::path(operation_id = "console_audit_page", get, path = "/admin/audit", tag = "console", responses((status = 200, description = "HTML")))]
async fn audit_page(
    State(console): State<Arc<Console>>,
    admin: Admin,
    Query(q): Query<AuditQuery>,
) -> Response {
    const PAGE: u32 = 50;
    let field = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let time = |name: &str, v: &Option<String>| -> Result<Option<Timestamp>, String> {
        match field(v) {
            None => Ok(None),
            Some(t) => Timestamp::parse(&t).map(Some).ok_or_else(|| {
                format!(
                    "{name}: {t:?} is not an RFC 3339 time (2026-12-03T18:00:00Z) or Unix seconds"
                )
            }),
        }
    };
    let input = |name: &str, label: &str, v: &Option<String>| {
        format!(
            "<label>{label} <input name={name} value=\"{}\"></label>",
            esc(v.as_deref().unwrap_or_default())
        )
    };
    let mut body = format!(
        "<form method=get class=search>{}{}{}{}{}{}<button>Search</button></form>",
        input("subject", "Subject", &q.subject),
        input("session", "Session", &q.session),
        input("client", "Client", &q.client),
        input("kind", "Kind", &q.kind),
        input("since", "Since", &q.since),
        input("until", "Until", &q.until),
    );
    if [
        &q.subject, &q.session, &q.client, &q.kind, &q.since, &q.until,
    ]
    .into_iter()
    .flatten()
    .any(|v| v.len() > MAX_FIELD)
    {
        body.push_str("<p class=error>A filter is longer than 256 bytes.</p>");
        return ok_page("Audit", &admin, body);
    }
    let (since, until) = match (time("since", &q.since), time("until", &q.until)) {
        (Ok(s), Ok(u)) => (s, u),
        (Err(e), _) | (_, Err(e)) => {
            let _ = write!(body, "<p class=error>{}</p>", esc(&e));
            return ok_page("Audit", &admin, body);
        }
    };
    let filter = AuditFilter {
        subject: field(&q.subject),
        session_id: field(&q.session),
        opened_by: None,
        client_id: field(&q.client),
        kind: field(&q.kind),
        since,
        until,
        after: q.after,
        limit: PAGE,
    };
    let records = match console.issuer.audit_for(&admin.client, filter).await {
        Ok(r) => r,
        Err(e) => return failure(&admin, e),
    };
    body.push_str(
        "<div class=scroll><table><thead><tr><th>#</th><th>When</th><th>Kind</th><th>Subject</th><th>Session</th><th>Client</th><th>Detail</th></tr></thead><tbody>",
    );
    for r in &records {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td><small>{}</small></td></tr>",
            r.seq,
            when(r.at),
            esc(r.kind.as_str()),
            esc(r.subject.as_deref().unwrap_or("—")),
            esc(r.session_id.as_deref().unwrap_or("—")),
            esc(r.client_id.as_deref().unwrap_or("—")),
            if r.detail.is_null() {
                String::new()
            } else {
                esc(&r.detail.to_string())
            },
        );
    }
    body.push_str("</tbody></table></div>");
    if records.is_empty() {
        body.push_str("<p>No records match.</p>");
    }
    if let (Some(last), true) = (
        records.last(),
        u32::try_from(records.len()).is_ok_and(|n| n == PAGE),
    ) {
        let keep = |name: &str, v: &Option<String>| {
            field(v).map_or_else(String::new, |v| format!("&{name}={}", url(&v)))
        };
        let _ = write!(
            body,
            "<p><a rel=next href=\"/admin/audit?after={}{}{}{}{}{}{}\">Next page</a></p>",
            last.seq,
            keep("subject", &q.subject),
            keep("session", &q.session),
            keep("client", &q.client),
            keep("kind", &q.kind),
            keep("since", &q.since),
            keep("until", &q.until),
        );
    }
    ok_page("Audit", &admin, body)
}

#[cfg(test)]
mod tests {
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
