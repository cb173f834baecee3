//! The single writer thread: group commit of every pending write.
//!
//! Owns: the one read-write connection, the in-memory current revision, and
//! the order of writes. It takes every request queued while the previous
//! batch was committing, applies each against its own precondition inside one
//! `BEGIN IMMEDIATE` transaction, commits (one fsync for the whole batch),
//! then publishes the batch's events to the watch hub in revision order and
//! only then answers each caller. Compaction steps run here too, as small
//! requests between write batches (see [`super::compact`]), so they never
//! contend for SQLite's lock.
//! Must not: run on the async runtime (it blocks on SQLite and fsync).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};

use bytes::Bytes;
use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::compact::{CompactPass, compact_range, set_compacted};
use super::reads::{LatestRow, latest_row};
use super::schema::backend;
use super::watch::Hub;
use crate::{KeyValue, Revision, StoreError, WatchEvent};

/// The most requests one transaction takes.
const MAX_BATCH: usize = 512;

/// A write with its precondition.
pub(crate) enum WriteOp {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
}

/// What a successful write reports: its revision and, for a delete, the old value.
pub(crate) struct Written {
    pub revision: Revision,
    pub prev: Option<KeyValue>,
}

/// One message to the writer thread.
pub(crate) enum Request {
    Write(WriteOp, oneshot::Sender<Result<Written, StoreError>>),
    /// Durably raise the compacted revision (the first step of a compaction).
    SetCompacted(Revision, oneshot::Sender<Result<(), StoreError>>),
    /// Delete one id range `[lo, hi)` of compactable rows; replies with the count.
    CompactRange {
        pass: CompactPass,
        revision: Revision,
        lo: Revision,
        hi: Revision,
        reply: oneshot::Sender<Result<usize, StoreError>>,
    },
}

/// A request's outcome, held until the batch commits.
enum Outcome {
    Write(
        oneshot::Sender<Result<Written, StoreError>>,
        Result<Written, StoreError>,
    ),
    Compacted(oneshot::Sender<Result<(), StoreError>>, Result<(), StoreError>),
    Range(
        oneshot::Sender<Result<usize, StoreError>>,
        Result<usize, StoreError>,
    ),
}

impl Outcome {
    fn fail(self, err: &StoreError) {
        let err = || StoreError::Backend(err.to_string());
        match self {
            Outcome::Write(tx, _) => drop(tx.send(Err(err()))),
            Outcome::Compacted(tx, _) => drop(tx.send(Err(err()))),
            Outcome::Range(tx, _) => drop(tx.send(Err(err()))),
        }
    }

    fn answer(self) {
        // A caller that gave up (dropped its future) no longer listens; that is fine.
        match self {
            Outcome::Write(tx, r) => drop(tx.send(r)),
            Outcome::Compacted(tx, r) => drop(tx.send(r)),
            Outcome::Range(tx, r) => drop(tx.send(r)),
        }
    }
}

/// The writer's state.
pub(crate) struct Writer {
    pub conn: Connection,
    pub current: Revision,
    pub compacted: Revision,
    pub shared_current: Arc<AtomicI64>,
    pub hub: Arc<Hub>,
}

impl Writer {
    /// Serves requests until every sender is gone, then closes the hub.
    pub fn run(mut self, rx: Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(req) => batch.push(req),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            self.commit_batch(batch);
        }
        self.hub.close();
    }

    fn commit_batch(&mut self, batch: Vec<Request>) {
        let start_rev = self.current;
        let start_compacted = self.compacted;
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut events = Vec::new();
        let result = self.apply_all(batch, &mut outcomes, &mut events);
        if let Err(err) = result {
            tracing::error!(error = %err, "sqlite store: write batch failed, rolled back");
            self.current = start_rev;
            self.compacted = start_compacted;
            for outcome in outcomes {
                outcome.fail(&err);
            }
            return;
        }
        self.shared_current.store(self.current, Ordering::SeqCst);
        self.hub.publish(events, self.current);
        for outcome in outcomes {
            outcome.answer();
        }
    }

    /// Applies every request in one transaction. An `Err` means the whole
    /// transaction was rolled back; requests not yet applied are recorded
    /// in `outcomes` so that every caller is answered.
    fn apply_all(
        &mut self,
        batch: Vec<Request>,
        outcomes: &mut Vec<Outcome>,
        events: &mut Vec<WatchEvent>,
    ) -> Result<(), StoreError> {
        let tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => {
                outcomes.extend(batch.into_iter().map(pending_outcome));
                return Err(backend(e));
            }
        };
        let mut failure = None;
        let mut requests = batch.into_iter();
        for req in requests.by_ref() {
            // The outer `Result` is a SQL failure that dooms the batch; the
            // inner one is this request's own answer (e.g. a failed precondition).
            let (outcome, sql_error) = match req {
                Request::Write(op, reply) => match apply_write(&tx, &mut self.current, op, events) {
                    Ok(r) => (Outcome::Write(reply, r), None),
                    Err(e) => (
                        Outcome::Write(reply, Err(StoreError::Backend(e.to_string()))),
                        Some(e),
                    ),
                },
                Request::SetCompacted(rev, reply) => {
                    match set_compacted(&tx, self.current, &mut self.compacted, rev) {
                        Ok(r) => (Outcome::Compacted(reply, r), None),
                        Err(e) => (
                            Outcome::Compacted(reply, Err(StoreError::Backend(e.to_string()))),
                            Some(e),
                        ),
                    }
                }
                Request::CompactRange {
                    pass,
                    revision,
                    lo,
                    hi,
                    reply,
                } => match compact_range(&tx, pass, revision, lo, hi) {
                    Ok(n) => (Outcome::Range(reply, Ok(n)), None),
                    Err(e) => (
                        Outcome::Range(reply, Err(StoreError::Backend(e.to_string()))),
                        Some(e),
                    ),
                },
            };
            outcomes.push(outcome);
            if let Some(err) = sql_error {
                failure = Some(err);
                break;
            }
        }
        if let Some(err) = failure {
            outcomes.extend(requests.map(pending_outcome));
            return Err(err);
        }
        tx.commit().map_err(backend)
    }
}

/// An outcome placeholder for a request that never ran (its batch failed).
fn pending_outcome(req: Request) -> Outcome {
    let err = || StoreError::Backend("batch failed".into());
    match req {
        Request::Write(_, reply) => Outcome::Write(reply, Err(err())),
        Request::SetCompacted(_, reply) => Outcome::Compacted(reply, Err(err())),
        Request::CompactRange { reply, .. } => Outcome::Range(reply, Err(err())),
    }
}

/// Applies one write: checks its precondition against the key's latest row
/// (which sees earlier writes of the same batch) and appends a row.
fn apply_write(
    conn: &Connection,
    current: &mut Revision,
    op: WriteOp,
    events: &mut Vec<WatchEvent>,
) -> Result<Result<Written, StoreError>, StoreError> {
    let key = match &op {
        WriteOp::Create { key, .. } | WriteOp::Update { key, .. } | WriteOp::Delete { key, .. } => {
            key.clone()
        }
    };
    let latest = latest_row(conn, &key)?;
    let live = latest.as_ref().filter(|row| !row.deleted);
    let rev = *current + 1;
    let (row, event, prev) = match op {
        WriteOp::Create { value, .. } => {
            if live.is_some() {
                return Ok(Err(StoreError::AlreadyExists(key)));
            }
            let prev_rev = latest.as_ref().map_or(0, |row| row.id);
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: rev,
                mod_revision: rev,
            };
            (
                NewRow {
                    created: true,
                    deleted: false,
                    create_revision: rev,
                    prev_revision: prev_rev,
                    value,
                },
                WatchEvent::Put { kv, prev: None },
                None,
            )
        }
        WriteOp::Update { value, expected, .. } => {
            let Some(old) = live else {
                return Ok(Err(StoreError::NotFound(key)));
            };
            if old.id != expected {
                return Ok(Err(conflict(&key, expected, old)));
            }
            let prev = old.to_kv(&key);
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: old.create_revision,
                mod_revision: rev,
            };
            (
                NewRow {
                    created: false,
                    deleted: false,
                    create_revision: old.create_revision,
                    prev_revision: old.id,
                    value,
                },
                WatchEvent::Put { kv, prev: Some(prev) },
                None,
            )
        }
        WriteOp::Delete { expected, .. } => {
            let Some(old) = live else {
                return Ok(Err(StoreError::NotFound(key)));
            };
            if expected.is_some_and(|e| e != old.id) {
                return Ok(Err(conflict(&key, expected.unwrap_or_default(), old)));
            }
            let prev = old.to_kv(&key);
            (
                NewRow {
                    created: false,
                    deleted: true,
                    create_revision: old.create_revision,
                    prev_revision: old.id,
                    value: old.value.clone(),
                },
                WatchEvent::Delete {
                    prev: prev.clone(),
                    revision: rev,
                },
                Some(prev),
            )
        }
    };
    insert_row(conn, rev, &key, &row)?;
    *current = rev;
    events.push(event);
    Ok(Ok(Written { revision: rev, prev }))
}

fn conflict(key: &str, expected: Revision, current: &LatestRow) -> StoreError {
    StoreError::Conflict {
        key: key.to_owned(),
        expected,
        current: Some(Box::new(current.to_kv(key))),
    }
}

/// The columns of a row to append.
struct NewRow {
    created: bool,
    deleted: bool,
    create_revision: Revision,
    prev_revision: Revision,
    value: Bytes,
}

fn insert_row(conn: &Connection, id: Revision, key: &str, row: &NewRow) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO log (id, key, created, deleted, create_revision, prev_revision, value)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(backend)?;
    stmt.execute(params![
        id,
        key.as_bytes(),
        i64::from(row.created),
        i64::from(row.deleted),
        row.create_revision,
        row.prev_revision,
        row.value.as_ref()
    ])
    .map_err(backend)?;
    Ok(())
}
