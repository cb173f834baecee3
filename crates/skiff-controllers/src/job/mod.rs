//! The Job controller (batch/v1): runs pods from `spec.template` until
//! `completions` succeed (NonIndexed, or Indexed with one pod per completion
//! index), at most `parallelism` at once; fails the Job past `backoffLimit`
//! or `activeDeadlineSeconds` (deleting its active pods); honours `suspend`;
//! keeps `status` (active/ready/terminating/succeeded/failed, startTime,
//! completionTime, completedIndexes, conditions) and records upstream's
//! events. It also plays upstream's ttl-after-finished controller: a
//! finished Job with `ttlSecondsAfterFinished` is deleted once that expires.
//!
//! Decisions live in [`plan`]; this module claims pods and carries out plans.
//!
//! Must not: touch pods it does not control.

pub mod plan;
pub mod pods;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use crate::events::{EventType, Recorder};
use crate::informer::{self, Informers};
use crate::manager::ControllerConfig;
use crate::workload_util::{self as wu, Claim, Matcher};

/// Most pods created in one sync (upstream's burst).
const BURST: usize = 500;
/// How often a quiet, unfinished Job is looked at again anyway.
const RESYNC: Duration = Duration::from_secs(300);

/// What one reconcile can fail with, and the state reconciles share
/// (one definition for every workload controller).
pub use crate::workload_util::{ReconcileCtx as Ctx, ReconcileError as Error};

/// When a finished Job's `ttlSecondsAfterFinished` expires.
pub fn ttl_expiry(job: &Job) -> Option<Timestamp> {
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let status = job.status.as_ref()?;
    let finished = status.completion_time.as_ref().map(|t| t.0).or_else(|| {
        status
            .conditions
            .iter()
            .flatten()
            .filter(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
            .find_map(|c| c.last_transition_time.as_ref().map(|t| t.0))
    })?;
    Some(finished + jiff::SignedDuration::from_secs(i64::from(ttl)))
}

/// Deletes an expired finished Job (foreground, guarded by uid, as
/// upstream's ttl-after-finished controller) or requeues at its expiry.
async fn finished(api: &Api<Job>, job: &Job) -> Result<Action, Error> {
    let Some(expiry) = ttl_expiry(job) else {
        return Ok(Action::await_change());
    };
    let now = Timestamp::now();
    if expiry > now {
        let wait = Duration::try_from(expiry.duration_since(now)).unwrap_or(Duration::ZERO);
        return Ok(Action::requeue(wait + Duration::from_millis(100)));
    }
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        preconditions: Some(Preconditions {
            uid: job.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&job.name_any(), &dp).await {
        Ok(_) => Ok(Action::await_change()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

/// The Job's pods: owned ones, plus matching orphans it adopts.
async fn claim_pods(api: &Api<Pod>, job: &Job) -> Result<Vec<Pod>, Error> {
    let selector = job.spec.as_ref().and_then(|s| s.selector.clone());
    let matcher = Matcher::new(selector.as_ref())?;
    let labels: Vec<String> = selector
        .iter()
        .flat_map(|s| s.match_labels.iter().flatten())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let lp = ListParams::default().labels(&labels.join(","));
    let uid = job.uid().unwrap_or_default();
    let owner = wu::controller_ref(job);
    let mut owned = Vec::new();
    for pod in api.list(&lp).await?.items {
        match wu::claim(&pod.metadata, &uid, &matcher) {
            Claim::Owned => owned.push(pod),
            Claim::Adopt => {
                let pod_uid = pod.uid().unwrap_or_default();
                match wu::adopt(api, &pod.name_any(), &pod_uid, owner.clone()).await {
                    Ok(()) => owned.push(pod),
                    Err(e) => tracing::debug!(pod = %pod.name_any(), error = %e, "adoption failed"),
                }
            }
            Claim::Release => wu::release(api, &pod, &uid).await?,
            Claim::Ignore => {}
        }
    }
    Ok(owned)
}

/// Creates pods in batches of 1, 2, 4, ... (upstream's slow start), stopping
/// at the first batch with a failure; returns how many were created.
async fn create_pods(
    ctx: &Ctx,
    api: &Api<Pod>,
    job: &Job,
    oref: &ObjectReference,
    want: &[Option<i32>],
) -> Result<i32, Error> {
    let Some(template) = job.spec.as_ref().map(|s| &s.template) else {
        return Ok(0);
    };
    let name = job.name_any();
    let owner = wu::controller_ref(job);
    let mut created = 0;
    let mut batch = 1;
    let mut rest = &want[..want.len().min(BURST)];
    while !rest.is_empty() {
        let (now, later) = rest.split_at(batch.min(rest.len()));
        let results = futures::future::join_all(now.iter().map(|index| {
            let pod = pods::build(template, &name, *index, owner.clone());
            async move { wu::create_pod(api, &pod).await }
        }))
        .await;
        let mut first_err = None;
        for r in results {
            match r {
                Ok(p) => {
                    created += 1;
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
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e.into());
        }
        rest = later;
        batch *= 2;
    }
    Ok(created)
}

/// One reconcile of a Job.
pub async fn reconcile(obj: Arc<Job>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    // The cache may lag behind our own last status write: read it fresh.
    let Some(job) = api.get_opt(&obj.name_any()).await? else {
        return Ok(Action::await_change());
    };
    if job.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if plan::is_finished(job.status.as_ref()) {
        return finished(&api, &job).await;
    }
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let owned = claim_pods(&pods_api, &job).await?;
    let spec = plan::Spec::of(&job);
    let mut p = plan::plan(&spec, job.status.as_ref(), &owned, Timestamp::now());
    let oref = job.object_ref(&());

    for name in &p.delete {
        match pods_api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {
                let msg = format!("Deleted pod: {name}");
                ctx.recorder
                    .record(&oref, EventType::Normal, "SuccessfulDelete", &msg)
                    .await;
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    let created = create_pods(&ctx, &pods_api, &job, &oref, &p.create).await;
    if let Ok(n) = &created {
        p.status.active = Some(p.status.active.unwrap_or(0) + n);
    }
    if job.status.as_ref() != Some(&p.status) {
        let patch = serde_json::json!({ "status": p.status });
        api.patch_status(&job.name_any(), &PatchParams::default(), &Patch::Merge(patch))
            .await?;
    }
    for (kind, reason, msg) in &p.events {
        ctx.recorder.record(&oref, *kind, reason, msg).await;
    }
    created?;
    if plan::is_finished(Some(&p.status)) {
        let mut done = job.clone();
        done.status = Some(p.status);
        return finished(&api, &done).await;
    }
    Ok(Action::requeue(p.requeue.unwrap_or(RESYNC)))
}

/// Retries a failed reconcile after a short pause.
pub fn error_policy(obj: Arc<Job>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::debug!(name = %obj.name_any(), error = %err, "job reconcile failed");
    Action::requeue(Duration::from_secs(2))
}

/// Runs the Job controller (with its own informers) until its watches end.
pub async fn run(client: kube::Client, cfg: Arc<ControllerConfig>) -> Result<(), crate::manager::Error> {
    run_with(Arc::new(Informers::new(client)), cfg).await
}

/// Runs the Job controller on the manager's shared informers.
pub async fn run_with(
    informers: Arc<Informers>,
    _cfg: Arc<ControllerConfig>,
) -> Result<(), crate::manager::Error> {
    let client = informers.client().clone();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        recorder: Recorder::new(client, "job-controller"),
    });
    informer::controller::<Job>(&informers)
        .owns_shared_stream(informers.all::<Pod>().triggers())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
    Ok(())
}
