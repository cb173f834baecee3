//! A quick figure for the SQLite store's group commit: creates per second
//! with 32 concurrent writers. Ignored by default (it measures, it does not
//! assert a number); run it with
//! `cargo test -p skiff-store --release --test sqlite_throughput -- --ignored --nocapture`.

// Test code: a failed unwrap is a failed test with the error in its message.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use bytes::Bytes;
use skiff_store::sqlite::SqliteStore;
use skiff_store::{ListOptions, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn creates_per_second_at_32_writers() {
    const WRITERS: usize = 32;
    const EACH: usize = 313; // 10,016 pods in all
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
    let value = Bytes::from(vec![b'x'; 1500]); // about a small pod's JSON
    let start = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, value) = (store.clone(), value.clone());
            tokio::spawn(async move {
                for i in 0..EACH {
                    store
                        .create(&format!("/registry/pods/ns{w}/pod-{i}"), value.clone())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let total = WRITERS * EACH;
    println!(
        "sqlite: {total} creates by {WRITERS} writers in {secs:.2}s = {:.0} creates/s",
        total as f64 / secs
    );

    for _ in 0..3 {
        let start = Instant::now();
        let list = store
            .list("/registry/pods/", ListOptions::default())
            .await
            .unwrap();
        assert_eq!(list.kvs.len(), total);
        println!(
            "sqlite: LIST of {total} pods in {:.1} ms",
            start.elapsed().as_secs_f64() * 1000.0
        );
    }
}
