//! The cluster controllers against a real `skiff server`: garbage collection
//! for each propagation policy, the `default` service account, and a node
//! whose heartbeats stop turning Unknown and tainted. The controllers run
//! in-process through `run_all` (so under leader election) with the
//! server's admin kubeconfig.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, NodeCondition, NodeStatus, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use skiff_controllers::ControllerConfig;
use skiff_testkit::server::{ServerOptions, SkiffServer};

async fn client(server: &SkiffServer) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(server.kubeconfig()).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

async fn start() -> (SkiffServer, kube::Client) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("skiff_controllers=debug")
        .with_test_writer()
        .try_init();
    let server = SkiffServer::start(ServerOptions::api_only()).unwrap();
    let c = client(&server).await;
    let cfg = ControllerConfig {
        gc_resync: Duration::from_millis(300),
        ..ControllerConfig::default()
    };
    tokio::spawn(skiff_controllers::run_all(c.clone(), Arc::new(cfg)));
    (server, c)
}

async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what}");
}

fn cm(name: &str, owner: Option<(&ConfigMap, bool)>) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            owner_references: owner.map(|(o, block)| {
                vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    name: o.metadata.name.clone().unwrap(),
                    uid: o.metadata.uid.clone().unwrap(),
                    block_owner_deletion: Some(block),
                    controller: None,
                }]
            }),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    }
}

async fn owner_and_dependent(api: &Api<ConfigMap>, tag: &str) {
    let pp = PostParams::default();
    let owner = api.create(&pp, &cm(&format!("owner-{tag}"), None)).await.unwrap();
    api.create(&pp, &cm(&format!("dep-{tag}"), Some((&owner, true))))
        .await
        .unwrap();
}

#[tokio::test]
async fn garbage_collection_follows_each_propagation_policy() {
    let (_server, c) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    for tag in ["bg", "fg", "orphan"] {
        owner_and_dependent(&api, tag).await;
    }

    api.delete("owner-bg", &DeleteParams::background()).await.unwrap();
    eventually("background dependent deleted", || async {
        api.get_opt("dep-bg").await.unwrap().is_none()
    })
    .await;

    api.delete("owner-fg", &DeleteParams::foreground()).await.unwrap();
    // The owner stays (with its finalizer) until the blocking dependent is gone.
    eventually("foreground owner and dependent deleted", || async {
        api.get_opt("owner-fg").await.unwrap().is_none() && api.get_opt("dep-fg").await.unwrap().is_none()
    })
    .await;

    api.delete("owner-orphan", &DeleteParams::orphan()).await.unwrap();
    eventually("orphan owner deleted", || async {
        api.get_opt("owner-orphan").await.unwrap().is_none()
    })
    .await;
    let dep = api.get("dep-orphan").await.unwrap();
    assert!(
        dep.metadata.owner_references.unwrap_or_default().is_empty(),
        "orphaned dependent keeps no owner"
    );
}

#[tokio::test]
async fn every_namespace_gets_a_default_service_account_back_after_deletion() {
    let (_server, c) = start().await;
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some("team".into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(c.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let sa: Api<ServiceAccount> = Api::namespaced(c.clone(), "team");
    eventually("default SA", || async {
        sa.get_opt("default").await.unwrap().is_some()
    })
    .await;
    sa.delete("default", &DeleteParams::default()).await.unwrap();
    eventually("default SA recreated", || async {
        sa.get_opt("default").await.unwrap().is_some()
    })
    .await;
}

#[tokio::test]
async fn a_node_whose_heartbeats_stop_turns_unknown_and_is_tainted_unreachable() {
    let (_server, c) = start().await;
    let now = jiff::Timestamp::now();
    let lease_ns = Namespace {
        metadata: ObjectMeta {
            name: Some("kube-node-lease".into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    let _ = Api::<Namespace>::all(c.clone())
        .create(&PostParams::default(), &lease_ns)
        .await;
    let nodes: Api<Node> = Api::all(c.clone());
    let node = Node {
        metadata: ObjectMeta {
            name: Some("n1".into()),
            ..ObjectMeta::default()
        },
        ..Node::default()
    };
    let mut node = nodes.create(&PostParams::default(), &node).await.unwrap();
    node.status = Some(NodeStatus {
        conditions: Some(vec![NodeCondition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: Some("KubeletReady".into()),
            last_heartbeat_time: Some(Time(now)),
            last_transition_time: Some(Time(now)),
            message: None,
        }]),
        ..NodeStatus::default()
    });
    // Other loops (node IPAM) write the node too: patch, as a kubelet does.
    node.metadata.resource_version = None;
    nodes
        .patch_status("n1", &PatchParams::default(), &Patch::Merge(&node))
        .await
        .unwrap();
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("n1".into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("n1".into()),
            lease_duration_seconds: Some(40),
            renew_time: Some(MicroTime(now)),
            ..LeaseSpec::default()
        }),
    };
    Api::<Lease>::namespaced(c.clone(), "kube-node-lease")
        .create(&PostParams::default(), &lease)
        .await
        .unwrap();

    // Nobody renews: after the grace period (4 s) the node is Unknown and tainted.
    let started = Instant::now();
    eventually("unreachable NoExecute taint", || async {
        let n = nodes.get("n1").await.unwrap();
        let ready = n
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Ready");
        let unknown =
            ready.is_some_and(|c| c.status == "Unknown" && c.reason.as_deref() == Some("NodeStatusUnknown"));
        let tainted = n
            .spec
            .and_then(|s| s.taints)
            .unwrap_or_default()
            .iter()
            .any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoExecute");
        unknown && tainted
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}
