//! The ReplicaSet and ReplicationController controllers: keep `spec.replicas`
//! active pods matching the selector, adopting orphans and releasing pods
//! that stopped matching, deleting surplus pods in upstream's preference
//! order, and reporting replicas/ready/available/fullyLabeled counts.
//!
//! Must not: touch pods it does not control (other controllers' pods are
//! left alone even when they match).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{ObjectReference, Pod, PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::events::{EventType, Recorder};
use crate::informer::{self, Informers};
use crate::manager::ControllerConfig;
use crate::workload_util::{self as wu, Claim, Matcher};

/// Most pods created or deleted in one reconcile (upstream's burst).
const BURST: usize = 500;

/// What one reconcile can fail with, and the state reconciles share
/// (one definition for every workload controller).
pub use crate::workload_util::{ReconcileCtx as Ctx, ReconcileError as Error};

/// What the controller needs from a ReplicaSet-like object.
pub trait ReplicaOwner:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + serde::Serialize
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// Desired replicas (default 1).
    fn replicas(&self) -> i32;
    /// The selector as a label selector.
    fn selector(&self) -> Option<LabelSelector>;
    /// The pod template.
    fn template(&self) -> Option<&PodTemplateSpec>;
    /// minReadySeconds.
    fn min_ready_seconds(&self) -> i32;
    /// The current status as JSON (for change detection).
    fn status_json(&self) -> serde_json::Value;
}

impl ReplicaOwner for ReplicaSet {
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn selector(&self) -> Option<LabelSelector> {
        self.spec.as_ref().map(|s| s.selector.clone())
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0)
    }
    fn status_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.status).unwrap_or_default()
    }
}

impl ReplicaOwner for ReplicationController {
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn selector(&self) -> Option<LabelSelector> {
        let sel = self.spec.as_ref()?.selector.clone().or_else(|| {
            self.template()
                .and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.labels.clone())
        })?;
        Some(LabelSelector {
            match_labels: Some(sel),
            match_expressions: None,
        })
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0)
    }
    fn status_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.status).unwrap_or_default()
    }
}

/// The counts a ReplicaSet reports.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Active pods.
    pub replicas: i32,
    /// Active pods whose labels include all the template's labels.
    pub fully_labeled: i32,
    /// Ready pods.
    pub ready: i32,
    /// Pods ready for minReadySeconds.
    pub available: i32,
    /// Shortest wait until a ready pod becomes available.
    pub next_available_in: Option<i64>,
}

/// Counts `pods` (already filtered to active, owned pods).
pub fn count(pods: &[Pod], template_labels: &BTreeMap<String, String>, min_ready: i32) -> Counts {
    let now = jiff::Timestamp::now();
    let mut c = Counts {
        replicas: pods.len() as i32,
        ..Counts::default()
    };
    for p in pods {
        let labels = p.metadata.labels.clone().unwrap_or_default();
        if template_labels.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            c.fully_labeled += 1;
        }
        if wu::is_ready(p) {
            c.ready += 1;
        }
        if wu::is_available(p, min_ready, now) {
            c.available += 1;
        } else if let Some(s) = wu::seconds_to_available(p, min_ready, now) {
            c.next_available_in = Some(c.next_available_in.map_or(s, |n| n.min(s)));
        }
    }
    c
}

/// Which pods to delete to get from `pods` down to `want`: the first in
/// upstream's deletion order.
pub fn pods_to_delete(mut pods: Vec<Pod>, want: usize) -> Vec<Pod> {
    if pods.len() <= want {
        return Vec::new();
    }
    pods.sort_by(wu::deletion_order);
    let surplus = (pods.len() - want).min(BURST);
    pods.truncate(surplus);
    pods
}

fn object_ref<K: ReplicaOwner>(obj: &K) -> ObjectReference {
    obj.object_ref(&())
}

/// One reconcile of a ReplicaSet-like object.
pub async fn reconcile<K: ReplicaOwner>(obj: Arc<K>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if obj.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    let uid = obj.uid().unwrap_or_default();
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let matcher = Matcher::new(obj.selector().as_ref())?;
    let owner = wu::controller_ref(obj.as_ref());

    let mut owned = Vec::new();
    for pod in pods_api.list(&ListParams::default()).await?.items {
        match wu::claim(&pod.metadata, &uid, &matcher) {
            Claim::Owned => owned.push(pod),
            Claim::Adopt => {
                let pod_uid = pod.uid().unwrap_or_default();
                match wu::adopt(&pods_api, &pod.name_any(), &pod_uid, owner.clone()).await {
                    Ok(()) => owned.push(pod),
                    Err(e) => tracing::debug!(pod = %pod.name_any(), error = %e, "adoption failed"),
                }
            }
            Claim::Release => {
                wu::release(&pods_api, &pod, &uid).await?;
            }
            Claim::Ignore => {}
        }
    }
    let active: Vec<Pod> = owned.into_iter().filter(wu::is_active).collect();
    let want = obj.replicas().max(0) as usize;
    let oref = object_ref(obj.as_ref());

    if active.len() < want {
        if let Some(template) = obj.template() {
            let prefix = format!("{}-", obj.name_any());
            let n = (want - active.len()).min(BURST);
            for _ in 0..n {
                let pod = wu::pod_from_template(template, &prefix, owner.clone());
                match wu::create_pod(&pods_api, &pod).await {
                    Ok(p) => {
                        let msg = format!("Created pod: {}", p.name_any());
                        ctx.recorder
                            .record(&oref, EventType::Normal, "SuccessfulCreate", &msg)
                            .await;
                    }
                    Err(e) => {
                        let msg = format!("Error creating: {e}");
                        ctx.recorder
                            .record(&oref, EventType::Warning, "FailedCreate", &msg)
                            .await;
                        return Err(e.into());
                    }
                }
            }
        }
    } else {
        for pod in pods_to_delete(active.clone(), want) {
            match pods_api.delete(&pod.name_any(), &DeleteParams::default()).await {
                Ok(_) => {
                    let msg = format!("Deleted pod: {}", pod.name_any());
                    ctx.recorder
                        .record(&oref, EventType::Normal, "SuccessfulDelete", &msg)
                        .await;
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    let tlabels = obj
        .template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let counts = count(&active, &tlabels, obj.min_ready_seconds());
    let status = serde_json::json!({
        "replicas": counts.replicas,
        "fullyLabeledReplicas": counts.fully_labeled,
        "readyReplicas": counts.ready,
        "availableReplicas": counts.available,
        "observedGeneration": obj.meta().generation,
    });
    if !status_matches(&obj.status_json(), &status) {
        let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = serde_json::json!({ "status": status });
        api.patch_status(&obj.name_any(), &PatchParams::default(), &Patch::Merge(patch))
            .await?;
    }
    Ok(match counts.next_available_in {
        Some(s) => Action::requeue(Duration::from_secs(s.max(1) as u64)),
        None => Action::requeue(Duration::from_secs(300)),
    })
}

/// Whether every field of `want` already has that value in `have` (absent
/// zero counts count as equal, as the API omits them).
fn status_matches(have: &serde_json::Value, want: &serde_json::Value) -> bool {
    let Some(w) = want.as_object() else { return false };
    w.iter().all(|(k, v)| {
        let h = have.get(k).cloned().unwrap_or(serde_json::Value::Null);
        h == *v || (h.is_null() && v.as_i64() == Some(0))
    })
}

/// Retries a failed reconcile after a short pause.
pub fn error_policy<K: ReplicaOwner>(obj: Arc<K>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::debug!(name = %obj.name_any(), error = %err, "replicaset reconcile failed");
    Action::requeue(Duration::from_secs(2))
}

async fn run_for<K: ReplicaOwner>(
    informers: Arc<Informers>,
    component: &str,
) -> Result<(), crate::manager::Error> {
    let client = informers.client().clone();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        recorder: Recorder::new(client, component),
    });
    informer::controller::<K>(&informers)
        .owns_shared_stream(informers.all::<Pod>().triggers())
        .run(reconcile::<K>, error_policy::<K>, ctx)
        .for_each(|_| async {})
        .await;
    Ok(())
}

/// Runs the ReplicaSet controller (with its own informers) until its watches end.
pub async fn run(client: kube::Client, cfg: Arc<ControllerConfig>) -> Result<(), crate::manager::Error> {
    run_with(Arc::new(Informers::new(client)), cfg).await
}

/// Runs the ReplicaSet controller on the manager's shared informers.
pub async fn run_with(
    informers: Arc<Informers>,
    _cfg: Arc<ControllerConfig>,
) -> Result<(), crate::manager::Error> {
    run_for::<ReplicaSet>(informers, "replicaset-controller").await
}

/// Runs the ReplicationController controller on the manager's shared informers.
pub async fn run_rc(
    informers: Arc<Informers>,
    _cfg: Arc<ControllerConfig>,
) -> Result<(), crate::manager::Error> {
    run_for::<ReplicationController>(informers, "replication-controller").await
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn pod(name: &str, node: Option<&str>, ready_secs_ago: Option<i64>) -> Pod {
        let now = jiff::Timestamp::now();
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(Into::into),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(if node.is_some() { "Running" } else { "Pending" }.into()),
                conditions: ready_secs_ago.map(|s| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(now - jiff::SignedDuration::from_secs(s))),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn scale_down_removes_unscheduled_and_unready_pods_first() {
        let pods = vec![
            pod("a", Some("n"), Some(100)),
            pod("b", None, None),
            pod("c", Some("n"), None),
        ];
        let names: Vec<_> = pods_to_delete(pods, 1).iter().map(|p| p.name_any()).collect();
        assert_eq!(names, ["b", "c"]);
    }

    #[test]
    fn counts_respect_min_ready_seconds_and_template_labels() {
        let pods = vec![
            pod("a", Some("n"), Some(100)),
            pod("b", Some("n"), Some(1)),
            pod("c", None, None),
        ];
        let tl: BTreeMap<_, _> = [
            ("app".to_string(), "web".to_string()),
            ("tier".to_string(), "x".to_string()),
        ]
        .into();
        let c = count(&pods, &tl, 10);
        assert_eq!((c.replicas, c.ready, c.available, c.fully_labeled), (3, 2, 1, 0));
        assert!(c.next_available_in.is_some_and(|s| s <= 9));
    }

    #[test]
    fn omitted_zero_counts_equal_explicit_zeros() {
        let have = serde_json::json!({"replicas": 2});
        assert!(status_matches(
            &have,
            &serde_json::json!({"replicas": 2, "readyReplicas": 0})
        ));
        assert!(!status_matches(&have, &serde_json::json!({"replicas": 3})));
    }
}
