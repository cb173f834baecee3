//! Issue 3 e2e, policy: resource quota (admission and `kubectl describe
//! quota`), pod garbage collection of terminated pods, and
//! PodDisruptionBudgets honoured by the eviction API and `kubectl drain`.
//! Real kubectl against `skiff server` with `skiff simulate-nodes`.

#![allow(clippy::unwrap_used)]

mod issue3_common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use issue3_common::{is_ready, pods, wait_for, wait_ready_pods};
use skiff_testkit::kubectl::Kubectl;
use skiff_testkit::server::{ServerOptions, SkiffServer, skiff_binary};

const T: Duration = Duration::from_secs(60);

/// A server started with extra flags, plus simulated nodes `sim-0..`.
struct Cluster {
    server: SkiffServer,
    sim: Child,
}

impl Cluster {
    fn start(nodes: usize, server_flags: &[&str]) -> Cluster {
        let mut opts = ServerOptions::default();
        opts.extra_args.extend(server_flags.iter().map(|s| s.to_string()));
        let server = SkiffServer::start(opts).unwrap();
        let log = std::fs::File::create(server.data_dir().join("sim.log")).unwrap();
        let sim = Command::new(skiff_binary().unwrap())
            .arg("simulate-nodes")
            .arg("--kubeconfig")
            .arg(server.kubeconfig())
            .args(["--count", &nodes.to_string(), "--job-runtime", "1s"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let c = Cluster { server, sim };
        let k = c.kubectl();
        wait_for(Duration::from_secs(30), "simulated nodes Ready", || {
            let out = k.run(&["get", "nodes", "--no-headers"]).ok()?;
            let ready = out
                .stdout
                .lines()
                .filter(|l| l.split_whitespace().nth(1) == Some("Ready"))
                .count();
            (ready >= nodes).then_some(())
        });
        c
    }

    fn kubectl(&self) -> Kubectl {
        self.server.kubectl()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.sim.kill();
        let _ = self.sim.wait();
    }
}

fn json(k: &Kubectl, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&k.ok(args)).unwrap()
}

/// A pod manifest whose one container `c` requests `cpu`.
fn pod_with_cpu(name: &str, cpu: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers: [{{name: c, image: nginx, resources: {{requests: {{cpu: {cpu}}}}}}}]\n"
    )
}

/// Whether `kubectl describe` output has a row with exactly these words.
fn has_row(out: &str, row: &[&str]) -> bool {
    out.lines().any(|l| l.split_whitespace().eq(row.iter().copied()))
}

#[test]
fn quota_refuses_the_pod_over_the_limit_and_describe_shows_usage() {
    let c = Cluster::start(2, &[]);
    let k = c.kubectl();
    k.ok(&["create", "quota", "q1", "--hard=pods=2,requests.cpu=1"]);
    k.ok_stdin(&["apply", "-f", "-"], Some(&pod_with_cpu("p1", "250m")));
    k.ok_stdin(&["apply", "-f", "-"], Some(&pod_with_cpu("p2", "250m")));
    let refused = k.fails_stdin(&["apply", "-f", "-"], Some(&pod_with_cpu("p3", "250m")));
    assert!(
        refused.stderr.contains(
            "pods \"p3\" is forbidden: exceeded quota: q1, requested: pods=1, used: pods=2, limited: pods=2"
        ),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("Forbidden"), "{}", refused.stderr);
    wait_for(T, "describe quota shows usage", || {
        let out = k.ok(&["describe", "quota", "q1"]);
        (has_row(&out, &["pods", "2", "2"]) && has_row(&out, &["requests.cpu", "500m", "1"])).then_some(())
    });

    // A quota on cpu needs every container to say how much it uses.
    k.ok(&["create", "namespace", "cpu"]);
    k.ok(&["create", "quota", "q2", "-n", "cpu", "--hard=limits.cpu=1"]);
    let refused = k.fails(&["run", "nolimit", "-n", "cpu", "--image=nginx"]);
    assert!(
        refused.stderr.contains(
            "pods \"nolimit\" is forbidden: failed quota: q2: must specify limits.cpu for: nolimit"
        ),
        "{}",
        refused.stderr
    );

    // Concurrent creates cannot both take the last unit.
    k.ok(&["create", "namespace", "race"]);
    k.ok(&["create", "quota", "one", "-n", "race", "--hard=pods=1"]);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let k = k.clone();
            std::thread::spawn(move || {
                k.run(&["run", &format!("r{i}"), "-n", "race", "--image=nginx"])
                    .unwrap()
                    .success()
            })
        })
        .collect();
    let created = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert_eq!(
        created, 1,
        "exactly one of four concurrent creates fits a quota of one pod"
    );
    assert_eq!(pods(&k, "race", "run").len(), 1);
}

#[test]
fn terminated_pods_over_the_threshold_are_collected_oldest_first() {
    let c = Cluster::start(1, &["--terminated-pod-gc-threshold=2"]);
    let k = c.kubectl();
    for i in 0..5 {
        k.ok(&[
            "run",
            &format!("done{i}"),
            "--image=busybox",
            "--restart=Never",
            "--",
            "true",
        ]);
        // Distinct creation seconds make "oldest first" observable.
        std::thread::sleep(Duration::from_millis(1100));
    }
    let left = wait_for(T, "terminated pods collected down to 2", || {
        let p = pods(&k, "default", "run");
        let all_done = p.iter().all(|p| p["status"]["phase"] == "Succeeded");
        (p.len() == 2 && all_done).then_some(p)
    });
    let mut names: Vec<&str> = left
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["done3", "done4"]);
    // And it stays at the threshold.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(pods(&k, "default", "run").len(), 2);
}

const EVICTION: &str = r#"{"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "NAME"}}"#;

fn pdb_status(k: &Kubectl) -> serde_json::Value {
    json(k, &["get", "pdb", "web", "-o", "json"])["status"].clone()
}

#[test]
fn a_budget_blocks_eviction_and_drain_until_it_allows_disruptions() {
    let c = Cluster::start(2, &[]);
    let k = c.kubectl();
    k.ok(&["create", "deployment", "web", "--image=nginx", "--replicas=3"]);
    let ready = wait_ready_pods(&k, "default", "app=web", 3, T);
    k.ok(&["create", "pdb", "web", "--selector=app=web", "--min-available=3"]);
    wait_for(T, "budget status computed", || {
        let s = pdb_status(&k);
        (s["currentHealthy"] == 3
            && s["desiredHealthy"] == 3
            && s["disruptionsAllowed"] == 0
            && s["expectedPods"] == 3)
            .then_some(())
    });
    let s = pdb_status(&k);
    let cond = &s["conditions"][0];
    assert_eq!(
        (&cond["type"], &cond["status"], &cond["reason"]),
        (
            &serde_json::json!("DisruptionAllowed"),
            &serde_json::json!("False"),
            &serde_json::json!("InsufficientPods")
        )
    );

    // The eviction API refuses with 429 and upstream's message.
    let victim = ready[0]["metadata"]["name"].as_str().unwrap().to_string();
    let node = ready[0]["spec"]["nodeName"].as_str().unwrap().to_string();
    let body = c.server.data_dir().join("eviction.json");
    std::fs::write(&body, EVICTION.replace("NAME", &victim)).unwrap();
    let path = format!("/api/v1/namespaces/default/pods/{victim}/eviction");
    let refused = k.fails(&["create", "--raw", &path, "-f", body.to_str().unwrap()]);
    assert!(refused.stderr.contains("TooManyRequests"), "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{}",
        refused.stderr
    );

    // kubectl drain keeps retrying the eviction and gives up at its timeout.
    let blocked = k.fails(&[
        "drain",
        &node,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=8s",
    ]);
    let out = format!("{}{}", blocked.stdout, blocked.stderr);
    assert!(out.contains("disruption budget"), "{out}");
    assert_eq!(
        pods(&k, "default", "app=web")
            .iter()
            .filter(|p| is_ready(p))
            .count(),
        3
    );

    // Once the budget allows one disruption, drain evicts pod by pod.
    k.ok(&[
        "patch",
        "pdb",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"minAvailable":2}}"#,
    ]);
    wait_for(T, "one disruption allowed", || {
        (pdb_status(&k)["disruptionsAllowed"] == 1).then_some(())
    });
    k.ok(&[
        "drain",
        &node,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=90s",
    ]);
    let after = wait_ready_pods(&k, "default", "app=web", 3, T);
    assert!(after.iter().all(|p| p["spec"]["nodeName"] != node.as_str()));
}
