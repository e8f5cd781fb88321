//! Clients: registration (secret hashed with argon2id, shown once) and
//! authentication per RFC 6749 §2.3.1, with a short-lived cache of verified
//! secrets so that argon2's deliberate cost is not paid on every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use subtle::ConstantTimeEq as _;
use tessera_core::b64;
use tessera_store::{Client, ClientKind, Permission, Store, Timestamp};
use zeroize::Zeroizing;

use crate::error::IssuerError;
use crate::policy::Policy;

/// How long a client record (and its parsed policy) is reused before rereading.
const CLIENT_TTL: Duration = Duration::from_secs(30);
/// How long a verified secret skips argon2.
const VERIFIED_TTL: Duration = Duration::from_secs(300);

/// Registers a client, with optional policy overrides (a JSON object of
/// `tokens.*`/`sessions.*` settings, checked here). Returns it and, for a
/// confidential client, the secret — the only time it exists outside the
/// caller's hands; only its argon2id hash is stored.
pub async fn register(
    store: &dyn Store,
    name: &str,
    kind: ClientKind,
    allowed: &[Permission],
    policy: Option<serde_json::Value>,
    now: Timestamp,
) -> Result<(Client, Option<Zeroizing<String>>), IssuerError> {
    let policy = policy.unwrap_or_else(|| serde_json::Value::Object(Default::default()));
    Policy::default()
        .with_overrides(&policy)
        .map_err(|e| IssuerError::InvalidRequest(e.to_string()))?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(IssuerError::InvalidRequest(
            "name must be 1 to 100 characters".into(),
        ));
    }
    if allowed.is_empty() {
        return Err(IssuerError::InvalidRequest(
            "allow at least one of sessions, refresh_token, client_credentials, introspect, admin"
                .into(),
        ));
    }
    if kind == ClientKind::Public && allowed.iter().any(|p| *p != Permission::RefreshToken) {
        return Err(IssuerError::InvalidRequest(
            "a public client cannot authenticate, so it may only use refresh_token".into(),
        ));
    }
    let id = b64::encode(tessera_core::random::<16>()?);
    let (secret, secret_hash) = match kind {
        ClientKind::Public => (None, None),
        ClientKind::Confidential => {
            let mut secret = Zeroizing::new(String::from("tcs_"));
            b64::encode_into(
                Zeroizing::new(tessera_core::random::<32>()?).as_ref(),
                &mut secret,
            );
            let hash = hash_secret(secret.clone()).await?;
            (Some(secret), Some(hash))
        }
    };
    let mut allowed = allowed.to_vec();
    allowed.dedup();
    let client = Client {
        id,
        name: name.to_owned(),
        kind,
        secret_hash,
        allowed,
        policy,
        created_at: now,
    };
    store.insert_client(&client).await?;
    Ok((client, secret))
}

async fn hash_secret(secret: Zeroizing<String>) -> Result<String, IssuerError> {
    tokio::task::spawn_blocking(move || {
        let salt = tessera_core::random::<16>()?;
        Argon2::default()
            .hash_password_with_salt(secret.as_bytes(), &salt)
            .map(|h: PasswordHash| h.to_string())
            .map_err(|_| IssuerError::InvalidRequest("could not hash the secret".into()))
    })
    .await
    .map_err(|_| IssuerError::InvalidRequest("hashing task failed".into()))?
}

/// Credentials presented with a request.
pub enum Credentials {
    /// HTTP Basic (confidential clients).
    Basic {
        /// `client_id`.
        id: String,
        /// `client_secret`.
        secret: Zeroizing<String>,
    },
    /// `client_id` in the form, no secret (public clients).
    Public {
        /// `client_id`.
        id: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { id, .. } => f
                .debug_struct("Basic")
                .field("id", id)
                .finish_non_exhaustive(),
            Credentials::Public { id } => f.debug_struct("Public").field("id", id).finish(),
        }
    }
}

/// An authenticated client with its effective policy.
#[derive(Debug)]
pub struct AuthenticatedClient {
    /// The client record.
    pub client: Client,
    /// Global policy with the client's overrides.
    pub policy: Policy,
}

impl AuthenticatedClient {
    /// Fails with `NotAllowed` unless the client has `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), IssuerError> {
        if self.client.allowed.contains(&permission) {
            Ok(())
        } else {
            Err(IssuerError::NotAllowed(permission.as_str()))
        }
    }
}

struct Cached {
    entry: Arc<AuthenticatedClient>,
    loaded: Instant,
}

/// Looks clients up (with a short cache) and authenticates them.
pub struct ClientDirectory {
    store: Arc<dyn Store>,
    policy: Policy,
    cache: Mutex<HashMap<String, Cached>>,
    verified: Mutex<HashMap<String, ([u8; 32], Instant)>>,
}

impl ClientDirectory {
    /// A directory over `store` applying overrides to `policy`.
    pub fn new(store: Arc<dyn Store>, policy: Policy) -> Self {
        ClientDirectory {
            store,
            policy,
            cache: Mutex::default(),
            verified: Mutex::default(),
        }
    }

    /// The client `id` with its effective policy, if registered.
    pub async fn get(&self, id: &str) -> Result<Option<Arc<AuthenticatedClient>>, IssuerError> {
        if let Some(hit) = self
            .lock_cache()
            .get(id)
            .filter(|c| c.loaded.elapsed() < CLIENT_TTL)
        {
            return Ok(Some(hit.entry.clone()));
        }
        let Some(client) = self.store.client(id).await? else {
            return Ok(None);
        };
        let policy = self
            .policy
            .with_overrides(&client.policy)
            .map_err(|e| IssuerError::InvalidRequest(e.to_string()))?;
        let entry = Arc::new(AuthenticatedClient { client, policy });
        let mut cache = self.lock_cache();
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(
            id.to_owned(),
            Cached {
                entry: entry.clone(),
                loaded: Instant::now(),
            },
        );
        Ok(Some(entry))
    }

    /// Authenticates `credentials`: a confidential client must use Basic with
    /// its secret; a public client must not present a secret.
    pub async fn authenticate(
        &self,
        credentials: Credentials,
    ) -> Result<Arc<AuthenticatedClient>, IssuerError> {
        match credentials {
            Credentials::Public { id } => {
                let entry = self.get(&id).await?.ok_or(IssuerError::InvalidClient)?;
                if entry.client.kind != ClientKind::Public {
                    return Err(IssuerError::InvalidClient);
                }
                Ok(entry)
            }
            Credentials::Basic { id, secret } => {
                let entry = self.get(&id).await?;
                let hash = entry.as_ref().and_then(|e| e.client.secret_hash.clone());
                let Some(entry) = entry.filter(|e| e.client.kind == ClientKind::Confidential)
                else {
                    // Spend the same time as a real check: no client-id oracle.
                    let _ = verify_secret(dummy_hash().to_owned(), secret).await;
                    return Err(IssuerError::InvalidClient);
                };
                let fingerprint = fingerprint(&secret);
                if self.recently_verified(&id, &fingerprint) {
                    return Ok(entry);
                }
                let hash = hash.ok_or(IssuerError::InvalidClient)?;
                if !verify_secret(hash, secret).await {
                    return Err(IssuerError::InvalidClient);
                }
                self.lock_verified()
                    .insert(id, (fingerprint, Instant::now()));
                Ok(entry)
            }
        }
    }

    fn recently_verified(&self, id: &str, fingerprint: &[u8; 32]) -> bool {
        self.lock_verified().get(id).is_some_and(|(known, at)| {
            at.elapsed() < VERIFIED_TTL && bool::from(known.ct_eq(fingerprint))
        })
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_verified(&self) -> std::sync::MutexGuard<'_, HashMap<String, ([u8; 32], Instant)>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn fingerprint(secret: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

async fn verify_secret(hash: String, secret: Zeroizing<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(secret.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        Argon2::default()
            .hash_password_with_salt(b"not a secret", &[7u8; 16])
            .map(|h: PasswordHash| h.to_string())
            .unwrap_or_default()
    })
}
