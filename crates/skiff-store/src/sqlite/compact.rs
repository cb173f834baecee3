//! Compaction of the revision log: what may be deleted, one small id range
//! at a time.
//!
//! Owns: the SQL that records the compacted revision and deletes history
//! below it. Runs on the writer thread, inside a write batch's transaction.
//! Must not: delete any row that a read or watch at or after the compacted
//! revision still needs.

use rusqlite::{Connection, params};

use super::schema::{META_COMPACTED, backend};
use crate::{Revision, StoreError};

/// Which compaction pass a compaction step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CompactPass {
    /// Rows that a newer row at or below the compaction revision replaced.
    Superseded,
    /// Tombstones at or below the compaction revision with no older rows left.
    Tombstones,
}

/// Records a new compacted revision, checking it is neither in the future nor already compacted.
pub(crate) fn set_compacted(
    conn: &Connection,
    current: Revision,
    compacted: &mut Revision,
    rev: Revision,
) -> Result<Result<(), StoreError>, StoreError> {
    if rev > current {
        return Ok(Err(StoreError::FutureRevision {
            requested: rev,
            current,
        }));
    }
    if rev <= *compacted {
        return Ok(Err(StoreError::Compacted {
            requested: rev,
            compacted: *compacted,
        }));
    }
    let sql = "INSERT INTO meta (name, value) VALUES (?1, ?2)
               ON CONFLICT (name) DO UPDATE SET value = excluded.value";
    conn.execute(sql, params![META_COMPACTED, rev]).map_err(backend)?;
    *compacted = rev;
    Ok(Ok(()))
}

/// Deletes compactable rows with ids in `[lo, hi)`.
///
/// Superseded pass: rows below `revision` replaced by a newer row of the same
/// key at or below `revision` (never a key's latest row as of `revision`, so
/// reads at `revision` and later are unaffected). Tombstone pass (after the
/// superseded pass has covered everything): tombstones at or below `revision`
/// with no older row left, which no read or watch at `revision` or later needs.
pub(crate) fn compact_range(
    conn: &Connection,
    pass: CompactPass,
    revision: Revision,
    lo: Revision,
    hi: Revision,
) -> Result<usize, StoreError> {
    let sql = match pass {
        CompactPass::Superseded => {
            "DELETE FROM log WHERE id >= ?1 AND id < ?2 AND id < ?3 AND EXISTS
               (SELECT 1 FROM log n WHERE n.key = log.key AND n.id > log.id AND n.id <= ?3)"
        }
        CompactPass::Tombstones => {
            "DELETE FROM log WHERE id >= ?1 AND id < ?2 AND id <= ?3 AND deleted = 1 AND NOT EXISTS
               (SELECT 1 FROM log o WHERE o.key = log.key AND o.id < log.id)"
        }
    };
    conn.execute(sql, params![lo, hi, revision]).map_err(backend)
}
