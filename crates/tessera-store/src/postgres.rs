//! PostgreSQL backend: many `tessera serve` instances share one database.
//!
//! * Every state change is one transaction; a refresh rotation is one
//!   statement (the compare-and-swap and its audit record in a
//!   data-modifying CTE), so racing instances produce exactly one next
//!   generation and hold no lock across a network round trip.
//! * Opening a session under a per-subject limit takes a transaction-scoped
//!   advisory lock on the subject, so two instances cannot both see room.
//!   A transaction failing with a serialization failure or deadlock is
//!   retried at most [`MAX_RETRIES`] times; each retry is logged and counted
//!   ([`PgStore::serialization_retries`]).
//! * Change notification: triggers `NOTIFY tessera_changes` when revocation
//!   events or keys change; every instance `LISTEN`s and rereads the change
//!   marks, so streams and key caches everywhere follow at commit, with no
//!   polling loop.
//! * Key rotation steps are compare-and-swaps on the key's state, and
//!   [`Store::insert_key_unless`] takes a transaction-scoped advisory lock
//!   inside its one statement: a scheduled rotation happens once however
//!   many instances run the schedule.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Executor, Postgres, Row};

pub use crate::group_commit::RotationStats;
use crate::group_commit::{self, Committer, GroupCommit, Rotation};
use crate::{
    Algorithm, AuditFilter, AuditKind, AuditRecord, ChangeMarks, Client, ClientDeleted, ClientKind,
    Device, EndReason, EventKind, Generation, KeyRevoked, KeyState, LimitPolicy, NewSession,
    NumericDate, OpenOutcome, Permission, ProofKey, RevocationEvent, RotateOutcome, Session,
    SessionLimit, StatusIndex, Store, StoreError, StoredKey, Timestamp, TokenFormat,
};

/// Most retries of a transaction that failed to serialize.
pub const MAX_RETRIES: u32 = 5;
/// The notification channel the triggers of `migrations/postgres` use.
const CHANNEL: &str = "tessera_changes";
/// How long a caller waits for a free connection before `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Audit rows answered when the filter asks for none in particular.
const AUDIT_DEFAULT_LIMIT: u32 = 100;
/// Most audit rows answered at once.
const AUDIT_MAX_LIMIT: u32 = 1000;

/// Connection pool settings (`store.max_connections`).
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// Most open connections. Default 16.
    pub max_connections: u32,
}

impl Default for PgSettings {
    fn default() -> Self {
        PgSettings {
            max_connections: 16,
        }
    }
}

/// [`Store`] on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    watcher: Arc<Watcher>,
    retries: Arc<AtomicU64>,
    /// Refresh rotations, committed in batches (one statement per batch).
    rotations: GroupCommit,
}

#[derive(Debug)]
struct Watcher {
    marks: tokio::sync::watch::Sender<ChangeMarks>,
    kick: tokio::sync::Notify,
}

impl PgStore {
    /// Connects to `url` (`postgres://...`), brings the schema up to date
    /// (migrations take PostgreSQL's advisory lock: instances starting
    /// together migrate once) and starts listening for changes.
    pub async fn connect(url: &str, settings: &PgSettings) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Unavailable(format!("store.url: {e}").into()))?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections.max(2))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(migrate_error)?;
        let initial = read_marks(&pool).await?;
        let watcher = Arc::new(Watcher {
            marks: tokio::sync::watch::Sender::new(initial),
            kick: tokio::sync::Notify::new(),
        });
        tokio::spawn(listen(Arc::downgrade(&watcher), pool.clone()));
        let pool_for_rotations = pool.clone();
        Ok(PgStore {
            pool,
            watcher,
            retries: Arc::default(),
            rotations: GroupCommit::start(PgCommitter {
                pool: pool_for_rotations,
            }),
        })
    }

    /// Like [`PgStore::connect`], but only to a database that already holds
    /// Tessera's schema: `NotFound` otherwise, and nothing is created
    /// (admin commands must never start an empty store by accident).
    pub async fn connect_existing(url: &str, settings: &PgSettings) -> Result<Self, StoreError> {
        use sqlx::Connection as _;
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Unavailable(format!("store.url: {e}").into()))?;
        let mut conn = sqlx::PgConnection::connect_with(&options).await?;
        let exists: bool = sqlx::query("SELECT to_regclass('sessions') IS NOT NULL")
            .fetch_one(&mut conn)
            .await?
            .try_get(0)?;
        let _ = conn.close().await;
        if !exists {
            return Err(StoreError::NotFound);
        }
        Self::connect(url, settings).await
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Transactions retried after a serialization failure, since start.
    pub fn serialization_retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    fn read(&self) -> &PgPool {
        &self.pool
    }

    fn write(&self) -> &PgPool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'_, Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    fn changed(&self) {
        self.watcher.kick.notify_one();
    }

    async fn open_session_once(
        &self,
        session: &NewSession,
        limit: Option<SessionLimit>,
        opened: &AuditRecord,
        evict_until: Timestamp,
    ) -> Result<OpenOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        if limit.is_some() {
            // Opens for one subject queue on a transaction-scoped lock (other
            // subjects and refreshes never wait on it), so the count below
            // and the insert cannot interleave with another instance's.
            sqlx::query(
                "SELECT pg_advisory_xact_lock(hashtextextended('tessera-subject:' || $1, 0))",
            )
            .bind(&session.subject)
            .execute(&mut *tx)
            .await?;
        }
        let outcome = open_in(tx, session, limit, opened, evict_until).await?;
        if matches!(&outcome, OpenOutcome::Opened { evicted, .. } if !evicted.is_empty()) {
            self.changed();
        }
        Ok(outcome)
    }
}

/// Follows `NOTIFY tessera_changes` (and this handle's own writes) until the
/// store is dropped; rereads the marks on each, and after every reconnect
/// (notifications sent while disconnected are lost, the marks are not).
async fn listen(watcher: Weak<Watcher>, pool: PgPool) {
    let mut backoff = Duration::from_millis(100);
    'connect: loop {
        if pool.is_closed() || watcher.strong_count() == 0 {
            return;
        }
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "change listener cannot connect; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if let Err(error) = listener.listen(CHANNEL).await {
            tracing::warn!(%error, "LISTEN failed; retrying");
            tokio::time::sleep(backoff).await;
            continue;
        }
        backoff = Duration::from_millis(100);
        let mut reread = true;
        loop {
            let Some(strong) = watcher.upgrade() else {
                return;
            };
            if reread && let Ok(marks) = read_marks(&pool).await {
                strong.marks.send_if_modified(|seen| {
                    let moved = *seen != marks;
                    *seen = marks;
                    moved
                });
            }
            enum Woke {
                Changed,
                Quiet,
                Lost,
            }
            let woke = tokio::select! {
                received = listener.try_recv() => match received {
                    Ok(Some(_)) => Woke::Changed,
                    Ok(None) | Err(_) => Woke::Lost,
                },
                () = strong.kick.notified() => Woke::Changed,
                // Only to notice a dropped store: nothing is read.
                () = tokio::time::sleep(Duration::from_secs(5)) => Woke::Quiet,
            };
            drop(strong);
            match woke {
                Woke::Changed => reread = true,
                Woke::Quiet => reread = false,
                Woke::Lost => {
                    tracing::warn!("change listener lost its connection; reconnecting");
                    continue 'connect;
                }
            }
        }
    }
}

/// The refresh CAS and its audit record in one statement (a data-modifying
/// CTE): one round trip, one transaction. Under READ COMMITTED a racing
/// UPDATE waits for the winner, rechecks the generation and matches nothing.
const ROTATE: &str = "WITH won AS ( \
                 UPDATE sessions SET generation = generation + 1, last_used_at = $1, rotated_at = $1, \
                     idle_expires_at = LEAST($2, absolute_expires_at), \
                     dpop_jkt = COALESCE(dpop_jkt, $15) \
                 WHERE id = $3 AND client_id = $4 AND generation = $5 AND revoked_at IS NULL \
                   AND idle_expires_at > $1 AND absolute_expires_at > $1 \
                   AND (dpop_jkt IS NULL OR dpop_jkt = $14) \
                 RETURNING *), \
             logged AS ( \
                 INSERT INTO audit (at, kind, subject, session_id, client_id, device_ip, device_user_agent, \
                     device_label, detail) \
                 SELECT $6, $7, COALESCE($8, won.subject), won.id, $9, $10, $11, $12, $13 FROM won) \
             SELECT * FROM won";

/// A revocation event, its `seq` taken under a transaction-scoped lock so
/// that `seq` order is commit order: without it, a transaction holding seq
/// 5 could commit after another's seq 6, and a follower reading `seq > 5`
/// once 6 is visible would never see 5. Revocation-writing transactions
/// (ends, evictions, key revocations) queue briefly; refreshes never take it.
const INSERT_REVOCATION: &str = "INSERT INTO revocations (kind, id, at, until) \
             SELECT $1, $2, $3, $4 \
             FROM (SELECT pg_advisory_xact_lock(hashtextextended('tessera-revocations', 0))) AS in_order";

/// One pending (or first active) key per algorithm. READ COMMITTED cannot see
/// a concurrent uncommitted insert, so the statement first takes a
/// transaction-scoped advisory lock (released at its own commit, never held
/// across a round trip): of instances racing, one inserts and the others find
/// its row or the lock taken.
const INSERT_KEY_UNLESS_STATE: &str = "INSERT INTO signing_keys \
                 (kid, alg, state, public_key, sealed_secret, created_at, activates_at, retired_at, expires_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 \
             WHERE pg_try_advisory_xact_lock(hashtextextended('tessera-keys:' || $2 || ':' || $3, 0)) \
               AND NOT EXISTS (SELECT 1 FROM signing_keys WHERE alg = $2 AND state = $3)";

crate::shared::impl_store!(PgStore, Postgres, {
    async fn open_session(
        &self,
        session: &NewSession,
        limit: Option<SessionLimit>,
        opened: &AuditRecord,
        evict_until: Timestamp,
    ) -> Result<OpenOutcome, StoreError> {
        // A deadlock or serialization failure (possible with evictions racing
        // other writers) is retried a bounded number of times, with backoff.
        let mut attempt = 0;
        loop {
            match self
                .open_session_once(session, limit, opened, evict_until)
                .await
            {
                Err(StoreError::Busy(reason)) if attempt < MAX_RETRIES => {
                    tokio::time::sleep(Duration::from_millis(2 << attempt)).await;
                    attempt += 1;
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(attempt, %reason, subject = %session.subject, "open_session: serialization conflict; retrying");
                }
                other => return other,
            }
        }
    }
});

/// The session insert: the status index is a sequence
/// (never reused, even by concurrent instances).
const INSERT_SESSION: &str = "INSERT INTO sessions (id, subject, client_id, opened_by, scope, audience, claims, auth_time, acr, amr, \
         token_format, dpop_jkt, device_ip, device_user_agent, device_label, generation, created_at, \
         last_used_at, rotated_at, idle_expires_at, absolute_expires_at, revoked_at, revoked_reason, \
         status_idx) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, \
         nextval('session_status_idx')) \
     RETURNING status_idx";

// ---- rows to records; bad stored data is `Corrupt`, never a panic
crate::rows::row_decoders!(PgRow);

impl PgStore {
    /// How this instance's refresh group commit has gone.
    pub fn rotation_stats(&self) -> RotationStats {
        self.rotations.stats()
    }
}

/// The PostgreSQL side of the group commit.
struct PgCommitter {
    pool: PgPool,
}

/// The statement for up to `n` rotations: one CAS per `VALUES` row, their
/// audit records inserted by the same statement. Rows come sorted by
/// session id, so instances batching at once lock rows in the same order.
fn pg_batch_sql(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| {
            let p = |k: usize| i * 15 + k;
            format!(
                "(${}::text, ${}::text, ${}::int8, ${}::int8, ${}::int8, ${}::int8, ${}::text, \
                 ${}::text, ${}::text, ${}::text, ${}::text, ${}::text, ${}::text, ${}::text, ${}::text)",
                p(1), p(2), p(3), p(4), p(5), p(6), p(7), p(8), p(9), p(10), p(11), p(12), p(13),
                p(14), p(15)
            )
        })
        .collect();
    format!(
        "WITH b(id, client_id, expected, now, idle, at, kind, subject, actor, ip, user_agent, \
                label, detail, jkt, bind) AS (VALUES {}), \
         won AS ( \
             UPDATE sessions SET generation = sessions.generation + 1, \
                 last_used_at = b.now, rotated_at = b.now, \
                 idle_expires_at = LEAST(b.idle, sessions.absolute_expires_at), \
                 dpop_jkt = COALESCE(sessions.dpop_jkt, b.bind) \
             FROM b \
             WHERE sessions.id = b.id AND sessions.client_id = b.client_id \
               AND sessions.generation = b.expected AND sessions.revoked_at IS NULL \
               AND sessions.idle_expires_at > b.now AND sessions.absolute_expires_at > b.now \
               AND (sessions.dpop_jkt IS NULL OR sessions.dpop_jkt = b.jkt) \
             RETURNING sessions.*), \
         logged AS ( \
             INSERT INTO audit (at, kind, subject, session_id, client_id, device_ip, \
                 device_user_agent, device_label, detail) \
             SELECT b.at, b.kind, COALESCE(b.subject, won.subject), won.id, b.actor, b.ip, \
                 b.user_agent, b.label, b.detail FROM won JOIN b ON b.id = won.id) \
         SELECT * FROM won",
        rows.join(", ")
    )
}

fn bind_pg_rotation<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    r: &'q Rotation,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(&r.id)
        .bind(&r.client_id)
        .bind(r.expected)
        .bind(r.now)
        .bind(r.idle)
        .bind(r.at)
        .bind(&r.kind)
        .bind(&r.subject)
        .bind(&r.actor)
        .bind(&r.ip)
        .bind(&r.user_agent)
        .bind(&r.label)
        .bind(&r.detail)
        .bind(&r.jkt)
        .bind(&r.bind)
}

impl Committer for PgCommitter {
    async fn commit_batch(
        &self,
        batch: &[&Rotation],
    ) -> Result<Vec<group_commit::Won>, StoreError> {
        static STATEMENTS: std::sync::OnceLock<Vec<Arc<str>>> = std::sync::OnceLock::new();
        let statements = STATEMENTS.get_or_init(|| {
            group_commit::BUCKETS
                .into_iter()
                .map(|n| Arc::from(pg_batch_sql(n)))
                .collect()
        });
        let size = group_commit::bucket(batch.len());
        let index = group_commit::BUCKETS
            .iter()
            .position(|b| *b == size)
            .unwrap_or(0);
        let sql = statements
            .get(index)
            .ok_or_else(|| StoreError::Unavailable("no statement for the batch".into()))?;
        let mut sorted: Vec<&Rotation> = batch.to_vec();
        sorted.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        // Built from constants only: no caller text is ever part of the SQL.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
        for rotation in &sorted {
            query = bind_pg_rotation(query, rotation);
        }
        for _ in sorted.len()..size {
            query = query
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(None::<i64>);
            for _ in 0..9 {
                query = query.bind(None::<String>);
            }
        }
        let rows = query.fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(|row| {
                (
                    row.try_get::<String, _>("id").unwrap_or_default(),
                    session_from_row(row),
                )
            })
            .collect())
    }

    async fn commit_one(&self, r: &Rotation) -> Result<Option<Session>, StoreError> {
        let won = sqlx::query(ROTATE)
            .bind(r.now)
            .bind(r.idle)
            .bind(&r.id)
            .bind(&r.client_id)
            .bind(r.expected)
            .bind(r.at)
            .bind(&r.kind)
            .bind(&r.subject)
            .bind(&r.actor)
            .bind(&r.ip)
            .bind(&r.user_agent)
            .bind(&r.label)
            .bind(&r.detail)
            .bind(&r.jkt)
            .bind(&r.bind)
            .fetch_optional(&self.pool)
            .await?;
        won.map(|row| session_from_row(&row)).transpose()
    }
}
