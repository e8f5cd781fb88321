//! `tessera dpop`: a client's side of DPoP (RFC 9449) from a shell, for
//! trying a DPoP flow with curl and for scripts: make a key, print its
//! thumbprint (what a backend passes as `dpop_jkt`), and sign proofs.
//!
//! The key file is a private JWK (RFC 7517/8037: `kty`, `crv`, `x`, `y`,
//! `d`), created with mode 0600 and never overwritten; any JOSE library can
//! read it. It is a *client's* key: Tessera's own signing keys never leave
//! the store.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};
use tessera_core::dpop::{ProofClaims, jwk_thumbprint, sign_proof};
use tessera_core::{Algorithm, Clock as _, Jwk, SigningKey, SystemClock, b64};
use zeroize::Zeroizing;

#[derive(Subcommand)]
pub enum DpopCommand {
    /// Generate a client key into a new file (mode 0600); print its thumbprint.
    Key {
        /// The proof algorithm.
        #[arg(long, value_enum, default_value_t = ProofAlg::EdDsa)]
        alg: ProofAlg,
        /// Where to write the private JWK (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print a key file's RFC 7638 thumbprint (`dpop_jkt`, `cnf.jkt`).
    Thumbprint {
        /// The private JWK file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
    /// Print a fresh DPoP proof for one request.
    Proof {
        /// The private JWK file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The request method (`htm`).
        #[arg(long, default_value = "POST")]
        method: String,
        /// The request URL (`htu`), e.g. the issuer's token endpoint.
        #[arg(long)]
        url: String,
        /// The access token sent with the proof (adds `ath`, for resource servers).
        #[arg(long, value_name = "TOKEN")]
        access_token: Option<String>,
        /// The server's nonce (`DPoP-Nonce`), when it asked for one.
        #[arg(long)]
        nonce: Option<String>,
    },
}

/// Proof algorithms.
#[derive(Clone, Copy, ValueEnum)]
pub enum ProofAlg {
    /// Ed25519.
    #[value(name = "EdDSA")]
    EdDsa,
    /// ECDSA P-256.
    #[value(name = "ES256")]
    Es256,
}

pub fn run(command: DpopCommand) -> anyhow::Result<()> {
    match command {
        DpopCommand::Key { alg, out } => {
            let alg = match alg {
                ProofAlg::EdDsa => Algorithm::EdDsa,
                ProofAlg::Es256 => Algorithm::Es256,
            };
            let key = SigningKey::generate(alg)?;
            let document = Zeroizing::new(private_jwk(&key)?.to_string());
            crate::master_key::write_private(&out, document.as_bytes())
                .with_context(|| format!("--out {}: cannot create it", out.display()))?;
            println!("{}", jwk_thumbprint(key.verification_key()));
        }
        DpopCommand::Thumbprint { key } => {
            println!("{}", jwk_thumbprint(read_key(&key)?.verification_key()));
        }
        DpopCommand::Proof {
            key,
            method,
            url,
            access_token,
            nonce,
        } => {
            if tessera_core::dpop::normalize_htu(&url).is_none() {
                bail!("--url must be an absolute http(s) URL");
            }
            let key = read_key(&key)?;
            let jti = b64::encode(tessera_core::random::<16>()?);
            let proof = sign_proof(
                &key,
                &ProofClaims {
                    method: &method,
                    url: &url,
                    iat: SystemClock.now().to_numeric_date(),
                    jti: &jti,
                    access_token: access_token.as_deref(),
                    nonce: nonce.as_deref(),
                },
            )?;
            println!("{proof}");
        }
    }
    Ok(())
}

/// The key's private JWK.
fn private_jwk(key: &SigningKey) -> anyhow::Result<Value> {
    let public = Jwk::from_key(key.verification_key()).context("not a DPoP key type")?;
    let secret = key.to_secret_bytes()?;
    let mut jwk = json!({ "kty": public.kty, "crv": public.crv, "x": public.x });
    if let Some(y) = public.y {
        jwk["y"] = y.into();
    }
    jwk["d"] = b64::encode(secret.as_slice()).into();
    Ok(jwk)
}

/// Reads a private JWK file written by `tessera dpop key` (or any library:
/// an Ed25519 OKP or a P-256 EC key with `d`).
fn read_key(path: &Path) -> anyhow::Result<SigningKey> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("--key {}", path.display()))?,
    );
    let jwk: Value = serde_json::from_str(&text)
        .ok()
        .context("the key file is not a JSON private JWK")?;
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    let alg = match (field("kty"), field("crv")) {
        (Some("OKP"), Some("Ed25519")) => Algorithm::EdDsa,
        (Some("EC"), Some("P-256")) => Algorithm::Es256,
        _ => bail!("the key file must hold an Ed25519 (OKP) or P-256 (EC) JWK"),
    };
    let secret = Zeroizing::new(
        field("d")
            .and_then(|d| b64::decode(d).ok())
            .context("the key file has no private part (d)")?,
    );
    let key = SigningKey::from_secret_bytes(alg, &secret)
        .ok()
        .context("the key file's d is not a valid private key")?;
    let public = Jwk::from_key(key.verification_key()).context("not a DPoP key type")?;
    if field("x") != public.x.as_deref() || field("y") != public.y.as_deref() {
        bail!("the key file's public part does not match its private part");
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_key_reads_back_as_the_same_key() {
        for alg in [Algorithm::EdDsa, Algorithm::Es256] {
            let key = SigningKey::generate(alg).expect("key");
            let path = std::env::temp_dir().join(format!(
                "tessera-dpop-key-{}-{}.json",
                std::process::id(),
                alg.as_str()
            ));
            std::fs::write(&path, private_jwk(&key).expect("jwk").to_string()).expect("write");
            let read = read_key(&path).expect("read");
            assert_eq!(read.kid(), key.kid(), "the same public key");
            // A public part that does not match is refused.
            let mut other = private_jwk(&SigningKey::generate(alg).expect("key")).expect("jwk");
            other["d"] = private_jwk(&key).expect("jwk")["d"].clone();
            std::fs::write(&path, other.to_string()).expect("write");
            assert!(read_key(&path).is_err(), "{alg:?}: mismatched x/d");
            let _ = std::fs::remove_file(&path);
        }
    }
}
