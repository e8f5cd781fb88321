//! SQLite backend: one database file in WAL mode, the embedded default.
//!
//! Writers are serialised by SQLite itself. Every multi-statement write runs in
//! a `BEGIN IMMEDIATE` transaction, which takes the write lock up front: a
//! deferred transaction that reads first and writes later can find the lock
//! taken by another connection and fail at once with `SQLITE_BUSY` instead of
//! waiting (the busy timeout cannot help a read lock that must be upgraded).
//! Single-statement writes run in autocommit mode, which waits on the lock.

pub use crate::group_commit::RotationStats;
use crate::group_commit::{self, Committer, Rotation};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Executor, Row, Sqlite};

use crate::{
    Algorithm, AuditFilter, AuditKind, AuditRecord, ChangeMarks, Client, ClientDeleted, ClientKind,
    Device, EndReason, EventKind, Generation, KeyRevoked, KeyState, LimitPolicy, NewSession,
    NumericDate, OpenOutcome, Permission, ProofKey, RevocationEvent, RotateOutcome, Session,
    SessionLimit, StatusIndex, Store, StoreError, StoredKey, Timestamp, TokenFormat,
};

/// Connections kept for reads (WAL lets readers run beside the writer).
const MAX_CONNECTIONS: u32 = 8;
/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a caller waits for a free connection before `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How a write transaction begins (see the module documentation).
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";
/// How often the change marks are reread, to notice writes by other
/// processes (a CLI revoking a key or a session beside `tessera serve`).
const MARKS_POLL: Duration = Duration::from_millis(200);

/// Audit rows answered when the filter asks for none in particular.
const AUDIT_DEFAULT_LIMIT: u32 = 100;
/// Most audit rows answered at once.
const AUDIT_MAX_LIMIT: u32 = 1000;

/// [`Store`] on a SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers.
    pool: SqlitePool,
    /// The one writer. SQLite admits one writer at a time; with several
    /// writing connections the losers sleep in SQLite's busy handler (1, 2,
    /// 5 ms ...), which measured at under 3,000 refreshes/s with a 68 ms p99.
    /// A single connection makes writers queue fairly in the pool instead.
    writer: SqlitePool,
    /// Refresh rotations, committed in batches on `writer`.
    rotations: group_commit::GroupCommit,
    /// Publishes the change marks.
    watcher: Arc<Watcher>,
}

/// The change-mark publisher: a background task rereads the marks every
/// [`MARKS_POLL`], or at once when a write through this handle kicks it.
#[derive(Debug)]
struct Watcher {
    marks: tokio::sync::watch::Sender<ChangeMarks>,
    kick: tokio::sync::Notify,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url`, which is `sqlite://` followed
    /// by a file path (`sqlite://data/tessera.db`, `sqlite:///var/lib/tessera/tessera.db`),
    /// and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let path = url
            .strip_prefix("sqlite://")
            .filter(|path| !path.is_empty())
            .ok_or_else(|| {
                StoreError::Unavailable(
                    "a SQLite store url is sqlite:// followed by a file path".into(),
                )
            })?;
        Self::open_path(Path::new(path)).await
    }

    /// Opens (creating if missing, with its parent directories) the database file at
    /// `path`, and brings its schema up to date.
    pub async fn open_path(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            private_dir(parent).map_err(|e| {
                StoreError::Unavailable(
                    format!("cannot create directory {}: {e}", parent.display()).into(),
                )
            })?;
        }
        private_file(path).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", path.display()).into())
        })?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Durable once answered: in WAL mode, NORMAL syncs only at
            // checkpoints, so the last commits (a logout, a key revocation)
            // could come back after a power loss. FULL syncs the WAL at every
            // commit.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(migrate_error)?;
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        let initial = read_marks(&pool).await?;
        let watcher = Arc::new(Watcher {
            marks: tokio::sync::watch::Sender::new(initial),
            kick: tokio::sync::Notify::new(),
        });
        tokio::spawn(watch_marks(Arc::downgrade(&watcher), pool.clone()));
        let rotations = group_commit::GroupCommit::start(SqliteCommitter::new(writer.clone()));
        Ok(SqliteStore {
            pool,
            writer,
            rotations,
            watcher,
        })
    }

    fn read(&self) -> &SqlitePool {
        &self.pool
    }

    fn write(&self) -> &SqlitePool {
        &self.writer
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'_, Sqlite>, sqlx::Error> {
        self.writer.begin_with(BEGIN_WRITE).await
    }

    /// Tells the mark watcher that this handle just committed a change.
    fn changed(&self) {
        self.watcher.kick.notify_one();
    }

    /// The writer's `PRAGMA synchronous` (2 = FULL: every commit is on disk
    /// before it is answered), for diagnostics and tests.
    pub async fn synchronous(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("PRAGMA synchronous")
            .fetch_one(&self.writer)
            .await?
            .try_get(0)?)
    }

    /// How the refresh group commit has gone (batches, rotations, retries).
    pub fn rotation_stats(&self) -> RotationStats {
        self.rotations.stats()
    }

    /// Closes every connection, waiting for the ones in use to be returned.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

/// Creates `dir` (and its parents) readable by the owner only; new
/// directories get mode 0700.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// The database file exists with mode 0600 before SQLite opens it (SQLite
/// gives its `-wal` and `-shm` files the database's mode); a file left
/// readable by others by an earlier build is tightened, with a warning.
fn private_file(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            if let Ok(meta) = std::fs::metadata(&file)
                && meta.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(path = %file.display(), "the database file was readable by others; now 0600");
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Rereads the marks until the store is dropped or closed.
async fn watch_marks(watcher: Weak<Watcher>, pool: SqlitePool) {
    loop {
        {
            let Some(strong) = watcher.upgrade() else {
                return;
            };
            // Holding `strong` for one poll interval only delays noticing
            // that the store was dropped.
            let _ = tokio::time::timeout(MARKS_POLL, strong.kick.notified()).await;
        }
        let Some(strong) = watcher.upgrade() else {
            return;
        };
        if pool.is_closed() {
            return;
        }
        match read_marks(&pool).await {
            Ok(now) => {
                strong.marks.send_if_modified(|seen| {
                    let moved = *seen != now;
                    *seen = now;
                    moved
                });
            }
            Err(error) => tracing::debug!(%error, "reading change marks failed"),
        }
    }
}

/// A revocation event. The single writer makes `seq` order commit order.
const INSERT_REVOCATION: &str =
    "INSERT INTO revocations (kind, id, at, until) VALUES ($1, $2, $3, $4)";

/// One pending (or first active) key per algorithm: the single writer
/// connection serialises this statement.
const INSERT_KEY_UNLESS_STATE: &str = "INSERT INTO signing_keys \
                 (kid, alg, state, public_key, sealed_secret, created_at, activates_at, retired_at, expires_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 \
             WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE alg = $2 AND state = $3)";

crate::shared::impl_store!(SqliteStore, Sqlite, {
    async fn open_session(
        &self,
        session: &NewSession,
        limit: Option<SessionLimit>,
        opened: &AuditRecord,
        evict_until: Timestamp,
    ) -> Result<OpenOutcome, StoreError> {
        let tx = self.begin_write().await?;
        let outcome = open_in(tx, session, limit, opened, evict_until).await?;
        if matches!(&outcome, OpenOutcome::Opened { evicted, .. } if !evicted.is_empty()) {
            self.changed();
        }
        Ok(outcome)
    }
});

/// The session insert: the status index is `MAX + 1`
/// (safe: one writer at a time).
const INSERT_SESSION: &str = "INSERT INTO sessions (id, subject, client_id, opened_by, scope, audience, claims, auth_time, acr, amr, \
         token_format, dpop_jkt, device_ip, device_user_agent, device_label, generation, created_at, \
         last_used_at, rotated_at, idle_expires_at, absolute_expires_at, revoked_at, revoked_reason, \
         status_idx) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, \
         (SELECT COALESCE(MAX(status_idx), -1) + 1 FROM sessions)) \
     RETURNING status_idx";

// ---- rows to records; bad stored data is `Corrupt`, never a panic
crate::rows::row_decoders!(SqliteRow);

/// The SQLite side of the group commit: the batch statement on the single
/// writer connection.
struct SqliteCommitter {
    writer: SqlitePool,
    /// `statements[i]` rotates up to `BUCKETS[i]` sessions. Built from
    /// constants only: no caller text is ever part of the SQL.
    statements: Vec<Arc<str>>,
}

impl SqliteCommitter {
    fn new(writer: SqlitePool) -> Self {
        SqliteCommitter {
            writer,
            statements: group_commit::BUCKETS
                .into_iter()
                .map(|n| Arc::from(batch_sql(n)))
                .collect(),
        }
    }

    fn query(
        &self,
        n: usize,
    ) -> Result<sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments>, StoreError>
    {
        let index = group_commit::BUCKETS
            .iter()
            .position(|b| *b == group_commit::bucket(n))
            .unwrap_or(0);
        let sql = self
            .statements
            .get(index)
            .ok_or_else(|| StoreError::Unavailable("no statement for the batch".into()))?;
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql.clone())))
    }
}

impl Committer for SqliteCommitter {
    async fn commit_batch(
        &self,
        batch: &[&Rotation],
    ) -> Result<Vec<group_commit::Won>, StoreError> {
        let mut query = self.query(batch.len())?;
        for rotation in batch {
            query = bind_rotation(query, rotation);
        }
        for _ in batch.len()..group_commit::bucket(batch.len()) {
            query = bind_padding(query);
        }
        let rows = query.fetch_all(&self.writer).await?;
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

    async fn commit_one(&self, rotation: &Rotation) -> Result<Option<Session>, StoreError> {
        let row = bind_rotation(self.query(1)?, rotation)
            .fetch_optional(&self.writer)
            .await?;
        row.map(|row| session_from_row(&row)).transpose()
    }
}

/// The columns one rotation binds, in the order of [`batch_sql`]'s `VALUES`.
const ROTATION_COLUMNS: &str = "id, client_id, expected, now, idle, at, kind, subject, actor, ip, \
                                user_agent, label, detail, jkt, bind";

/// The statement for `n` rotations (`n` ≥ 1): every row its own CAS.
fn batch_sql(n: usize) -> String {
    let row = format!("({})", vec!["?"; 15].join(", "));
    let rows = vec![row; n].join(", ");
    format!(
        "WITH b({ROTATION_COLUMNS}) AS (VALUES {rows}) \
         UPDATE sessions SET generation = sessions.generation + 1, \
             last_used_at = b.now, rotated_at = b.now, \
             idle_expires_at = CASE WHEN b.idle < sessions.absolute_expires_at \
                 THEN b.idle ELSE sessions.absolute_expires_at END, \
             last_event_at = b.at, last_event_kind = b.kind, last_event_subject = b.subject, \
             last_event_client_id = b.actor, last_event_ip = b.ip, \
             last_event_user_agent = b.user_agent, last_event_label = b.label, \
             last_event_detail = b.detail, \
             dpop_jkt = COALESCE(sessions.dpop_jkt, b.bind) \
         FROM b \
         WHERE sessions.id = b.id AND sessions.client_id = b.client_id \
           AND sessions.generation = b.expected AND sessions.revoked_at IS NULL \
           AND sessions.idle_expires_at > b.now AND sessions.absolute_expires_at > b.now \
           AND (sessions.dpop_jkt IS NULL OR sessions.dpop_jkt = b.jkt) \
         RETURNING *"
    )
}

/// A row that matches no session (`id` NULL).
fn bind_padding(
    query: sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments>,
) -> sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments> {
    let mut query = query;
    for _ in 0..15 {
        query = query.bind(None::<String>);
    }
    query
}

fn bind_rotation<'q>(
    query: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>,
    r: &'q Rotation,
) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments> {
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
