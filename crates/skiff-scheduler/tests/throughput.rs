//! Scheduling throughput against a real `skiff server` (ignored by default;
//! run with `cargo test -p skiff-scheduler --test throughput -- --ignored
//! --nocapture`). `SKIFF_BENCH_NODES` (default 1000) nodes and
//! `SKIFF_BENCH_PODS` (default 10000) pending pods are created through the
//! API, then the scheduler starts; it reports pods bound per second from
//! its start to the last binding and how evenly the pods spread.
//! `SKIFF_BENCH_EVENTS=0` turns off the per-pod `Scheduled` events.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use skiff_scheduler::SchedulerConfig;
use skiff_testkit::server::{ServerOptions, SkiffServer};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn throughput() {
    let n_nodes = env("SKIFF_BENCH_NODES", 1000);
    let n_pods = env("SKIFF_BENCH_PODS", 10000);
    let server = SkiffServer::start(ServerOptions::api_only()).unwrap();
    let kc = kube::config::Kubeconfig::read_from(server.kubeconfig()).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(cfg).unwrap();
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    let t = Instant::now();
    futures::stream::iter(0..n_nodes)
        .for_each_concurrent(32, |i| {
            let nodes = nodes.clone();
            async move {
                let name = format!("node-{i:05}");
                let alloc = json!({"cpu": "32", "memory": "64Gi", "pods": "110"});
                let node: Node = serde_json::from_value(json!({
                    "apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
                    "status": {"allocatable": alloc, "capacity": alloc}
                }))
                .unwrap();
                nodes.create(&PostParams::default(), &node).await.unwrap();
                let status = json!({"status": {"allocatable": alloc, "capacity": alloc}});
                nodes
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
                    .await
                    .unwrap();
            }
        })
        .await;
    eprintln!("{n_nodes} nodes created in {:.1}s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    futures::stream::iter(0..n_pods)
        .for_each_concurrent(64, |i| {
            let pods = pods.clone();
            async move {
                let pod: Pod = serde_json::from_value(json!({
                    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("pod-{i:06}")},
                    "spec": {"containers": [{"name": "c", "image": "busybox",
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}
                }))
                .unwrap();
                pods.create(&PostParams::default(), &pod).await.unwrap();
            }
        })
        .await;
    eprintln!("{n_pods} pods created in {:.1}s", t.elapsed().as_secs_f64());

    let config = SchedulerConfig {
        record_scheduled_events: env("SKIFF_BENCH_EVENTS", 1) != 0,
        ..SchedulerConfig::default()
    };
    let start = Instant::now();
    let scheduler = tokio::spawn(skiff_scheduler::run(client.clone(), config));
    loop {
        let unbound = pods
            .list(&ListParams::default().fields("spec.nodeName=").limit(1))
            .await
            .unwrap();
        if unbound.items.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "not all pods bound in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = start.elapsed().as_secs_f64();
    eprintln!(
        "{n_pods} pods bound on {n_nodes} nodes in {took:.2}s: {:.0} pods/s",
        n_pods as f64 / took
    );
    let list = pods.list(&ListParams::default()).await.unwrap();
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for p in &list.items {
        if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
            *per_node.entry(n).or_default() += 1;
        }
    }
    let min = per_node.values().min().copied().unwrap_or(0);
    let max = per_node.values().max().copied().unwrap_or(0);
    eprintln!(
        "pods per node: min {min}, max {max}, nodes used {}",
        per_node.len()
    );
    scheduler.abort();
}
