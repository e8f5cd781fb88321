//! # tessera-store
//!
//! Persistence behind one async trait, [`Store`], whose methods are the
//! domain's operations (open a session, rotate a refresh family with a
//! compare-and-swap, end a subject's sessions, append audit records), not
//! tables. Every state change is one transaction, and writes its audit
//! records and revocation events in that same transaction.
//!
//! Backends: [`sqlite::SqliteStore`] (one file, WAL; the embedded default).
//! [`postgres::PgStore`] (many instances); the SQL stays portable.

mod error;
mod group_commit;
mod model;
pub mod postgres;
mod rows;
mod shared;
pub mod sqlite;

pub use error::{Cause, StoreError};
pub use model::*;

/// A new session to insert (the store fills in nothing but `seq`s).
pub type NewSession = Session;

/// Everything Tessera persists.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap round trip for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;

    // ---- clients
    /// Registers a client with its `client.created` audit record; `Conflict`
    /// if the id exists.
    async fn insert_client(&self, client: &Client, record: &AuditRecord) -> Result<(), StoreError>;
    /// The client with this id.
    async fn client(&self, id: &str) -> Result<Option<Client>, StoreError>;
    /// Every registered client, oldest first.
    async fn clients(&self) -> Result<Vec<Client>, StoreError>;
    /// Writes every mutable field of `client` and `record`, in one
    /// transaction, if the stored client still has `updated_at == expected`
    /// (a compare-and-swap: a concurrent change is never overwritten).
    /// Answers whether it was written (false: no such client, or it changed).
    async fn update_client(
        &self,
        client: &Client,
        expected: crate::Timestamp,
        record: &AuditRecord,
    ) -> Result<bool, StoreError>;
    /// Deletes the client `id` if it is disabled, with `record`.
    async fn delete_client(
        &self,
        id: &str,
        record: &AuditRecord,
    ) -> Result<ClientDeleted, StoreError>;
    /// Ends every live session that client `client_id` refreshes or opened
    /// (reason `Revoked`), one audit record per session built from `template`
    /// and one `session` revocation event each, valid until `until`. Answers
    /// the ids ended.
    async fn end_client_sessions(
        &self,
        client_id: &str,
        now: crate::Timestamp,
        until: crate::Timestamp,
        template: &AuditRecord,
    ) -> Result<Vec<String>, StoreError>;

    // ---- sessions
    /// Inserts `session` (generation 1) and its `session.opened` audit record.
    /// With a `limit`, counts the live sessions of the subject at the same
    /// client (`session.client_id`, whose policy sets the limit) opened by
    /// the same backend (`session.opened_by`: a backend never ends or counts
    /// another backend's sessions) at `session.created_at`, in the same
    /// transaction: at the limit, `Reject`
    /// writes nothing and answers `LimitReached`; `EvictOldest` ends the least
    /// recently used ones (reason `Evicted`, with audit records and revocation
    /// events valid until `evict_until`) to make room.
    async fn open_session(
        &self,
        session: &NewSession,
        limit: Option<SessionLimit>,
        opened: &AuditRecord,
        evict_until: crate::Timestamp,
    ) -> Result<OpenOutcome, StoreError>;

    /// The session with this id, live or not.
    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError>;

    /// The subject's live sessions at `now`, newest first; only those opened
    /// by `opened_by` when it is given.
    async fn live_sessions(
        &self,
        subject: &str,
        now: crate::Timestamp,
        opened_by: Option<&str>,
    ) -> Result<Vec<Session>, StoreError>;

    /// Compare-and-swap of the refresh generation: if the session belongs to
    /// `client_id`, is live at `now` and its generation is `expected`, set it to `expected + 1`,
    /// `last_used_at = rotated_at = now`, `idle_expires_at` as given (never past
    /// `absolute_expires_at`), and append `refreshed`; all in one transaction.
    ///
    /// `proof` is the DPoP key the request proved it holds: a session bound
    /// to a key (`dpop_jkt`) rotates only for that key, and an unbound
    /// session becomes bound to `proof.bind` when given. Otherwise change
    /// nothing and answer `Stale` with the session as it is, or `NotFound`
    /// if there is no such session.
    #[allow(clippy::too_many_arguments)]
    async fn rotate(
        &self,
        id: &str,
        client_id: &str,
        expected: crate::Generation,
        now: crate::Timestamp,
        idle_expires_at: crate::Timestamp,
        proof: ProofKey<'_>,
        refreshed: &AuditRecord,
    ) -> Result<RotateOutcome, StoreError>;

    /// Marks the session used (a grace retry) without rotating: `last_used_at`.
    async fn touch(&self, id: &str, now: crate::Timestamp) -> Result<(), StoreError>;

    /// Ends one session if it is not ended yet: sets `revoked_at`/`revoked_reason`,
    /// appends `record` (its kind should be `reason.audit_kind()`) and a `session`
    /// revocation event valid until `until`. Answers whether this call ended it.
    async fn end_session(
        &self,
        id: &str,
        reason: EndReason,
        now: crate::Timestamp,
        until: crate::Timestamp,
        record: &AuditRecord,
    ) -> Result<bool, StoreError>;

    /// Ends every live session of `subject` (reason `Revoked`), one audit record
    /// per session built from `template` (with its `session_id` filled in).
    /// Without `opened_by`: one `subject` revocation event valid until `until`
    /// (every token of the subject issued until now). With `opened_by`: only
    /// the sessions that backend opened, one `session` event each, so other
    /// backends' sessions of the subject are untouched. Answers the ids ended.
    async fn end_subject(
        &self,
        subject: &str,
        now: crate::Timestamp,
        until: crate::Timestamp,
        template: &AuditRecord,
        opened_by: Option<&str>,
    ) -> Result<Vec<String>, StoreError>;

    /// Step-up: sets `auth_time`, `acr`, `amr` of a live session and appends
    /// `record`. `None` if there is no live session with that id.
    async fn elevate(
        &self,
        id: &str,
        auth_time: crate::NumericDate,
        acr: Option<&str>,
        amr: &[String],
        now: crate::Timestamp,
        record: &AuditRecord,
    ) -> Result<Option<Session>, StoreError>;

    // ---- audit and revocation feed
    /// Appends one audit record outside a state change (e.g. a refused request).
    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError>;
    /// Audit records matching `filter`, oldest first.
    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError>;
    /// Revocation events with `seq > after`, oldest first, at most `limit`.
    async fn revocations_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<RevocationEvent>, StoreError>;

    // ---- keys and server secrets
    /// Stores a new signing key; `Conflict` if the kid exists.
    async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError>;
    /// Stores `key` unless a key of its algorithm is already in `key.state`
    /// (one pending key per algorithm; one first active key), atomically
    /// even when several instances try at once. Answers whether it was stored.
    async fn insert_key_unless_state(&self, key: &StoredKey) -> Result<bool, StoreError>;
    /// Every stored key, oldest first.
    async fn keys(&self) -> Result<Vec<StoredKey>, StoreError>;
    /// Activates the `pending` key `kid` (compare-and-swap on its state) and
    /// retires every other `active` key of its algorithm (`retired_at = now`,
    /// `expires_at = retire_until`), with `record`, in one transaction.
    /// Answers whether this call activated it (false: not pending any more,
    /// e.g. another instance got there first).
    async fn activate_key(
        &self,
        kid: &str,
        now: crate::Timestamp,
        retire_until: crate::Timestamp,
        record: &AuditRecord,
    ) -> Result<bool, StoreError>;
    /// Compromise: sets the key `revoked` (unpublished at once), appends
    /// `record` and a `key` revocation event valid until `until`, in one transaction.
    async fn revoke_key(
        &self,
        kid: &str,
        now: crate::Timestamp,
        until: crate::Timestamp,
        record: &AuditRecord,
    ) -> Result<KeyRevoked, StoreError>;
    /// Deletes retired keys whose `expires_at` is at or before `now` and
    /// revoked keys whose revocation event is past its `until` (their sealed
    /// secrets go with them), one `key.removed` audit record each. Answers the kids.
    async fn remove_expired_keys(&self, now: crate::Timestamp) -> Result<Vec<String>, StoreError>;

    // ---- status lists and change marks
    /// Status indices in `[from, to)` whose session has ended, ascending.
    async fn ended_status_indices(
        &self,
        from: crate::StatusIndex,
        to: crate::StatusIndex,
    ) -> Result<Vec<crate::StatusIndex>, StoreError>;
    /// The highest status index given out, if any.
    async fn max_status_index(&self) -> Result<Option<crate::StatusIndex>, StoreError>;
    /// Deletes revocation events whose `until` is before `now`; answers how many.
    async fn prune_revocations(&self, now: crate::Timestamp) -> Result<u64, StoreError>;

    // ---- DPoP proof replay (shared by every instance)
    /// Records the DPoP proof `id` (a digest of its key and `jti`) until
    /// `expires_at`. Answers `false`, changing nothing, when `id` is
    /// already recorded and has not expired at `now`: a replay.
    async fn remember_proof(
        &self,
        id: &str,
        now: crate::Timestamp,
        expires_at: crate::Timestamp,
    ) -> Result<bool, StoreError>;
    /// Whether `id` is recorded by [`Store::remember_proof`] and has not
    /// expired at `now` (a read: records nothing).
    async fn is_remembered(&self, id: &str, now: crate::Timestamp) -> Result<bool, StoreError>;
    /// Deletes recorded proofs that expired before `now`; answers how many.
    async fn prune_proofs(&self, now: crate::Timestamp) -> Result<u64, StoreError>;
    /// The change marks as stored now.
    async fn change_marks(&self) -> Result<ChangeMarks, StoreError>;
    /// Follows [`Store::change_marks`]: changes made through this handle show
    /// at once, changes made by other processes within a short poll interval.
    fn changes(&self) -> tokio::sync::watch::Receiver<ChangeMarks>;
    /// The sealed server secret `name`, inserting `value` first if absent
    /// (so concurrent first starts agree on one value).
    async fn secret_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError>;
}
