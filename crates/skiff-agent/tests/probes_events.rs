//! Probe events through a real API server: a failing readiness probe
//! writes kubelet's `Unhealthy` Warning event about the pod's container,
//! and repeats of one message are counted on one Event (`count`), as
//! `kubectl describe` shows "(x3 over 2s)".

#![allow(clippy::unwrap_used)]

#[path = "probes_fixture/mod.rs"]
mod fixture;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, ObjectReference, Pod};
use kube::api::{Api, ListParams};
use skiff_agent::probes::{EventSink, ProbeManager};
use skiff_testkit::server::{ServerOptions, SkiffServer};

async fn client(server: &SkiffServer) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(server.kubeconfig()).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

async fn events(client: &kube::Client) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_failures_become_counted_unhealthy_events() {
    let server = tokio::task::spawn_blocking(|| SkiffServer::start(ServerOptions::api_only()))
        .await
        .unwrap()
        .unwrap();
    let client = client(&server).await;

    // The sink alone: a repeat is counted, another message is a new event.
    let sink = EventSink::new(client.clone(), "node-x");
    let about = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some("web".into()),
        namespace: Some("default".into()),
        uid: Some("uid-web".into()),
        field_path: Some("spec.containers{app}".into()),
        ..ObjectReference::default()
    };
    sink.warning(&about, "Unhealthy", "Readiness probe failed: boom")
        .await;
    sink.warning(&about, "Unhealthy", "Readiness probe failed: boom")
        .await;
    sink.warning(&about, "Unhealthy", "Liveness probe failed: other")
        .await;
    let list = events(&client).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let boom = list
        .iter()
        .find(|e| e.message.as_deref() == Some("Readiness probe failed: boom"))
        .unwrap();
    assert_eq!(boom.count, Some(2));
    assert_eq!(boom.type_.as_deref(), Some("Warning"));
    assert_eq!(boom.reason.as_deref(), Some("Unhealthy"));
    let source = boom.source.clone().unwrap();
    assert_eq!(
        (source.component.as_deref(), source.host.as_deref()),
        (Some("kubelet"), Some("node-x"))
    );
    assert_eq!(
        boom.involved_object.field_path.as_deref(),
        Some("spec.containers{app}")
    );
    assert!(boom.last_timestamp >= boom.first_timestamp);

    // A real container whose readiness probe fails.
    let Some(node) = fixture::Node::start("10.199.44.0/24").await else {
        return;
    };
    let cfg = node.sandbox_config("unready", &[]);
    let (sandbox, ip) = node.run_sandbox(&cfg).await;
    let id = node
        .run_container(&sandbox, &cfg, "app", &["sleep", "1000"])
        .await;
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "unready", "namespace": "default", "uid": "uid-unready" },
        "spec": { "containers": [{
            "name": "app",
            "image": fixture::BUSYBOX,
            "readinessProbe": {
                "exec": { "command": ["sh", "-c", "echo not yet; exit 1"] },
                "periodSeconds": 1
            }
        }]}
    }))
    .unwrap();
    let probes = ProbeManager::with_events(node.cri.clone(), EventSink::new(client.clone(), "probe-node"));
    probes.add(&pod, "app", &id, Some(&ip));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let list = events(&client).await;
        let ours = list
            .iter()
            .find(|e| e.involved_object.name.as_deref() == Some("unready"));
        if let Some(e) = ours.filter(|e| e.count.unwrap_or(0) >= 2) {
            assert_eq!(e.message.as_deref(), Some("Readiness probe failed: not yet\n"));
            assert_eq!(e.reason.as_deref(), Some("Unhealthy"));
            assert_eq!(e.involved_object.uid.as_deref(), Some("uid-unready"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no counted Unhealthy event: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(!probes.state("uid-unready", "app").ready);
}
