//! Issue 5 e2e "Must show", first bullet: `skiff server` plus two `skiff
//! agent`s, each in its own network namespace with its own containerd, all
//! started and torn down by the test; then, with real kubectl, a 3-replica
//! busybox httpd Deployment spread over both nodes behind Service `web`:
//! by name from a pod on each node, over NodePort from the host, failing
//! fast at zero replicas, skipping an unready endpoint, and surviving the
//! loss of a node.

#![allow(clippy::unwrap_used)]

mod issue5_common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use issue5_common::*;
use serde_json::Value;
use skiff_testkit::kubectl::Kubectl;

const NS: &str = "i5-web";
const IMAGE: &str = "skiff.local/busybox:1";

#[test]
fn a_service_spreads_over_replicas_on_two_nodes_and_follows_them() {
    let Some(mut cluster) = MultiNode::start(2) else {
        return;
    };
    let k = cluster.kubectl();
    step("namespace, clients, Deployment and Service");
    k.ok(&["create", "namespace", NS]);
    wait_for(T, "the default service account", || {
        k.run(&["get", "serviceaccount", "default", "-n", NS])
            .ok()?
            .success()
            .then_some(())
    });
    for node in 0..2 {
        apply(&k, &client_pod(node));
    }
    apply(&k, &web_deployment(3));
    apply(&k, WEB_SERVICE);
    let web = wait_web_ready(&k, 3);
    let nodes: BTreeSet<&str> = web.values().map(String::as_str).collect();
    assert_eq!(
        nodes.len(),
        2,
        "the replicas are not spread over both nodes: {web:?}"
    );
    for node in 0..2 {
        wait_running(&k, &format!("client-{node}"));
    }
    let replicas: BTreeSet<String> = web.keys().cloned().collect();

    step("pod to pod across nodes by pod IP");
    for node in 0..2 {
        let client = format!("client-{node}");
        for (pod, pod_node) in &web {
            let ip = pod_ip(&k, pod);
            let (code, out, err) = exec(&k, NS, &client, &format!("wget -qO- -T 5 http://{ip}"));
            assert_eq!(
                (code, out.trim()),
                (Some(0), pod.as_str()),
                "{client} on node-{node} -> {pod} on {pod_node} ({ip}): {err}"
            );
        }
    }

    step("the Service by short and full name from a pod on each node");
    for node in 0..2 {
        let client = format!("client-{node}");
        for url in ["http://web", &format!("http://web.{NS}.svc.cluster.local")] {
            until_answers(&k, NS, &client, url, &replicas);
        }
    }

    step("the NodePort on each node's address, from the host");
    let node_port = node_port(&k);
    for node in 0..2 {
        let ip = cluster.node_ip(node);
        let mut got = BTreeMap::new();
        wait_for(T, &format!("{ip}:{node_port} to answer {N} times"), || {
            got = answers_from_host(ip, node_port, N);
            (!got.contains_key("FAIL")).then_some(())
        });
        assert!(
            got.keys().all(|r| replicas.contains(r)),
            "{ip}:{node_port} {N} times: {got:?}"
        );
    }

    step("zero replicas: connections are refused at once");
    k.ok(&["scale", "deployment", "web", "-n", NS, "--replicas=0"]);
    wait_for(T, "the web pods to be gone", || {
        web_pods(&k).is_empty().then_some(())
    });
    for node in 0..2 {
        let client = format!("client-{node}");
        let (elapsed, out) = wait_for(T, "the Service to refuse connections", || {
            let (code, out, err) = exec(&k, NS, &client, "time wget -qO- -T 10 http://web 2>&1");
            let all = format!("{out}{err}");
            (code != Some(0) && all.contains("refused")).then(|| (busybox_real_time(&all), all))
        });
        let elapsed = elapsed.unwrap_or_else(|| panic!("no time in {out:?}"));
        assert!(
            elapsed < Duration::from_millis(500),
            "took {elapsed:?} to fail: {out}"
        );
    }

    step("back to three replicas: the Service answers again");
    k.ok(&["scale", "deployment", "web", "-n", NS, "--replicas=3"]);
    let web = wait_web_ready(&k, 3);
    let replicas: BTreeSet<String> = web.keys().cloned().collect();
    for node in 0..2 {
        let client = format!("client-{node}");
        until_answers(&k, NS, &client, "http://web", &replicas);
    }

    step("an endpoint whose readiness probe fails gets no traffic");
    let unready = web.keys().next().cloned().unwrap();
    exec(&k, NS, &unready, "rm /tmp/ready");
    wait_for(T, "the pod to be unready", || {
        (!pod_ready(&k, &unready)).then_some(())
    });
    for node in 0..2 {
        let client = format!("client-{node}");
        let ready: BTreeSet<String> = replicas.iter().filter(|r| **r != unready).cloned().collect();
        until_answers(&k, NS, &client, "http://web", &ready);
    }
    exec(&k, NS, &unready, "touch /tmp/ready");
    wait_web_ready(&k, 3);

    step("node-1 dies: its pods move to node-0 and the Service keeps answering");
    cluster.agents[1].kill_with_containerd();
    let web = wait_for(T, "three ready replicas, all on node-0", || {
        let web = web_pods(&k);
        let ready: BTreeMap<String, String> = web
            .into_iter()
            .filter(|(pod, node)| node == "node-0" && pod_ready(&k, pod))
            .collect();
        (ready.len() == 3).then_some(ready)
    });
    assert_eq!(
        nodes_ready(&k).get("node-1"),
        Some(&false),
        "node-1 is still Ready"
    );
    let survivors: BTreeSet<String> = web.keys().cloned().collect();
    for url in ["http://web", &format!("http://web.{NS}.svc.cluster.local")] {
        until_answers(&k, NS, "client-0", url, &survivors);
    }
    let got = answers_from_host(cluster.node_ip(0), node_port, N);
    assert!(
        got.keys().all(|r| survivors.contains(r)),
        "NodePort on node-0: {got:?}"
    );
}

fn step(what: &str) {
    eprintln!("[{}] {what}", now());
}

fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    format!("{:.1}", secs % 86_400.0)
}

fn apply(k: &Kubectl, yaml: &str) {
    k.ok_stdin(&["apply", "-n", NS, "-f", "-"], Some(yaml));
}

/// Web pod name → node, for the pods that exist and are not terminating.
fn web_pods(k: &Kubectl) -> BTreeMap<String, String> {
    let out = k.ok(&["get", "pods", "-n", NS, "-l", "app=web", "-o", "json"]);
    let list: Value = serde_json::from_str(&out).unwrap();
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            let name = p["metadata"]["name"].as_str().unwrap_or_default().to_string();
            (
                name,
                p["spec"]["nodeName"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Waits until `n` web pods are Ready; returns pod → node.
fn wait_web_ready(k: &Kubectl, n: usize) -> BTreeMap<String, String> {
    wait_for(T, &format!("{n} ready web replicas"), || {
        let web = web_pods(k);
        (web.len() == n && web.keys().all(|p| pod_ready(k, p))).then_some(web)
    })
}

fn pod_json(k: &Kubectl, name: &str) -> Option<Value> {
    let out = k.run(&["get", "pod", name, "-n", NS, "-o", "json"]).ok()?;
    serde_json::from_str(&out.stdout).ok()
}

fn pod_ready(k: &Kubectl, name: &str) -> bool {
    pod_json(k, name).is_some_and(|p| {
        p["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
    })
}

fn wait_running(k: &Kubectl, name: &str) {
    wait_for(T, &format!("{name} to run"), || {
        (pod_json(k, name)?["status"]["phase"] == "Running").then_some(())
    });
}

fn pod_ip(k: &Kubectl, name: &str) -> String {
    pod_json(k, name).unwrap()["status"]["podIP"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn node_port(k: &Kubectl) -> u16 {
    let out = k.ok(&[
        "get",
        "service",
        "web",
        "-n",
        NS,
        "-o",
        "jsonpath={.spec.ports[0].nodePort}",
    ]);
    out.trim().parse().unwrap()
}

/// The `real` time busybox's `time` printed (`real\t0m 0.01s`).
fn busybox_real_time(output: &str) -> Option<Duration> {
    let line = output.lines().find(|l| l.trim_start().starts_with("real"))?;
    let value = line.trim_start().strip_prefix("real")?.trim();
    let (minutes, seconds) = value.split_once('m')?;
    let minutes: f64 = minutes.trim().parse().ok()?;
    let seconds: f64 = seconds.trim().trim_end_matches('s').parse().ok()?;
    Some(Duration::from_secs_f64(minutes * 60.0 + seconds))
}

#[test]
fn busybox_time_output_parses() {
    assert_eq!(
        busybox_real_time("wget: refused\nreal\t0m 0.01s\nuser\t0m 0.00s\n"),
        Some(Duration::from_millis(10))
    );
    assert_eq!(
        busybox_real_time("real\t1m 2.50s"),
        Some(Duration::from_millis(62_500))
    );
    assert_eq!(busybox_real_time("nothing"), None);
}

/// A client pod pinned to node `node` that sleeps.
fn client_pod(node: usize) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: client-{node}
spec:
  nodeName: node-{node}
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: {IMAGE}
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", "exec sleep 3600"]
"#
    )
}

/// The web Deployment: busybox httpd answering its host name, spread over
/// the nodes, ready while /tmp/ready exists.
fn web_deployment(replicas: u32) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: DoNotSchedule
          nodeTaintsPolicy: Honor
          labelSelector:
            matchLabels: {{app: web}}
      containers:
        - name: httpd
          image: {IMAGE}
          imagePullPolicy: IfNotPresent
          command:
            - sh
            - -c
            - mkdir -p /www && hostname > /www/index.html && touch /tmp/ready && exec httpd -f -p 80 -h /www
          ports:
            - containerPort: 80
          readinessProbe:
            exec:
              command: ["cat", "/tmp/ready"]
            periodSeconds: 1
            failureThreshold: 1
"#
    )
}

const WEB_SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector:
    app: web
  ports:
    - port: 80
      targetPort: 80
"#;
