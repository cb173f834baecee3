//! Shared set-up of the issue-5 multi-node end-to-end tests: a `skiff
//! server` (no agent of its own, listening on every address) plus one
//! `skiff agent` per node, each in a network namespace of the test's own
//! (skiff-testkit's `netns::Topology`) with its own containerd, joined with
//! the server's join token. Helpers to run commands in pods and read which
//! replica answered. Tests skip, with the reason printed, where containers
//! cannot run.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

use skiff_testkit::kubectl::Kubectl;
use skiff_testkit::netns::{AgentProcess, AgentSpec, Topology};
use skiff_testkit::node::skip_reason;
use skiff_testkit::server::{ServerOptions, SkiffServer, skiff_binary};

/// How long a node or pod may take to reach a state.
pub const T: Duration = Duration::from_secs(90);

/// Requests per check ("over 30 requests reach every replica").
pub const N: usize = 30;

/// A server and its agents, each in its own network namespace. Fields drop
/// in order: the agents (and their containers) first, then the namespaces
/// and bridge, then the server.
pub struct MultiNode {
    /// One agent per node, node `i` in namespace `topology.netns(i)`.
    pub agents: Vec<AgentProcess>,
    /// The bridge and namespaces.
    pub topology: Topology,
    /// The control plane.
    pub server: SkiffServer,
}

impl MultiNode {
    /// Starts the topology, the server and `nodes` agents and waits until
    /// every node is Ready; `None` (skip) where containers cannot run.
    pub fn start(nodes: usize) -> Option<MultiNode> {
        if let Some(reason) = skip_reason() {
            eprintln!("SKIPPED: {reason}");
            return None;
        }
        let mut topology = Topology::create(nodes).unwrap();
        let gateway = topology.gateway().to_string();
        let opts = ServerOptions {
            extra_args: [
                "--disable-agent",
                "--bind-address",
                "0.0.0.0",
                "--tls-san",
                &gateway,
                "--cluster-dns-endpoint",
                &gateway,
            ]
            .map(String::from)
            .to_vec(),
            ready_timeout: Duration::from_secs(60),
            ..ServerOptions::default()
        };
        let server = SkiffServer::start(opts).unwrap();
        // `K10<CA hash>::<id>.<secret>`: the agent needs nothing else to join.
        let join = std::fs::read_to_string(server.data_dir().join("join-token")).unwrap();
        let token = join.trim().to_string();
        assert!(
            token.starts_with("K10") && token.contains("::"),
            "join token {token:?}"
        );
        let mut agents = Vec::new();
        for index in 0..nodes {
            let spec = AgentSpec {
                binary: skiff_binary().unwrap(),
                server: format!("https://{gateway}:{}", server.port()),
                token: token.clone(),
                ca_file: None,
                node_name: node_name(index),
                extra_args: Vec::new(),
            };
            agents.push(topology.start_agent(index, &spec).unwrap());
        }
        let cluster = MultiNode {
            agents,
            topology,
            server,
        };
        let k = cluster.kubectl();
        let names: Vec<String> = (0..nodes).map(node_name).collect();
        wait_for(T, "every node to be Ready", || {
            let ready = nodes_ready(&k);
            names.iter().all(|n| ready.get(n) == Some(&true)).then_some(())
        });
        Some(cluster)
    }

    /// A kubectl talking to the server as admin (over 127.0.0.1).
    pub fn kubectl(&self) -> Kubectl {
        self.server.kubectl()
    }

    /// Node `index`'s address on the bridge.
    pub fn node_ip(&self, index: usize) -> Ipv4Addr {
        self.topology.node_ip(index)
    }
}

/// The Node name of node `index`.
pub fn node_name(index: usize) -> String {
    format!("node-{index}")
}

/// Node name → whether its Ready condition is True.
pub fn nodes_ready(k: &Kubectl) -> BTreeMap<String, bool> {
    let Ok(out) = k.run(&["get", "nodes", "--no-headers"]) else {
        return BTreeMap::new();
    };
    out.stdout
        .lines()
        .filter_map(|l| {
            let mut cols = l.split_whitespace();
            Some((cols.next()?.to_string(), cols.next()? == "Ready"))
        })
        .collect()
}

/// Polls `f` every 250 ms until it returns Some, panicking after `timeout`.
pub fn wait_for<V>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<V>) -> V {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `kubectl exec POD -n NS -- sh -c SCRIPT`: (exit code, stdout, stderr).
pub fn exec(k: &Kubectl, ns: &str, pod: &str, script: &str) -> (Option<i32>, String, String) {
    let out = k.run(&["exec", pod, "-n", ns, "--", "sh", "-c", script]).unwrap();
    (out.code, out.stdout, out.stderr)
}

/// Fetches `url` `n` times from inside `pod` (busybox wget, 2 s timeout
/// each) and counts the answers by body (one replica's host name per
/// answer); failures count under `"FAIL"`.
pub fn answers_from_pod(k: &Kubectl, ns: &str, pod: &str, url: &str, n: usize) -> BTreeMap<String, usize> {
    let script = format!("for i in $(seq {n}); do wget -qO- -T 2 {url} || echo FAIL; done");
    let (_, stdout, stderr) = exec(k, ns, pod, &script);
    let counts = count_lines(&stdout);
    assert!(
        !counts.is_empty(),
        "no output from {pod} fetching {url}; stderr: {stderr}"
    );
    counts
}

/// Fetches `url` `n` times from `pod` (as [`answers_from_pod`]) until the
/// answers come from exactly the replicas `want`, none failing; panics with
/// the last answers after [`T`].
pub fn until_answers(
    k: &Kubectl,
    ns: &str,
    pod: &str,
    url: &str,
    want: &BTreeSet<String>,
) -> BTreeMap<String, usize> {
    let start = std::time::Instant::now();
    loop {
        let got = answers_from_pod(k, ns, pod, url, N);
        if got.keys().eq(want.iter()) {
            return got;
        }
        assert!(
            start.elapsed() < T,
            "{pod} fetching {url} {N} times: want answers from exactly {want:?}, got {got:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Fetches `http://ip:port/` `n` times from the host; counts as [`answers_from_pod`].
pub fn answers_from_host(ip: Ipv4Addr, port: u16, n: usize) -> BTreeMap<String, usize> {
    let mut bodies = String::new();
    for _ in 0..n {
        match http_get(ip, port) {
            Some(body) => bodies.push_str(body.trim()),
            None => bodies.push_str("FAIL"),
        }
        bodies.push('\n');
    }
    count_lines(&bodies)
}

/// The body of `GET /` on `ip:port`, if it answers 200 within 2 s.
pub fn http_get(ip: Ipv4Addr, port: u16) -> Option<String> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&(ip, port).into(), timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    let request = format!("GET / HTTP/1.0\r\nHost: {ip}:{port}\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    (head.split_whitespace().nth(1) == Some("200")).then(|| body.to_string())
}

fn count_lines(text: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        *counts.entry(line.to_string()).or_default() += 1;
    }
    counts
}
