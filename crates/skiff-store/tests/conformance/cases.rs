//! The behaviour every [`Store`] backend must show, written once.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use skiff_store::{KeyValue, ListOptions, Revision, Store, StoreError, WatchEvent, WatchStream};

type Shared = Arc<dyn Store>;

fn val(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn next(stream: &mut WatchStream) -> WatchEvent {
    match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
        Ok(Some(Ok(event))) => event,
        other => panic!("expected a watch event, got {other:?}"),
    }
}

/// Asserts nothing more arrives on the stream for a short while.
async fn quiet(stream: &mut WatchStream) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(300), stream.next()).await {
        panic!("expected no more events, got {item:?}");
    }
}

fn keys(kvs: &[KeyValue]) -> Vec<&str> {
    kvs.iter().map(|kv| kv.key.as_str()).collect()
}

fn at(revision: Revision) -> ListOptions {
    ListOptions {
        revision: Some(revision),
        ..ListOptions::default()
    }
}

pub async fn revisions_increase_by_one_per_write(store: Shared) {
    let r0 = store.current_revision().await.unwrap();
    let r1 = store.create("/registry/pods/default/a", val("1")).await.unwrap();
    assert_eq!(r1, r0 + 1);
    let r2 = store
        .update("/registry/pods/default/a", val("2"), r1)
        .await
        .unwrap();
    assert_eq!(r2, r1 + 1);
    // Failed writes do not use up a revision.
    assert!(store.create("/registry/pods/default/a", val("x")).await.is_err());
    assert!(
        store
            .update("/registry/pods/default/a", val("x"), r1)
            .await
            .is_err()
    );
    let (r3, _) = store.delete("/registry/pods/default/a", Some(r2)).await.unwrap();
    assert_eq!(r3, r2 + 1);
    let r4 = store.create("/registry/pods/default/b", val("b")).await.unwrap();
    assert_eq!(r4, r3 + 1);
    assert_eq!(store.current_revision().await.unwrap(), r4);
    let (_, rev) = store.get("/registry/pods/default/b").await.unwrap();
    assert_eq!(rev, r4);
}

pub async fn get_and_list_at_a_revision(store: Shared) {
    let ra = store.create("/registry/cm/ns/a", val("a1")).await.unwrap();
    let rb = store.create("/registry/cm/ns/b", val("b1")).await.unwrap();
    let ra2 = store.update("/registry/cm/ns/a", val("a2"), ra).await.unwrap();
    let (rc, _) = store.delete("/registry/cm/ns/b", None).await.unwrap();

    let (kv, rev) = store.get("/registry/cm/ns/a").await.unwrap();
    let kv = kv.unwrap();
    assert_eq!(
        (kv.value, kv.create_revision, kv.mod_revision, rev),
        (val("a2"), ra, ra2, rc)
    );

    let old = store.list("/registry/cm/", at(ra)).await.unwrap();
    assert_eq!(old.revision, ra);
    assert_eq!(
        old.kvs,
        vec![KeyValue {
            key: "/registry/cm/ns/a".into(),
            value: val("a1"),
            create_revision: ra,
            mod_revision: ra
        }]
    );

    let mid = store.list("/registry/cm/", at(rb)).await.unwrap();
    assert_eq!(keys(&mid.kvs), ["/registry/cm/ns/a", "/registry/cm/ns/b"]);
    assert_eq!(mid.kvs[0].value, val("a1"));

    let now = store.list("/registry/cm/", ListOptions::default()).await.unwrap();
    assert_eq!(now.revision, rc);
    assert_eq!(keys(&now.kvs), ["/registry/cm/ns/a"]);
    assert_eq!(now.kvs[0].value, val("a2"));
    assert!(!now.more);
}

pub async fn list_pages_with_limit_and_start_after(store: Shared) {
    for i in 0..10 {
        store
            .create(&format!("/registry/pods/ns/p{i:02}"), val("v"))
            .await
            .unwrap();
    }
    let snapshot = store.current_revision().await.unwrap();
    // Writes after the snapshot must not show up in pages read at it.
    store.create("/registry/pods/ns/p05a", val("late")).await.unwrap();
    store.delete("/registry/pods/ns/p07", None).await.unwrap();

    let mut seen = Vec::new();
    let mut start_after = None;
    let mut pages = 0;
    loop {
        let opts = ListOptions {
            revision: Some(snapshot),
            limit: Some(3),
            start_after: start_after.clone(),
        };
        let page = store.list("/registry/pods/", opts).await.unwrap();
        assert_eq!(page.revision, snapshot);
        pages += 1;
        assert!(page.kvs.len() <= 3);
        seen.extend(page.kvs.iter().map(|kv| kv.key.clone()));
        if !page.more {
            break;
        }
        start_after = page.kvs.last().map(|kv| kv.key.clone());
    }
    let expected: Vec<String> = (0..10).map(|i| format!("/registry/pods/ns/p{i:02}")).collect();
    assert_eq!(seen, expected);
    assert_eq!(pages, 4);

    let exact = store
        .list(
            "/registry/pods/",
            ListOptions {
                limit: Some(10),
                ..ListOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(exact.kvs.len(), 10);
    assert!(!exact.more, "10 live keys and limit 10 leaves nothing more");
}

pub async fn list_stays_inside_the_prefix(store: Shared) {
    for key in [
        "/registry/pods/a",
        "/registry/pods/b",
        "/registry/pods",
        "/registry/podsx/a",
        "/registry/pod/a",
        "/registry/pods0",
    ] {
        store.create(key, val("v")).await.unwrap();
    }
    let list = store
        .list("/registry/pods/", ListOptions::default())
        .await
        .unwrap();
    assert_eq!(keys(&list.kvs), ["/registry/pods/a", "/registry/pods/b"]);
    let all = store.list("", ListOptions::default()).await.unwrap();
    assert_eq!(all.kvs.len(), 6);
    // start_after before the prefix starts at the prefix.
    let opts = ListOptions {
        start_after: Some("/registry/a".into()),
        ..ListOptions::default()
    };
    assert_eq!(store.list("/registry/pods/", opts).await.unwrap().kvs.len(), 2);
}

pub async fn create_on_existing_key_is_already_exists(store: Shared) {
    store.create("/registry/ns/default", val("1")).await.unwrap();
    let err = store.create("/registry/ns/default", val("2")).await.unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists(ref k) if k == "/registry/ns/default"),
        "{err:?}"
    );
    let (kv, _) = store.get("/registry/ns/default").await.unwrap();
    assert_eq!(kv.unwrap().value, val("1"));
}

pub async fn stale_update_and_delete_conflict_with_the_current_value(store: Shared) {
    let r1 = store.create("/registry/svc/ns/s", val("v1")).await.unwrap();
    let r2 = store.update("/registry/svc/ns/s", val("v2"), r1).await.unwrap();

    match store
        .update("/registry/svc/ns/s", val("v3"), r1)
        .await
        .unwrap_err()
    {
        StoreError::Conflict {
            key,
            expected,
            current,
        } => {
            assert_eq!((key.as_str(), expected), ("/registry/svc/ns/s", r1));
            let current = current.expect("conflict carries the current value");
            assert_eq!(
                (current.value, current.mod_revision, current.create_revision),
                (val("v2"), r2, r1)
            );
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    match store.delete("/registry/svc/ns/s", Some(r1)).await.unwrap_err() {
        StoreError::Conflict { current, .. } => assert_eq!(current.unwrap().mod_revision, r2),
        other => panic!("expected Conflict, got {other:?}"),
    }
    let (rd, prev) = store.delete("/registry/svc/ns/s", Some(r2)).await.unwrap();
    assert_eq!((prev.value, prev.mod_revision), (val("v2"), r2));
    assert_eq!(rd, r2 + 1);
}

pub async fn missing_keys_are_not_found(store: Shared) {
    let err = store.delete("/registry/pods/ns/nope", None).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store.delete("/registry/pods/ns/nope", Some(3)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    for expected in [0, 1] {
        let err = store
            .update("/registry/pods/ns/nope", val("v"), expected)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }
    let err = store.delete("/registry/pods/ns/nope", Some(0)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(store.get("/registry/pods/ns/nope").await.unwrap().0, None);
}

pub async fn delete_then_create_starts_a_new_life(store: Shared) {
    let r1 = store.create("/registry/pods/ns/p", val("first")).await.unwrap();
    store.delete("/registry/pods/ns/p", None).await.unwrap();
    assert_eq!(store.get("/registry/pods/ns/p").await.unwrap().0, None);
    let r3 = store.create("/registry/pods/ns/p", val("second")).await.unwrap();
    let kv = store.get("/registry/pods/ns/p").await.unwrap().0.unwrap();
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.value),
        (r3, r3, val("second"))
    );
    let mut watch = store.watch("/registry/pods/", r1).await.unwrap();
    assert!(matches!(next(&mut watch).await, WatchEvent::Delete { .. }));
    match next(&mut watch).await {
        WatchEvent::Put { kv, prev } => assert_eq!((kv.mod_revision, prev), (r3, None)),
        other => panic!("expected a Put, got {other:?}"),
    }
}

pub async fn watch_replays_history_then_goes_live_without_gap_or_duplicate(store: Shared) {
    let start = store.current_revision().await.unwrap();
    for i in 0..20 {
        store
            .create(&format!("/registry/pods/ns/old{i:02}"), val("v"))
            .await
            .unwrap();
    }
    let mut watch = store.watch("/registry/pods/", start).await.unwrap();
    // Writes race with the replay and the hand-over to live events.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..30 {
                store
                    .create(&format!("/registry/pods/ns/new{i:02}"), val("v"))
                    .await
                    .unwrap();
            }
        })
    };
    let mut expected = start + 1;
    for _ in 0..50 {
        let event = next(&mut watch).await;
        assert_eq!(event.revision(), expected, "events arrive gapless and in order");
        expected += 1;
    }
    writer.await.unwrap();
    quiet(&mut watch).await;
    store.create("/registry/pods/ns/last", val("v")).await.unwrap();
    assert_eq!(next(&mut watch).await.revision(), expected);
}

pub async fn watch_reports_prev_values_for_updates_and_deletes(store: Shared) {
    let r0 = store.current_revision().await.unwrap();
    let mut live = store.watch("/registry/cm/", r0).await.unwrap();
    let r1 = store.create("/registry/cm/ns/c", val("v1")).await.unwrap();
    let r2 = store.update("/registry/cm/ns/c", val("v2"), r1).await.unwrap();
    let (r3, _) = store.delete("/registry/cm/ns/c", None).await.unwrap();
    let v1 = KeyValue {
        key: "/registry/cm/ns/c".into(),
        value: val("v1"),
        create_revision: r1,
        mod_revision: r1,
    };
    let v2 = KeyValue {
        value: val("v2"),
        mod_revision: r2,
        ..v1.clone()
    };
    let expected = vec![
        WatchEvent::Put {
            kv: v1.clone(),
            prev: None,
        },
        WatchEvent::Put {
            kv: v2.clone(),
            prev: Some(v1),
        },
        WatchEvent::Delete {
            prev: v2,
            revision: r3,
        },
    ];
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(next(&mut live).await);
    }
    assert_eq!(got, expected, "live events");
    // The same history replayed from the log.
    let mut replay = store.watch("/registry/cm/", r0).await.unwrap();
    let mut again = Vec::new();
    for _ in 0..3 {
        again.push(next(&mut replay).await);
    }
    assert_eq!(again, expected, "replayed events");
}

pub async fn watch_only_sees_its_prefix(store: Shared) {
    let r0 = store.current_revision().await.unwrap();
    let mut watch = store.watch("/registry/pods/", r0).await.unwrap();
    store.create("/registry/podsx/a", val("v")).await.unwrap();
    store.create("/registry/pod/a", val("v")).await.unwrap();
    let r = store.create("/registry/pods/ns/a", val("v")).await.unwrap();
    let event = next(&mut watch).await;
    assert_eq!((event.key(), event.revision()), ("/registry/pods/ns/a", r));
    quiet(&mut watch).await;
    // The empty prefix is every key.
    let mut everything = store.watch("", r0).await.unwrap();
    for expected in (r0 + 1)..=r {
        assert_eq!(next(&mut everything).await.revision(), expected);
    }
}

pub async fn compaction_makes_old_revisions_compacted(store: Shared) {
    let r0 = store.current_revision().await.unwrap();
    let mut rev = store.create("/registry/cm/ns/a", val("0")).await.unwrap();
    for i in 1..10 {
        rev = store
            .update("/registry/cm/ns/a", val(&i.to_string()), rev)
            .await
            .unwrap();
    }
    store.create("/registry/cm/ns/gone", val("x")).await.unwrap();
    store.delete("/registry/cm/ns/gone", None).await.unwrap();
    store.create("/registry/cm/ns/b", val("b")).await.unwrap();
    let compact_at = store.current_revision().await.unwrap();
    let later = store
        .update("/registry/cm/ns/a", val("after"), rev)
        .await
        .unwrap();
    let before = store.list("/registry/cm/", at(compact_at)).await.unwrap();

    store.compact(compact_at).await.unwrap();

    let err = store.list("/registry/cm/", at(r0 + 1)).await.unwrap_err();
    assert!(matches!(err, StoreError::Compacted { .. }), "{err:?}");
    let err = match store.watch("/registry/cm/", r0).await {
        Err(err) => err,
        Ok(mut stream) => match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
            Ok(Some(Err(err))) => err,
            other => panic!("expected a compacted watch, got {other:?}"),
        },
    };
    assert!(matches!(err, StoreError::Compacted { .. }), "{err:?}");
    // Compacting the same revision again is refused as already compacted.
    assert!(matches!(
        store.compact(compact_at).await,
        Err(StoreError::Compacted { .. })
    ));

    // History from the compacted revision on is intact.
    let after = store.list("/registry/cm/", at(compact_at)).await.unwrap();
    assert_eq!(after.kvs, before.kvs);
    assert_eq!(keys(&after.kvs), ["/registry/cm/ns/a", "/registry/cm/ns/b"]);
    let (kv, _) = store.get("/registry/cm/ns/a").await.unwrap();
    assert_eq!(kv.unwrap().mod_revision, later);
    let mut watch = store.watch("/registry/cm/", compact_at).await.unwrap();
    match next(&mut watch).await {
        WatchEvent::Put { kv, prev } => {
            assert_eq!((kv.mod_revision, kv.value), (later, val("after")));
            assert_eq!(prev.unwrap().value, val("9"));
        }
        other => panic!("expected the update, got {other:?}"),
    }
    // Writes go on after compaction.
    let next_rev = store.create("/registry/cm/ns/c", val("c")).await.unwrap();
    assert_eq!(next_rev, later + 1);
}

pub async fn concurrent_writers_produce_a_gapless_sequence(store: Shared) {
    const WRITERS: usize = 32;
    const EACH: usize = 20;
    let r0 = store.current_revision().await.unwrap();
    let mut watch = store.watch("/registry/", r0).await.unwrap();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut revs = Vec::new();
                for i in 0..EACH {
                    let key = format!("/registry/pods/w{w:02}/p{i:02}");
                    let rev = store.create(&key, val("v")).await.unwrap();
                    // Also exercise CAS under contention on a shared key.
                    revs.push(rev);
                }
                revs
            })
        })
        .collect();
    let mut revs = Vec::new();
    for task in tasks {
        let mine = task.await.unwrap();
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "one writer's revisions increase"
        );
        revs.extend(mine);
    }
    revs.sort_unstable();
    let total = (WRITERS * EACH) as Revision;
    assert_eq!(revs, ((r0 + 1)..=(r0 + total)).collect::<Vec<_>>());
    for expected in (r0 + 1)..=(r0 + total) {
        assert_eq!(next(&mut watch).await.revision(), expected);
    }
    let list = store
        .list("/registry/pods/", ListOptions::default())
        .await
        .unwrap();
    assert_eq!(list.kvs.len(), WRITERS * EACH);
}

pub async fn future_revision_is_rejected(store: Shared) {
    let now = store.create("/registry/a/b", val("v")).await.unwrap();
    let err = store.list("/registry/", at(now + 5)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::FutureRevision { requested, current } if requested == now + 5 && current == now),
        "{err:?}"
    );
    let err = store.compact(now + 5).await.unwrap_err();
    assert!(
        matches!(err, StoreError::FutureRevision { current, .. } if current == now),
        "{err:?}"
    );
}

pub async fn large_lists_come_back_whole(store: Shared) {
    // About 6 MiB in one list: more than gRPC's default 4 MiB message limit.
    const WRITERS: usize = 32;
    const EACH: usize = 100;
    let value = Bytes::from(vec![b'p'; 2048]);
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, value) = (store.clone(), value.clone());
            tokio::spawn(async move {
                for i in 0..EACH {
                    store
                        .create(&format!("/registry/pods/ns{w:02}/pod{i:03}"), value.clone())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let list = store
        .list("/registry/pods/", ListOptions::default())
        .await
        .unwrap();
    assert_eq!(list.kvs.len(), WRITERS * EACH);
    assert!(
        list.kvs.windows(2).all(|w| w[0].key < w[1].key),
        "ascending key order"
    );
    let r0 = list.revision - (WRITERS * EACH) as Revision;
    let mut watch = store.watch("/registry/pods/", r0).await.unwrap();
    for expected in (r0 + 1)..=list.revision {
        assert_eq!(next(&mut watch).await.revision(), expected);
    }
}

pub async fn keys_and_values_are_opaque_bytes(store: Shared) {
    let binary = Bytes::from((0..=255u8).collect::<Vec<u8>>());
    store
        .create("/registry/secrets/ns/bin", binary.clone())
        .await
        .unwrap();
    store
        .create("/registry/secrets/ns/empty", Bytes::new())
        .await
        .unwrap();
    // A prefix ending in a multi-byte character: its range end is not valid UTF-8.
    for key in [
        "/registry/x/café/a",
        "/registry/x/café/b",
        "/registry/x/cafè/a",
        "/registry/x/cafe/a",
    ] {
        store.create(key, val(key)).await.unwrap();
    }
    let (kv, _) = store.get("/registry/secrets/ns/bin").await.unwrap();
    assert_eq!(kv.unwrap().value, binary);
    let (kv, _) = store.get("/registry/secrets/ns/empty").await.unwrap();
    assert_eq!(kv.unwrap().value, Bytes::new());
    let list = store
        .list("/registry/x/café", ListOptions::default())
        .await
        .unwrap();
    assert_eq!(keys(&list.kvs), ["/registry/x/café/a", "/registry/x/café/b"]);
}

/// A tiny deterministic generator (xorshift), so failures replay exactly.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

pub async fn random_operations_match_a_model(store: Shared) {
    use std::collections::BTreeMap;
    type Model = BTreeMap<String, KeyValue>;
    let mut rng = Rng(0x5eed_cafe_f00d);
    let r0 = store.current_revision().await.unwrap();
    let mut model = Model::new();
    let mut history: Vec<(Revision, Model)> = vec![(r0, Model::new())];
    let mut rev = r0;
    for step in 0..300 {
        let key = format!("/registry/m/k{}", rng.below(12));
        let value = val(&format!("v{step}"));
        let current = model.get(&key).cloned();
        let stale = rng.below(4) == 0;
        let expected = match (&current, stale) {
            (Some(kv), false) => kv.mod_revision,
            (Some(kv), true) => kv.mod_revision - 1,
            (None, _) => rng.below(5) as Revision,
        };
        match rng.below(3) {
            0 => match (store.create(&key, value.clone()).await, &current) {
                (Ok(r), None) => {
                    rev += 1;
                    assert_eq!(r, rev);
                    let kv = KeyValue {
                        key: key.clone(),
                        value,
                        create_revision: r,
                        mod_revision: r,
                    };
                    model.insert(key, kv);
                }
                (Err(StoreError::AlreadyExists(_)), Some(_)) => {}
                other => panic!("step {step}: create {key}: {other:?}"),
            },
            1 => match (store.update(&key, value.clone(), expected).await, &current) {
                (Ok(r), Some(old)) if !stale => {
                    rev += 1;
                    assert_eq!(r, rev);
                    let kv = KeyValue {
                        value,
                        mod_revision: r,
                        ..old.clone()
                    };
                    model.insert(key, kv);
                }
                (Err(StoreError::Conflict { current: Some(c), .. }), Some(old)) if stale => {
                    assert_eq!(&*c, old)
                }
                (Err(StoreError::NotFound(_)), None) => {}
                other => panic!("step {step}: update {key}@{expected}: {other:?}"),
            },
            _ => {
                let expected = (rng.below(2) == 0).then_some(expected);
                match (store.delete(&key, expected).await, &current) {
                    (Ok((r, prev)), Some(old)) if !stale || expected.is_none() => {
                        rev += 1;
                        assert_eq!((r, &prev), (rev, old));
                        model.remove(&key);
                    }
                    (Err(StoreError::Conflict { current: Some(c), .. }), Some(old)) if stale => {
                        assert_eq!(&*c, old)
                    }
                    (Err(StoreError::NotFound(_)), None) => {}
                    other => panic!("step {step}: delete {key}@{expected:?}: {other:?}"),
                }
            }
        }
        if history.last().is_some_and(|(r, _)| *r != rev) {
            history.push((rev, model.clone()));
        }
    }
    assert_eq!(store.current_revision().await.unwrap(), rev);
    // Every past revision lists exactly as the model had it.
    // (Revision 0 means "now", so a fresh store's starting point is skipped.)
    for (at_rev, snapshot) in history
        .iter()
        .step_by(7)
        .chain(history.last())
        .filter(|(r, _)| *r > 0)
    {
        let list = store.list("/registry/m/", at(*at_rev)).await.unwrap();
        assert_eq!(
            list.kvs,
            snapshot.values().cloned().collect::<Vec<_>>(),
            "list at {at_rev}"
        );
    }
    // Replaying the watch from the start rebuilds the final state.
    let mut replay = store.watch("/registry/m/", r0).await.unwrap();
    let mut rebuilt = Model::new();
    for expected in (r0 + 1)..=rev {
        match next(&mut replay).await {
            WatchEvent::Put { kv, prev } => {
                assert_eq!(kv.mod_revision, expected);
                assert_eq!(prev.as_ref(), rebuilt.get(&kv.key));
                rebuilt.insert(kv.key.clone(), kv);
            }
            WatchEvent::Delete { prev, revision } => {
                assert_eq!(revision, expected);
                assert_eq!(rebuilt.remove(&prev.key).as_ref(), Some(&prev));
            }
        }
    }
    assert_eq!(rebuilt, model);
}
