//! `tessera audit`: the audit trail, straight from the store, with the
//! console's filters (subject, session, client, kind, time range) and
//! pagination by sequence number.

use clap::Args;
use serde_json::json;
use tessera_store::{AuditFilter, AuditRecord, Timestamp};

use crate::config::Config;

#[derive(Args)]
pub struct AuditArgs {
    /// Only this subject's records.
    #[arg(long)]
    subject: Option<String>,
    /// Only this session's records.
    #[arg(long)]
    session: Option<String>,
    /// Only records of this acting client (the backend that opened or ended a session, the app that refreshed it).
    #[arg(long)]
    client: Option<String>,
    /// Only records of this kind (`session.opened`, `session.reuse_detected`, `key.revoked`, ...).
    #[arg(long)]
    kind: Option<String>,
    /// Only records at or after this time (RFC 3339 or Unix seconds).
    #[arg(long, value_parser = parse_time)]
    since: Option<Timestamp>,
    /// Only records before this time (RFC 3339 or Unix seconds).
    #[arg(long, value_parser = parse_time)]
    until: Option<Timestamp>,
    /// Only records after this sequence number (the `next` of the previous page).
    #[arg(long, default_value_t = 0)]
    after: i64,
    /// At most this many records (1–1000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: u32,
    /// Print JSON (`{"records": [...], "next": SEQ}`, Unix seconds) instead of a table.
    #[arg(long)]
    json: bool,
}

fn parse_time(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse(text).ok_or_else(|| {
        format!("{text:?} is not an RFC 3339 time (2026-12-03T18:00:00Z) or Unix seconds")
    })
}

pub async fn run(args: AuditArgs, config: Config) -> anyhow::Result<()> {
    let store = crate::serve::open_admin_store(&config).await?;
    let filter = AuditFilter {
        subject: args.subject,
        session_id: args.session,
        opened_by: None,
        client_id: args.client,
        kind: args.kind,
        since: args.since,
        until: args.until,
        after: Some(args.after),
        limit: args.limit,
    };
    let records = store.audit(&filter).await?;
    let next = records.last().map_or(args.after, |r| r.seq);
    if args.json {
        let list: Vec<_> = records.iter().map(record_json).collect();
        println!("{}", json!({ "records": list, "next": next }));
        return Ok(());
    }
    if records.is_empty() {
        eprintln!("no audit records match");
        return Ok(());
    }
    println!(
        "{:>8}  {:<20}  {:<26}  {:<24}  {:<32}  {:<22}  DETAIL",
        "SEQ", "AT", "KIND", "SUBJECT", "SESSION", "CLIENT"
    );
    for r in &records {
        println!(
            "{:>8}  {:<20}  {:<26}  {:<24}  {:<32}  {:<22}  {}",
            r.seq,
            r.at.to_rfc3339(),
            r.kind.as_str(),
            r.subject.as_deref().unwrap_or("-"),
            r.session_id.as_deref().unwrap_or("-"),
            r.client_id.as_deref().unwrap_or("-"),
            if r.detail.is_null() {
                String::new()
            } else {
                r.detail.to_string()
            }
        );
    }
    if u32::try_from(records.len()).is_ok_and(|n| n == args.limit) {
        eprintln!("more may follow: --after {next}");
    }
    Ok(())
}

fn record_json(r: &AuditRecord) -> serde_json::Value {
    json!({
        "seq": r.seq,
        "at": r.at.unix_seconds(),
        "kind": r.kind.as_str(),
        "subject": r.subject,
        "session_id": r.session_id,
        "client_id": r.client_id,
        "device": r.device,
        "detail": r.detail,
    })
}
