//! The scheduler against a real `skiff server`: nodes created through the
//! API, pods bound through `pods/binding` and spread by least-allocated
//! scoring, an impossible pod marked Unschedulable with upstream's message
//! and a FailedScheduling event, a node added later taking it, preemption
//! of lower-priority pods, and pods of other schedulers left alone.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use skiff_scheduler::SchedulerConfig;
use skiff_testkit::server::{ServerOptions, SkiffServer};

const NAME: &str = "skiff-test-scheduler";

async fn client(server: &SkiffServer) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(server.kubeconfig()).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

async fn create_node(nodes: &Api<Node>, name: &str, cpu: &str) {
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
                   "capacity": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}
    }))
    .unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let status = json!({"status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
}

async fn create_pod(pods: &Api<Pod>, name: &str, cpu: &str, scheduler: &str, class: Option<&str>) {
    let mut spec = json!({
        "schedulerName": scheduler,
        "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}]
    });
    if let Some(c) = class {
        spec["priorityClassName"] = json!(c);
    }
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
}

async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..300 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn stage(t: std::time::Instant, what: &str) {
    eprintln!("[{:>6.1}s] {what}", t.elapsed().as_secs_f64());
}

fn node_of(p: &Pod) -> Option<String> {
    p.spec.as_ref()?.node_name.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_against_a_real_server() {
    let t = std::time::Instant::now();
    let server = SkiffServer::start(ServerOptions::api_only()).unwrap();
    let client = client(&server).await;
    stage(t, "server up");
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for n in ["node-a", "node-b", "node-c"] {
        create_node(&nodes, n, "2").await;
    }
    let config = SchedulerConfig {
        scheduler_name: NAME.into(),
        ..SchedulerConfig::default()
    };
    let scheduler = tokio::spawn(skiff_scheduler::run(client.clone(), config));

    // Six 500m pods spread two per node (least-allocated), all bound.
    for i in 0..6 {
        create_pod(&pods, &format!("p{i}"), "500m", NAME, None).await;
    }
    create_pod(&pods, "other", "100m", "someone-else", None).await;
    let placed = eventually("six bound pods", || async {
        let list = pods.list(&ListParams::default()).await.ok()?;
        let bound: Vec<String> = list
            .items
            .iter()
            .filter(|p| p.metadata.name.as_deref() != Some("other"))
            .filter_map(node_of)
            .collect();
        (bound.len() == 6).then_some(bound)
    })
    .await;
    stage(t, "six bound");
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for n in placed {
        *per_node.entry(n).or_default() += 1;
    }
    assert_eq!(
        per_node.values().copied().collect::<Vec<_>>(),
        vec![2, 2, 2],
        "{per_node:?}"
    );
    let p0 = pods.get("p0").await.unwrap();
    let scheduled = p0.status.as_ref().and_then(|s| s.conditions.as_ref()).unwrap();
    assert!(
        scheduled
            .iter()
            .any(|c| c.type_ == "PodScheduled" && c.status == "True")
    );
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let want = format!("Successfully assigned default/p0 to {}", node_of(&p0).unwrap());
    eventually("Scheduled event", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Scheduled") && e.message.as_deref() == Some(&want))
            .then_some(())
    })
    .await;

    stage(t, "scheduled event");
    // A pod no node can take.
    create_pod(&pods, "huge", "3", NAME, None).await;
    let msg = "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: \
               3 No preemption victims found for incoming pod.";
    eventually("PodScheduled=False", || async {
        let p = pods.get("huge").await.ok()?;
        let conds = p.status?.conditions?;
        conds
            .iter()
            .any(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
                    && c.message.as_deref() == Some(msg)
            })
            .then_some(())
    })
    .await;
    stage(t, "condition");
    let ev = eventually("FailedScheduling event", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find(|e| {
            e.reason.as_deref() == Some("FailedScheduling")
                && e.involved_object.name.as_deref() == Some("huge")
        })
    })
    .await;
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    assert_eq!(ev.message.as_deref(), Some(msg));
    assert_eq!(ev.reporting_component.as_deref(), Some(NAME));

    stage(t, "failed event");
    // Preemption: a high-priority 1500m pod evicts one 500m pod somewhere.
    let pc: PriorityClass = serde_json::from_value(json!({
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": "high"}, "value": 1000
    }))
    .unwrap();
    Api::<PriorityClass>::all(client.clone())
        .create(&PostParams::default(), &pc)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    create_pod(&pods, "vip", "1500m", NAME, Some("high")).await;
    let nominated = eventually("nominatedNodeName", || async {
        pods.get("vip").await.ok()?.status?.nominated_node_name
    })
    .await;
    stage(t, "nominated");
    eventually("a victim on the nominated node is being deleted", || async {
        let list = pods.list(&ListParams::default()).await.ok()?;
        let on_node = list
            .items
            .iter()
            .filter(|p| node_of(p).as_deref() == Some(nominated.as_str()));
        let live = on_node
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .count();
        (live < 2).then_some(())
    })
    .await;

    stage(t, "victim");
    // A bigger node appears: the pending pod gets it.
    create_node(&nodes, "node-big", "8").await;
    let n = eventually("huge bound", || async { node_of(&pods.get("huge").await.ok()?) }).await;
    assert_eq!(n, "node-big");

    stage(t, "huge bound");
    // The other scheduler's pod was never touched.
    assert_eq!(node_of(&pods.get("other").await.unwrap()), None);
    assert!(!scheduler.is_finished(), "the scheduler keeps running");
    scheduler.abort();
}
