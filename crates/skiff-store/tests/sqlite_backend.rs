//! Behaviour of the SQLite backend beyond the shared conformance suite: what
//! happens to slow watchers, what compaction really removes and remembers,
//! that writers keep going while it runs, and shutdown.

// Test code: a failed unwrap is a failed test with the error in its message.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use skiff_store::sqlite::SqliteStore;
use skiff_store::{ListOptions, Revision, Store, StoreError};

fn val(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Rows in the revision log, read straight from the file.
fn log_rows(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT COUNT(*) FROM log", [], |r| r.get(0))
        .unwrap()
}

async fn create_many(store: &SqliteStore, writers: usize, each: usize, prefix: &str) {
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (store, prefix) = (store.clone(), prefix.to_owned());
            tokio::spawn(async move {
                for i in 0..each {
                    store
                        .create(&format!("{prefix}w{w:02}-{i:05}"), val("v"))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_falls_behind_catches_up_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
    let r0 = store.current_revision().await.unwrap();
    let mut watch = store.watch("/registry/", r0).await.unwrap();
    // More events than a live watcher may buffer, while nobody reads.
    create_many(&store, 32, 200, "/registry/pods/").await;
    for expected in (r0 + 1)..=(r0 + 6400) {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(event.revision(), expected);
    }
    // And it is live again afterwards.
    let r = store.create("/registry/pods/after", val("v")).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.revision(), r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_removes_history_and_is_remembered_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let (compacted_at, old) = {
        let store = SqliteStore::open(&db).unwrap();
        let old = store.create("/registry/cm/ns/a", val("0")).await.unwrap();
        let mut rev = old;
        for i in 1..=100 {
            rev = store
                .update("/registry/cm/ns/a", val(&i.to_string()), rev)
                .await
                .unwrap();
        }
        for i in 0..50 {
            let key = format!("/registry/cm/ns/tmp{i}");
            store.create(&key, val("x")).await.unwrap();
            store.delete(&key, None).await.unwrap();
        }
        store.create("/registry/cm/ns/b", val("b")).await.unwrap();
        // The newest write is a delete, so the top row of the log is a tombstone.
        store.create("/registry/cm/ns/last", val("x")).await.unwrap();
        let (top, _) = store.delete("/registry/cm/ns/last", None).await.unwrap();
        assert_eq!(log_rows(&db), 101 + 100 + 1 + 2);
        store.compact(top).await.unwrap();
        // Only the live keys' latest rows are left.
        assert_eq!(log_rows(&db), 2);
        (top, old)
    };
    let store = SqliteStore::open(&db).unwrap();
    assert_eq!(
        store.current_revision().await.unwrap(),
        compacted_at,
        "revision survives the restart"
    );
    let err = store
        .list(
            "/registry/",
            ListOptions {
                revision: Some(old),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Compacted { compacted, .. } if compacted == compacted_at),
        "{err:?}"
    );
    assert!(matches!(
        store.watch("/registry/", old).await,
        Err(StoreError::Compacted { .. })
    ));
    let list = store.list("/registry/cm/", ListOptions::default()).await.unwrap();
    let values: Vec<_> = list
        .kvs
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.clone()))
        .collect();
    assert_eq!(
        values,
        [("/registry/cm/ns/a", val("100")), ("/registry/cm/ns/b", val("b"))]
    );
    assert_eq!(
        store.create("/registry/cm/ns/c", val("c")).await.unwrap(),
        compacted_at + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_keep_going_while_compaction_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let store = SqliteStore::open(&db).unwrap();
    // About 12,000 rows of history over 400 keys.
    create_many(&store, 40, 10, "/registry/pods/").await;
    let tasks: Vec<_> = (0..40)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for round in 0..29 {
                    for i in 0..10 {
                        let key = format!("/registry/pods/w{w:02}-{i:05}");
                        let (kv, _) = store.get(&key).await.unwrap();
                        store
                            .update(&key, val(&round.to_string()), kv.unwrap().mod_revision)
                            .await
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let target: Revision = store.current_revision().await.unwrap();
    let rows_before = log_rows(&db);

    let compaction = {
        let store = store.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            store.compact(target).await.unwrap();
            start.elapsed()
        })
    };
    let mut writes_during = 0;
    let mut worst = Duration::ZERO;
    while !compaction.is_finished() {
        let start = Instant::now();
        store
            .create(&format!("/registry/other/{writes_during}"), val("v"))
            .await
            .unwrap();
        worst = worst.max(start.elapsed());
        writes_during += 1;
    }
    let took = compaction.await.unwrap();
    println!("compacted {rows_before} rows in {took:?}; {writes_during} writes meanwhile, slowest {worst:?}");
    assert!(log_rows(&db) < rows_before / 10, "history was removed");
    // Writes interleave with compaction steps instead of waiting for all of
    // it (generous bound: a loaded CI machine's fsyncs can be slow).
    assert!(writes_during > 1, "writes were served while compaction ran");
    assert!(worst < Duration::from_secs(2), "a write waited {worst:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_end_when_the_store_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
    let mut watch = store.watch("/registry/", 0).await.unwrap();
    store.create("/registry/a", val("v")).await.unwrap();
    assert!(watch.next().await.unwrap().is_ok());
    drop(store);
    let end = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .unwrap();
    assert!(end.is_none(), "the stream ends: {end:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_database_has_one_store_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let store = SqliteStore::open(&db).unwrap();
    store.create("/registry/a", val("v")).await.unwrap();
    let second = SqliteStore::open(&db);
    assert!(
        matches!(second, Err(StoreError::Backend(ref m)) if m.contains("already open")),
        "{:?}",
        second.err()
    );
    drop(store);
    let reopened = SqliteStore::open(&db).unwrap();
    assert_eq!(reopened.current_revision().await.unwrap(), 1);
}
