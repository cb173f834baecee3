//! The proxy's watch loop against an in-process API server: Services and
//! EndpointSlices created, changed and deleted through the API show up in
//! (and vanish from) `table ip skiff` inside a throw-away netns.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use skiff_agent::proxy::{DEFAULT_CLUSTER_CIDR, Nft, ProxyConfig, sync::run_with};

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

async fn wait_table(nft: &Nft, want: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let table = nft.list_table().unwrap_or_default();
        if want(&table) {
            return table;
        }
        assert!(Instant::now() < deadline, "table never matched:\n{table}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_follows_services_and_endpointslices() {
    let tag = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let ns = Netns(format!("skiff-t-{tag:x}-sync"));
    assert!(
        std::process::Command::new("ip")
            .args(["netns", "add", &ns.0])
            .status()
            .unwrap()
            .success()
    );

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(skiff_store::sqlite::SqliteStore::open(dir.path().join("state.db")).unwrap());
    let server = skiff_apiserver::server::ApiServer::new(store, Default::default()).unwrap();
    assert!(
        server.wait_ready(Duration::from_secs(10)).await,
        "server not ready"
    );
    let client = kube::Client::new(server.router(), "default");

    let nft = Nft {
        netns: Some(ns.0.clone()),
    };
    let cfg = ProxyConfig {
        node_name: "node-1".into(),
        cluster_cidr: DEFAULT_CLUSTER_CIDR,
        nft: nft.clone(),
        debounce: std::time::Duration::from_millis(20),
    };
    let proxy = tokio::spawn(run_with(client.clone(), cfg));

    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }))
    .unwrap();
    let svc = services.create(&PostParams::default(), &svc).await.unwrap();
    let spec = svc.spec.unwrap();
    let cluster_ip = spec.cluster_ip.unwrap();
    let node_port = spec.ports.unwrap()[0].node_port.unwrap();

    // No endpoints yet: rejected.
    wait_table(&nft, |t| {
        t.contains(&format!("{cluster_ip} . tcp . 80 : goto reject-chain"))
    })
    .await;

    let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.42.0.11"], "conditions": {"ready": true}, "nodeName": "node-1"}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }))
    .unwrap();
    slices.create(&PostParams::default(), &slice).await.unwrap();
    let table = wait_table(&nft, |t| t.contains("dnat to 10.42.0.11:8080")).await;
    assert!(
        table.contains(&format!("tcp . {node_port} : goto external-")),
        "{table}"
    );
    assert!(
        !table.contains(&format!("{cluster_ip} . tcp . 80 : goto reject-chain")),
        "{table}"
    );

    // Deleting the EndpointSlice takes its endpoint away: rejected again.
    slices.delete("web-1", &DeleteParams::default()).await.unwrap();
    wait_table(&nft, |t| {
        !t.contains("10.42.0.11") && t.contains(&format!("{cluster_ip} . tcp . 80 : goto reject-chain"))
    })
    .await;
    slices.create(&PostParams::default(), &slice).await.unwrap();
    wait_table(&nft, |t| t.contains("dnat to 10.42.0.11:8080")).await;

    // Deleting the Service removes every rule and element it had.
    services.delete("web", &DeleteParams::default()).await.unwrap();
    let table = wait_table(&nft, |t| !t.contains("10.42.0.11") && !t.contains(&cluster_ip)).await;
    assert!(!table.contains(&format!("{node_port}")), "{table}");
    assert!(!table.contains("default/web"), "{table}");

    proxy.abort();
    nft.delete_table().unwrap();
}
