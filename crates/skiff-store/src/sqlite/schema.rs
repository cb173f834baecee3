//! The SQLite schema of the revision log and how connections are opened.
//!
//! Owns: the `log` table (one row per write, `id` = revision, kine style), the
//! `meta` table (the durable compacted revision), the pragmas every
//! connection gets, and the mapping from SQLite errors to [`StoreError`].
//! Must not: decide any store semantics; that is the writer's and readers' job.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;

/// Creates the tables and indexes if they are missing.
///
/// `log` is append-only except for compaction: every write adds one row whose
/// `id` is the new revision. `created` marks the first write of a key (since
/// its last deletion), `deleted` a tombstone, which carries the value the key
/// had so a delete event can report it. `prev_revision` is the id of the
/// key's previous row (0 when none).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    id              INTEGER PRIMARY KEY,
    key             BLOB    NOT NULL,
    created         INTEGER NOT NULL,
    deleted         INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision   INTEGER NOT NULL,
    value           BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS log_key_id ON log (key, id);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
";

/// The `meta` row holding the compacted revision.
pub(crate) const META_COMPACTED: &str = "compacted";

/// Opens a connection with the store's pragmas.
///
/// Durability: WAL with `synchronous=FULL` fsyncs the WAL at every commit, so
/// an acknowledged write survives `kill -9` *and* power loss. (WAL with
/// `synchronous=NORMAL` would also survive `kill -9`, because a committed
/// frame is already in the OS page cache, but could lose the last commits on
/// power loss.) Group commit makes the per-commit fsync affordable.
pub(crate) fn open_connection(path: &Path, create: bool) -> Result<Connection, StoreError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(backend)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(backend)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(backend)?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(backend)?;
    conn.pragma_update(None, "cache_size", -16_000).map_err(backend)?;
    // Shrink the WAL back to 64 MiB after a checkpoint instead of keeping the
    // size of the largest burst forever.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
        .map_err(backend)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Creates the schema on a fresh database (idempotent).
pub(crate) fn init(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(SCHEMA).map_err(backend)
}

/// Maps a SQLite error to [`StoreError::Backend`].
pub(crate) fn backend(err: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("sqlite: {err}"))
}

/// Decodes a key column (stored as BLOB so byte-order range scans work) into a `String`.
pub(crate) fn key_from_blob(bytes: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(bytes).map_err(|e| StoreError::Backend(format!("sqlite: key is not UTF-8: {e}")))
}
