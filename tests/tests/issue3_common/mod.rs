//! Shared set-up of the issue-3 end-to-end tests: a `skiff server` plus a
//! `skiff simulate-nodes` process (killed on drop), and polling helpers.
//! The simulators join the server's process group, so that the server's
//! lifeline takes them down too if the test process is killed.

#![allow(dead_code, clippy::unwrap_used)]

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use skiff_testkit::kubectl::Kubectl;
use skiff_testkit::server::{ServerOptions, SkiffServer, skiff_binary};

/// Polling shared by every e2e test.
pub use skiff_testkit::poll::wait_for;

/// A server with simulated nodes.
pub struct SimCluster {
    /// The server.
    pub server: SkiffServer,
    sims: Vec<Child>,
    /// The control file of the first simulate-nodes process.
    pub control_file: PathBuf,
}

impl SimCluster {
    /// Starts a server and `count` simulated nodes `sim-0..` with `extra` flags.
    pub fn start(count: usize, extra: &[&str]) -> SimCluster {
        let server = SkiffServer::start(ServerOptions::default()).unwrap();
        let control_file = server.data_dir().join("sim-control");
        let mut cluster = SimCluster {
            server,
            sims: Vec::new(),
            control_file,
        };
        let ctl = cluster.control_file.to_string_lossy().to_string();
        let count_s = count.to_string();
        let mut args = vec!["--count", &count_s, "--control-file", &ctl, "--job-runtime", "1s"];
        args.extend_from_slice(extra);
        cluster.add_nodes(&args);
        cluster.wait_ready_nodes(count);
        cluster
    }

    /// Starts another `skiff simulate-nodes` with these flags.
    pub fn add_nodes(&mut self, args: &[&str]) {
        let log = std::fs::File::create(
            self.server
                .data_dir()
                .join(format!("sim-{}.log", self.sims.len())),
        )
        .unwrap();
        let child = Command::new(skiff_binary().unwrap())
            .arg("simulate-nodes")
            .arg("--kubeconfig")
            .arg(self.server.kubeconfig())
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(self.server.pid().and_then(|p| i32::try_from(p).ok()).unwrap_or(0))
            .spawn()
            .unwrap();
        self.sims.push(child);
    }

    /// Kubectl as admin.
    pub fn kubectl(&self) -> Kubectl {
        self.server.kubectl()
    }

    /// Waits until `n` nodes report Ready.
    pub fn wait_ready_nodes(&self, n: usize) {
        let k = self.kubectl();
        wait_for(Duration::from_secs(30), &format!("{n} Ready nodes"), || {
            let out = k.run(&["get", "nodes", "--no-headers"]).ok()?;
            (out.stdout
                .lines()
                .filter(|l| l.split_whitespace().nth(1) == Some("Ready"))
                .count()
                >= n)
                .then_some(())
        });
    }

    /// Stops the heartbeats of `nodes` through the control file.
    pub fn fail_nodes(&self, nodes: &[&str]) {
        std::fs::write(&self.control_file, nodes.join("\n")).unwrap();
    }
}

impl Drop for SimCluster {
    fn drop(&mut self) {
        for child in &mut self.sims {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Pods matching `selector` in `ns` as JSON items.
pub fn pods(k: &Kubectl, ns: &str, selector: &str) -> Vec<serde_json::Value> {
    let out = k.ok(&["get", "pods", "-n", ns, "-l", selector, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["items"].as_array().cloned().unwrap_or_default()
}

/// Whether a pod JSON is Ready=True and not terminating.
pub fn is_ready(pod: &serde_json::Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && pod["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// Waits until exactly `n` pods matching `selector` are Ready (and no others exist).
pub fn wait_ready_pods(
    k: &Kubectl,
    ns: &str,
    selector: &str,
    n: usize,
    timeout: Duration,
) -> Vec<serde_json::Value> {
    wait_for(timeout, &format!("{n} ready pods {selector}"), || {
        let p = pods(k, ns, selector);
        (p.len() == n && p.iter().all(is_ready)).then_some(p)
    })
}
