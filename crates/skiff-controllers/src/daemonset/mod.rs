//! The DaemonSet controller: one daemon pod on every node the template fits
//! (see [`eligibility`]), placed by the default scheduler through a required
//! `metadata.name` node affinity; ControllerRevisions for history
//! ([`history`]); RollingUpdate with maxUnavailable/maxSurge or OnDelete
//! ([`plan`]); and the DaemonSet's status counts. Node changes (added,
//! removed, relabelled, tainted) reconcile every DaemonSet.
//!
//! Must not: bind pods itself or touch pods it does not control.

pub mod eligibility;
pub mod history;
pub mod plan;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::deployment::rollout::resolve;
use crate::events::{EventType, Recorder};
use crate::informer::{self, Change, Informer, Informers};
use crate::manager::ControllerConfig;
use crate::workload_util::{self as wu, Claim, Matcher};
use plan::NodeView;

/// Label with the DaemonSet generation a pod was made from.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// What one reconcile can fail with, and the state reconciles share
/// (one definition for every workload controller).
pub use crate::workload_util::{ReconcileCtx as Ctx, ReconcileError as Error};

/// The daemon pod for `node` made from the DaemonSet's current template.
pub fn new_pod(ds: &DaemonSet, node: &str, hash: &str) -> Pod {
    let template = ds.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    let mut labels = tmeta.labels.unwrap_or_default();
    labels.insert(history::REVISION_HASH_LABEL.to_string(), hash.to_string());
    labels.insert(
        TEMPLATE_GENERATION_LABEL.to_string(),
        ds.metadata.generation.unwrap_or(0).to_string(),
    );
    let mut spec = template.spec.unwrap_or_default();
    eligibility::add_daemon_tolerations(&mut spec);
    eligibility::pin_to_node(&mut spec, node);
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", ds.name_any())),
            labels: Some(labels),
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![wu::controller_ref(ds)]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// Groups the DaemonSet's pods by target node and decides each node's placement.
fn node_views(ds: &DaemonSet, nodes: &[Node], pods: Vec<Pod>) -> Vec<NodeView> {
    let template = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .unwrap_or_default();
    let mut by_node: BTreeMap<String, Vec<Pod>> = BTreeMap::new();
    for p in pods {
        let target = p
            .spec
            .as_ref()
            .and_then(eligibility::target_node)
            .unwrap_or_default();
        by_node.entry(target).or_default().push(p);
    }
    let mut views: Vec<NodeView> = nodes
        .iter()
        .map(|n| {
            let name = n.name_any();
            NodeView {
                pods: by_node.remove(&name).unwrap_or_default(),
                placement: Some(eligibility::placement(&template, n)),
                name,
            }
        })
        .collect();
    views.extend(by_node.into_iter().map(|(name, pods)| NodeView {
        name,
        placement: None,
        pods,
    }));
    views
}

/// One reconcile of a DaemonSet.
pub async fn reconcile(ds: Arc<DaemonSet>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if ds.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(spec) = ds.spec.as_ref() else {
        return Ok(Action::await_change());
    };
    let ns = ds.namespace().ok_or(Error::NoNamespace)?;
    let uid = ds.uid().unwrap_or_default();
    let matcher = Matcher::new(Some(&spec.selector))?;
    let collisions = ds.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0);
    let hist = history::sync(&ctx.client, ds.as_ref(), &spec.template, &matcher, collisions).await?;
    let hash = history::hash_of(&hist.update);

    let nodes = Api::<Node>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let owner = wu::controller_ref(ds.as_ref());
    let mut owned = Vec::new();
    for pod in pods_api.list(&ListParams::default()).await?.items {
        match wu::claim(&pod.metadata, &uid, &matcher) {
            Claim::Owned => owned.push(pod),
            Claim::Adopt => {
                let pod_uid = pod.uid().unwrap_or_default();
                if wu::adopt(&pods_api, &pod.name_any(), &pod_uid, owner.clone())
                    .await
                    .is_ok()
                {
                    owned.push(pod);
                }
            }
            Claim::Release => wu::release(&pods_api, &pod, &uid).await?,
            Claim::Ignore => {}
        }
    }
    let in_use: BTreeSet<String> = owned
        .iter()
        .filter_map(|p| p.labels().get(history::REVISION_HASH_LABEL).cloned())
        .collect();
    let views = node_views(&ds, &nodes, owned);
    let now = jiff::Timestamp::now();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let strategy = spec.update_strategy.as_ref();
    let rolling_update = strategy
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate";
    let desired = plan::count(&views, &hash, min_ready, now).desired;
    let ru = strategy.and_then(|s| s.rolling_update.as_ref());
    let max_surge = if rolling_update {
        resolve(ru.and_then(|r| r.max_surge.as_ref()), 0, desired, true)
    } else {
        0
    };
    let mut max_unavailable = resolve(ru.and_then(|r| r.max_unavailable.as_ref()), 0, desired, true);
    if desired > 0 && max_unavailable == 0 && max_surge == 0 {
        max_unavailable = 1;
    }

    let mut todo = plan::manage(&views, &hash, max_surge > 0, min_ready, now);
    if rolling_update {
        let step = plan::rolling(&views, &hash, max_unavailable, max_surge, min_ready, now);
        for d in step.delete {
            if !todo.delete.contains(&d) {
                todo.delete.push(d);
            }
        }
        todo.create_on.extend(step.create_on);
    }
    let oref = ds.object_ref(&());
    apply(&ctx, &pods_api, &oref, &ds, &hash, &todo).await?;

    let keep: BTreeSet<String> = [hist.update.name_any()].into();
    let limit = spec.revision_history_limit.unwrap_or(10);
    history::prune(&ctx.client, &ns, &hist.revisions, &keep, &in_use, limit).await?;

    let c = plan::count(&views, &hash, min_ready, now);
    write_status(&ctx, &ds, &ns, &c, hist.collision_count).await?;
    let waiting_available = views
        .iter()
        .flat_map(|v| v.pods.iter())
        .filter_map(|p| wu::seconds_to_available(p, min_ready, now))
        .min();
    Ok(match waiting_available {
        Some(s) => Action::requeue(Duration::from_secs(s.max(1) as u64)),
        None => Action::requeue(Duration::from_secs(300)),
    })
}

/// Deletes and creates the pods of `todo`, recording events.
async fn apply(
    ctx: &Ctx,
    pods_api: &Api<Pod>,
    oref: &ObjectReference,
    ds: &DaemonSet,
    hash: &str,
    todo: &plan::Plan,
) -> Result<(), Error> {
    let ns = ds.namespace().unwrap_or_default();
    for (pod, node) in &todo.failed {
        let msg = format!("Found failed daemon pod {ns}/{pod} on node {node}, will try to kill it");
        ctx.recorder
            .record(oref, EventType::Warning, "FailedDaemonPod", &msg)
            .await;
    }
    for name in &todo.delete {
        match pods_api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {
                let msg = format!("Deleted pod: {name}");
                ctx.recorder
                    .record(oref, EventType::Normal, "SuccessfulDelete", &msg)
                    .await;
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    for node in &todo.create_on {
        match wu::create_pod(pods_api, &new_pod(ds, node, hash)).await {
            Ok(p) => {
                let msg = format!("Created pod: {}", p.name_any());
                ctx.recorder
                    .record(oref, EventType::Normal, "SuccessfulCreate", &msg)
                    .await;
            }
            Err(e) => {
                let msg = format!("Error creating: {e}");
                ctx.recorder
                    .record(oref, EventType::Warning, "FailedCreate", &msg)
                    .await;
                return Err(e.into());
            }
        }
    }
    Ok(())
}

async fn write_status(
    ctx: &Ctx,
    ds: &DaemonSet,
    ns: &str,
    c: &plan::Counts,
    collision_count: i32,
) -> Result<(), Error> {
    let mut status = json!({
        "desiredNumberScheduled": c.desired,
        "currentNumberScheduled": c.current,
        "numberMisscheduled": c.misscheduled,
        "numberReady": c.ready,
        "numberAvailable": c.available,
        "numberUnavailable": (c.desired - c.available).max(0),
        "updatedNumberScheduled": c.updated,
        "observedGeneration": ds.metadata.generation,
    });
    if collision_count > 0 {
        status["collisionCount"] = json!(collision_count);
    }
    let have = serde_json::to_value(&ds.status).unwrap_or_default();
    if !status_unchanged(&have, &status) {
        let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), ns);
        api.patch_status(
            &ds.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await?;
    }
    Ok(())
}

/// Whether every field of `want` already has that value in `have` (an
/// absent count equals 0, as the API omits zero counts).
pub(crate) fn status_unchanged(have: &serde_json::Value, want: &serde_json::Value) -> bool {
    want.as_object().is_some_and(|w| {
        w.iter().all(|(k, v)| {
            let h = have.get(k).cloned().unwrap_or(serde_json::Value::Null);
            h == *v || (h.is_null() && v.as_i64() == Some(0))
        })
    })
}

/// Retries a failed reconcile after a short pause.
pub fn error_policy(ds: Arc<DaemonSet>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::debug!(name = %ds.name_any(), error = %err, "daemonset reconcile failed");
    Action::requeue(Duration::from_secs(2))
}

/// What about a node matters to DaemonSets: labels, taints, cordon.
fn fingerprint(n: &Node) -> u32 {
    let labels = serde_json::to_vec(&n.metadata.labels).unwrap_or_default();
    let spec = n.spec.as_ref();
    let taints = serde_json::to_vec(&spec.and_then(|s| s.taints.as_ref())).unwrap_or_default();
    let cordon = spec.and_then(|s| s.unschedulable).unwrap_or(false);
    wu::fnv32a(&[labels, taints, vec![u8::from(cordon)]].concat())
}

/// One item whenever a node appears, disappears, or changes what matters
/// to placement (heartbeats and status updates are ignored).
fn node_changes(informer: &Informer<Node>) -> impl Stream<Item = ()> + Send + use<> {
    let mut seen: HashMap<String, u32> = HashMap::new();
    informer.subscribe().filter_map(move |change| {
        let changed = match change {
            Change::Applied(n) => {
                let fp = fingerprint(&n);
                seen.insert(n.name_any(), fp) != Some(fp)
            }
            Change::Deleted(n) => seen.remove(&n.name_any()).is_some(),
        };
        futures::future::ready(changed.then_some(()))
    })
}

/// Runs the DaemonSet controller (with its own informers) until its watches end.
pub async fn run(client: kube::Client, cfg: Arc<ControllerConfig>) -> Result<(), crate::manager::Error> {
    run_with(Arc::new(Informers::new(client)), cfg).await
}

/// Runs the DaemonSet controller on the manager's shared informers.
pub async fn run_with(
    informers: Arc<Informers>,
    _cfg: Arc<ControllerConfig>,
) -> Result<(), crate::manager::Error> {
    let client = informers.client().clone();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        recorder: Recorder::new(client, "daemonset-controller"),
    });
    informer::controller::<DaemonSet>(&informers)
        .owns_shared_stream(informers.all::<Pod>().triggers())
        .reconcile_all_on(node_changes(&informers.all::<Node>()))
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
    Ok(())
}
