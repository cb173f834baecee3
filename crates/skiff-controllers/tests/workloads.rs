//! Workload controllers against a real `skiff server`: the ReplicaSet and
//! Deployment controllers run in this process on the server's admin
//! kubeconfig; a tiny fake kubelet marks pods Running and Ready through the
//! pods/status subresource, as a node agent would.
//!
//! Needs `cargo build -p skiff` first (the test spawns target/debug/skiff).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use skiff_controllers::ControllerConfig;
use skiff_testkit::server::{ServerOptions, SkiffServer};

async fn client(server: &SkiffServer) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(server.kubeconfig()).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

/// Marks every pod in `ns` Running and Ready, forever.
async fn fake_kubelet(client: kube::Client, ns: &str) {
    let api: Api<Pod> = Api::namespaced(client, ns);
    loop {
        if let Ok(list) = api.list(&ListParams::default()).await {
            for p in list.items {
                let ready = p
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                if ready || p.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                let now = jiff::Timestamp::now().to_string();
                let patch = serde_json::json!({"status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": now}
                ]}});
                let _ = api
                    .patch_status(&p.name_any(), &PatchParams::default(), &Patch::Merge(patch))
                    .await;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn start_controllers(client: &kube::Client) {
    let cfg = Arc::new(ControllerConfig::default());
    tokio::spawn(skiff_controllers::replicaset::run(client.clone(), cfg.clone()));
    tokio::spawn(skiff_controllers::deployment::run(client.clone(), cfg));
}

async fn wait_for<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn owned_pods(api: &Api<Pod>, owner_uid: &str) -> Vec<Pod> {
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.owner_references()
                .iter()
                .any(|r| r.uid == owner_uid && r.controller == Some(true))
        })
        .collect()
}

fn template(image: &str) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": image}]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_keeps_replicas_replaces_deleted_pods_and_scales_down() {
    let server = SkiffServer::start(ServerOptions::api_only()).unwrap();
    let c = client(&server).await;
    start_controllers(&c);
    tokio::spawn(fake_kubelet(c.clone(), "default"));
    let rss: Api<ReplicaSet> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let rs: ReplicaSet = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template("nginx")}
    }))
    .unwrap();
    let rs = rss.create(&PostParams::default(), &rs).await.unwrap();
    let uid = rs.uid().unwrap();
    wait_for("3 pods", || async { owned_pods(&pods, &uid).await.len() == 3 }).await;
    let first = owned_pods(&pods, &uid).await;
    assert!(first.iter().all(|p| p.name_any().starts_with("web-")));
    let oref = &first[0].owner_references()[0];
    assert_eq!(
        (oref.kind.as_str(), oref.block_owner_deletion),
        ("ReplicaSet", Some(true))
    );
    wait_for("readyReplicas 3", || async {
        let s = rss.get_status("web").await.unwrap().status.unwrap_or_default();
        s.ready_replicas == Some(3) && s.available_replicas == Some(3) && s.observed_generation == Some(1)
    })
    .await;

    pods.delete(&first[0].name_any(), &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    wait_for("replacement", || async {
        let now = owned_pods(&pods, &uid).await;
        now.len() == 3 && now.iter().all(|p| p.name_any() != first[0].name_any())
    })
    .await;

    let scale = serde_json::json!({"spec": {"replicas": 1}});
    rss.patch("web", &PatchParams::default(), &Patch::Merge(scale))
        .await
        .unwrap();
    wait_for("scale down to 1", || async {
        owned_pods(&pods, &uid).await.len() == 1
    })
    .await;
    wait_for("status replicas 1", || async {
        rss.get_status("web")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.replicas == 1)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_rolls_out_a_new_template_and_records_revisions() {
    let server = SkiffServer::start(ServerOptions::api_only()).unwrap();
    let c = client(&server).await;
    start_controllers(&c);
    tokio::spawn(fake_kubelet(c.clone(), "default"));
    let deps: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(c.clone(), "default");
    let d: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template("nginx:1")}
    }))
    .unwrap();
    deps.create(&PostParams::default(), &d).await.unwrap();
    let complete = |image: &'static str| {
        let deps = deps.clone();
        async move {
            let d = deps.get("web").await.unwrap();
            let s = d.status.clone().unwrap_or_default();
            let progressing =
                s.conditions.iter().flatten().any(|c| {
                    c.type_ == "Progressing" && c.reason.as_deref() == Some("NewReplicaSetAvailable")
                });
            let img = d
                .spec
                .as_ref()
                .unwrap()
                .template
                .spec
                .as_ref()
                .unwrap()
                .containers[0]
                .image
                .clone();
            progressing
                && s.observed_generation == d.metadata.generation
                && img.as_deref() == Some(image)
                && s.updated_replicas == Some(3)
                && s.available_replicas == Some(3)
                && s.replicas == Some(3)
        }
    };
    wait_for("first rollout", || complete("nginx:1")).await;
    let first = rss.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(first.len(), 1);
    assert!(first[0].labels().contains_key("pod-template-hash"));
    assert_eq!(
        first[0]
            .annotations()
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("1")
    );

    let patch = serde_json::json!({"spec": {"template": template("nginx:2")}});
    deps.patch("web", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
    wait_for("second rollout", || complete("nginx:2")).await;
    let all = rss.list(&ListParams::default()).await.unwrap().items;
    let names: Vec<_> = all
        .iter()
        .map(|r| (r.name_any(), r.annotations().clone()))
        .collect();
    assert_eq!(all.len(), 2, "{names:?} first {}", first[0].name_any());
    let old = all.iter().find(|r| r.name_any() == first[0].name_any()).unwrap();
    assert_eq!(old.spec.as_ref().unwrap().replicas, Some(0));
    let d = deps.get("web").await.unwrap();
    assert_eq!(
        d.annotations()
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("2")
    );

    // Undo as kubectl does: put the old ReplicaSet's template back.
    let patch = serde_json::json!({"spec": {"template": template("nginx:1")}});
    deps.patch("web", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
    wait_for("rollback", || complete("nginx:1")).await;
    let back = rss.get(&first[0].name_any()).await.unwrap();
    assert_eq!(
        back.annotations()
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("3")
    );
    assert_eq!(back.spec.as_ref().unwrap().replicas, Some(3));
}
