//! `tessera token verify` and `tessera token inspect`.
//!
//! Exit codes (README "CLI"): 0 valid, 1 rejected (reason on stderr),
//! 2 usage (bad flags, unreadable or invalid `--jwks` file).

use std::io::Read as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use serde_json::{Value, json};
use tessera_core::b64;
use tessera_core::paseto::UntrustedPaseto;
use tessera_core::token::REFRESH_TOKEN_PREFIX;
use tessera_core::{KeySet, Validation};
use tessera_verifier::{RemoteOptions, Verifier};

const VALID: u8 = 0;
const REJECTED: u8 = 1;
const USAGE: u8 = 2;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Verify an access token offline with tessera-verifier; print its claims as JSON.
    Verify {
        /// The issuer's base URL; must equal the token's `iss`.
        #[arg(long)]
        issuer: String,
        /// Accepted audience (repeatable). Without it the audience is NOT checked.
        #[arg(long)]
        audience: Vec<String>,
        /// A JWKS or PASERK-set file to trust instead of fetching the issuer's keys.
        #[arg(long, value_name = "FILE")]
        jwks: Option<std::path::PathBuf>,
        /// Clock-skew leeway in seconds (at most 120).
        #[arg(long, default_value_t = 30)]
        leeway: u64,
        /// A DPoP proof sent with the token (RFC 9449): a DPoP-bound token is
        /// verified only with one, together with `--method` and `--url`.
        #[arg(long, value_name = "PROOF", requires_all = ["method", "url"])]
        dpop_proof: Option<String>,
        /// The request method the proof was made for (with `--dpop-proof`).
        #[arg(long, requires = "dpop_proof")]
        method: Option<String>,
        /// The request URL the proof was made for (with `--dpop-proof`).
        #[arg(long, requires = "dpop_proof")]
        url: Option<String>,
        /// The token, or `-` to read it from standard input.
        token: String,
    },
    /// Decode a token WITHOUT verifying it and print header/footer and claims.
    Inspect {
        /// The token, or `-` to read it from standard input.
        token: String,
    },
}

pub fn run(command: TokenCommand) -> ExitCode {
    match command {
        TokenCommand::Verify {
            issuer,
            audience,
            jwks,
            leeway,
            dpop_proof,
            method,
            url,
            token,
        } => {
            let dpop = match (dpop_proof, method, url) {
                (Some(proof), Some(method), Some(url)) => Some(Dpop { proof, method, url }),
                _ => None,
            };
            verify(
                &issuer,
                &audience,
                jwks.as_deref(),
                leeway,
                dpop.as_ref(),
                &token,
            )
        }
        TokenCommand::Inspect { token } => inspect(&token),
    }
}

fn read_token(arg: &str) -> Result<String, String> {
    if arg != "-" {
        return Ok(arg.trim().to_owned());
    }
    let mut text = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| format!("reading the token from standard input: {e}"))?;
    Ok(text.trim().to_owned())
}

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("{message}");
    ExitCode::from(code)
}

/// The DPoP proof of a request, as the CLI was given it.
struct Dpop {
    proof: String,
    method: String,
    url: String,
}

impl Dpop {
    /// Verifies `token` with `verifier`: with the proof when there is one,
    /// else as a bearer token (which a DPoP-bound token is not).
    fn check(
        this: Option<&Dpop>,
        verifier: &Verifier,
        token: &str,
    ) -> Result<tessera_verifier::VerifiedToken, tessera_verifier::VerifyError> {
        match this {
            Some(d) => verifier.verify_dpop(token, &d.proof, &d.method, &d.url),
            None => verifier.verify(token),
        }
    }
}

fn verify(
    issuer: &str,
    audiences: &[String],
    jwks: Option<&std::path::Path>,
    leeway: u64,
    dpop: Option<&Dpop>,
    token: &str,
) -> ExitCode {
    let token = match read_token(token) {
        Ok(t) => t,
        Err(e) => return fail(USAGE, e),
    };
    let validation = if audiences.is_empty() {
        eprintln!("warning: no --audience given: the token's audience is NOT checked");
        Validation::any_audience(issuer)
    } else {
        Validation::new(issuer, audiences.iter().cloned())
    };
    let validation = match validation.and_then(|v| v.with_leeway(Duration::from_secs(leeway))) {
        Ok(v) => v,
        Err(e) => return fail(USAGE, format!("usage: {e}")),
    };

    let result = match jwks {
        Some(path) => {
            let keys = match std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| KeySet::from_document(&bytes).map_err(|e| e.to_string()))
            {
                Ok(keys) => keys,
                Err(e) => return fail(USAGE, format!("usage: --jwks {}: {e}", path.display())),
            };
            Dpop::check(dpop, &Verifier::with_keys(validation, keys), &token)
        }
        None => {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    return fail(
                        REJECTED,
                        format!("rejected: cannot start the HTTP client: {e}"),
                    );
                }
            };
            let verified = runtime.block_on(async {
                let verifier = Verifier::from_issuer(validation, RemoteOptions::default())
                    .await
                    .map_err(|e| format!("cannot fetch the issuer's keys: {e}"))?;
                Dpop::check(dpop, &verifier, &token).map_err(|e| e.to_string())
            });
            match verified {
                Ok(v) => Ok(v),
                Err(e) => return fail(REJECTED, format!("rejected: {e}")),
            }
        }
    };
    match result {
        Ok(verified) => {
            println!("{}", verified.claims_json());
            ExitCode::from(VALID)
        }
        Err(e) => fail(REJECTED, format!("rejected: {e}")),
    }
}

fn inspect(token: &str) -> ExitCode {
    let token = match read_token(token) {
        Ok(t) => t,
        Err(e) => return fail(USAGE, e),
    };
    match decode_unverified(&token) {
        Ok(view) => {
            eprintln!(
                "warning: NOT verified: signature, issuer, audience and expiry were not checked"
            );
            println!("{view}");
            ExitCode::from(VALID)
        }
        Err(e) => fail(REJECTED, format!("cannot decode: {e}")),
    }
}

fn json_part(bytes: &[u8], what: &str) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|_| format!("{what} is not JSON"))
}

fn decode_unverified(token: &str) -> Result<Value, String> {
    if token.starts_with(REFRESH_TOKEN_PREFIX) {
        return Ok(json!({"format": "refresh_token", "verified": false,
            "note": "refresh tokens are opaque; only the issuer can check them"}));
    }
    if token.starts_with("v4.public.") {
        let paseto = UntrustedPaseto::parse(token).map_err(|e| e.to_string())?;
        let footer = paseto.untrusted_footer();
        let footer = if footer.is_empty() {
            Value::Null
        } else {
            json_part(footer, "footer")
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(footer).into()))
        };
        return Ok(json!({
            "format": "paseto", "version": "v4", "purpose": "public", "verified": false,
            "footer": footer, "claims": json_part(paseto.untrusted_message(), "payload")?,
        }));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("neither a JWT (three segments) nor a v4.public PASETO".into());
    };
    let header = b64::decode(header).map_err(|_| "header is not base64url")?;
    let payload = b64::decode(payload).map_err(|_| "payload is not base64url")?;
    Ok(json!({
        "format": "jwt", "verified": false,
        "header": json_part(&header, "header")?,
        "claims": json_part(&payload, "payload")?,
    }))
}
