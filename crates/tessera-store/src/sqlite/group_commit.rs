//! Group commit of refresh rotations on SQLite.
//!
//! Every rotation is a compare-and-swap `UPDATE ... RETURNING` that must be
//! on disk before it is answered (`synchronous=FULL`). One at a time, each
//! pays a hop to sqlx's SQLite worker thread and a WAL sync. Here one task
//! owns the rotations: it takes every rotation queued when it is free
//! (up to [`MAX_BATCH`]) and runs them as *one* `UPDATE sessions ... FROM
//! (VALUES ...) RETURNING *`: one hop, one implicit transaction, one sync.
//!
//! Every rotation still gets its own verdict: each row of the batch carries
//! its own compare-and-swap condition, and the rows that matched come back
//! in `RETURNING` (the others are stale, judged by the caller as before).
//! Two rotations of one session never share a statement: the later one
//! waits for the next batch, so it sees the first one's result exactly as
//! a later single statement would. If the batch statement fails, each of its
//! rotations is retried alone, so one failing rotation cannot fail its
//! neighbours. The audit record of each rotation is written by the
//! `sessions_rotation_audit` trigger (migration 0002) inside the same
//! statement, as for a single rotation.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use crate::{AuditRecord, ProofKey, Session, StoreError, Timestamp};

/// Most rotations in one statement (15 parameters each; SQLite allows 32,766).
pub(crate) const MAX_BATCH: usize = 128;
/// Rotations waiting at most; more are refused as `Busy` (bounded memory
/// under a flood; the issuer answers 503 with `Retry-After`).
pub(crate) const QUEUE: usize = 8192;

/// The columns one rotation binds, in the order of [`batch_sql`]'s `VALUES`.
const COLUMNS: &str = "id, client_id, expected, now, idle, at, kind, subject, actor, ip, \
                       user_agent, label, detail, jkt, bind";
const PER_ROW: usize = 15;

/// The statement for `n` rotations (`n` ≥ 1).
pub(crate) fn batch_sql(n: usize) -> String {
    let row = format!("({})", vec!["?"; PER_ROW].join(", "));
    let rows = vec![row; n].join(", ");
    format!(
        "WITH b({COLUMNS}) AS (VALUES {rows}) \
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

/// One rotation, owned (it crosses to the committing task).
pub(crate) struct Rotation {
    pub(crate) id: String,
    pub(crate) client_id: String,
    pub(crate) expected: i64,
    pub(crate) now: i64,
    pub(crate) idle: i64,
    pub(crate) jkt: Option<String>,
    pub(crate) bind: Option<String>,
    pub(crate) at: i64,
    pub(crate) kind: String,
    pub(crate) subject: Option<String>,
    pub(crate) actor: Option<String>,
    pub(crate) ip: Option<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) label: Option<String>,
    pub(crate) detail: String,
}

impl Rotation {
    /// The rotation `Store::rotate` was asked for.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: &str,
        client_id: &str,
        expected: i64,
        now: Timestamp,
        idle: Timestamp,
        proof: ProofKey<'_>,
        refreshed: &AuditRecord,
        detail: String,
    ) -> Self {
        Rotation {
            id: id.to_owned(),
            client_id: client_id.to_owned(),
            expected,
            now: now.0,
            idle: idle.0,
            jkt: proof.jkt.map(str::to_owned),
            bind: proof.bind.map(str::to_owned),
            at: refreshed.at.0,
            kind: refreshed.kind.as_str().to_owned(),
            subject: refreshed.subject.clone(),
            actor: refreshed.client_id.clone(),
            ip: refreshed.device.ip.clone(),
            user_agent: refreshed.device.user_agent.clone(),
            label: refreshed.device.label.clone(),
            detail,
        }
    }
}

type Reply = oneshot::Sender<Result<Option<Session>, StoreError>>;

/// How the group commit has gone so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RotationStats {
    /// Batch statements run.
    pub batches: u64,
    /// Rotations they carried.
    pub rotations: u64,
    /// Batches that failed and were retried one rotation at a time.
    pub retried_alone: u64,
}

#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    rotations: AtomicU64,
    retried_alone: AtomicU64,
}

/// The handle `SqliteStore` keeps: rotations go to the committing task.
#[derive(Debug, Clone)]
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<(Rotation, Reply)>,
    counters: Arc<Counters>,
}

impl GroupCommit {
    /// Starts the committing task on `writer` (the single write connection).
    pub(crate) fn start(writer: SqlitePool) -> Self {
        let (queue, rotations) = mpsc::channel(QUEUE);
        let counters = Arc::new(Counters::default());
        tokio::spawn(commit_loop(writer, rotations, counters.clone()));
        GroupCommit { queue, counters }
    }

    /// The counters so far.
    pub(crate) fn stats(&self) -> RotationStats {
        RotationStats {
            batches: self.counters.batches.load(Ordering::Relaxed),
            rotations: self.counters.rotations.load(Ordering::Relaxed),
            retried_alone: self.counters.retried_alone.load(Ordering::Relaxed),
        }
    }

    /// Runs `rotation` in the next batch: the session as rotated, or `None`
    /// when its compare-and-swap did not match. Answered only once the batch
    /// is on disk.
    pub(crate) async fn rotate(&self, rotation: Rotation) -> Result<Option<Session>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .try_send((rotation, reply))
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => {
                    StoreError::Busy("too many refreshes waiting to be written".into())
                }
                mpsc::error::TrySendError::Closed(_) => {
                    StoreError::Unavailable("the store is closed".into())
                }
            })?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the store is closed".into()))?
    }
}

/// Takes what is queued, commits it as one batch, answers; until every
/// handle is gone.
async fn commit_loop(
    writer: SqlitePool,
    mut rotations: mpsc::Receiver<(Rotation, Reply)>,
    counters: Arc<Counters>,
) {
    // Built from constants only: no caller text is ever part of the SQL.
    let statements: Vec<Arc<str>> = (1..=MAX_BATCH).map(|n| Arc::from(batch_sql(n))).collect();
    // Rotations of a session already in the batch being built: next batch.
    let mut deferred: VecDeque<(Rotation, Reply)> = VecDeque::new();
    let mut batch: Vec<(Rotation, Reply)> = Vec::with_capacity(MAX_BATCH);
    loop {
        let mut later = VecDeque::new();
        let mut take = |item: (Rotation, Reply), batch: &mut Vec<(Rotation, Reply)>| {
            if batch.iter().any(|(r, _)| r.id == item.0.id) {
                later.push_back(item);
            } else {
                batch.push(item);
            }
        };
        while batch.len() < MAX_BATCH
            && let Some(item) = deferred.pop_front()
        {
            take(item, &mut batch);
        }
        if batch.is_empty() {
            match rotations.recv().await {
                Some(item) => batch.push(item),
                None => return,
            }
        }
        while batch.len() < MAX_BATCH {
            match rotations.try_recv() {
                Ok(item) => take(item, &mut batch),
                Err(_) => break,
            }
        }
        later.extend(deferred.drain(..));
        deferred = later;
        counters.batches.fetch_add(1, Ordering::Relaxed);
        counters.rotations.fetch_add(
            u64::try_from(batch.len()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if commit(&writer, &statements, &mut batch).await {
            counters.retried_alone.fetch_add(1, Ordering::Relaxed);
        }
        batch.clear();
    }
}

/// One batch: one statement, every rotation answered. Answers whether the
/// batch failed and its rotations were retried alone.
async fn commit(
    writer: &SqlitePool,
    statements: &[Arc<str>],
    batch: &mut Vec<(Rotation, Reply)>,
) -> bool {
    let Some(sql) = statements.get(batch.len().saturating_sub(1)) else {
        return false;
    };
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
    for (r, _) in batch.iter() {
        query = bind(query, r);
    }
    match query.fetch_all(writer).await {
        Ok(rows) => {
            let mut won: HashMap<String, Result<Session, StoreError>> = rows
                .iter()
                .map(|row| {
                    let id: Result<String, _> = sqlx::Row::try_get(row, "id");
                    (id.unwrap_or_default(), super::session_from_row(row))
                })
                .collect();
            for (rotation, reply) in batch.drain(..) {
                let _ = reply.send(won.remove(&rotation.id).transpose());
            }
            false
        }
        Err(error) if batch.len() > 1 => {
            // One rotation must not fail its neighbours: each alone.
            tracing::warn!(%error, size = batch.len(), "a batch of rotations failed; retrying each alone");
            for (rotation, reply) in batch.drain(..) {
                let mut one = sqlx::query(sqlx::AssertSqlSafe(statements[0].clone()));
                one = bind(one, &rotation);
                let answer = match one.fetch_optional(writer).await {
                    Ok(Some(row)) => super::session_from_row(&row).map(Some),
                    Ok(None) => Ok(None),
                    Err(error) => Err(error.into()),
                };
                let _ = reply.send(answer);
            }
            true
        }
        Err(error) => {
            // A batch of one: its own error.
            if let Some((_, reply)) = batch.pop() {
                let _ = reply.send(Err(error.into()));
            }
            false
        }
    }
}

fn bind<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    r: &'q Rotation,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
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
