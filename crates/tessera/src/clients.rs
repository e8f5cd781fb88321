//! `tessera clients create`: registers a client and shows its secret once.

use clap::{Subcommand, ValueEnum};
use serde_json::json;
use tessera_issuer::Clock as _;
use tessera_store::{ClientKind, Permission};

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
        /// Per-client policy overrides, a JSON object of `tokens.*` and
        /// `sessions.*` settings, e.g. '{"sessions.idle_timeout":"1d","sessions.max_per_subject":5}'.
        #[arg(long, value_name = "JSON", value_parser = parse_policy)]
        policy: Option<serde_json::Value>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
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
    match command {
        ClientsCommand::Create {
            name,
            kind,
            allow,
            policy,
            json,
        } => create(&config, &name, kind.into(), &allow.0, policy, json).await,
    }
}

async fn create(
    config: &Config,
    name: &str,
    kind: ClientKind,
    allowed: &[Permission],
    policy: Option<serde_json::Value>,
    as_json: bool,
) -> anyhow::Result<()> {
    let store = crate::serve::open_store(config).await?;
    let now = tessera_issuer::SystemClock.now();
    let (client, secret) =
        tessera_issuer::clients::register(&*store, name, kind, allowed, policy, now).await?;
    let allowed: Vec<&str> = client.allowed.iter().map(|p| p.as_str()).collect();
    let kind = match client.kind {
        ClientKind::Confidential => "confidential",
        ClientKind::Public => "public",
    };
    if as_json {
        let mut out = json!({
            "client_id": client.id,
            "name": client.name,
            "kind": kind,
            "allowed": allowed,
        });
        if let Some(secret) = &secret {
            out["client_secret"] = json!(secret.as_str());
        }
        println!("{out}");
    } else {
        println!("client_id: {}", client.id);
        if let Some(secret) = &secret {
            println!("client_secret: {}", secret.as_str());
        }
        println!("name: {}", client.name);
        println!("kind: {kind}");
        println!("allowed: {}", allowed.join(","));
    }
    if secret.is_some() {
        eprintln!("note: the client secret is shown only this once; only its hash is stored");
    }
    Ok(())
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
}
