//! `tessera`: the signed-token service for API sessions: the server
//! (`tessera serve`) and the admin and token CLI.
//!
//! Exit codes: 0 success; 2 usage (clap); 1 anything else, with the reason
//! on stderr. `token verify` keeps its own codes (see `token.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

mod audit;
mod clients;
mod config;
mod connections;
mod console;
mod dpop;
mod keys;
mod master_key;
mod metered;
mod openapi;
mod otlp;
mod serve;
mod sessions;
mod token;
mod web;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Signed-token service for API sessions"
)]
struct Cli {
    /// TOML settings file (environment variables override it).
    #[arg(long, global = true, value_name = "FILE", env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
    /// Use `data_dir/master.key` even if other users can read it (unsafe).
    #[arg(long, global = true)]
    allow_readable_master_key: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Log line format.
        #[arg(long, value_enum, default_value_t = serve::LogFormat::Text)]
        log_format: serve::LogFormat,
    },
    /// Register clients.
    #[command(subcommand)]
    Clients(clients::ClientsCommand),
    /// Signing-key lifecycle: list, rotate, revoke.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// List and revoke sessions.
    #[command(subcommand)]
    Sessions(sessions::SessionsCommand),
    /// Verify or inspect access tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// A DPoP client from the shell: make a key, print its thumbprint, sign proofs.
    #[command(subcommand)]
    Dpop(dpop::DpopCommand),
    /// Read the audit trail (filters: subject, session, client, kind, time range).
    Audit(audit::AuditArgs),
    /// Make a master key.
    #[command(subcommand, name = "master-key")]
    MasterKey(MasterKeyCommand),
    /// Check the settings.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The admin console (`/admin`).
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Print a one-time sign-in link to the console for an admin client
    /// (valid 10 minutes, one use, on any instance sharing the store).
    Login {
        /// The admin client to act as.
        #[arg(long)]
        client: String,
    },
}

#[derive(Subcommand)]
enum MasterKeyCommand {
    /// Print a fresh master key (32 random bytes, base64url), or write it to a new file.
    Generate {
        /// Write it to this file (mode 0600; it must not exist) instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Read the settings as `serve` would (file, environment, `*_FILE`
    /// secrets) and say what is wrong, naming the setting, or print the
    /// main ones. Touches no store.
    Check,
}

fn main() -> ExitCode {
    // clap exits with 2 on usage errors and 0 for --help/--version.
    let cli = Cli::parse();
    let settings = Settings {
        file: cli.config.as_deref(),
        allow_readable_master_key: cli.allow_readable_master_key,
    };
    let result = match cli.command {
        Command::Token(command) => return token::run(command),
        Command::Dpop(command) => dpop::run(command),
        Command::Serve { log_format } => {
            match serve::init_tracing(log_format, "info", true) {
                // The guard outlives the runtime: spans are flushed at exit.
                Ok(_guard) => load_config(&settings)
                    .and_then(|config| runtime(true)?.block_on(serve::run(config))),
                Err(error) => Err(error),
            }
        }
        Command::Clients(command) => admin(&settings, |config| clients::run(command, config)),
        Command::Sessions(command) => admin(&settings, |config| sessions::run(command, config)),
        Command::Keys(command) => admin(&settings, |config| keys::run(command, config)),
        Command::Audit(args) => admin(&settings, |config| audit::run(args, config)),
        Command::MasterKey(MasterKeyCommand::Generate { out }) => {
            master_key::generate(out.as_deref())
        }
        Command::Admin(AdminCommand::Login { client }) => {
            admin(&settings, |config| admin_login(config, client))
        }
        Command::Config(ConfigCommand::Check) => load_config(&settings).map(|config| {
            config_summary(&config, settings.file);
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `tessera admin login --client ID`: a one-time console link.
async fn admin_login(mut config: config::Config, client: String) -> anyhow::Result<()> {
    let store = serve::open_admin_store(&config).await?;
    let found = store
        .client(&client)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no client {client:?}"))?;
    if !found.is_enabled()
        || found.kind != tessera_store::ClientKind::Confidential
        || !found.allowed.contains(&tessera_store::Permission::Admin)
    {
        anyhow::bail!(
            "client {client:?} is not an enabled confidential client with the admin permission"
        );
    }
    let master = master_key::load(&mut config)?;
    let token = console::login_token(&master, &found)
        .ok_or_else(|| anyhow::anyhow!("client {client:?} cannot sign in to the console"))?;
    let base = config
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.listen));
    println!("{}/admin/login?token={token}", base.trim_end_matches('/'));
    eprintln!(
        "note: the link signs in as {client} once, within {} minutes; anyone holding it can, so keep it private",
        console::LINK_SECS / 60
    );
    Ok(())
}

/// `tessera config check`'s report of a configuration that loaded.
fn config_summary(config: &config::Config, file: Option<&Path>) {
    println!(
        "config: ok ({})",
        file.map_or_else(
            || "no file; defaults and TESSERA_* variables".to_owned(),
            |f| format!("file {} and TESSERA_* variables", f.display())
        )
    );
    println!("listen: {}", config.listen);
    println!(
        "issuer: {}",
        config
            .issuer
            .clone()
            .unwrap_or_else(|| format!("http://{} (from listen)", config.listen))
    );
    println!("data_dir: {}", config.data_dir.display());
    println!("store.url: {}", config.store_url.redacted());
    let master = if config.master_key.is_some() {
        "given (master_key, TESSERA_MASTER_KEY or TESSERA_MASTER_KEY_FILE)".to_owned()
    } else if config.master_key_path().exists() {
        format!("{} (exists)", config.master_key_path().display())
    } else {
        format!(
            "{} (does not exist: serve would generate it, with a warning)",
            config.master_key_path().display()
        )
    };
    println!("master_key: {master}");
    println!(
        "tokens: {} {}, access_ttl {:?}",
        config.token_format.as_str(),
        config.jwt_alg,
        config.access_ttl
    );
    println!(
        "sessions: idle_timeout {:?}, absolute_lifetime {:?}, refresh_grace {:?}",
        config.idle_timeout, config.absolute_lifetime, config.refresh_grace
    );
    println!(
        "rate_limits: {}",
        if config.rate_limits.enabled {
            "on"
        } else {
            "OFF"
        }
    );
    println!(
        "cors.allowed_origins: {}",
        if config.cors_allowed_origins.is_empty() {
            "none".to_owned()
        } else {
            config.cors_allowed_origins.join(", ")
        }
    );
    println!(
        "metrics: {}",
        config
            .metrics_listen
            .as_deref()
            .unwrap_or("on the listen address")
    );
    for name in &config.unknown_env {
        println!("warning: {name} names no Tessera setting; it is ignored");
    }
}

/// Where the settings come from, and the flags that only a command line may set.
struct Settings<'a> {
    file: Option<&'a Path>,
    allow_readable_master_key: bool,
}

/// Runs an admin command on a small runtime, with warnings on stderr.
fn admin<F, Fut>(settings: &Settings<'_>, command: F) -> anyhow::Result<()>
where
    F: FnOnce(config::Config) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let _ = serve::init_tracing(serve::LogFormat::Text, "warn", false);
    let config = load_config(settings)?;
    runtime(false)?.block_on(command(config))
}

/// The settings from `--config`, the environment and the command line.
fn load_config(settings: &Settings<'_>) -> anyhow::Result<config::Config> {
    let file = settings.file;
    let text = match file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("--config {}", path.display()))?,
        ),
        None => None,
    };
    let env: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with("TESSERA_"))
        .collect();
    let mut config = config::Config::load(text.as_deref(), &env).map_err(|e| match file {
        Some(path) if e.setting == "config file" => {
            anyhow::anyhow!("{}: {}", path.display(), e.problem)
        }
        _ => anyhow::Error::new(e),
    })?;
    config.allow_readable_master_key = settings.allow_readable_master_key;
    Ok(config)
}

fn runtime(multi_thread: bool) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder
        .enable_all()
        .build()
        .context("starting the async runtime")
}
