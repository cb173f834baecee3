//! The DaemonSet and StatefulSet controllers against a real `skiff server`
//! (API only): the controllers run in this process; a tiny fake kubelet
//! marks pods Running and Ready through pods/status. Nodes are plain API
//! objects, so node changes (taints, deletion, new nodes) are driven here.
//!
//! Needs `cargo build -p skiff` first (the test spawns target/debug/skiff).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod};
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

async fn live_pods(api: &Api<Pod>, selector: &str) -> Vec<Pod> {
    api.list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

fn image(p: &Pod) -> String {
    p.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap_or_default()
}

async fn make_node(api: &Api<Node>, name: &str) {
    let node: Node = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
    }))
    .unwrap();
    api.create(&PostParams::default(), &node).await.unwrap();
}

fn target(p: &Pod) -> String {
    skiff_controllers::daemonset::eligibility::target_node(p.spec.as_ref().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_follows_nodes_taints_and_rolls_out() {
    let server = SkiffServer::start(ServerOptions::api_only()).unwrap();
    let client = client(&server).await;
    let nodes: Api<Node> = Api::all(client.clone());
    make_node(&nodes, "n1").await;
    make_node(&nodes, "n2").await;
    tokio::spawn(fake_kubelet(client.clone(), "default"));
    let cfg = Arc::new(ControllerConfig::default());
    tokio::spawn(skiff_controllers::daemonset::run(client.clone(), cfg));

    let dss: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    let ds: DaemonSet = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {"metadata": {"labels": {"app": "agent"}},
                         "spec": {"containers": [{"name": "a", "image": "agent:1"}]}}
        }
    }))
    .unwrap();
    dss.create(&PostParams::default(), &ds).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let on = |want: &'static [&'static str]| {
        let pods = pods.clone();
        move || {
            let pods = pods.clone();
            async move {
                let mut got: Vec<String> = live_pods(&pods, "app=agent").await.iter().map(target).collect();
                got.sort();
                got == want
            }
        }
    };
    wait_for("a daemon pod on n1 and n2", on(&["n1", "n2"])).await;

    // An untolerated NoExecute taint evicts; a new node gets a pod; a deleted node loses it.
    let taint = serde_json::json!({"spec": {"taints": [{"key": "maint", "effect": "NoExecute"}]}});
    nodes
        .patch("n1", &PatchParams::default(), &Patch::Merge(taint))
        .await
        .unwrap();
    wait_for("n1's pod evicted by the taint", on(&["n2"])).await;
    make_node(&nodes, "n3").await;
    wait_for("a pod on the new node", on(&["n2", "n3"])).await;
    nodes.delete("n2", &DeleteParams::default()).await.unwrap();
    wait_for("the deleted node's pod removed", on(&["n3"])).await;
    let st = dss.get_status("agent").await.unwrap().status.unwrap();
    assert_eq!(st.desired_number_scheduled, 1);

    // A template change rolls out and is recorded as revision 2.
    let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "agent:2"}]}}}});
    dss.patch("agent", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
    wait_for("pod replaced by agent:2", || {
        let pods = pods.clone();
        async move {
            let p = live_pods(&pods, "app=agent").await;
            p.len() == 1 && image(&p[0]) == "agent:2"
        }
    })
    .await;
    let revs: Api<ControllerRevision> = Api::namespaced(client.clone(), "default");
    let mut numbers: Vec<i64> = revs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|r| r.revision)
        .collect();
    numbers.sort();
    assert_eq!(numbers, [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_rolls_out_down_to_the_partition_and_reuses_revisions() {
    let server = SkiffServer::start(ServerOptions::api_only()).unwrap();
    let client = client(&server).await;
    tokio::spawn(fake_kubelet(client.clone(), "default"));
    let cfg = Arc::new(ControllerConfig::default());
    tokio::spawn(skiff_controllers::statefulset::run(client.clone(), cfg));

    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let set: StatefulSet = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "db"},
        "spec": {
            "replicas": 3,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
            "template": {"metadata": {"labels": {"app": "db"}},
                         "spec": {"containers": [{"name": "d", "image": "db:1"}]}}
        }
    }))
    .unwrap();
    sets.create(&PostParams::default(), &set).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let images = || {
        let pods = pods.clone();
        async move {
            let mut p = live_pods(&pods, "app=db").await;
            p.sort_by_key(|p| p.name_any());
            p.iter()
                .map(|p| format!("{}={}", p.name_any(), image(p)))
                .collect::<Vec<_>>()
        }
    };
    let expect = |want: [&'static str; 3]| move || async move { images().await == want };
    wait_for("db-0..2 on db:1", expect(["db-0=db:1", "db-1=db:1", "db-2=db:1"])).await;
    let first = sets.get_status("db").await.unwrap().status.unwrap();
    assert_eq!(first.current_revision, first.update_revision);

    let set_image = |img: &str| serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "d", "image": img}]}}}});
    sets.patch(
        "db",
        &PatchParams::default(),
        &Patch::Strategic(set_image("db:2")),
    )
    .await
    .unwrap();
    wait_for(
        "only db-2 updated",
        expect(["db-0=db:1", "db-1=db:1", "db-2=db:2"]),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        images().await,
        ["db-0=db:1", "db-1=db:1", "db-2=db:2"],
        "partition holds"
    );
    let st = sets.get_status("db").await.unwrap().status.unwrap();
    assert_ne!(st.current_revision, st.update_revision);
    assert_eq!((st.current_replicas, st.updated_replicas), (Some(2), Some(1)));

    let partition = serde_json::json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}});
    sets.patch("db", &PatchParams::default(), &Patch::Merge(partition))
        .await
        .unwrap();
    wait_for("all on db:2", expect(["db-0=db:2", "db-1=db:2", "db-2=db:2"])).await;
    let done = sets.clone();
    wait_for("current revision caught up", move || {
        let sets = done.clone();
        async move {
            let st = sets.get_status("db").await.unwrap().status.unwrap();
            st.current_revision == st.update_revision && st.updated_replicas == Some(3)
        }
    })
    .await;

    // Going back to db:1 reuses its revision with the next number (as rollout undo does).
    sets.patch(
        "db",
        &PatchParams::default(),
        &Patch::Strategic(set_image("db:1")),
    )
    .await
    .unwrap();
    wait_for(
        "all back on db:1",
        expect(["db-0=db:1", "db-1=db:1", "db-2=db:1"]),
    )
    .await;
    let revs: Api<ControllerRevision> = Api::namespaced(client.clone(), "default");
    let list = revs.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(list.len(), 2, "db:1 and db:2, no duplicate");
    let back = list
        .iter()
        .find(|r| Some(r.name_any()) == first.update_revision)
        .unwrap();
    assert_eq!(back.revision, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_statefulset_claims_follow_the_retention_policy() {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    let server = SkiffServer::start(ServerOptions::api_only()).unwrap();
    let client = client(&server).await;
    tokio::spawn(fake_kubelet(client.clone(), "default"));
    let cfg = Arc::new(ControllerConfig::default());
    tokio::spawn(skiff_controllers::statefulset::run(client.clone(), cfg.clone()));
    tokio::spawn(skiff_controllers::gc::run(client.clone(), cfg));

    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let set: StatefulSet = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "cache"},
        "spec": {
            "replicas": 3,
            "podManagementPolicy": "Parallel",
            "persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete", "whenDeleted": "Retain"},
            "selector": {"matchLabels": {"app": "cache"}},
            "template": {"metadata": {"labels": {"app": "cache"}},
                         "spec": {"containers": [{"name": "c", "image": "cache:1",
                                  "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
        }
    }))
    .unwrap();
    sets.create(&PostParams::default(), &set).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let claims = || {
        let pvcs = pvcs.clone();
        async move {
            let mut n: Vec<String> = pvcs
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .iter()
                .filter(|c| c.metadata.deletion_timestamp.is_none())
                .map(|c| c.name_any())
                .collect();
            n.sort();
            n
        }
    };
    wait_for("3 pods and 3 claims", || async {
        live_pods(&pods, "app=cache").await.len() == 3 && claims().await.len() == 3
    })
    .await;
    let p = pods.get("cache-1").await.unwrap();
    let vol = &p.spec.unwrap().volumes.unwrap()[0];
    assert_eq!(
        vol.persistent_volume_claim.as_ref().unwrap().claim_name,
        "data-cache-1"
    );

    sets.patch(
        "cache",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    wait_for("scaled-away claims deleted with their pods", || async {
        live_pods(&pods, "app=cache").await.len() == 1 && claims().await == ["data-cache-0"]
    })
    .await;
}
