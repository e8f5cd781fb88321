//! The console's pages once signed in: sessions by subject, the keys'
//! timeline, clients, and the audit trail, with their forms.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{Extensions, HeaderMap};
use axum::response::Response;
use serde::Deserialize;
use tessera_core::time::{Clock as _, SystemClock, Timestamp};
use tessera_revocation::KeyAdmin as _;
use tessera_store::{AuditFilter, KeyState};

use super::html::{esc, failure, hidden, ok_page, url, when, when_opt};
use super::{Admin, Console, CsrfForm, MAX_FIELD};

#[derive(Deserialize)]
pub(super) struct SubjectQuery {
    subject: Option<String>,
}

/// Sessions by subject.
#[utoipa::path(operation_id = "console_sessions_page", get, path = "/admin/sessions", tag = "console", params(("subject" = Option<String>, Query, description = "The subject")), responses((status = 200, description = "HTML")))]
pub(super) async fn sessions_page(
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

#[derive(Deserialize)]
pub(super) struct RevokeSessionForm {
    csrf: String,
    sid: String,
    subject: Option<String>,
    confirm: Option<String>,
}

/// Revokes one session (after a confirmation step).
#[utoipa::path(operation_id = "console_revoke_session", post, path = "/admin/sessions/revoke", tag = "console", responses((status = 200, description = "HTML: confirm, or done")))]
pub(super) async fn revoke_session(
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
    let ctx = tessera_issuer::http::request_context(&headers, &extensions);
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
pub(super) struct RevokeSubjectForm {
    csrf: String,
    subject: String,
    confirm: Option<String>,
}

/// Revokes every session of a subject (after a confirmation step).
#[utoipa::path(operation_id = "console_revoke_subject", post, path = "/admin/sessions/revoke-all", tag = "console", responses((status = 200, description = "HTML: confirm, or done")))]
pub(super) async fn revoke_subject(
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
    let ctx = tessera_issuer::http::request_context(&headers, &extensions);
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
pub(super) async fn keys_page(State(console): State<Arc<Console>>, admin: Admin) -> Response {
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
pub(super) async fn rotate_keys(
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
pub(super) struct RevokeKeyForm {
    csrf: String,
    kid: String,
    confirm_kid: String,
}

/// Emergency-revokes a key (the key id typed out).
#[utoipa::path(operation_id = "console_revoke_key", post, path = "/admin/keys/revoke", tag = "console", responses((status = 200, description = "HTML: done"), (status = 400, description = "HTML: the typed key id did not match")))]
pub(super) async fn revoke_key(
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
pub(super) async fn clients_page(State(console): State<Arc<Console>>, admin: Admin) -> Response {
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
pub(super) async fn client_page(
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
pub(super) struct ClientActionForm {
    csrf: String,
    end_sessions: Option<String>,
    overlap: Option<String>,
}

/// Disables, enables or rotates the secret of a client.
#[utoipa::path(operation_id = "console_client_action", post, path = "/admin/clients/{id}/{action}", tag = "console", params(("id" = String, Path, description = "The client id"), ("action" = String, Path, description = "`disable`, `enable` or `rotate-secret`")), responses((status = 200, description = "HTML: done (a new secret is shown once)")))]
pub(super) async fn client_action(
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
pub(super) struct AuditQuery {
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
pub(super) async fn audit_page(
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
