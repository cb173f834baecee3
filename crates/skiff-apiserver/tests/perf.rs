//! Rough performance figures (ignored by default; run with
//! `cargo test --release -p skiff-apiserver --test perf -- --ignored --nocapture`):
//! LIST of 10,000 pods from the watch cache, and create throughput at
//! concurrency 32 through the kube-rs client, both over the in-memory store.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http::Request;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;
use skiff_store::Store;
use tower::ServiceExt;

fn pod(i: usize) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod-{i:05}"), "namespace": "default", "uid": format!("uid-{i}"),
            "labels": {"app": "bench", "shard": (i % 10).to_string()}, "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
            "resources": {}, "terminationMessagePath": "/dev/termination-log", "imagePullPolicy": "IfNotPresent"}],
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "nodeName": "node-1", "schedulerName": "default-scheduler"},
        "status": {"phase": "Running", "podIP": "10.42.0.5", "qosClass": "BestEffort"},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn list_10k_pods_from_cache() {
    let f = common::start().await;
    let mut last = 0;
    for i in 0..10_000 {
        last = f
            .store
            .create(
                &format!("/registry/pods/default/pod-{i:05}"),
                Bytes::from(pod(i).to_string()),
            )
            .await
            .unwrap();
    }
    assert!(f.server.cache.wait_for(last, Duration::from_secs(30)).await);
    let rss = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .unwrap_or_default()
        .to_string();
    println!("after caching 10k pods (store in the same process): {rss}");
    let router = f.server.router();
    let mut times = Vec::new();
    for _ in 0..10 {
        let start = Instant::now();
        let resp = router
            .clone()
            .oneshot(
                Request::get("/api/v1/pods")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        times.push(start.elapsed());
        assert!(body.len() > 1_000_000);
    }
    times.sort();
    println!(
        "LIST 10k pods: min {:?} median {:?} max {:?}",
        times[0], times[5], times[9]
    );
    let start = Instant::now();
    let req = Request::get("/api/v1/pods?labelSelector=shard%3D3")
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let _ = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    println!("LIST 10k pods with a label selector: {:?}", start.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn create_throughput_at_concurrency_32() {
    let f = common::start().await;
    creates(kube::Client::clone(&f.client), "memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn create_throughput_at_concurrency_32_on_sqlite() {
    let f = common::start_sqlite().await;
    creates(kube::Client::clone(&f.client), "sqlite").await;
}

async fn creates(client: kube::Client, backend: &str) {
    let api: Api<Pod> = Api::default_namespaced(client);
    let n = 4000;
    let start = Instant::now();
    let results: Vec<Duration> = futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let mut p: Pod = serde_json::from_value(pod(i)).unwrap();
                p.metadata.uid = None;
                p.metadata.creation_timestamp = None;
                let t = Instant::now();
                api.create(&PostParams::default(), &p).await.unwrap();
                t.elapsed()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let total = start.elapsed();
    let mut lat = results;
    lat.sort();
    println!(
        "{backend}: {n} creates at c=32: {:.0}/s, p50 {:?}, p99 {:?}",
        n as f64 / total.as_secs_f64(),
        lat[lat.len() / 2],
        lat[lat.len() * 99 / 100]
    );
}
