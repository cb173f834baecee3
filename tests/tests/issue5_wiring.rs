//! Issue 5, the wiring: a whole `skiff server` (with its embedded agent and
//! the containerd it starts) inside a network namespace of the test's own,
//! with everything networking on by default — service proxy, pod routes and
//! cluster DNS. From a pod, a Service answers on its ClusterIP and by name,
//! and cluster DNS resolves it; the `kubernetes` Service points at the
//! server. Also: `skiff cleanup` removes exactly what skiff put on a host's
//! network (checked in a namespace of its own).
//!
//! Needs root and containerd; skips with the reason otherwise. Everything
//! (processes, containers, mounts, namespaces, bridge) goes on drop.

#![allow(clippy::unwrap_used)]

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use skiff_testkit::kubectl::Kubectl;
use skiff_testkit::netns::{Topology, kill_all_in};
use skiff_testkit::node::{local_images, skip_reason};
use skiff_testkit::server::skiff_binary;

/// How long a node, pod or rule may take to appear.
const T: Duration = Duration::from_secs(120);
const IMAGE: &str = "skiff.local/busybox:1";
const PORT: u16 = 6443;

/// `skiff server` in node 0's namespace of a one-node topology. Drop order:
/// the server (and every process of the namespace), then the namespace.
struct NetnsServer {
    child: Option<Child>,
    /// The data dir, removed on drop.
    dir: PathBuf,
    topology: Topology,
}

impl NetnsServer {
    fn start() -> NetnsServer {
        let topology = Topology::create(1).unwrap();
        let dir = std::env::temp_dir().join(format!("skiff-i5w-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let images = local_images().unwrap();
        let image_dir = dir.join("agent").join("images");
        std::fs::create_dir_all(&image_dir).unwrap();
        for tar in ["busybox.tar", "pause.tar"] {
            std::fs::copy(images.join(tar), image_dir.join(tar)).unwrap();
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .unwrap();
        let ip = topology.node_ip(0).to_string();
        // As the testkit's agents: the namespace's network, a mount namespace
        // of its own (runc needs the host's sysfs, which `ip netns exec` hides).
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", topology.netns(0)))
            .args(["unshare", "--mount", "--propagation", "slave"])
            .arg(skiff_binary().unwrap())
            .arg("server")
            .arg("--data-dir")
            .arg(&dir)
            .args(["--bind-address", &ip, "--https-port", &PORT.to_string()])
            .args(["--node-ip", &ip, "--node-name", "wired"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        NetnsServer {
            child: Some(child),
            dir,
            topology,
        }
    }

    fn kubectl(&self) -> Kubectl {
        Kubectl::new(self.dir.join("admin.kubeconfig"), self.dir.join("kubectl-cache"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let k = self.kubectl();
        wait_for("the server and node to be ready", || {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("skiff server exited with {status}");
            }
            let out = k
                .run(&[
                    "get",
                    "node",
                    "wired",
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                ])
                .ok()?;
            (out.success() && out.stdout.trim() == "True").then_some(())
        });
    }
}

impl Drop for NetnsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The server's containerd, shims and containers.
        kill_all_in(self.topology.netns(0));
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "---- skiff server log ----\n{}",
                lines[lines.len().saturating_sub(80)..].join("\n")
            );
        }
        if std::env::var_os("SKIFF_E2E_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn wait_for<V>(what: &str, mut f: impl FnMut() -> Option<V>) -> V {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(started.elapsed() < T, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `kubectl exec POD -- sh -c SCRIPT`: (exit code, stdout + stderr).
fn exec(k: &Kubectl, pod: &str, script: &str) -> (Option<i32>, String) {
    let out = k.run(&["exec", pod, "--", "sh", "-c", script]).unwrap();
    (out.code, format!("{}{}", out.stdout, out.stderr))
}

const MANIFEST: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: httpd
          image: skiff.local/busybox:1
          imagePullPolicy: IfNotPresent
          command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
          ports:
            - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
    - port: 80
      targetPort: 8080
---
apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: skiff.local/busybox:1
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", "exec sleep 3600"]
"#;

#[test]
fn a_server_in_its_own_netns_serves_services_by_cluster_ip_and_cluster_dns() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    assert!(MANIFEST.contains(IMAGE));
    let mut server = NetnsServer::start();
    server.wait_ready();
    let k = server.kubectl();
    let node_ip = server.topology.node_ip(0).to_string();

    // The API server is the kubernetes Service's endpoint, at its advertise address.
    let endpoint = wait_for("the kubernetes Service's endpoints", || {
        let out = k
            .run(&[
                "get",
                "endpoints",
                "kubernetes",
                "-o",
                "jsonpath={.subsets[0].addresses[0].ip}:{.subsets[0].ports[0].port}",
            ])
            .ok()?;
        out.success()
            .then(|| out.stdout.trim().to_string())
            .filter(|s| s != ":")
    });
    assert_eq!(endpoint, format!("{node_ip}:{PORT}"));
    // Cluster DNS runs as kube-dns at the fixed ClusterIP.
    let dns_ip = k.ok(&[
        "get",
        "service",
        "kube-dns",
        "-n",
        "kube-system",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    assert_eq!(dns_ip.trim(), "10.43.0.10");

    k.ok_stdin(&["apply", "-f", "-"], Some(MANIFEST));
    wait_for("web replicas and the client to run", || {
        let out = k
            .run(&[
                "get",
                "pods",
                "-o",
                "jsonpath={range .items[*]}{.status.phase}{\"\\n\"}{end}",
            ])
            .ok()?;
        let phases: Vec<&str> = out.stdout.lines().collect();
        (phases.len() == 3 && phases.iter().all(|p| *p == "Running")).then_some(())
    });
    let cluster_ip = k.ok(&["get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    let cluster_ip = cluster_ip.trim();

    // ClusterFirst pods point at cluster DNS.
    let (_, resolv) = exec(&k, "client", "cat /etc/resolv.conf");
    assert!(resolv.contains("nameserver 10.43.0.10"), "{resolv}");
    assert!(resolv.contains("default.svc.cluster.local"), "{resolv}");

    // The ClusterIP answers (the proxy's rules may take a moment after the endpoints).
    let pods = k.ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    let replicas: Vec<&str> = pods.split_whitespace().collect();
    let body = wait_for("the web Service to answer on its ClusterIP", || {
        let (code, out) = exec(&k, "client", &format!("wget -qO- -T 3 http://{cluster_ip}/"));
        (code == Some(0)).then(|| out.trim().to_string())
    });
    assert!(
        replicas.contains(&body.as_str()),
        "{body:?} is none of {replicas:?}"
    );

    // Cluster DNS resolves the Service's full name to its ClusterIP, queried by address.
    let (code, out) = exec(&k, "client", "nslookup web.default.svc.cluster.local 10.43.0.10");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(cluster_ip), "{out}");
    // ... and an unknown name in the cluster domain is NXDOMAIN, not a hang.
    let (code, out) = exec(&k, "client", "nslookup nope.default.svc.cluster.local 10.43.0.10");
    assert_ne!(code, Some(0), "{out}");

    // The proxy's and routes' tables live in the server's namespace, not the host's.
    let tables = Command::new("ip")
        .args(["netns", "exec", server.topology.netns(0), "nft", "list", "tables"])
        .output()
        .unwrap();
    let tables = String::from_utf8_lossy(&tables.stdout);
    assert!(tables.contains("table ip skiff\n"), "{tables}");
    assert!(tables.contains("table ip skiff-masq"), "{tables}");
}

/// A network namespace of the test's own, deleted on drop.
struct Netns(String);

impl Netns {
    fn create() -> Netns {
        let name = format!("skcl{}", std::process::id());
        run("ip", &["netns", "add", &name]);
        Netns(name)
    }

    fn exec(&self, program: &str, args: &[&str]) -> std::process::Output {
        let mut full = vec!["netns", "exec", &self.0, program];
        full.extend(args);
        Command::new("ip").args(full).output().unwrap()
    }

    fn ok(&self, program: &str, args: &[&str]) -> String {
        let out = self.exec(program, args);
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn skiff_cleanup_removes_exactly_what_skiff_put_on_the_network() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let ns = Netns::create();
    ns.ok("ip", &["link", "set", "lo", "up"]);
    ns.ok(
        "ip",
        &[
            "link",
            "add",
            "uplink",
            "type",
            "veth",
            "peer",
            "name",
            "uplink-peer",
        ],
    );
    ns.ok("ip", &["addr", "add", "192.0.2.1/24", "dev", "uplink"]);
    ns.ok("ip", &["link", "set", "uplink-peer", "up"]);
    ns.ok("ip", &["link", "set", "uplink", "up"]);
    // What skiff makes: its two tables, a route to another node's podCIDR, the pod bridge.
    let script = "add table ip skiff\nadd chain ip skiff services\n\
                  add table ip skiff-masq\nadd chain ip skiff-masq postrouting { type nat hook postrouting priority srcnat; }\n\
                  add table inet theirs\nadd chain inet theirs input\n";
    let mut nft = Command::new("ip")
        .args(["netns", "exec", &ns.0, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    nft.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    assert!(nft.wait().unwrap().success());
    ns.ok(
        "ip",
        &["route", "add", "10.42.7.0/24", "via", "192.0.2.7", "proto", "250"],
    );
    ns.ok("ip", &["route", "add", "10.99.0.0/24", "via", "192.0.2.9"]);
    ns.ok("ip", &["link", "add", "skiff0", "type", "bridge"]);
    ns.ok("ip", &["link", "add", "br-theirs", "type", "bridge"]);

    let skiff: PathBuf = skiff_binary().unwrap();
    let skiff = skiff.to_str().unwrap();
    let out = ns.ok(skiff, &["cleanup"]);
    for removed in [
        "table ip skiff\n",
        "table ip skiff-masq",
        "route 10.42.7.0/24",
        "bridge skiff0",
    ] {
        assert!(out.contains(removed), "{removed:?} not reported in:\n{out}");
    }
    let tables = ns.ok("nft", &["list", "tables"]);
    assert_eq!(tables.trim(), "table inet theirs", "{tables}");
    let routes = ns.ok("ip", &["-4", "route", "show"]);
    assert!(!routes.contains("10.42.7.0"), "{routes}");
    assert!(routes.contains("10.99.0.0/24 via 192.0.2.9"), "{routes}");
    let links = ns.ok("ip", &["-brief", "link", "show"]);
    assert!(!links.contains("skiff0"), "{links}");
    assert!(links.contains("br-theirs") && links.contains("uplink"), "{links}");

    // Idempotent: nothing left, and that is no error.
    let again = ns.ok(skiff, &["cleanup"]);
    assert!(again.contains("nothing of skiff's"), "{again}");
}
