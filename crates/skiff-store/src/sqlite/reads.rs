//! Read queries over the revision log: get, list at a revision, and pages of
//! events for watch catch-up. Each runs inside one read transaction, so a WAL
//! snapshot makes it consistent with the revision it reports.
//!
//! Must not: write. These run on the reader pool, never on the writer.

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::schema::{META_COMPACTED, backend, key_from_blob};
use crate::keyrange::prefix_end;
use crate::{KeyValue, ListOptions, ListResult, Revision, StoreError, WatchEvent};

/// A key bound above every UTF-8 key (UTF-8 never contains the byte 0xFF).
const KEYSPACE_END: &[u8] = &[0xFF];

/// The current and compacted revisions as seen by one read transaction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot {
    pub current: Revision,
    pub compacted: Revision,
}

/// Reads both revisions inside `tx`.
///
/// The current revision is the highest row id, except after a compaction
/// removed a tombstone at the very top, when it is the compacted revision.
pub(crate) fn snapshot(tx: &Transaction<'_>) -> Result<Snapshot, StoreError> {
    let max_id: Revision = tx
        .query_row("SELECT COALESCE(MAX(id), 0) FROM log", [], |r| r.get(0))
        .map_err(backend)?;
    let compacted = compacted_revision(tx)?;
    Ok(Snapshot {
        current: max_id.max(compacted),
        compacted,
    })
}

/// The durable compacted revision (0 when never compacted).
pub(crate) fn compacted_revision(conn: &Connection) -> Result<Revision, StoreError> {
    conn.query_row("SELECT value FROM meta WHERE name = ?1", [META_COMPACTED], |r| {
        r.get(0)
    })
    .optional()
    .map(|v| v.unwrap_or(0))
    .map_err(backend)
}

/// The latest row of `key`, whether live or a tombstone.
pub(crate) struct LatestRow {
    pub id: Revision,
    pub deleted: bool,
    pub create_revision: Revision,
    pub value: Bytes,
}

impl LatestRow {
    /// The key's value as a [`KeyValue`] (meaningful when not deleted).
    pub fn to_kv(&self, key: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: self.value.clone(),
            create_revision: self.create_revision,
            mod_revision: self.id,
        }
    }
}

/// The newest row for `key`, if any.
pub(crate) fn latest_row(conn: &Connection, key: &str) -> Result<Option<LatestRow>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, deleted, create_revision, value FROM log WHERE key = ?1 ORDER BY id DESC LIMIT 1",
        )
        .map_err(backend)?;
    stmt.query_row([key.as_bytes()], |r| {
        Ok(LatestRow {
            id: r.get(0)?,
            deleted: r.get::<_, i64>(1)? != 0,
            create_revision: r.get(2)?,
            value: Bytes::from(r.get::<_, Vec<u8>>(3)?),
        })
    })
    .optional()
    .map_err(backend)
}

/// The live value of `key` and the current revision.
pub(crate) fn get(conn: &mut Connection, key: &str) -> Result<(Option<KeyValue>, Revision), StoreError> {
    let tx = conn.transaction().map_err(backend)?;
    let snap = snapshot(&tx)?;
    let kv = latest_row(&tx, key)?
        .filter(|row| !row.deleted)
        .map(|row| row.to_kv(key));
    Ok((kv, snap.current))
}

/// Keys under `prefix` as of `opts.revision` (or now), in key order.
pub(crate) fn list(
    conn: &mut Connection,
    prefix: &str,
    opts: &ListOptions,
) -> Result<ListResult, StoreError> {
    let tx = conn.transaction().map_err(backend)?;
    let snap = snapshot(&tx)?;
    let revision = match opts.revision {
        Some(r) if r > 0 => r,
        _ => snap.current,
    };
    if revision > snap.current {
        return Err(StoreError::FutureRevision {
            requested: revision,
            current: snap.current,
        });
    }
    if revision < snap.compacted {
        return Err(StoreError::Compacted {
            requested: revision,
            compacted: snap.compacted,
        });
    }
    let end = prefix_end(prefix.as_bytes()).unwrap_or_else(|| KEYSPACE_END.to_vec());
    // Continue strictly after `start_after` when it lies inside the range.
    let (lower_op, lower): (&str, &[u8]) = match &opts.start_after {
        Some(after) if after.as_str() >= prefix => (">", after.as_bytes()),
        _ => (">=", prefix.as_bytes()),
    };
    let limit = opts.limit.filter(|l| *l > 0);
    let sql_limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX - 1).saturating_add(1));
    // Walks the (key, id) index in key order and keeps each key's newest row
    // at `revision`: no sort, and a LIMIT stops the walk early.
    let sql = format!(
        "SELECT l.key, l.value, l.create_revision, l.id FROM log l
         WHERE l.key {lower_op} ?1 AND l.key < ?2
           AND l.id = (SELECT MAX(m.id) FROM log m WHERE m.key = l.key AND m.id <= ?3)
           AND l.deleted = 0
         ORDER BY l.key LIMIT ?4"
    );
    let mut stmt = tx.prepare_cached(&sql).map_err(backend)?;
    let rows = stmt
        .query_map(params![lower, end, revision, sql_limit], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get(2)?,
                r.get(3)?,
            ))
        })
        .map_err(backend)?;
    let mut kvs = Vec::new();
    for row in rows {
        let (key, value, create_revision, mod_revision) = row.map_err(backend)?;
        kvs.push(KeyValue {
            key: key_from_blob(key)?,
            value: Bytes::from(value),
            create_revision,
            mod_revision,
        });
    }
    let more = limit.is_some_and(|l| kvs.len() > l);
    if let Some(l) = limit {
        kvs.truncate(l);
    }
    Ok(ListResult { kvs, revision, more })
}

/// Up to `max` events under `prefix` with revisions in `(after, upto]`, in
/// revision order. Fails with [`StoreError::Compacted`] when compaction may
/// have removed part of that range.
pub(crate) fn events(
    conn: &mut Connection,
    prefix: &str,
    after: Revision,
    upto: Revision,
    max: usize,
) -> Result<Vec<WatchEvent>, StoreError> {
    let tx = conn.transaction().map_err(backend)?;
    let compacted = compacted_revision(&tx)?;
    if after < compacted {
        return Err(StoreError::Compacted {
            requested: after,
            compacted,
        });
    }
    let end = prefix_end(prefix.as_bytes()).unwrap_or_else(|| KEYSPACE_END.to_vec());
    let mut stmt = tx
        .prepare_cached(
            "SELECT l.id, l.key, l.created, l.deleted, l.create_revision, l.prev_revision, l.value,
                    p.value, p.create_revision
             FROM log l LEFT JOIN log p ON p.id = l.prev_revision AND p.deleted = 0
             WHERE l.id > ?1 AND l.id <= ?2 AND l.key >= ?3 AND l.key < ?4
             ORDER BY l.id LIMIT ?5",
        )
        .map_err(backend)?;
    let max = i64::try_from(max).unwrap_or(i64::MAX);
    let mut rows = stmt
        .query(params![after, upto, prefix.as_bytes(), end, max])
        .map_err(backend)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(backend)? {
        let id: Revision = r.get(0).map_err(backend)?;
        let key = key_from_blob(r.get(1).map_err(backend)?)?;
        let created = r.get::<_, i64>(2).map_err(backend)? != 0;
        let deleted = r.get::<_, i64>(3).map_err(backend)? != 0;
        let create_revision: Revision = r.get(4).map_err(backend)?;
        let prev_revision: Revision = r.get(5).map_err(backend)?;
        let value = Bytes::from(r.get::<_, Vec<u8>>(6).map_err(backend)?);
        let prev_value: Option<Vec<u8>> = r.get(7).map_err(backend)?;
        let prev_create: Option<Revision> = r.get(8).map_err(backend)?;
        let event = if deleted {
            // A tombstone carries the value the key had before the delete.
            let prev = KeyValue {
                key,
                value,
                create_revision,
                mod_revision: prev_revision,
            };
            WatchEvent::Delete { prev, revision: id }
        } else {
            let prev = match (created, prev_value, prev_create) {
                (false, Some(v), Some(c)) => Some(KeyValue {
                    key: key.clone(),
                    value: Bytes::from(v),
                    create_revision: c,
                    mod_revision: prev_revision,
                }),
                _ => None,
            };
            WatchEvent::Put {
                kv: KeyValue {
                    key,
                    value,
                    create_revision,
                    mod_revision: id,
                },
                prev,
            }
        };
        out.push(event);
    }
    Ok(out)
}

/// The smallest row id in the log (0 when empty); compaction starts there.
pub(crate) fn min_id(conn: &Connection) -> Result<Revision, StoreError> {
    conn.query_row("SELECT COALESCE(MIN(id), 0) FROM log", [], |r| r.get(0))
        .map_err(backend)
}
