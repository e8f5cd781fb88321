//! Signing in and out of the console: with an admin client's secret, with
//! a one-time link (a page whose button signs in), and the cookie that
//! follows.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use tessera_core::time::{Clock as _, SystemClock, Timestamp};
use tessera_issuer::clients::AuthenticatedClient;

use super::html::{esc, hidden, page, redirect, sign_in_page, url};
use super::{
    COOKIE_LOOPBACK, COOKIE_SECURE, Console, CsrfForm, Payload, SESSION_SECS, admin_client,
    fingerprint, new_payload, read_payload, signed, signed_admin, verified,
};

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
    let ctx = tessera_issuer::http::request_context(headers, extensions);
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
pub(super) fn cross_site(headers: &HeaderMap) -> bool {
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
pub(super) async fn index(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    match signed_admin(&console, &headers).await {
        Some(_) => redirect("/admin/sessions"),
        None => sign_in_page(StatusCode::OK, None),
    }
}

/// The console's stylesheet.
#[utoipa::path(operation_id = "console_style", get, path = "/admin/style.css", tag = "console", responses((status = 200, description = "CSS")))]
pub(super) async fn style() -> Response {
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
pub(super) struct SignInForm {
    client_id: String,
    client_secret: String,
}

/// Signs in with an admin client's credentials.
#[utoipa::path(operation_id = "console_sign_in", post, path = "/admin/login", tag = "console", responses((status = 303, description = "Signed in (cookie set)"), (status = 401, description = "HTML: refused"), (status = 403, description = "HTML: not an admin, or posted from another site")))]
pub(super) async fn sign_in(
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
pub(super) struct LinkQuery {
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
pub(super) async fn link(
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
pub(super) async fn link_sign_in(
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

/// Signs out: the cookie's nonce is recorded (a copy of the cookie is
/// refused from now on, on every instance) and the cookie cleared.
#[utoipa::path(operation_id = "console_sign_out", post, path = "/admin/logout", tag = "console", responses((status = 303, description = "Signed out")))]
pub(super) async fn sign_out(
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
