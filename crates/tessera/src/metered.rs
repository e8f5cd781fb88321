//! [`Metered`]: a [`Store`] that times every operation of the store it
//! wraps into `tessera_store_operation_duration_seconds{op, result}`.
//! Nothing else changes: the same calls, answers and errors.

use std::sync::Arc;
use std::time::Instant;

use tessera_store::{
    AuditFilter, AuditRecord, ChangeMarks, Client, ClientDeleted, EndReason, KeyRevoked,
    NewSession, OpenOutcome, ProofKey, RevocationEvent, RotateOutcome, Session, SessionLimit,
    StatusIndex, Store, StoreError, StoredKey, Timestamp,
};

/// Times the operations of the store inside.
pub struct Metered(pub Arc<dyn Store>);

fn observe(op: &'static str, started: Instant, ok: bool) {
    metrics::histogram!(
        "tessera_store_operation_duration_seconds",
        "op" => op,
        "result" => if ok { "ok" } else { "error" },
    )
    .record(started.elapsed().as_secs_f64());
}

/// Each listed method calls the inner store's and records how long it took.
macro_rules! timed {
    ($( fn $name:ident(&self $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty; )*) => {
        #[async_trait::async_trait]
        impl Store for Metered {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    let started = Instant::now();
                    let result = self.0.$name($($arg),*).await;
                    observe(stringify!($name), started, result.is_ok());
                    result
                }
            )*

            fn changes(&self) -> tokio::sync::watch::Receiver<ChangeMarks> {
                self.0.changes()
            }
        }
    };
}

timed! {
    fn ping(&self) -> Result<(), StoreError>;
    fn insert_client(&self, client: &Client, record: &AuditRecord) -> Result<(), StoreError>;
    fn client(&self, id: &str) -> Result<Option<Client>, StoreError>;
    fn clients(&self) -> Result<Vec<Client>, StoreError>;
    fn update_client(&self, client: &Client, expected: Timestamp, record: &AuditRecord) -> Result<bool, StoreError>;
    fn delete_client(&self, id: &str, record: &AuditRecord) -> Result<ClientDeleted, StoreError>;
    fn end_client_sessions(&self, client_id: &str, now: Timestamp, until: Timestamp, template: &AuditRecord) -> Result<Vec<String>, StoreError>;
    fn open_session(&self, session: &NewSession, limit: Option<SessionLimit>, opened: &AuditRecord, evict_until: Timestamp) -> Result<OpenOutcome, StoreError>;
    fn session(&self, id: &str) -> Result<Option<Session>, StoreError>;
    fn live_sessions(&self, subject: &str, now: Timestamp, opened_by: Option<&str>) -> Result<Vec<Session>, StoreError>;
    fn rotate(&self, id: &str, client_id: &str, expected: tessera_store::Generation, now: Timestamp, idle_expires_at: Timestamp, proof: ProofKey<'_>, refreshed: &AuditRecord) -> Result<RotateOutcome, StoreError>;
    fn touch(&self, id: &str, now: Timestamp) -> Result<(), StoreError>;
    fn end_session(&self, id: &str, reason: EndReason, now: Timestamp, until: Timestamp, record: &AuditRecord) -> Result<bool, StoreError>;
    fn end_subject(&self, subject: &str, now: Timestamp, until: Timestamp, template: &AuditRecord, opened_by: Option<&str>) -> Result<Vec<String>, StoreError>;
    fn elevate(&self, id: &str, auth_time: tessera_core::NumericDate, acr: Option<&str>, amr: &[String], now: Timestamp, record: &AuditRecord) -> Result<Option<Session>, StoreError>;
    fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError>;
    fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError>;
    fn revocations_after(&self, after: i64, limit: u32) -> Result<Vec<RevocationEvent>, StoreError>;
    fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError>;
    fn insert_key_unless_state(&self, key: &StoredKey) -> Result<bool, StoreError>;
    fn keys(&self) -> Result<Vec<StoredKey>, StoreError>;
    fn activate_key(&self, kid: &str, now: Timestamp, retire_until: Timestamp, record: &AuditRecord) -> Result<bool, StoreError>;
    fn revoke_key(&self, kid: &str, now: Timestamp, until: Timestamp, record: &AuditRecord) -> Result<KeyRevoked, StoreError>;
    fn remove_expired_keys(&self, now: Timestamp) -> Result<Vec<String>, StoreError>;
    fn ended_status_indices(&self, from: StatusIndex, to: StatusIndex) -> Result<Vec<StatusIndex>, StoreError>;
    fn max_status_index(&self) -> Result<Option<StatusIndex>, StoreError>;
    fn prune_revocations(&self, now: Timestamp) -> Result<u64, StoreError>;
    fn remember_proof(&self, id: &str, now: Timestamp, expires_at: Timestamp) -> Result<bool, StoreError>;
    fn is_remembered(&self, id: &str, now: Timestamp) -> Result<bool, StoreError>;
    fn prune_proofs(&self, now: Timestamp) -> Result<u64, StoreError>;
    fn change_marks(&self) -> Result<ChangeMarks, StoreError>;
    fn secret_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError>;
}
