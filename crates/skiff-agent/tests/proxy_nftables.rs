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

/// A node netns + two endpoint netns; everything deleted on drop.
struct Lab {
    node: String,
    eps: Vec<String>,
    servers: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for s in &mut self.servers {
            let _ = s.kill();
            let _ = s.wait();
        }
        for ns in self.eps.iter().chain(std::iter::once(&self.node)) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

impl Lab {
    fn new() -> Lab {
        let tag = format!("{:x}", std::process::id() ^ rand_tag());
        let node = format!("skiff-t-{tag}-n");
        let mut lab = Lab {
            node: node.clone(),
            eps: Vec::new(),
            servers: Vec::new(),
        };
        sh(&["ip", "netns", "add", &node]);
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
        for (i, name) in ["ep1", "ep2"].iter().enumerate() {
            let ns = format!("skiff-t-{tag}-{name}");
            sh(&["ip", "netns", "add", &ns]);
            lab.eps.push(ns.clone());
            let host = format!("veth{i}");
            inn(&[
                "ip", "link", "add", &host, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ]);
            inn(&["ip", "link", "set", &host, "master", "br0", "up"]);
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
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.node,
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
