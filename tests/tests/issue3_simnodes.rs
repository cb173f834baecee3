//! Issue 3 e2e: `skiff simulate-nodes` against a real `skiff server`, seen
//! through kubectl: nodes registered Ready with leases, pods bound by hand
//! become Running with an IP, run-to-completion pods complete, graceful
//! deletion is finished. Needs no scheduler or controllers.

#![allow(clippy::unwrap_used)]

mod issue3_common;

use std::time::Duration;

use issue3_common::{SimCluster, wait_for};

#[test]
fn simulated_nodes_register_renew_leases_and_run_bound_pods() {
    let c = SimCluster::start(
        3,
        &["--label", "zone=a", "--taint", "dedicated=sim:PreferNoSchedule"],
    );
    let k = c.kubectl();
    let nodes = k.ok(&["get", "nodes", "-o", "wide", "--no-headers"]);
    assert_eq!(nodes.lines().count(), 3, "{nodes}");
    assert!(
        nodes.contains("127.0.0.1") && nodes.contains("v1.33.0-skiff-sim"),
        "{nodes}"
    );
    assert_eq!(
        k.ok(&["get", "node", "sim-1", "-o", "jsonpath={.metadata.labels.zone}"]),
        "a"
    );
    assert_eq!(
        k.ok(&["get", "node", "sim-1", "-o", "jsonpath={.status.allocatable.cpu}"]),
        "8"
    );

    let renew = || {
        k.ok(&[
            "get",
            "lease",
            "-n",
            "kube-node-lease",
            "sim-2",
            "-o",
            "jsonpath={.spec.renewTime}",
        ])
    };
    let first = wait_for(Duration::from_secs(10), "a lease", || {
        Some(renew()).filter(|s| !s.is_empty())
    });
    wait_for(Duration::from_secs(10), "a renewed lease", || {
        (renew() != first).then_some(())
    });

    k.ok(&[
        "run",
        "web",
        "--image=nginx",
        "--overrides",
        r#"{"spec":{"nodeName":"sim-1"}}"#,
    ]);
    wait_for(Duration::from_secs(15), "web Running", || {
        let out = k.ok(&["get", "pod", "web", "-o", "wide", "--no-headers"]);
        let cols: Vec<&str> = out.split_whitespace().collect();
        (cols.get(1..3) == Some(&["1/1", "Running"][..])).then_some(())
    });
    let ip = k.ok(&["get", "pod", "web", "-o", "jsonpath={.status.podIP}"]);
    assert!(!ip.is_empty(), "pod IP");

    k.ok(&[
        "run",
        "once",
        "--image=busybox",
        "--restart=Never",
        "--overrides",
        r#"{"spec":{"nodeName":"sim-2"}}"#,
    ]);
    wait_for(Duration::from_secs(15), "once Completed", || {
        let out = k.ok(&["get", "pod", "once", "--no-headers"]);
        out.contains("Completed").then_some(())
    });
    let code = k.ok(&[
        "get",
        "pod",
        "once",
        "-o",
        "jsonpath={.status.containerStatuses[0].state.terminated.exitCode}",
    ]);
    assert_eq!(code, "0");

    // Graceful deletion is finished by the (simulated) kubelet.
    let out = k.ok(&["delete", "pod", "web", "--timeout=20s"]);
    assert!(out.contains("deleted"), "{out}");
    assert!(!k.run(&["get", "pod", "web"]).unwrap().success());
}

#[test]
fn stopped_heartbeats_leave_the_lease_stale() {
    let c = SimCluster::start(2, &["--fail", "sim-1"]);
    let k = c.kubectl();
    std::thread::sleep(Duration::from_secs(3));
    let out = k
        .run(&["get", "lease", "-n", "kube-node-lease", "sim-1"])
        .unwrap();
    assert!(
        !out.success(),
        "a failed node never takes its lease: {}",
        out.stdout
    );
    let renew = || {
        k.ok(&[
            "get",
            "lease",
            "-n",
            "kube-node-lease",
            "sim-0",
            "-o",
            "jsonpath={.spec.renewTime}",
        ])
    };
    let before = renew();
    c.fail_nodes(&["sim-0"]);
    std::thread::sleep(Duration::from_secs(2));
    let stopped = renew();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        renew(),
        stopped,
        "renewals stop once the control file names the node (was {before})"
    );
}
