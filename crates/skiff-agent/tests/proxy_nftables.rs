//! The service proxy against real nftables: a throw-away "node" netns with
//! a bridge, two veth-backed endpoint netns running busybox `nc` servers,
//! the skiff table applied with `ip netns exec NODE nft -f -`. Shows
//! ClusterIP balancing, NodePort, fast reject without endpoints, ClientIP
//! affinity, incremental sync and that cleanup removes only skiff's table.

#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use skiff_agent::proxy::model::{Endpoint, Protocol, ServicePort};
use skiff_agent::proxy::sync::SyncKind;
use skiff_agent::proxy::{DEFAULT_CLUSTER_CIDR, Nft, ProxyConfig, Syncer};

fn sh(args: &[&str]) {
    let st = Command::new(args[0]).args(&args[1..]).status().unwrap();
    assert!(st.success(), "{args:?} failed");
}

/// A node netns (bridge 10.42.0.1/24, second address 192.168.77.1 on lo, external link 192.168.99.1/24 to a client netns at .2, IP
/// forwarding on) + two endpoint netns at 10.42.0.11/.12 running `nc`
/// servers that answer their name; everything deleted on drop.
struct Lab {
    node: String,
    client: String,
    eps: Vec<String>,
    servers: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for s in &mut self.servers {
            let _ = s.kill();
            let _ = s.wait();
        }
        for ns in self.eps.iter().chain([&self.node, &self.client]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

impl Lab {
    fn new() -> Lab {
        let tag = format!("{:x}", std::process::id() ^ rand_tag());
        let node = format!("skiff-t-{tag}-n");
        let client = format!("skiff-t-{tag}-c");
        let mut lab = Lab {
            node: node.clone(),
            client: client.clone(),
            eps: Vec::new(),
            servers: Vec::new(),
        };
        sh(&["ip", "netns", "add", &node]);
        sh(&["ip", "netns", "add", &client]);
        let inn = |a: &[&str]| {
            let mut v = vec!["ip", "netns", "exec", node.as_str()];
            v.extend_from_slice(a);
            sh(&v);
        };
        inn(&["ip", "link", "set", "lo", "up"]);
        inn(&["ip", "link", "add", "br0", "type", "bridge"]);
        inn(&["ip", "addr", "add", "10.42.0.1/24", "dev", "br0"]);
        inn(&["ip", "link", "set", "br0", "up"]);
        inn(&["ip", "route", "add", "10.43.0.0/16", "dev", "br0"]);
        inn(&["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]);
        inn(&["ip", "addr", "add", "192.168.77.1/32", "dev", "lo"]);
        inn(&[
            "ip", "link", "add", "ext0", "type", "veth", "peer", "name", "eth0", "netns", &client,
        ]);
        inn(&["ip", "addr", "add", "192.168.99.1/24", "dev", "ext0"]);
        inn(&["ip", "link", "set", "ext0", "up"]);
        for a in [
            vec!["ip", "link", "set", "lo", "up"],
            vec!["ip", "addr", "add", "192.168.99.2/24", "dev", "eth0"],
            vec!["ip", "link", "set", "eth0", "up"],
            vec!["ip", "route", "add", "default", "via", "192.168.99.1"],
        ] {
            let mut v = vec!["ip", "netns", "exec", client.as_str()];
            v.extend(a);
            sh(&v);
        }
        for (i, name) in ["ep1", "ep2"].iter().enumerate() {
            let ns = format!("skiff-t-{tag}-{name}");
            sh(&["ip", "netns", "add", &ns]);
            lab.eps.push(ns.clone());
            let host = format!("veth{i}");
            inn(&[
                "ip", "link", "add", &host, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ]);
            inn(&["ip", "link", "set", &host, "master", "br0", "up"]);
            // As the CNI bridge's hairpinMode does for pods.
            inn(&["bridge", "link", "set", "dev", &host, "hairpin", "on"]);
            let ip = format!("10.42.0.{}/24", 11 + i);
            for a in [
                vec!["ip", "link", "set", "lo", "up"],
                vec!["ip", "addr", "add", ip.as_str(), "dev", "eth0"],
                vec!["ip", "link", "set", "eth0", "up"],
                vec!["ip", "route", "add", "default", "via", "10.42.0.1"],
            ] {
                let mut v = vec!["ip", "netns", "exec", ns.as_str()];
                v.extend(a);
                sh(&v);
            }
            // Records the source address of every new connection.
            let obs = "add table ip obs\nadd set ip obs src { type ipv4_addr; flags dynamic; }\n\
                       add chain ip obs in { type filter hook input priority 0; policy accept; }\n\
                       add rule ip obs in tcp dport 8080 ct state new add @src { ip saddr }\n";
            Nft {
                netns: Some(ns.clone()),
            }
            .apply(obs)
            .unwrap();
            let server = Command::new("ip")
                .args([
                    "netns", "exec", &ns, "busybox", "nc", "-ll", "-p", "8080", "-e", "busybox", "echo", name,
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            lab.servers.push(server);
        }
        std::thread::sleep(Duration::from_millis(300));
        lab
    }

    /// The source addresses endpoint `i` (0 or 1) saw connections from.
    fn sources(&self, i: usize) -> String {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.eps[i],
                "nft",
                "list",
                "set",
                "ip",
                "obs",
                "src",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn nft(&self) -> Nft {
        Nft {
            netns: Some(self.node.clone()),
        }
    }

    fn syncer(&self) -> Syncer {
        Syncer::new(ProxyConfig {
            node_name: "node-a".into(),
            cluster_cidr: DEFAULT_CLUSTER_CIDR,
            nft: self.nft(),
            debounce: Duration::from_millis(10),
        })
    }

    /// Connects from the node netns; Ok(reply) or Err(stderr).
    fn connect(&self, ip: &str, port: u16) -> Result<String, String> {
        self.connect_from(&self.node, ip, port)
    }

    /// Connects from the netns `from` (3 s timeout); Ok(reply) or Err(stderr).
    fn connect_from(&self, from: &str, ip: &str, port: u16) -> Result<String, String> {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                from,
                "busybox",
                "nc",
                "-w",
                "3",
                ip,
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !stdout.is_empty() {
            Ok(stdout)
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

fn rand_tag() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

fn ep(last: u8) -> Endpoint {
    Endpoint {
        ip: Ipv4Addr::new(10, 42, 0, last),
        port: 8080,
        ready: true,
        serving: true,
        terminating: false,
        local: true,
    }
}

fn service(name: &str, ip: [u8; 4], node_port: Option<u16>, endpoints: Vec<Endpoint>) -> ServicePort {
    ServicePort {
        namespace: "default".into(),
        name: name.into(),
        port_name: "http".into(),
        protocol: Protocol::Tcp,
        cluster_ip: Ipv4Addr::from(ip),
        port: 80,
        node_port,
        external_ips: Vec::new(),
        internal_local: false,
        external_local: false,
        affinity_timeout: None,
        endpoints,
    }
}

#[test]
fn proxy_on_real_nftables() {
    let lab = Lab::new();
    let mut syncer = lab.syncer();
    let web = service("web", [10, 43, 0, 10], Some(30080), vec![ep(11), ep(12)]);
    let empty = service("empty", [10, 43, 0, 11], None, Vec::new());
    let mut sticky = service("sticky", [10, 43, 0, 12], None, vec![ep(11), ep(12)]);
    sticky.affinity_timeout = Some(60);
    assert_eq!(
        syncer
            .sync(&[web.clone(), empty.clone(), sticky.clone()])
            .unwrap(),
        SyncKind::Full
    );

    // ClusterIP reaches both endpoints.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..30 {
        seen.insert(lab.connect("10.43.0.10", 80).unwrap());
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["ep1", "ep2"]);

    // NodePort on a node address.
    let reply = lab.connect("10.42.0.1", 30080).unwrap();
    assert!(reply == "ep1" || reply == "ep2", "{reply}");

    // No endpoints: refused at once, not a timeout.
    let started = Instant::now();
    let err = lab.connect("10.43.0.11", 80).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert!(err.contains("refused"), "{err}");

    // ClientIP affinity sticks.
    let first = lab.connect("10.43.0.12", 80).unwrap();
    for _ in 0..10 {
        assert_eq!(lab.connect("10.43.0.12", 80).unwrap(), first);
    }

    // Incremental: the empty service gets an endpoint, web loses one.
    let empty2 = service("empty", [10, 43, 0, 11], None, vec![ep(12)]);
    let web2 = service("web", [10, 43, 0, 10], Some(30080), vec![ep(11)]);
    assert_eq!(
        syncer
            .sync(&[web2.clone(), empty2.clone(), sticky.clone()])
            .unwrap(),
        SyncKind::Incremental
    );
    assert_eq!(lab.connect("10.43.0.11", 80).unwrap(), "ep2");
    for _ in 0..5 {
        assert_eq!(lab.connect("10.43.0.10", 80).unwrap(), "ep1");
    }
    // Removing a service removes its rules; nothing changed → Unchanged.
    assert_eq!(
        syncer.sync(&[web2.clone(), empty2.clone()]).unwrap(),
        SyncKind::Incremental
    );
    assert!(!lab.nft().list_table().unwrap().contains("sticky"));
    assert_eq!(syncer.sync(&[web2, empty2]).unwrap(), SyncKind::Unchanged);

    // Cleanup removes the skiff table and leaves other tables alone.
    lab.nft()
        .apply("add table ip other\nadd chain ip other c\n")
        .unwrap();
    lab.nft().delete_table().unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.node, "nft", "list", "tables"])
        .output()
        .unwrap();
    let tables = String::from_utf8_lossy(&out.stdout);
    assert!(tables.contains("table ip other"), "{tables}");
    assert!(!tables.contains("skiff"), "{tables}");
    // Deleting again is fine.
    lab.nft().delete_table().unwrap();
}

fn remote(last: u8) -> Endpoint {
    Endpoint {
        local: false,
        ..ep(last)
    }
}

/// Replies of `n` connections from `from` to `ip:port`, sorted, deduplicated.
fn replies(lab: &Lab, from: &str, ip: &str, port: u16, n: usize) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..n {
        seen.insert(lab.connect_from(from, ip, port).unwrap());
    }
    seen.into_iter().collect()
}

#[test]
fn hairpin_pod_reaches_itself_through_its_service() {
    let lab = Lab::new();
    let mut syncer = lab.syncer();
    syncer
        .sync(&[service("self", [10, 43, 0, 20], None, vec![ep(11)])])
        .unwrap();
    // ep1 connects to its own service and is DNATed back to itself: the
    // reply only finds its way because the node masqueraded the request.
    assert_eq!(lab.connect_from(&lab.eps[0], "10.43.0.20", 80).unwrap(), "ep1");
    assert!(lab.sources(0).contains("10.42.0.1"), "{}", lab.sources(0));
    // Another pod keeps its own source address.
    assert_eq!(lab.connect_from(&lab.eps[1], "10.43.0.20", 80).unwrap(), "ep1");
    assert!(lab.sources(0).contains("10.42.0.12"), "{}", lab.sources(0));
}

#[test]
fn node_port_answers_on_every_node_address_but_not_loopback() {
    let lab = Lab::new();
    let mut syncer = lab.syncer();
    syncer
        .sync(&[service("np", [10, 43, 0, 21], Some(30090), vec![ep(11)])])
        .unwrap();
    for addr in ["10.42.0.1", "192.168.77.1", "192.168.99.1"] {
        assert_eq!(lab.connect(addr, 30090).unwrap(), "ep1", "{addr}");
    }
    // From outside: policy Cluster masquerades (the endpoint sees the node).
    assert_eq!(
        lab.connect_from(&lab.client, "192.168.99.1", 30090).unwrap(),
        "ep1"
    );
    assert!(!lab.sources(0).contains("192.168.99.2"), "{}", lab.sources(0));
    // Upstream's nftables mode does not serve NodePorts on 127.0.0.1.
    let err = lab.connect("127.0.0.1", 30090).unwrap_err();
    assert!(err.contains("refused"), "{err}");
}

#[test]
fn external_traffic_policy_local_keeps_the_source_and_stays_on_the_node() {
    let lab = Lab::new();
    let mut syncer = lab.syncer();
    let mut svc = service("etp", [10, 43, 0, 22], Some(30091), vec![ep(11), remote(12)]);
    svc.external_local = true;
    syncer.sync(std::slice::from_ref(&svc)).unwrap();
    assert_eq!(replies(&lab, &lab.client, "192.168.99.1", 30091, 8), ["ep1"]);
    assert!(lab.sources(0).contains("192.168.99.2"), "{}", lab.sources(0));
    // ClusterIP traffic still uses every endpoint.
    assert_eq!(replies(&lab, &lab.node, "10.43.0.22", 80, 30), ["ep1", "ep2"]);

    // No local endpoint: outside clients are dropped, the node itself is
    // short-circuited to the cluster-wide endpoints (as upstream).
    svc.endpoints = vec![remote(12)];
    syncer.sync(std::slice::from_ref(&svc)).unwrap();
    assert!(lab.connect_from(&lab.client, "192.168.99.1", 30091).is_err());
    assert_eq!(lab.connect("192.168.99.1", 30091).unwrap(), "ep2");
}

#[test]
fn internal_traffic_policy_local_uses_only_local_endpoints() {
    let lab = Lab::new();
    let mut syncer = lab.syncer();
    let mut svc = service("itp", [10, 43, 0, 23], None, vec![ep(11), remote(12)]);
    svc.internal_local = true;
    syncer.sync(std::slice::from_ref(&svc)).unwrap();
    assert_eq!(replies(&lab, &lab.node, "10.43.0.23", 80, 8), ["ep1"]);
    // Only a remote endpoint: dropped, not sent off the node.
    svc.endpoints = vec![remote(12)];
    syncer.sync(std::slice::from_ref(&svc)).unwrap();
    let err = lab.connect("10.43.0.23", 80).unwrap_err();
    assert!(!err.contains("refused"), "{err}");
}

#[test]
fn terminating_endpoints_serve_only_when_nothing_is_ready() {
    let lab = Lab::new();
    let mut syncer = lab.syncer();
    let terminating = Endpoint {
        ready: false,
        terminating: true,
        ..ep(12)
    };
    let mut svc = service("term", [10, 43, 0, 24], None, vec![ep(11), terminating.clone()]);
    syncer.sync(std::slice::from_ref(&svc)).unwrap();
    assert_eq!(replies(&lab, &lab.node, "10.43.0.24", 80, 12), ["ep1"]);
    svc.endpoints = vec![terminating.clone()];
    syncer.sync(std::slice::from_ref(&svc)).unwrap();
    assert_eq!(lab.connect("10.43.0.24", 80).unwrap(), "ep2");
    // Terminating and no longer serving: rejected like no endpoints.
    svc.endpoints = vec![Endpoint {
        serving: false,
        ..terminating
    }];
    syncer.sync(std::slice::from_ref(&svc)).unwrap();
    assert!(lab.connect("10.43.0.24", 80).unwrap_err().contains("refused"));
}

#[test]
fn client_ip_affinity_is_forgotten_after_its_timeout() {
    let lab = Lab::new();
    let mut syncer = lab.syncer();
    let mut svc = service("aff", [10, 43, 0, 25], None, vec![ep(11)]);
    svc.affinity_timeout = Some(2);
    syncer.sync(std::slice::from_ref(&svc)).unwrap();
    assert_eq!(lab.connect("10.43.0.25", 80).unwrap(), "ep1");
    let set = skiff_agent::proxy::render::affinity_set(&svc, &svc.endpoints[0]);
    let list = || {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &lab.node, "nft", "list", "set", "ip", "skiff", &set,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(list().contains("elements = { 10.42.0.1 expires"), "{}", list());
    std::thread::sleep(Duration::from_millis(3000));
    assert!(!list().contains("elements"), "{}", list());
}
