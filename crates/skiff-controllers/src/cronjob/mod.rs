//! The CronJob controller (batch/v1): at each due time of `spec.schedule`
//! (in `spec.timeZone`, else the controller's zone) it creates the Job
//! `<cronjob>-<scheduled minutes since epoch>` from `jobTemplate`, honouring
//! `startingDeadlineSeconds`, `concurrencyPolicy` (Allow/Forbid/Replace) and
//! `suspend`; it keeps `status.active`, `lastScheduleTime` and
//! `lastSuccessfulTime`, prunes finished Jobs beyond the history limits, and
//! requeues itself exactly at the next schedule time (no polling).
//!
//! Missed runs behave as upstream: only the most recent missed time runs,
//! with a `TooManyMissedTimes` warning beyond 100.
//!
//! Must not: touch Jobs it does not control.

pub mod logic;
pub mod schedule;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use crate::events::{EventType, Recorder};
use crate::informer::{self, Informers};
use crate::manager::ControllerConfig;
use crate::workload_util as wu;
use logic::{Finished, ScheduleState};
use schedule::Schedule;

/// The annotation carrying a Job's scheduled time.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// Margin after a schedule time before the requeue fires, as upstream.
const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);

/// What one reconcile can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The object has no namespace.
    #[error("object without a namespace")]
    NoNamespace,
}

/// State shared by reconciles.
pub struct Ctx {
    /// The API client.
    pub client: kube::Client,
    /// Event recorder (`cronjob-controller`).
    pub recorder: Recorder,
}

fn job_ref(job: &Job) -> ObjectReference {
    let mut r = job.object_ref(&());
    r.field_path = None;
    r
}

/// Reconciles the active list with the owned `jobs`; returns the updated
/// status fields.
async fn sync_active(ctx: &Ctx, cj: &CronJob, jobs: &[Job], status: &mut CronJobStatus) {
    let oref = cj.object_ref(&());
    let mut active = status.active.take().unwrap_or_default();
    for j in jobs {
        let uid = j.uid();
        let listed = active.iter().any(|r| r.uid == uid);
        match logic::finished(j) {
            None if !listed => {
                let msg = format!(
                    "Saw a job that the controller did not create or forgot: {}",
                    j.name_any()
                );
                ctx.recorder
                    .record(&oref, EventType::Warning, "UnexpectedJob", &msg)
                    .await;
            }
            None => {}
            Some(f) => {
                if listed {
                    active.retain(|r| r.uid != uid);
                    let cond = if f == Finished::Complete {
                        "Complete"
                    } else {
                        "Failed"
                    };
                    let msg = format!("Saw completed job: {}, condition: {cond}", j.name_any());
                    ctx.recorder
                        .record(&oref, EventType::Normal, "SawCompletedJob", &msg)
                        .await;
                }
                if f == Finished::Complete {
                    let done = j.status.as_ref().and_then(|s| s.completion_time.clone());
                    if let Some(t) = done
                        && status.last_successful_time.as_ref().is_none_or(|l| t.0 > l.0)
                    {
                        status.last_successful_time = Some(t);
                    }
                }
            }
        }
    }
    let mut kept = Vec::new();
    for r in active {
        if jobs.iter().any(|j| j.uid() == r.uid) {
            kept.push(r);
        } else {
            let msg = format!(
                "Active job went missing: {}",
                r.name.as_deref().unwrap_or_default()
            );
            ctx.recorder
                .record(&oref, EventType::Normal, "MissingJob", &msg)
                .await;
        }
    }
    status.active = Some(kept);
}

/// The Job for `scheduled`, built from the CronJob's template.
fn job_for(cj: &CronJob, scheduled: Timestamp, tz: &TimeZone) -> Job {
    let template = cj
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    let mut annotations = tmeta.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP.into(),
        logic::scheduled_timestamp(scheduled, tz),
    );
    Job {
        metadata: ObjectMeta {
            name: Some(logic::job_name(&cj.name_any(), scheduled)),
            labels: tmeta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![wu::controller_ref(cj)]),
            ..ObjectMeta::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// Deletes a Job with Background propagation; a missing Job is fine.
async fn delete_job(ctx: &Ctx, api: &Api<Job>, cj: &CronJob, name: &str) -> Result<(), Error> {
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {
            let msg = format!("Deleted job {name}");
            ctx.recorder
                .record(&cj.object_ref(&()), EventType::Normal, "SuccessfulDelete", &msg)
                .await;
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Time until `next` plus the upstream margin.
fn requeue_at(next: Option<Timestamp>, now: Timestamp) -> Action {
    match next {
        Some(t) => {
            let wait = Duration::try_from(t.duration_since(now)).unwrap_or(Duration::ZERO);
            Action::requeue(wait + NEXT_SCHEDULE_DELTA)
        }
        None => Action::await_change(),
    }
}

/// One reconcile of a CronJob.
pub async fn reconcile(obj: Arc<CronJob>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    let cj_api: Api<CronJob> = Api::namespaced(ctx.client.clone(), &ns);
    // The cache may lag behind our own last status write: read it fresh.
    let Some(cj) = cj_api.get_opt(&obj.name_any()).await? else {
        return Ok(Action::await_change());
    };
    let uid = cj.uid().unwrap_or_default();
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let jobs: Vec<Job> = jobs_api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|j| wu::controller_of(&j.metadata).is_some_and(|r| r.uid == uid))
        .collect();
    let old_status = normalized(cj.status.clone().unwrap_or_default());
    let mut status = old_status.clone();
    sync_active(&ctx, &cj, &jobs, &mut status).await;
    let action = schedule_run(&ctx, &cj, &jobs_api, &jobs, &mut status).await?;
    // An empty active list is written as absent: compare it that way, or
    // every reconcile would write (and wake itself) again.
    let status = normalized(status);
    if status != old_status {
        let patch = serde_json::json!({ "status": {
            "active": status.active,
            "lastScheduleTime": status.last_schedule_time,
            "lastSuccessfulTime": status.last_successful_time,
        }});
        cj_api
            .patch_status(&cj.name_any(), &PatchParams::default(), &Patch::Merge(patch))
            .await?;
    }
    Ok(action)
}

/// `status` with an empty active list as absent, as the API stores it.
fn normalized(mut status: CronJobStatus) -> CronJobStatus {
    if status.active.as_ref().is_some_and(Vec::is_empty) {
        status.active = None;
    }
    status
}

/// Starts the due run, if any, and prunes history; returns when to come back.
async fn schedule_run(
    ctx: &Ctx,
    cj: &CronJob,
    jobs_api: &Api<Job>,
    jobs: &[Job],
    status: &mut CronJobStatus,
) -> Result<Action, Error> {
    let Some(spec) = cj.spec.as_ref() else {
        return Ok(Action::await_change());
    };
    let oref = cj.object_ref(&());
    if cj.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let tz = match spec.time_zone.as_deref() {
        Some(name) => match TimeZone::get(name) {
            Ok(tz) => tz,
            Err(e) => {
                let msg = format!("invalid timeZone: {name:?}: {e}");
                ctx.recorder
                    .record(&oref, EventType::Warning, "UnknownTimeZone", &msg)
                    .await;
                return Ok(Action::await_change());
            }
        },
        None => TimeZone::system(),
    };
    let sched = match Schedule::parse(&spec.schedule) {
        Ok(s) => s,
        Err(e) => {
            let msg = format!("unparseable schedule: {:?} : {e}", spec.schedule);
            ctx.recorder
                .record(&oref, EventType::Warning, "UnparseableSchedule", &msg)
                .await;
            return Ok(Action::await_change());
        }
    };
    prune(ctx, cj, jobs_api, jobs).await?;
    if spec.suspend == Some(true) {
        return Ok(Action::await_change());
    }
    let now = Timestamp::now();
    let next = sched.next(now, &tz);
    let state = ScheduleState {
        created: cj.metadata.creation_timestamp.as_ref().map_or(now, |t| t.0),
        last_scheduled: status.last_schedule_time.as_ref().map(|t| t.0),
        starting_deadline_seconds: spec.starting_deadline_seconds,
    };
    let Some(due) = logic::due(&state, now, &sched, &tz) else {
        return Ok(requeue_at(next, now));
    };
    if due.missed > logic::MANY_MISSED {
        let msg = format!(
            "too many missed start times: {}. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
            due.missed
        );
        ctx.recorder
            .record(&oref, EventType::Warning, "TooManyMissedTimes", &msg)
            .await;
    }
    if let Some(sds) = spec.starting_deadline_seconds
        && due.time.as_second() + sds < now.as_second()
    {
        let at = due.time.to_zoned(tz.clone()).strftime("%a, %d %b %Y %H:%M:%S %z");
        let msg = format!("Missed scheduled time to start a job: {at}");
        ctx.recorder
            .record(&oref, EventType::Warning, "MissSchedule", &msg)
            .await;
        return Ok(requeue_at(next, now));
    }
    let name = logic::job_name(&cj.name_any(), due.time);
    let active = status.active.get_or_insert_with(Vec::new);
    if active.iter().any(|r| r.name.as_deref() == Some(name.as_str())) {
        return Ok(requeue_at(next, now));
    }
    match spec.concurrency_policy.as_deref() {
        Some("Forbid") if !active.is_empty() => {
            let msg = "Not starting job because prior execution is running and concurrency policy is Forbid";
            ctx.recorder
                .record(&oref, EventType::Normal, "JobAlreadyActive", msg)
                .await;
            return Ok(requeue_at(next, now));
        }
        Some("Replace") => {
            for r in std::mem::take(active) {
                delete_job(ctx, jobs_api, cj, r.name.as_deref().unwrap_or_default()).await?;
            }
        }
        _ => {}
    }
    let job = job_for(cj, due.time, &tz);
    let created = match jobs_api.create(&PostParams::default(), &job).await {
        Ok(j) => {
            let msg = format!("Created job {name}");
            ctx.recorder
                .record(&oref, EventType::Normal, "SuccessfulCreate", &msg)
                .await;
            j
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            // Created by an earlier reconcile whose status write we lost.
            match jobs.iter().find(|j| j.name_any() == name) {
                Some(j) => j.clone(),
                None => return Ok(requeue_at(next, now)),
            }
        }
        Err(e) => {
            let msg = format!("Error creating job: {e}");
            ctx.recorder
                .record(&oref, EventType::Warning, "FailedCreate", &msg)
                .await;
            return Err(e.into());
        }
    };
    if logic::finished(&created).is_none() && !active.iter().any(|r| r.uid == created.uid()) {
        active.push(job_ref(&created));
    }
    status.last_schedule_time = Some(Time(due.time));
    Ok(requeue_at(next, now))
}

/// Deletes finished Jobs beyond the history limits.
async fn prune(ctx: &Ctx, cj: &CronJob, jobs_api: &Api<Job>, jobs: &[Job]) -> Result<(), Error> {
    let Some(spec) = cj.spec.as_ref() else {
        return Ok(());
    };
    for name in logic::to_prune(
        jobs,
        spec.successful_jobs_history_limit,
        spec.failed_jobs_history_limit,
    ) {
        delete_job(ctx, jobs_api, cj, &name).await?;
    }
    Ok(())
}

/// Retries a failed reconcile after a short pause.
pub fn error_policy(obj: Arc<CronJob>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::debug!(name = %obj.name_any(), error = %err, "cronjob reconcile failed");
    Action::requeue(Duration::from_secs(2))
}

/// Runs the CronJob controller (with its own informers) until its watches end.
pub async fn run(client: kube::Client, cfg: Arc<ControllerConfig>) -> Result<(), crate::manager::Error> {
    run_with(Arc::new(Informers::new(client)), cfg).await
}

/// Runs the CronJob controller on the manager's shared informers.
pub async fn run_with(
    informers: Arc<Informers>,
    _cfg: Arc<ControllerConfig>,
) -> Result<(), crate::manager::Error> {
    let client = informers.client().clone();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        recorder: Recorder::new(client, "cronjob-controller"),
    });
    informer::controller::<CronJob>(&informers)
        .owns_shared_stream(informers.all::<Job>().triggers())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
    Ok(())
}
