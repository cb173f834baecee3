//! Shared set-up of the issue-4 end-to-end tests: a `skiff server` with its
//! embedded agent driving a containerd of the test's own (skiff-testkit's
//! `ServerOptions::with_agent`), shared by the tests of one file while any of
//! them runs, and helpers to create namespaces and pods and wait on them.
//! Every test skips, with the reason printed, where containers cannot run.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::Value;
use skiff_testkit::kubectl::Kubectl;
use skiff_testkit::node::skip_reason;
use skiff_testkit::server::{ServerOptions, SkiffServer};

/// Polling shared by every e2e test.
pub use skiff_testkit::poll::wait_for;

/// How long a pod may take to reach a state.
pub const T: Duration = Duration::from_secs(60);

/// The image every test pod uses (built locally by scripts/build-images.sh).
pub const IMAGE: &str = "skiff.local/busybox:1";

/// A started cluster, or `None` (skip) where containers cannot run.
pub fn start_own() -> Option<SkiffServer> {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIPPED: {reason}");
        return None;
    }
    let server = SkiffServer::start(ServerOptions::with_agent()).unwrap();
    wait_node_ready(&server.kubectl());
    Some(server)
}

/// The cluster shared by the tests of this binary that run at the same
/// time; torn down when the last of them ends.
pub fn shared() -> Option<Arc<SkiffServer>> {
    static SHARED: Mutex<Weak<SkiffServer>> = Mutex::new(Weak::new());
    let mut guard = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = guard.upgrade() {
        return Some(server);
    }
    let server = Arc::new(start_own()?);
    *guard = Arc::downgrade(&server);
    Some(server)
}

/// Waits until the agent's Node is Ready.
pub fn wait_node_ready(k: &Kubectl) {
    wait_for(T, "the node to be Ready", || {
        let out = k.run(&["get", "nodes", "--no-headers"]).ok()?;
        out.stdout
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("Ready"))
            .then_some(())
    });
}

/// Creates namespace `ns` and waits for its default ServiceAccount.
pub fn namespace(k: &Kubectl, ns: &str) {
    k.ok(&["create", "namespace", ns]);
    wait_for(T, "the default service account", || {
        k.run(&["get", "serviceaccount", "default", "-n", ns])
            .ok()?
            .success()
            .then_some(())
    });
}

/// `kubectl apply -f -` of `yaml` in `ns`.
pub fn apply(k: &Kubectl, ns: &str, yaml: &str) {
    k.ok_stdin(&["apply", "-n", ns, "-f", "-"], Some(yaml));
}

/// A pod's JSON, if it exists.
pub fn pod(k: &Kubectl, ns: &str, name: &str) -> Option<Value> {
    let out = k.run(&["get", "pod", name, "-n", ns, "-o", "json"]).ok()?;
    if !out.success() {
        return None;
    }
    serde_json::from_str(&out.stdout).ok()
}

/// Waits until pod `name` satisfies `want`; returns its JSON.
pub fn wait_pod(k: &Kubectl, ns: &str, name: &str, what: &str, want: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let start = Instant::now();
    loop {
        if let Some(p) = pod(k, ns, name) {
            if want(&p) {
                return p;
            }
            last = p;
        }
        assert!(
            start.elapsed() < T,
            "timed out after {T:?} waiting for pod {ns}/{name} to be {what}; last status: {}",
            serde_json::to_string_pretty(&last["status"]).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits until the pod's phase is `phase`.
pub fn wait_phase(k: &Kubectl, ns: &str, name: &str, phase: &str) -> Value {
    wait_pod(k, ns, name, phase, |p| p["status"]["phase"] == phase)
}

/// Waits until the pod ends and asserts it Succeeded (its logs in the message if not).
pub fn wait_succeeded(k: &Kubectl, ns: &str, name: &str) -> Value {
    let p = wait_pod(k, ns, name, "Succeeded or Failed", |p| {
        p["status"]["phase"] == "Succeeded" || p["status"]["phase"] == "Failed"
    });
    if p["status"]["phase"] != "Succeeded" {
        let logs = k.run(&["logs", name, "-n", ns]).map(|o| o.stdout + &o.stderr);
        panic!("pod {ns}/{name} failed: {}\nlogs: {logs:?}", p["status"]);
    }
    p
}

/// The Ready condition's status ("True"/"False"), if set.
pub fn ready_condition(pod: &Value) -> Option<String> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .and_then(|c| c["status"].as_str())
        .map(str::to_string)
}

/// The status of container `name`.
pub fn container_status<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    pod["status"]["containerStatuses"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
}

/// restartCount of container `name` (0 when unknown).
pub fn restarts(pod: &Value, name: &str) -> u64 {
    container_status(pod, name)
        .and_then(|c| c["restartCount"].as_u64())
        .unwrap_or(0)
}

/// The runtime's id of container `name` (`containerd://ID` without the scheme).
pub fn container_id(pod: &Value, name: &str) -> Option<String> {
    container_status(pod, name)?["containerID"]
        .as_str()?
        .strip_prefix("containerd://")
        .map(str::to_string)
}

/// A one-container pod running `script` with `sh -c`.
pub fn sh_pod(name: &str, restart_policy: &str, script: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: {restart_policy}
  terminationGracePeriodSeconds: 2
  containers:
    - name: main
      image: {IMAGE}
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", {script:?}]
"#
    )
}
