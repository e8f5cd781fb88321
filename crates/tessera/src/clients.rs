//! `tessera clients create | list | show | update | disable | enable |
//! rotate-secret | delete`: the client lifecycle, straight against the store
//! (the same operations as `/v1/clients`). Every change writes an audit
//! record; a running server drops its cached copy when the store's change
//! mark moves (within 200 ms on SQLite, at commit on PostgreSQL).

use std::sync::Arc;

use clap::{Subcommand, ValueEnum};
use serde_json::json;
use tessera_issuer::clients::{Actor, ClientChanges, ClientDirectory, ClientSpec};
use tessera_store::{Client, ClientKind, Permission};

use crate::config::Config;

#[derive(Subcommand)]
pub enum ClientsCommand {
    /// Register a client; prints its client_id and, this once, its client_secret.
    Create {
        /// A human-readable name.
        #[arg(long)]
        name: String,
        /// `confidential` (authenticates with a secret) or `public`.
        #[arg(long, value_enum)]
        kind: Kind,
        /// Comma-separated permissions: sessions, refresh_token,
        /// client_credentials, introspect, admin.
        #[arg(long, value_name = "LIST", value_parser = parse_allow_list)]
        allow: AllowList,
        #[command(flatten)]
        grants: Grants,
        /// Per-client policy overrides, a JSON object of `tokens.*` and
        /// `sessions.*` settings, e.g. '{"sessions.idle_timeout":"1d","sessions.max_per_subject":5}'.
        #[arg(long, value_name = "JSON", value_parser = parse_policy)]
        policy: Option<serde_json::Value>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List every client (never a secret).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one client.
    Show {
        /// The client id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a client: each option given replaces the stored value
    /// (an empty LIST clears it).
    Update {
        /// The client id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// New permissions (comma-separated).
        #[arg(long, value_name = "LIST", value_parser = parse_allow_list)]
        allow: Option<AllowList>,
        #[command(flatten)]
        grants: Grants,
        /// New policy overrides (a JSON object; replaces the old one).
        #[arg(long, value_name = "JSON", value_parser = parse_policy)]
        policy: Option<serde_json::Value>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Switch a client off at once: it can no longer refresh, get client
    /// credentials, introspect, open sessions or administer.
    Disable {
        /// The client id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Also end every session it refreshes or opened (with revocation events).
        #[arg(long)]
        end_sessions: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Switch a disabled client back on.
    Enable {
        /// The client id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Give a confidential client a new secret, shown this once.
    RotateSecret {
        /// The client id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// How long the old secret keeps working (e.g. 10m, 1h); none by default.
        #[arg(long, value_name = "DURATION", value_parser = parse_overlap)]
        overlap: Option<std::time::Duration>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a disabled client (its remaining sessions end).
    Delete {
        /// The client id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// What a client may be granted.
#[derive(clap::Args, Default)]
pub struct Grants {
    /// Scope tokens it may be granted (comma-separated), e.g. read,write.
    #[arg(long, value_name = "LIST", value_parser = parse_list)]
    scopes: Option<List>,
    /// Audiences its tokens may name besides its own id (comma-separated).
    #[arg(long, value_name = "LIST", value_parser = parse_list)]
    audiences: Option<List>,
    /// Client ids this backend may open sessions for (comma-separated).
    #[arg(long, value_name = "IDS", value_parser = parse_list, allow_hyphen_values = true)]
    sessions_for: Option<List>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Confidential,
    Public,
}

impl From<Kind> for ClientKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Confidential => ClientKind::Confidential,
            Kind::Public => ClientKind::Public,
        }
    }
}

/// A parsed `--allow` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList(pub Vec<Permission>);

/// A parsed comma-separated list (possibly empty).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct List(pub Vec<String>);

/// Parses `sessions,refresh_token,...` (a usage error when a word is unknown).
pub fn parse_allow_list(text: &str) -> Result<AllowList, String> {
    let mut out = Vec::new();
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let permission = Permission::parse(word).ok_or_else(|| {
            format!(
                "unknown permission {word:?}; use sessions, refresh_token, client_credentials, introspect, admin"
            )
        })?;
        if !out.contains(&permission) {
            out.push(permission);
        }
    }
    if out.is_empty() {
        return Err("name at least one permission".into());
    }
    Ok(AllowList(out))
}

/// Parses `a,b,c` (empty entries dropped; an empty text is an empty list).
pub fn parse_list(text: &str) -> Result<List, String> {
    Ok(List(
        text.split(',')
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect(),
    ))
}

fn parse_overlap(text: &str) -> Result<std::time::Duration, String> {
    tessera_issuer::parse_duration(text)
        .ok_or_else(|| "a duration like \"10m\" or \"1h\"".to_owned())
}

/// Parses `--policy`: a JSON object whose settings all apply (a usage error otherwise).
pub fn parse_policy(text: &str) -> Result<serde_json::Value, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if !value.is_object() {
        return Err("must be a JSON object".into());
    }
    tessera_issuer::Policy::default()
        .with_overrides(&value)
        .map_err(|e| e.to_string())?;
    Ok(value)
}

pub async fn run(command: ClientsCommand, config: Config) -> anyhow::Result<()> {
    let store = crate::serve::open_admin_store(&config).await?;
    let clients = ClientDirectory::new(
        store,
        config.policy(),
        Arc::new(tessera_issuer::SystemClock),
    );
    match command {
        ClientsCommand::Create {
            name,
            kind,
            allow,
            grants,
            policy,
            json,
        } => {
            let spec = ClientSpec {
                name,
                kind: kind.into(),
                allowed: allow.0,
                scopes: grants.scopes.unwrap_or_default().0,
                audiences: grants.audiences.unwrap_or_default().0,
                sessions_for: grants.sessions_for.unwrap_or_default().0,
                policy,
            };
            let (client, secret) = clients.register(spec, Actor::Cli).await?;
            print_client(&client, secret.as_deref().map(String::as_str), json);
            if secret.is_some() {
                eprintln!(
                    "note: the client secret is shown only this once; only its digest is stored"
                );
            }
        }
        ClientsCommand::List { json } => {
            let all = clients.list().await?;
            if json {
                let list: Vec<_> = all.iter().map(tessera_issuer::http::client_view).collect();
                println!("{}", json!({ "clients": list }));
            } else {
                println!(
                    "{:<24}  {:<12}  {:<8}  {:<24}  NAME",
                    "CLIENT_ID", "KIND", "ENABLED", "ALLOWED"
                );
                for c in &all {
                    println!(
                        "{:<24}  {:<12}  {:<8}  {:<24}  {}",
                        c.id,
                        kind_word(c.kind),
                        if c.is_enabled() { "yes" } else { "no" },
                        c.allowed
                            .iter()
                            .map(|p| p.as_str())
                            .collect::<Vec<_>>()
                            .join(","),
                        c.name
                    );
                }
            }
        }
        ClientsCommand::Show { id, json } => {
            print_client(&clients.show(&id).await?, None, json);
        }
        ClientsCommand::Update {
            id,
            name,
            allow,
            grants,
            policy,
            json,
        } => {
            let changes = ClientChanges {
                name,
                allowed: allow.map(|a| a.0),
                scopes: grants.scopes.map(|l| l.0),
                audiences: grants.audiences.map(|l| l.0),
                sessions_for: grants.sessions_for.map(|l| l.0),
                policy,
            };
            print_client(&clients.update(&id, changes, Actor::Cli).await?, None, json);
        }
        ClientsCommand::Disable {
            id,
            end_sessions,
            json,
        } => {
            let (client, ended) = clients.disable(&id, end_sessions, Actor::Cli).await?;
            if json {
                let mut view = tessera_issuer::http::client_view(&client);
                view["sessions_ended"] = ended.into();
                println!("{view}");
            } else {
                println!("disabled client {}; {ended} session(s) ended", client.id);
            }
        }
        ClientsCommand::Enable { id, json } => {
            let client = clients.enable(&id, Actor::Cli).await?;
            if json {
                println!("{}", tessera_issuer::http::client_view(&client));
            } else {
                println!("enabled client {}", client.id);
            }
        }
        ClientsCommand::RotateSecret { id, overlap, json } => {
            let (client, secret) = clients.rotate_secret(&id, overlap, Actor::Cli).await?;
            print_client(&client, Some(secret.as_str()), json);
            eprintln!("note: the new secret is shown only this once; only its digest is stored");
        }
        ClientsCommand::Delete { id, json } => {
            let ended = clients.delete(&id, Actor::Cli).await?;
            if json {
                println!(
                    "{}",
                    json!({ "client_id": id, "deleted": true, "sessions_ended": ended })
                );
            } else {
                println!("deleted client {id}; {ended} session(s) ended");
            }
        }
    }
    Ok(())
}

fn kind_word(kind: ClientKind) -> &'static str {
    match kind {
        ClientKind::Confidential => "confidential",
        ClientKind::Public => "public",
    }
}

/// One client, as JSON (with `client_secret` when one was just made) or text.
fn print_client(client: &Client, secret: Option<&str>, as_json: bool) {
    if as_json {
        let mut view = tessera_issuer::http::client_view(client);
        if let Some(secret) = secret {
            view["client_secret"] = secret.into();
        }
        println!("{view}");
        return;
    }
    println!("client_id: {}", client.id);
    if let Some(secret) = secret {
        println!("client_secret: {secret}");
    }
    println!("name: {}", client.name);
    println!("kind: {}", kind_word(client.kind));
    println!(
        "allowed: {}",
        client
            .allowed
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(",")
    );
    println!("scopes: {}", client.scopes.join(","));
    println!("audiences: {}", client.audiences.join(","));
    println!("sessions_for: {}", client.sessions_for.join(","));
    println!(
        "enabled: {}",
        if client.is_enabled() { "yes" } else { "no" }
    );
    if let (Some(_), Some(until)) = (
        &client.previous_secret_hash,
        client.previous_secret_expires_at,
    ) {
        println!("previous secret accepted until: {}", until.to_rfc3339());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists() {
        assert_eq!(
            parse_allow_list("sessions, refresh_token,sessions"),
            Ok(AllowList(vec![
                Permission::Sessions,
                Permission::RefreshToken
            ]))
        );
        assert_eq!(
            parse_allow_list("client_credentials,introspect,admin").map(|l| l.0.len()),
            Ok(3)
        );
        assert!(parse_allow_list("").is_err());
        assert!(parse_allow_list(",").is_err());
        assert!(
            parse_allow_list("sessions,root")
                .expect_err("unknown")
                .contains("root")
        );
    }

    #[test]
    fn lists_may_be_empty_to_clear() {
        assert_eq!(parse_list(""), Ok(List(vec![])));
        assert_eq!(
            parse_list("read, write,,"),
            Ok(List(vec!["read".into(), "write".into()]))
        );
    }
}
