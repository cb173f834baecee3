//! `kubectl get -w`: a running watch sees creates, updates and deletes made by
//! another kubectl, as table rows and as typed watch events.

use std::time::Duration;

use skiff_e2e::{Backend, demo_cluster, for_each_backend, squeeze};

const WAIT: Duration = Duration::from_secs(20);

fn first_column(line: &str) -> String {
    squeeze(line)
        .first()
        .and_then(|l| l.split(' ').next().map(str::to_string))
        .unwrap_or_default()
}

fn get_watch_sees_changes(backend: Backend) {
    let (_cluster, k) = demo_cluster(backend);

    let mut watch = k.stream(&["get", "configmaps", "-n", "demo", "-w"]).unwrap();
    let first = watch.wait_for(WAIT, |l| first_column(l) == "web-config");
    assert!(first.is_some(), "initial list not shown: {:?}", watch.seen());
    k.ok(&[
        "create",
        "configmap",
        "watched",
        "-n",
        "demo",
        "--from-literal=a=b",
    ]);
    let line = watch.wait_for(WAIT, |l| first_column(l) == "watched");
    let line = line.unwrap_or_else(|| panic!("create not seen; lines: {:?}", watch.seen()));
    assert!(squeeze(&line)[0].starts_with("watched 1 "), "{line}");
    drop(watch);

    let mut events = k
        .stream(&[
            "get",
            "configmaps",
            "-n",
            "demo",
            "-w",
            "--output-watch-events",
            "--watch-only",
        ])
        .unwrap();
    // Give the watch a moment to be established before changing things.
    std::thread::sleep(Duration::from_millis(500));
    k.ok(&["label", "configmap", "watched", "-n", "demo", "seen=yes"]);
    let modified = events.wait_for(WAIT, |l| squeeze(l)[0].starts_with("MODIFIED watched "));
    assert!(modified.is_some(), "update not seen: {:?}", events.seen());
    k.ok(&["delete", "configmap", "watched", "-n", "demo"]);
    let deleted = events.wait_for(WAIT, |l| squeeze(l)[0].starts_with("DELETED watched "));
    assert!(deleted.is_some(), "delete not seen: {:?}", events.seen());
    let stderr = events.stop();
    assert!(!stderr.contains("error"), "watch reported: {stderr}");
}

for_each_backend!(get_watch_sees_changes);
