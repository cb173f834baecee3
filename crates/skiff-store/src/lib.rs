//! skiff-store: the key-value store under the API server, with etcd v3 semantics.
//!
//! Owns: the [`Store`] trait (a global revision per write, get/list at a
//! revision, create-if-absent, update/delete-if-revision, watch from a
//! revision, compaction) and its two backends: embedded SQLite ([`sqlite`])
//! and a real etcd v3 cluster ([`etcd`]).
//!
//! Must not: parse the values it stores. Keys and values are opaque bytes to
//! the store; the API server decides what they mean
//! (`/registry/<resource>/<namespace>/<name>`, JSON objects).

use bytes::Bytes;
use futures::stream::BoxStream;

pub mod etcd;
mod keyrange;
pub mod sqlite;

/// A store revision. Every successful write bumps the global revision by one.
pub type Revision = i64;

/// One key with its current value and the revisions that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// The revision that created this key (since its last deletion).
    pub create_revision: Revision,
    /// The revision of the last write to this key.
    pub mod_revision: Revision,
}

/// Options for [`Store::list`].
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Read as of this revision; `None` (or 0) means the current revision.
    pub revision: Option<Revision>,
    /// At most this many keys; `None` means all.
    pub limit: Option<usize>,
    /// Only keys strictly greater than this one (for continuation).
    pub start_after: Option<String>,
}

/// The result of [`Store::list`].
#[derive(Debug, Clone, Default)]
pub struct ListResult {
    /// The keys under the prefix, in ascending key order.
    pub kvs: Vec<KeyValue>,
    /// The revision the list was read at.
    pub revision: Revision,
    /// True when `limit` cut the list and more keys remain.
    pub more: bool,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// A key was created (`prev` is `None`) or updated (`prev` is the old value).
    Put { kv: KeyValue, prev: Option<KeyValue> },
    /// A key was deleted at `revision`; `prev` is the value it had.
    Delete { prev: KeyValue, revision: Revision },
}

impl WatchEvent {
    /// The revision at which this change happened.
    pub fn revision(&self) -> Revision {
        match self {
            WatchEvent::Put { kv, .. } => kv.mod_revision,
            WatchEvent::Delete { revision, .. } => *revision,
        }
    }

    /// The key this change is about.
    pub fn key(&self) -> &str {
        match self {
            WatchEvent::Put { kv, .. } => &kv.key,
            WatchEvent::Delete { prev, .. } => &prev.key,
        }
    }
}

/// A stream of changes, in revision order. It ends with an error (e.g.
/// [`StoreError::Compacted`]) or when the store shuts down.
pub type WatchStream = BoxStream<'static, Result<WatchEvent, StoreError>>;

/// Errors of every store backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key {0} already exists")]
    AlreadyExists(String),
    #[error("key {0} not found")]
    NotFound(String),
    /// The key's mod revision was not the expected one; `current` is what it holds now.
    #[error("key {key} was modified (expected revision {expected})")]
    Conflict {
        key: String,
        expected: Revision,
        current: Option<Box<KeyValue>>,
    },
    /// The requested revision has been compacted away.
    #[error("revision {requested} has been compacted (oldest kept: {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    /// The requested revision is newer than the store's current revision.
    #[error("revision {requested} is in the future (current: {current})")]
    FutureRevision { requested: Revision, current: Revision },
    #[error("store backend error: {0}")]
    Backend(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A key-value store with etcd v3 semantics.
///
/// All writes are linearizable and each bumps the global revision by one. A
/// write is durable once its call returns `Ok`.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The value of one key now, and the current store revision.
    async fn get(&self, key: &str) -> Result<(Option<KeyValue>, Revision)>;

    /// Keys under `prefix` (ascending), at `opts.revision` or now.
    /// [`StoreError::Compacted`] below the compacted revision (reading *at* it
    /// is fine), [`StoreError::FutureRevision`] above the current one.
    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult>;

    /// Creates `key` if it does not exist; returns the new revision.
    /// [`StoreError::AlreadyExists`] when it does.
    async fn create(&self, key: &str, value: Bytes) -> Result<Revision>;

    /// Replaces `key`'s value if its mod revision is `expected`; returns the new revision.
    /// [`StoreError::NotFound`] when the key does not exist (whatever `expected`
    /// is), [`StoreError::Conflict`] with the current value when it was modified.
    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision>;

    /// Deletes `key` (only if its mod revision is `expected`, when given).
    /// Returns the deletion revision and the value it had. Errors as for
    /// [`Store::update`].
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(Revision, KeyValue)>;

    /// Changes to keys under `prefix` with a revision strictly greater than `after`:
    /// history first, then live changes, with no gap and no duplicate. `""` is
    /// every key. [`StoreError::Compacted`] (from this call or as the stream's
    /// first item) when `after` is below the compacted revision. `after` may be
    /// in the future: the stream then starts with the first change after it.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// Forgets history older than `revision`; later reads or watches before it get
    /// [`StoreError::Compacted`]. As in etcd, compacting at or below the current
    /// compacted revision is [`StoreError::Compacted`], and above the current
    /// revision [`StoreError::FutureRevision`].
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// The current store revision.
    async fn current_revision(&self) -> Result<Revision>;
}
