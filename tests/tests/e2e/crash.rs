//! Durability: the server is `kill -9`ed during a stream of creates; after a
//! restart on the same data dir (or etcd), every create that kubectl reported
//! as created (a 201 answer) is there, and the server takes writes again.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use skiff_e2e::{Backend, Cluster, for_each_backend, lines};

/// How many configmaps each writer tries to create.
const PER_WRITER: usize = 400;
/// How many writers (kubectl processes) create at the same time.
const WRITERS: usize = 3;
/// Kill the server once at least this many creates were answered.
const KILL_AFTER: usize = 120;

fn manifest(writer: usize) -> String {
    (0..PER_WRITER)
        .map(|i| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: w{writer}-{i:04}\n  namespace: crash\ndata:\n  index: \"{i}\"\n"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The name in a `configmap/NAME created` line.
fn created(line: &str) -> Option<String> {
    line.trim()
        .strip_prefix("configmap/")?
        .strip_suffix(" created")
        .map(str::to_string)
}

fn kill9_during_creates_loses_no_acknowledged_write(backend: Backend) {
    let mut cluster = Cluster::start(backend);
    let k = cluster.kubectl();
    k.ok(&["create", "namespace", "crash"]);

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let file = cluster.server.data_dir().join(format!("writer-{w}.yaml"));
        std::fs::write(&file, manifest(w)).unwrap();
        let file = file.to_string_lossy().into_owned();
        writers.push(k.stream(&["create", "-f", &file]).unwrap());
    }

    // Let the creates run, then kill the server in the middle of them.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut answered = 0;
    while answered < KILL_AFTER {
        assert!(
            Instant::now() < deadline,
            "only {answered} creates answered in 90 s"
        );
        for writer in &mut writers {
            if writer
                .wait_for(Duration::from_millis(100), |l| created(l).is_some())
                .is_some()
            {
                answered += 1;
            }
        }
    }
    cluster.server.kill9().unwrap();

    // Collect everything each writer saw acknowledged: kubectl prints a line
    // as soon as a create is answered, so what was answered before the kill is
    // printed within moments. Then stop the writers (the rest would only fail).
    std::thread::sleep(Duration::from_millis(500));
    let mut acknowledged = BTreeSet::new();
    let mut finished = 0;
    for mut writer in writers {
        writer.drain(Duration::from_millis(300));
        let mine: Vec<String> = writer.seen().iter().filter_map(|l| created(l)).collect();
        if mine.len() == PER_WRITER {
            finished += 1;
        }
        acknowledged.extend(mine);
        writer.stop();
    }
    assert!(
        finished < WRITERS,
        "the kill came after all creates were done; raise PER_WRITER"
    );
    assert!(
        acknowledged.len() >= KILL_AFTER,
        "only {} creates acknowledged",
        acknowledged.len()
    );

    cluster.server.restart().unwrap();
    let stored: BTreeSet<String> = lines(&k.ok(&["get", "configmaps", "-n", "crash", "-o", "name"]))
        .into_iter()
        .filter_map(|l| l.strip_prefix("configmap/").map(str::to_string))
        .collect();
    let lost: Vec<&String> = acknowledged.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged creates lost after kill -9: {lost:?}",
        lost.len()
    );
    eprintln!(
        "{} creates acknowledged before kill -9, {} stored after restart",
        acknowledged.len(),
        stored.len()
    );

    // Each stored object is whole and the server accepts writes again.
    let sample = acknowledged.iter().next().cloned().unwrap_or_default();
    let n = k.ok(&[
        "get",
        "configmap",
        &sample,
        "-n",
        "crash",
        "-o",
        "jsonpath={.data.index}",
    ]);
    assert!(
        sample.ends_with(&format!("{:04}", n.parse::<usize>().unwrap())),
        "{sample}: n={n}"
    );
    assert_eq!(
        lines(&k.ok(&["create", "configmap", "after", "-n", "crash"])),
        ["configmap/after created"]
    );
}

for_each_backend!(kill9_during_creates_loses_no_acknowledged_write);
