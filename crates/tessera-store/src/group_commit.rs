//! Group commit of refresh rotations, for both backends.
//!
//! Every rotation is a compare-and-swap `UPDATE ... RETURNING` that must be
//! durable before it is answered. One at a time, each pays a statement (on
//! SQLite a hop to sqlx's worker thread, on PostgreSQL a round trip) and a
//! WAL sync. Here one task per store owns the rotations: it takes every
//! rotation queued when it is free (up to [`MAX_BATCH`]) and hands them to
//! the backend's [`Committer`], which runs them as *one* `UPDATE sessions
//! ... FROM (VALUES ...) RETURNING *`: one statement, one transaction, one
//! sync.
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

use tokio::sync::{mpsc, oneshot};

use crate::{AuditRecord, ProofKey, Session, StoreError, Timestamp};

/// Most rotations in one statement (15 parameters each).
pub(crate) const MAX_BATCH: usize = 128;
/// The statement sizes: a batch of `n` runs in the smallest of these that
/// holds it, the rest padded with rows that match nothing (`id` NULL), so
/// each connection prepares at most eight statements.
pub(crate) const BUCKETS: [usize; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

/// The bucket for `n` rotations.
pub(crate) fn bucket(n: usize) -> usize {
    BUCKETS.into_iter().find(|b| *b >= n).unwrap_or(MAX_BATCH)
}

/// Rotations waiting at most; more are refused as `Busy` (bounded memory
/// under a flood; the issuer answers 503 with `Retry-After`).
pub(crate) const QUEUE: usize = 8192;

/// A row of a batch that won: its session id and the session as rotated
/// (or why it could not be read).
pub(crate) type Won = (String, Result<Session, StoreError>);

/// What a backend supplies: one statement for a batch of rotations of
/// distinct sessions, and one for a rotation alone.
pub(crate) trait Committer: Send + Sync + 'static {
    /// Runs `batch` as one statement; the rows that won, each with its
    /// session id (read apart, so that a row that fails to decode is still
    /// its own rotation's answer).
    fn commit_batch(
        &self,
        batch: &[&Rotation],
    ) -> impl std::future::Future<Output = Result<Vec<Won>, StoreError>> + Send;
    /// Runs one rotation alone: the session as rotated, or `None` (stale).
    fn commit_one(
        &self,
        rotation: &Rotation,
    ) -> impl std::future::Future<Output = Result<Option<Session>, StoreError>> + Send;
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
    /// Starts the committing task with `committer`.
    pub(crate) fn start(committer: impl Committer) -> Self {
        let (queue, rotations) = mpsc::channel(QUEUE);
        let counters = Arc::new(Counters::default());
        tokio::spawn(commit_loop(committer, rotations, counters.clone()));
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
    committer: impl Committer,
    mut rotations: mpsc::Receiver<(Rotation, Reply)>,
    counters: Arc<Counters>,
) {
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
        if commit(&committer, &mut batch).await {
            counters.retried_alone.fetch_add(1, Ordering::Relaxed);
        }
        batch.clear();
    }
}

/// One batch: one statement, every rotation answered. Answers whether the
/// batch failed and its rotations were retried alone.
async fn commit(committer: &impl Committer, batch: &mut Vec<(Rotation, Reply)>) -> bool {
    let rotations: Vec<&Rotation> = batch.iter().map(|(r, _)| r).collect();
    match committer.commit_batch(&rotations).await {
        Ok(rows) => {
            let mut won: HashMap<String, Result<Session, StoreError>> = rows.into_iter().collect();
            for (rotation, reply) in batch.drain(..) {
                let _ = reply.send(won.remove(&rotation.id).transpose());
            }
            false
        }
        Err(error) if batch.len() > 1 => {
            // One rotation must not fail its neighbours: each alone.
            tracing::warn!(%error, size = batch.len(), "a batch of rotations failed; retrying each alone");
            for (rotation, reply) in batch.drain(..) {
                let _ = reply.send(committer.commit_one(&rotation).await);
            }
            true
        }
        Err(error) => {
            // A batch of one: its own error.
            if let Some((_, reply)) = batch.pop() {
                let _ = reply.send(Err(error));
            }
            false
        }
    }
}
