//! The console's HTML: escaping, times for people, the page layout and
//! its headers (CSP without script, no framing, no caching).

use std::fmt::Write as _;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::time::Timestamp;

use super::Admin;

/// HTML-escapes `text`.
pub(super) fn esc(text: &str) -> String {
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
pub(super) fn url(text: &str) -> String {
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
pub(super) fn when(t: Timestamp) -> String {
    t.to_rfc3339().replacen('T', " ", 1).replace('Z', " UTC")
}

pub(super) fn when_opt(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "—".to_owned(), when)
}

pub(super) fn redirect(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

/// A whole page: the layout, the navigation when signed in, `body`.
pub(super) fn page(
    status: StatusCode,
    title: &str,
    admin: Option<&Admin>,
    body: String,
) -> Response {
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

pub(super) fn ok_page(title: &str, admin: &Admin, body: String) -> Response {
    page(StatusCode::OK, title, Some(admin), body)
}

pub(super) fn failure(admin: &Admin, error: impl std::fmt::Display) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Not done",
        Some(admin),
        format!("<p class=error>{}</p>", esc(&error.to_string())),
    )
}

pub(super) fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=hidden name=\"{}\" value=\"{}\">",
        esc(name),
        esc(value)
    )
}

pub(super) fn sign_in_page(status: StatusCode, message: Option<&str>) -> Response {
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
