//! Pods across nodes, for real, inside two network namespaces this test
//! creates ("node" A and B joined by a veth pair on 192.168.77.0/24, each with
//! a pod bridge holding an address of its podCIDR): pod-to-pod pings work
//! only once both nodes have skiff's routes, traffic leaving the cluster CIDR
//! is masqueraded, and clean-up removes only skiff's routes and table.
//! Needs root, `ip`, `nft` and busybox; skips with a reason otherwise.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Node;
use skiff_agent::routes::{Host, RouteOp, desired_routes};

/// A network namespace deleted on drop, even when the test fails.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("skiff-t-{tag}{}-{nanos:x}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns(name);
        ns.ok(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    fn exec(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn ping(&self, from: &str, to: &str) -> bool {
        self.exec(&["busybox", "ping", "-c1", "-W1", "-I", from, to])
            .status
            .success()
    }

    fn host(&self) -> Host {
        Host {
            netns: Some(self.0.clone()),
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn missing_tools() -> Option<String> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    if String::from_utf8_lossy(&uid).trim() != "0" {
        return Some("needs root for network namespaces".into());
    }
    for tool in ["ip", "nft", "busybox"] {
        if Command::new(tool).arg("-V").output().is_err() && Command::new(tool).output().is_err() {
            return Some(format!("`{tool}` not found"));
        }
    }
    None
}

fn node(name: &str, cidr: &str, ip: &str) -> Node {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"podCIDR": cidr},
        "status": {"addresses": [{"type": "InternalIP", "address": ip}]},
    }))
    .unwrap()
}

/// A "node": its uplink address and a pod bridge with the first address of its podCIDR.
fn setup_node(ns: &Netns, uplink: &str, addr: &str, pod_addr: &str) {
    ns.ok(&["ip", "addr", "add", addr, "dev", uplink]);
    ns.ok(&["ip", "link", "set", uplink, "up"]);
    ns.ok(&["ip", "link", "add", "skt-pods", "type", "bridge"]);
    ns.ok(&["ip", "addr", "add", pod_addr, "dev", "skt-pods"]);
    ns.ok(&["ip", "link", "set", "skt-pods", "up"]);
}

#[test]
fn pods_on_two_nodes_reach_each_other_through_skiff_routes() {
    if let Some(reason) = missing_tools() {
        eprintln!("skipping: {reason}");
        return;
    }
    let a = Netns::new("rta");
    let b = Netns::new("rtb");
    a.ok(&[
        "ip", "link", "add", "skt-up", "type", "veth", "peer", "name", "skt-up", "netns", &b.0,
    ]);
    setup_node(&a, "skt-up", "192.168.77.1/24", "10.42.1.1/24");
    setup_node(&b, "skt-up", "192.168.77.2/24", "10.42.2.1/24");
    // An address outside the cluster, reached from A through a route skiff does not own.
    b.ok(&["ip", "addr", "add", "172.31.0.1/24", "dev", "skt-pods"]);
    a.ok(&["ip", "route", "add", "172.31.0.0/24", "via", "192.168.77.2"]);

    let nodes = [
        node("a", "10.42.1.0/24", "192.168.77.1"),
        node("b", "10.42.2.0/24", "192.168.77.2"),
    ];
    let want_a = desired_routes(&nodes, "a", "192.168.77.1".parse().unwrap());
    let want_b = desired_routes(&nodes, "b", "192.168.77.2".parse().unwrap());
    assert!(
        !a.ping("10.42.1.1", "10.42.2.1"),
        "pods reachable before any route"
    );

    // A's route alone: B cannot answer A's pod range yet; nothing leaves unmasqueraded.
    let ops = a.host().sync_routes(&want_a).unwrap();
    assert_eq!(
        ops,
        vec![RouteOp::Replace {
            dst: "10.42.2.0/24".parse().unwrap(),
            via: "192.168.77.2".parse().unwrap()
        }]
    );
    assert!(
        a.ok(&["ip", "route", "show", "proto", "250"])
            .contains("10.42.2.0/24 via 192.168.77.2")
    );
    assert!(!a.ping("10.42.1.1", "10.42.2.1"));
    assert!(
        !a.ping("10.42.1.1", "172.31.0.1"),
        "outside reached without masquerade"
    );

    // Masquerade: traffic leaving the cluster CIDR gets A's address, so B answers it;
    // pod-to-pod traffic keeps its pod source (and still has no way back).
    a.host().apply_masq("10.42.0.0/16".parse().unwrap()).unwrap();
    assert!(
        a.ping("10.42.1.1", "172.31.0.1"),
        "masqueraded traffic gets no answer"
    );
    assert!(
        !a.ping("10.42.1.1", "10.42.2.1"),
        "pod-to-pod traffic was masqueraded"
    );

    // Both nodes routed: pods reach each other both ways; syncing again changes nothing.
    b.host().sync_routes(&want_b).unwrap();
    assert!(a.ping("10.42.1.1", "10.42.2.1"), "A's pod cannot reach B's pod");
    assert!(b.ping("10.42.2.1", "10.42.1.1"), "B's pod cannot reach A's pod");
    assert!(a.host().sync_routes(&want_a).unwrap().is_empty());

    // Node B goes away: A drops its route, keeps everyone else's.
    let gone = desired_routes(&nodes[..1], "a", "192.168.77.1".parse().unwrap());
    assert_eq!(a.host().sync_routes(&gone).unwrap().len(), 1);
    assert!(!a.ping("10.42.1.1", "10.42.2.1"));
    assert!(
        a.ok(&["ip", "route", "show"])
            .contains("172.31.0.0/24 via 192.168.77.2")
    );

    // Clean-up removes skiff's routes and table only.
    a.host().apply_masq("10.42.0.0/16".parse().unwrap()).unwrap();
    a.host().sync_routes(&want_a).unwrap();
    a.host().cleanup().unwrap();
    assert_eq!(a.ok(&["ip", "route", "show", "proto", "250"]).trim(), "");
    assert!(
        !a.exec(&["nft", "list", "table", "ip", "skiff-masq"])
            .status
            .success()
    );
    assert!(
        a.ok(&["ip", "route", "show"])
            .contains("172.31.0.0/24 via 192.168.77.2")
    );
    a.host().cleanup().unwrap();
}

/// Polls `check` for up to 10 s.
async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..100 {
        if check() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn run_follows_nodes_from_the_api_server() {
    use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
    if let Some(reason) = missing_tools() {
        eprintln!("skipping: {reason}");
        return;
    }
    let a = Netns::new("rtr");
    a.ok(&[
        "ip", "link", "add", "skt-up", "type", "veth", "peer", "name", "skt-peer",
    ]);
    setup_node(&a, "skt-up", "192.168.78.1/24", "10.42.1.1/24");
    let dir = tempfile::tempdir().unwrap();
    let store =
        std::sync::Arc::new(skiff_store::sqlite::SqliteStore::open(dir.path().join("state.db")).unwrap());
    let server = skiff_apiserver::server::ApiServer::new(store, Default::default()).unwrap();
    assert!(
        server.wait_ready(std::time::Duration::from_secs(10)).await,
        "server not ready"
    );
    let client = kube::Client::new(server.router(), "default");
    let nodes: Api<Node> = Api::all(client.clone());
    for (name, cidr, ip) in [
        ("a", "10.42.1.0/24", "192.168.78.1"),
        ("b", "10.42.2.0/24", "192.168.78.2"),
    ] {
        let n = node(name, cidr, ip);
        nodes.create(&PostParams::default(), &n).await.unwrap();
        let status = serde_json::json!({"status": n.status});
        nodes
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }
    let mut cfg = skiff_agent::AgentConfig::new("a", dir.path().join("agent"));
    cfg.node_ip = "192.168.78.1".parse().unwrap();
    let task = tokio::spawn(skiff_agent::routes::run_on(client, cfg, a.host()));

    let routes = || a.ok(&["ip", "route", "show", "proto", "250"]);
    assert!(
        eventually(|| routes().contains("10.42.2.0/24 via 192.168.78.2")).await,
        "{}",
        routes()
    );
    let table = a.ok(&["nft", "list", "table", "ip", "skiff-masq"]);
    assert!(
        table.contains("ip saddr 10.42.0.0/16 ip daddr != 10.42.0.0/16 masquerade"),
        "{table}"
    );

    nodes.delete("b", &DeleteParams::default()).await.unwrap();
    assert!(eventually(|| routes().trim().is_empty()).await, "{}", routes());
    task.abort();
    a.host().cleanup().unwrap();
}
