//! Durability of the SQLite store: every write it acknowledged survives a
//! `kill -9` of the process.
//!
//! The test re-runs this test binary as a child (selected by an environment
//! variable) that creates keys from many concurrent tasks and prints each key
//! once its create returned `Ok`. The parent SIGKILLs the child mid-stream,
//! reopens the database and checks every acknowledged key is there.

// Test code: a failed unwrap is a failed test with the error in its message.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use skiff_store::sqlite::SqliteStore;
use skiff_store::{ListOptions, Store};

const CHILD_DB_ENV: &str = "SKIFF_STORE_CRASH_CHILD_DB";
const KILL_AFTER_ACKS: usize = 400;

/// The child half: only does anything when run by `acknowledged_writes_survive_kill_9`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_writer() {
    let Ok(path) = std::env::var(CHILD_DB_ENV) else {
        return;
    };
    let store = SqliteStore::open(path).unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("/registry/pods/w{w}/p{i}");
                    store.create(&key, Bytes::from(vec![b'x'; 512])).await.unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {key}").unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_DB_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.len() < KILL_AFTER_ACKS {
        assert!(Instant::now() < deadline, "child too slow: {} acks", acked.len());
        let line = lines.next().expect("child ended early").unwrap();
        if let Some(key) = line.split_once("ACK ").map(|(_, key)| key) {
            acked.push(key.to_owned());
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Whatever else the child printed before it died was acknowledged too.
    for line in lines {
        if let Some(key) = line.unwrap().split_once("ACK ").map(|(_, key)| key.to_owned()) {
            acked.push(key.to_owned());
        }
    }

    let store = SqliteStore::open(&db).unwrap();
    let list = store
        .list("/registry/pods/", ListOptions::default())
        .await
        .unwrap();
    let stored: std::collections::HashSet<_> = list.kvs.iter().map(|kv| kv.key.as_str()).collect();
    let missing: Vec<_> = acked.iter().filter(|k| !stored.contains(k.as_str())).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged keys lost: {missing:?}",
        missing.len(),
        acked.len()
    );
    // The reopened store carries on from the recovered revision without gaps.
    let current = store.current_revision().await.unwrap();
    assert_eq!(current as usize, list.kvs.len(), "one revision per create");
    let next = store
        .create("/registry/pods/after/restart", Bytes::from_static(b"v"))
        .await
        .unwrap();
    assert_eq!(next, current + 1);
}
