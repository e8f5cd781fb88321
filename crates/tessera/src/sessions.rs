//! `tessera sessions list --subject S | revoke SID | revoke --subject S`,
//! straight against the store: ending a session writes its audit record and
//! the revocation event verifiers follow, in one transaction.

use clap::{ArgGroup, Subcommand};
use serde_json::json;
use tessera_issuer::Clock as _;
use tessera_store::{AuditRecord, Device, EndReason, Session, Store, Timestamp};

use crate::config::Config;

#[derive(Subcommand)]
pub enum SessionsCommand {
    /// List a subject's live sessions.
    List {
        /// The subject.
        #[arg(long)]
        subject: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// End one session (SID), or every live session of a subject (--subject).
    #[command(group(ArgGroup::new("target").required(true).args(["sid", "subject"])))]
    Revoke {
        /// The session id.
        sid: Option<String>,
        /// End all of this subject's sessions.
        #[arg(long)]
        subject: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: SessionsCommand, config: Config) -> anyhow::Result<()> {
    let store = crate::serve::open_admin_store(&config).await?;
    let now = tessera_issuer::SystemClock.now();
    match command {
        SessionsCommand::List { subject, json } => list(&*store, &subject, now, json).await,
        SessionsCommand::Revoke {
            sid: Some(sid),
            json,
            ..
        } => revoke_one(&*store, &config, &sid, now, json).await,
        SessionsCommand::Revoke {
            subject: Some(subject),
            json,
            ..
        } => revoke_subject(&*store, &config, &subject, now, json).await,
        SessionsCommand::Revoke { .. } => anyhow::bail!("name a session id or --subject"),
    }
}

fn session_json(s: &Session) -> serde_json::Value {
    json!({
        "session_id": s.id,
        "subject": s.subject,
        "client_id": s.client_id,
        "scope": s.scope,
        "created_at": s.created_at.unix_seconds(),
        "last_used_at": s.last_used_at.unix_seconds(),
        "idle_expires_at": s.idle_expires_at.unix_seconds(),
        "absolute_expires_at": s.absolute_expires_at.unix_seconds(),
        "auth_time": s.auth_time,
        "acr": s.acr,
        "token_format": s.token_format.as_str(),
        "device": s.device,
    })
}

async fn list(
    store: &dyn Store,
    subject: &str,
    now: Timestamp,
    as_json: bool,
) -> anyhow::Result<()> {
    let sessions = store.live_sessions(subject, now, None).await?;
    if as_json {
        let list: Vec<_> = sessions.iter().map(session_json).collect();
        println!("{}", json!({ "sessions": list }));
        return Ok(());
    }
    if sessions.is_empty() {
        eprintln!("no live sessions for {subject:?}");
        return Ok(());
    }
    println!(
        "{:<32}  {:<22}  {:<20}  {:<20}  {:<20}  DEVICE",
        "SESSION", "CLIENT", "CREATED", "LAST USED", "EXPIRES"
    );
    for s in &sessions {
        let expires = s.idle_expires_at.min(s.absolute_expires_at);
        let device = [&s.device.label, &s.device.ip, &s.device.user_agent]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" / ");
        println!(
            "{:<32}  {:<22}  {:<20}  {:<20}  {:<20}  {}",
            s.id,
            s.client_id,
            s.created_at.to_rfc3339(),
            s.last_used_at.to_rfc3339(),
            expires.to_rfc3339(),
            device
        );
    }
    Ok(())
}

/// The record an admin's revocation leaves: kind `session.revoked`, by the CLI.
fn admin_record(now: Timestamp, subject: &str, session_id: Option<&str>) -> AuditRecord {
    AuditRecord {
        seq: 0,
        at: now,
        kind: EndReason::Revoked.audit_kind().to_owned(),
        subject: Some(subject.to_owned()),
        session_id: session_id.map(str::to_owned),
        client_id: None,
        device: Device::default(),
        detail: json!({ "actor": "cli" }),
    }
}

/// Until when a revocation must be remembered: the issuer's own rule
/// (`Policy::revocation_until`) under the longest-lived of the global policy
/// and the sessions' clients' policies.
async fn revocation_until(
    store: &dyn Store,
    config: &Config,
    sessions: &[&Session],
    now: Timestamp,
) -> Timestamp {
    let global = config.policy();
    let mut longest = global.clone();
    for session in sessions {
        if let Ok(Some(client)) = store.client(&session.client_id).await
            && let Ok(policy) = global.with_overrides(&client.policy)
            && policy.access_ttl > longest.access_ttl
        {
            longest = policy;
        }
    }
    longest.revocation_until(now)
}

async fn revoke_one(
    store: &dyn Store,
    config: &Config,
    sid: &str,
    now: Timestamp,
    as_json: bool,
) -> anyhow::Result<()> {
    let session = store
        .session(sid)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no session {sid:?}"))?;
    let until = revocation_until(store, config, &[&session], now).await;
    let record = admin_record(now, &session.subject, Some(&session.id));
    let ended = store
        .end_session(&session.id, EndReason::Revoked, now, until, &record)
        .await?;
    if ended {
        tracing::info!(session_id = %session.id, "session.revoked by the CLI");
    }
    if as_json {
        println!("{}", json!({ "session_id": session.id, "revoked": ended }));
    } else if ended {
        println!("revoked session {}", session.id);
    } else {
        println!("session {} had already ended", session.id);
    }
    Ok(())
}

async fn revoke_subject(
    store: &dyn Store,
    config: &Config,
    subject: &str,
    now: Timestamp,
    as_json: bool,
) -> anyhow::Result<()> {
    let live = store.live_sessions(subject, now, None).await?;
    let until = revocation_until(store, config, &live.iter().collect::<Vec<_>>(), now).await;
    let template = admin_record(now, subject, None);
    let ended = store
        .end_subject(subject, now, until, &template, None)
        .await?;
    tracing::info!(subject = %subject, count = ended.len(), "subject sessions revoked by the CLI");
    if as_json {
        println!(
            "{}",
            json!({ "revoked": ended.len(), "session_ids": ended })
        );
    } else {
        println!("revoked {} session(s) of {subject:?}", ended.len());
    }
    Ok(())
}
