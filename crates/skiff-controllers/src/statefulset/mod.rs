//! The StatefulSet controller: pods with stable names and ordinals
//! ([`pods`]), created in order and removed from the highest ordinal
//! (OrderedReady) or all at once (Parallel), per-ordinal PVCs from
//! volumeClaimTemplates kept per the retention policy, rolling updates with a
//! partition or OnDelete ([`plan`]), ControllerRevision history shared with
//! the DaemonSet controller, and the status counts and revisions.
//!
//! Must not: touch pods or claims it does not own, or recreate a pod before
//! the previous one with its name is gone.

pub mod plan;
pub mod pods;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolumeClaim, Pod, PodTemplateSpec};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::daemonset::history;
use crate::events::{EventType, Recorder};
use crate::informer::{self, Informers};
use crate::manager::ControllerConfig;
use crate::workload_util::{self as wu, Claim, Matcher};
use plan::Step;

/// What one reconcile can fail with, and the state reconciles share
/// (one definition for every workload controller).
pub use crate::workload_util::{ReconcileCtx as Ctx, ReconcileError as Error};

/// The pods `set` controls, adopting matching orphans and releasing
/// pods that stopped matching.
async fn claim_pods(api: &Api<Pod>, set: &StatefulSet, matcher: &Matcher) -> Result<Vec<Pod>, Error> {
    let uid = set.uid().unwrap_or_default();
    let owner = wu::controller_ref(set);
    let mut owned = Vec::new();
    for pod in api.list(&ListParams::default()).await?.items {
        match wu::claim(&pod.metadata, &uid, matcher) {
            Claim::Owned => owned.push(pod),
            Claim::Adopt if pods::ordinal_of(&set.name_any(), &pod.name_any()).is_some() => {
                let pod_uid = pod.uid().unwrap_or_default();
                if wu::adopt(api, &pod.name_any(), &pod_uid, owner.clone())
                    .await
                    .is_ok()
                {
                    owned.push(pod);
                }
            }
            Claim::Release => wu::release(api, &pod, &uid).await?,
            Claim::Adopt | Claim::Ignore => {}
        }
    }
    Ok(owned)
}

/// One reconcile of a StatefulSet.
pub async fn reconcile(set: Arc<StatefulSet>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if set.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(spec) = set.spec.as_ref() else {
        return Ok(Action::await_change());
    };
    let ns = set.namespace().ok_or(Error::NoNamespace)?;
    let name = set.name_any();
    let matcher = Matcher::new(Some(&spec.selector))?;
    let status = set.status.clone().unwrap_or_default();
    let collisions = status.collision_count.unwrap_or(0);
    let hist = history::sync(&ctx.client, set.as_ref(), &spec.template, &matcher, collisions).await?;
    let update_rev = hist.update.clone();
    let current_rev = status
        .current_revision
        .as_ref()
        .and_then(|c| hist.revisions.iter().find(|r| &r.name_any() == c))
        .cloned()
        .unwrap_or_else(|| update_rev.clone());
    let (current, update) = (current_rev.name_any(), update_rev.name_any());
    let current_template = pods::template_of(&current_rev).unwrap_or_else(|| spec.template.clone());

    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let owned = claim_pods(&pods_api, &set, &matcher).await?;
    let by_ordinal = plan::by_ordinal(&name, owned);
    let strategy = spec.update_strategy.as_ref();
    let rolling = strategy
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate";
    let partition = strategy
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0);
    let now = jiff::Timestamp::now();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let snapshot = plan::Snapshot {
        pods: &by_ordinal,
        start: spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0),
        replicas: spec.replicas.unwrap_or(1),
        ordered: spec.pod_management_policy.as_deref() != Some("Parallel"),
        rolling,
        partition,
        current: &current,
        update: &update,
        min_ready,
        now,
    };
    let oref = set.object_ref(&());
    for step in plan::plan(&snapshot) {
        match step {
            Step::Create { ordinal, update: u } => {
                let (template, rev) = if u {
                    (&spec.template, &update)
                } else {
                    (&current_template, &current)
                };
                create(&ctx, &set, &oref, template, rev, ordinal).await?;
            }
            Step::Delete { ordinal, condemned } => {
                if let Some(p) = by_ordinal.get(&ordinal) {
                    delete(&ctx, &set, &oref, p, condemned).await?;
                }
            }
        }
    }

    let in_use: BTreeSet<String> = by_ordinal
        .values()
        .filter_map(|p| pods::pod_revision(p).map(str::to_string))
        .collect();
    let keep: BTreeSet<String> = [current.clone(), update.clone()].into();
    let limit = spec.revision_history_limit.unwrap_or(10);
    history::prune(&ctx.client, &ns, &hist.revisions, &keep, &in_use, limit).await?;

    let c = plan::count(&by_ordinal, &current, &update, min_ready, now);
    let want = spec.replicas.unwrap_or(1);
    let done = c.updated == want && c.ready == want && c.replicas == want;
    let (cur_name, cur_count) = if done {
        (update.clone(), c.updated)
    } else {
        (current.clone(), c.current)
    };
    let mut new_status = json!({
        "replicas": c.replicas,
        "readyReplicas": c.ready,
        "availableReplicas": c.available,
        "currentReplicas": cur_count,
        "updatedReplicas": c.updated,
        "currentRevision": cur_name,
        "updateRevision": update,
        "observedGeneration": set.metadata.generation,
    });
    if hist.collision_count > 0 {
        new_status["collisionCount"] = json!(hist.collision_count);
    }
    let have = serde_json::to_value(&set.status).unwrap_or_default();
    if !crate::daemonset::status_unchanged(&have, &new_status) {
        let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = Patch::Merge(json!({ "status": new_status }));
        api.patch_status(&name, &PatchParams::default(), &patch).await?;
    }
    let waiting = by_ordinal
        .values()
        .filter_map(|p| wu::seconds_to_available(p, min_ready, now))
        .min();
    Ok(match waiting {
        Some(s) => Action::requeue(Duration::from_secs(s.max(1) as u64)),
        None => Action::requeue(Duration::from_secs(300)),
    })
}

/// Creates the claims (if missing) and then the pod of `ordinal`.
async fn create(
    ctx: &Ctx,
    set: &StatefulSet,
    oref: &ObjectReference,
    template: &PodTemplateSpec,
    revision: &str,
    ordinal: i32,
) -> Result<(), Error> {
    let ns = set.namespace().unwrap_or_default();
    let name = set.name_any();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    let pod_name = pods::pod_name(&name, ordinal);
    for claim in pods::claims_for(set, ordinal) {
        match pvcs.create(&PostParams::default(), &claim).await {
            Ok(c) => {
                let msg = format!(
                    "create Claim {} Pod {pod_name} in StatefulSet {name} success",
                    c.name_any()
                );
                ctx.recorder
                    .record(oref, EventType::Normal, "SuccessfulCreate", &msg)
                    .await;
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => {
                let msg = format!(
                    "create Claim {} for Pod {pod_name} in StatefulSet {name} failed error: {e}",
                    claim.name_any()
                );
                ctx.recorder
                    .record(oref, EventType::Warning, "FailedCreate", &msg)
                    .await;
                return Err(e.into());
            }
        }
    }
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let pod = pods::new_pod(set, template, revision, ordinal);
    match pods_api.create(&PostParams::default(), &pod).await {
        Ok(_) => {
            let msg = format!("create Pod {pod_name} in StatefulSet {name} successful");
            ctx.recorder
                .record(oref, EventType::Normal, "SuccessfulCreate", &msg)
                .await;
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => {
            let msg = format!("create Pod {pod_name} in StatefulSet {name} failed error: {e}");
            ctx.recorder
                .record(oref, EventType::Warning, "FailedCreate", &msg)
                .await;
            Err(e.into())
        }
    }
}

/// Deletes a pod; a scaled-away pod first hands its claims to the pod
/// when `whenScaled: Delete`, so they go with it.
async fn delete(
    ctx: &Ctx,
    set: &StatefulSet,
    oref: &ObjectReference,
    pod: &Pod,
    condemned: bool,
) -> Result<(), Error> {
    let ns = set.namespace().unwrap_or_default();
    let name = set.name_any();
    let pod_name = pod.name_any();
    if condemned
        && pods::retention(set).1 == "Delete"
        && let Some(ordinal) = pods::ordinal_of(&name, &pod_name)
    {
        let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
        for claim in pods::claims_for(set, ordinal) {
            let mut refs = claim.metadata.owner_references.clone().unwrap_or_default();
            refs.push(pods::owner_ref(pod));
            let patch = json!({ "metadata": { "ownerReferences": refs } });
            match pvcs
                .patch(&claim.name_any(), &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if !condemned && phase == Some("Failed") {
        let msg = format!("StatefulSet {ns}/{name} is recreating failed Pod {pod_name}");
        ctx.recorder
            .record(oref, EventType::Warning, "RecreatingFailedPod", &msg)
            .await;
    }
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let params = DeleteParams {
        preconditions: pod.uid().map(|uid| kube::api::Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&pod_name, &params).await {
        Ok(_) => {
            let msg = format!("delete Pod {pod_name} in StatefulSet {name} successful");
            ctx.recorder
                .record(oref, EventType::Normal, "SuccessfulDelete", &msg)
                .await;
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Retries a failed reconcile after a short pause.
pub fn error_policy(set: Arc<StatefulSet>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::debug!(name = %set.name_any(), error = %err, "statefulset reconcile failed");
    Action::requeue(Duration::from_secs(2))
}

/// Runs the StatefulSet controller (with its own informers) until its watches end.
pub async fn run(client: kube::Client, cfg: Arc<ControllerConfig>) -> Result<(), crate::manager::Error> {
    run_with(Arc::new(Informers::new(client)), cfg).await
}

/// Runs the StatefulSet controller on the manager's shared informers.
pub async fn run_with(
    informers: Arc<Informers>,
    _cfg: Arc<ControllerConfig>,
) -> Result<(), crate::manager::Error> {
    let client = informers.client().clone();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        recorder: Recorder::new(client, "statefulset-controller"),
    });
    informer::controller::<StatefulSet>(&informers)
        .owns_shared_stream(informers.all::<Pod>().triggers())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
    Ok(())
}
