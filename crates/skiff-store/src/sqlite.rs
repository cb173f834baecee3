//! The embedded SQLite backend: one append-only revision log in a WAL-mode
//! database file, in the spirit of k3s's kine.
//!
//! Owns: opening the database and wiring its parts: a single writer thread
//! with group commit (`writer`), a pool of reader connections (`pool`),
//! read queries (`reads`), watches with log replay and live hand-over
//! (`watch`) and batched compaction (`compact`).
//! Must not: block the async runtime: every SQLite call runs on the writer
//! thread or on tokio's blocking pool.

mod compact;
mod pool;
mod reads;
mod schema;
mod watch;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, mpsc};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::{KeyValue, ListOptions, ListResult, Result, Revision, Store, StoreError, WatchStream};
use compact::CompactPass;
use pool::ReadPool;
use watch::Hub;
use writer::{Request, WriteOp, Writer, Written};

/// Row ids covered by one compaction step (one short write transaction).
const COMPACT_STEP: Revision = 1000;

/// A [`Store`] on an embedded SQLite database.
///
/// Cloning is cheap; clones share the writer, readers and watch hub. The
/// writer thread stops when the last clone is dropped.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    requests: mpsc::Sender<Request>,
    /// An exclusive lock on `<db>.lock`, held while this store is open.
    _lock: std::fs::File,
    current: Arc<AtomicI64>,
    pool: Arc<ReadPool>,
    hub: Arc<Hub>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and starts the writer thread.
    ///
    /// Only one store (in any process) may have a database open: a second
    /// would keep its own revision counter. That is refused with
    /// [`StoreError::Backend`].
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        let path: PathBuf = path.as_ref().to_path_buf();
        let lock = lock_database(&path)?;
        let conn = schema::open_connection(&path, true)?;
        schema::init(&conn)?;
        let mut conn = conn;
        let snap = {
            let tx = conn.transaction().map_err(schema::backend)?;
            reads::snapshot(&tx)?
        };
        let current = Arc::new(AtomicI64::new(snap.current));
        let hub = Arc::new(Hub::new(snap.current));
        let writer = Writer {
            conn,
            current: snap.current,
            compacted: snap.compacted,
            shared_current: current.clone(),
            hub: hub.clone(),
        };
        let (requests, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("skiff-sqlite-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Backend(format!("cannot start the sqlite writer thread: {e}")))?;
        let pool = Arc::new(ReadPool::new(path));
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                requests,
                _lock: lock,
                current,
                pool,
                hub,
            }),
        })
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Request) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.inner.requests.send(make(tx)).map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    async fn write(&self, op: WriteOp) -> Result<Written> {
        self.call(|reply| Request::Write(op, reply)).await
    }

    /// Deletes compactable rows pass by pass, one small id range per writer
    /// request, so writes interleave with compaction.
    async fn compact_rows(&self, revision: Revision) -> Result<usize> {
        let first = self.inner.pool.run(|conn| reads::min_id(conn)).await?;
        let mut removed = 0;
        for pass in [CompactPass::Superseded, CompactPass::Tombstones] {
            let mut lo = first;
            while lo <= revision {
                let hi = lo + COMPACT_STEP;
                removed += self
                    .call(|reply| Request::CompactRange {
                        pass,
                        revision,
                        lo,
                        hi,
                        reply,
                    })
                    .await?;
                lo = hi;
            }
        }
        Ok(removed)
    }
}

/// Takes the exclusive lock that keeps a second store off the same database.
/// (The kernel drops it when the process dies, even by `kill -9`.)
fn lock_database(path: &Path) -> Result<std::fs::File> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", Path::new(&lock_path).display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Backend(format!(
            "database {} is already open in another store (another skiff server on this data dir?)",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Backend(format!(
            "cannot lock {}: {e}",
            Path::new(&lock_path).display()
        ))),
    }
}

fn closed() -> StoreError {
    StoreError::Backend("sqlite store is shut down".into())
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<(Option<KeyValue>, Revision)> {
        let key = key.to_owned();
        self.inner.pool.run(move |conn| reads::get(conn, &key)).await
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult> {
        let prefix = prefix.to_owned();
        self.inner
            .pool
            .run(move |conn| reads::list(conn, &prefix, &opts))
            .await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision> {
        Ok(self
            .write(WriteOp::Create {
                key: key.to_owned(),
                value,
            })
            .await?
            .revision)
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision> {
        Ok(self
            .write(WriteOp::Update {
                key: key.to_owned(),
                value,
                expected,
            })
            .await?
            .revision)
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(Revision, KeyValue)> {
        let written = self
            .write(WriteOp::Delete {
                key: key.to_owned(),
                expected,
            })
            .await?;
        let prev = written
            .prev
            .ok_or_else(|| StoreError::Backend("delete reported no previous value".into()))?;
        Ok((written.revision, prev))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let compacted = self
            .inner
            .pool
            .run(|conn| reads::compacted_revision(conn))
            .await?;
        if after < compacted {
            return Err(StoreError::Compacted {
                requested: after,
                compacted,
            });
        }
        Ok(watch::start(
            self.inner.pool.clone(),
            self.inner.hub.clone(),
            prefix,
            after,
        ))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        // Raise the compacted revision first: from then on reads below it fail
        // instead of seeing half-deleted history.
        self.call(|reply| Request::SetCompacted(revision, reply)).await?;
        let removed = self.compact_rows(revision).await?;
        tracing::debug!(revision, removed, "sqlite store compacted");
        Ok(())
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.inner.current.load(Ordering::SeqCst))
    }
}
