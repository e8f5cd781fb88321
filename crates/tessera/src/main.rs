//! `tessera`: the signed-token service for API sessions. This binary holds the
//! CLI; the server (`tessera serve`) arrives with the issuer.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod token;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Signed-token service for API sessions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify or inspect access tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
}

fn main() -> ExitCode {
    // clap exits with 2 on usage errors and 0 for --help/--version.
    let cli = Cli::parse();
    match cli.command {
        Command::Token(command) => token::run(command),
    }
}
