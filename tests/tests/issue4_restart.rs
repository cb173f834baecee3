//! Issue 4 e2e: restarting the agent (SIGKILL of `skiff server` with its
//! embedded agent, then a start on the same data dir) leaves exactly the
//! containers it should — running pods adopted, not duplicated, and the
//! containers of a pod deleted afterwards removed. The runtime is asked
//! directly (`ctr` on the test's containerd), not the API.

#![allow(clippy::unwrap_used)]

mod issue4_common;

use std::collections::BTreeSet;

use issue4_common::*;

#[test]
fn restarting_the_agent_leaves_exactly_the_containers_it_should() {
    let Some(mut server) = start_own() else { return };
    let k = server.kubectl();
    namespace(&k, "i4-adopt");
    for name in ["keep-a", "keep-b"] {
        apply(&k, "i4-adopt", &sh_pod(name, "Always", "exec sleep 3600"));
    }
    let before: BTreeSet<String> = ["keep-a", "keep-b"]
        .iter()
        .map(|name| container_id(&wait_phase(&k, "i4-adopt", name, "Running"), "main").unwrap())
        .collect();
    let node = server.node().unwrap();
    let running: BTreeSet<String> = node.running_containers(true).into_iter().collect();
    assert_eq!(running, before, "the runtime runs exactly the pods' containers");
    let sandboxes_before = node.running_containers(false).len() - running.len();
    assert_eq!(sandboxes_before, 2, "one sandbox per pod");

    server.kill9().unwrap();
    server.restart().unwrap();
    wait_node_ready(&k);

    // Adopted: same containers, no restarts, nothing new started.
    for name in ["keep-a", "keep-b"] {
        let p = wait_phase(&k, "i4-adopt", name, "Running");
        assert!(
            before.contains(&container_id(&p, "main").unwrap()),
            "{name} got a new container"
        );
        assert_eq!(restarts(&p, "main"), 0, "{name} was restarted");
    }
    std::thread::sleep(std::time::Duration::from_secs(3));
    let node = server.node().unwrap();
    let running: BTreeSet<String> = node.running_containers(true).into_iter().collect();
    assert_eq!(running, before, "containers after the restart");
    assert_eq!(
        node.running_containers(false).len() - running.len(),
        2,
        "sandboxes after the restart"
    );

    // The restarted agent still acts on deletions.
    k.ok(&[
        "delete",
        "pod",
        "keep-a",
        "-n",
        "i4-adopt",
        "--wait=true",
        "--timeout=30s",
    ]);
    let left = wait_for(T, "keep-a's containers to go", || {
        let running: BTreeSet<String> = node.running_containers(true).into_iter().collect();
        (running.len() == 1).then_some(running)
    });
    let keep_b = container_id(&pod(&k, "i4-adopt", "keep-b").unwrap(), "main").unwrap();
    assert_eq!(left, BTreeSet::from([keep_b]));
    assert_eq!(
        node.running_containers(false).len(),
        2,
        "keep-b's sandbox and container"
    );
}
