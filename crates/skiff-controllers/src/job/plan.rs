//! The Job controller's decisions as one pure function, [`plan`]: from the
//! Job's spec and status and its pods, which pods to create (and with which
//! completion index) or delete, the new status (counts, startTime,
//! conditions SuccessCriteriaMet/Complete, FailureTarget/Failed, Suspended),
//! the events to record and when to look again (deadline, failure backoff).
//!
//! Simplification (documented): counts come from the pods that exist, never
//! decreasing below what the status already says; upstream's tracking
//! finalizer and `uncountedTerminatedPods` bookkeeping are not used, so a
//! finished pod deleted before it was ever seen is not counted.
//!
//! Must not: call the API server or read the clock; `now` is passed in.

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::pods::{self, PodState};
use crate::events::EventType;
use crate::workload_util as wu;

/// Upstream's first pod-failure backoff; it doubles per failure.
const BACKOFF_BASE: Duration = Duration::from_secs(10);
/// Upstream's longest pod-failure backoff.
const BACKOFF_MAX: Duration = Duration::from_secs(600);

/// The parts of a Job's spec the controller acts on, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// `completions` (None: done when any pod succeeds and none is active).
    pub completions: Option<i32>,
    /// `parallelism`.
    pub parallelism: i32,
    /// `backoffLimit`.
    pub backoff_limit: i32,
    /// `activeDeadlineSeconds`.
    pub active_deadline_seconds: Option<i64>,
    /// `suspend`.
    pub suspend: bool,
    /// `completionMode: Indexed`.
    pub indexed: bool,
    /// The template's `restartPolicy` is OnFailure (restarts count as failures).
    pub on_failure: bool,
    /// `podReplacementPolicy: Failed`: terminating pods are not replaced yet.
    pub replace_only_failed: bool,
}

impl Spec {
    /// Reads `job.spec` with upstream's defaults.
    pub fn of(job: &Job) -> Spec {
        let s = job.spec.clone().unwrap_or_default();
        let restart = s.template.spec.as_ref().and_then(|p| p.restart_policy.clone());
        Spec {
            completions: s.completions,
            parallelism: s.parallelism.unwrap_or(1).max(0),
            backoff_limit: s.backoff_limit.unwrap_or(6),
            active_deadline_seconds: s.active_deadline_seconds,
            suspend: s.suspend == Some(true),
            indexed: s.completion_mode.as_deref() == Some("Indexed"),
            on_failure: restart.as_deref() == Some("OnFailure"),
            replace_only_failed: s.pod_replacement_policy.as_deref() == Some("Failed"),
        }
    }
}

/// What one sync should do.
#[derive(Debug, Default)]
pub struct Plan {
    /// Pods to create: one entry each, with its completion index if Indexed.
    pub create: Vec<Option<i32>>,
    /// Names of pods to delete.
    pub delete: Vec<String>,
    /// The status to write.
    pub status: JobStatus,
    /// Events to record about the Job.
    pub events: Vec<(EventType, &'static str, String)>,
    /// Look again after this long even if nothing changes.
    pub requeue: Option<Duration>,
}

/// Whether the Job has a true Complete or Failed condition.
pub fn is_finished(status: Option<&JobStatus>) -> bool {
    has_true(status, "Complete") || has_true(status, "Failed")
}

fn has_true(status: Option<&JobStatus>, type_: &str) -> bool {
    find(status, type_).is_some_and(|c| c.status == "True")
}

fn find<'a>(status: Option<&'a JobStatus>, type_: &str) -> Option<&'a JobCondition> {
    status?.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// Sets condition `type_` to `status`; returns whether anything changed.
/// A False condition is only written over an existing one, as upstream.
fn ensure(st: &mut JobStatus, type_: &str, status: &str, reason: &str, msg: &str, now: Timestamp) -> bool {
    let conds = st.conditions.get_or_insert_with(Vec::new);
    match conds.iter_mut().find(|c| c.type_ == type_) {
        Some(c) if c.status == status => false,
        Some(c) => {
            c.status = status.into();
            c.reason = Some(reason.into());
            c.message = Some(msg.into());
            c.last_probe_time = Some(Time(now));
            c.last_transition_time = Some(Time(now));
            true
        }
        None if status == "False" => false,
        None => {
            conds.push(JobCondition {
                type_: type_.into(),
                status: status.into(),
                reason: Some(reason.into()),
                message: Some(msg.into()),
                last_probe_time: Some(Time(now)),
                last_transition_time: Some(Time(now)),
            });
            true
        }
    }
}

/// How long creations wait after `failures` consecutive failures.
pub fn backoff(failures: usize) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let exp = (failures - 1).min(10) as u32;
    BACKOFF_BASE.saturating_mul(1 << exp).min(BACKOFF_MAX)
}

fn secs_until(t: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(t.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// Why a Job is finishing.
enum Finishing {
    Success,
    Failure(String, String),
}

/// Plans one sync of a Job that has not finished. `pods` are the Job's own
/// pods (already claimed).
pub fn plan(spec: &Spec, old: Option<&JobStatus>, pods: &[Pod], now: Timestamp) -> Plan {
    let mut p = Plan::default();
    let mut st = old.cloned().unwrap_or_default();
    let completions = spec.completions.unwrap_or(0);
    let by = |s: PodState| pods.iter().filter(move |pod| pods::state(pod) == s);
    let mut active: Vec<&Pod> = by(PodState::Active).collect();
    let terminating: Vec<&Pod> = by(PodState::Terminating).collect();
    let failed_pods: Vec<&Pod> = by(PodState::Failed).collect();
    let succeeded_pods: Vec<&Pod> = by(PodState::Succeeded).collect();

    let mut completed = BTreeSet::new();
    if spec.indexed {
        completed = pods::parse_indexes(st.completed_indexes.as_deref().unwrap_or_default());
        completed.extend(
            succeeded_pods
                .iter()
                .filter_map(|pod| pods::index(pod, completions)),
        );
        // Pods with a bad index, a finished index or a duplicate index go.
        let mut seen = BTreeSet::new();
        active.sort_by(|a, b| wu::deletion_order(b, a));
        active.retain(|pod| match pods::index(pod, completions) {
            Some(i) if !completed.contains(&i) && seen.insert(i) => true,
            _ => {
                p.delete.push(pod.name_any());
                false
            }
        });
    }
    let old_count = |f: fn(&JobStatus) -> Option<i32>| old.and_then(f).unwrap_or(0);
    let succeeded = if spec.indexed {
        completed.len() as i32
    } else {
        (succeeded_pods.len() as i32).max(old_count(|s| s.succeeded))
    };
    let failed = (failed_pods.len() as i32).max(old_count(|s| s.failed));

    if st.start_time.is_none() && !spec.suspend {
        st.start_time = Some(Time(now));
    }
    let restarts: i32 = if spec.on_failure {
        active.iter().map(|pod| pods::restarts(pod)).sum()
    } else {
        0
    };
    let past_backoff = failed > spec.backoff_limit
        || (spec.on_failure
            && if spec.backoff_limit == 0 {
                restarts > 0
            } else {
                restarts >= spec.backoff_limit
            });
    let deadline = match (spec.active_deadline_seconds, &st.start_time) {
        (Some(ads), Some(start)) if !spec.suspend => Some(start.0 + jiff::SignedDuration::from_secs(ads)),
        _ => None,
    };
    let criteria_met = if spec.indexed {
        succeeded >= completions
    } else {
        match spec.completions {
            Some(c) => succeeded >= c,
            None => succeeded > 0 && active.is_empty(),
        }
    };

    let current = Some(&st);
    let finishing = if let Some(c) = find(current, "FailureTarget").filter(|c| c.status == "True") {
        Some(Finishing::Failure(
            c.reason.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default(),
        ))
    } else if has_true(current, "SuccessCriteriaMet") {
        Some(Finishing::Success)
    } else if past_backoff {
        Some(Finishing::Failure(
            "BackoffLimitExceeded".into(),
            "Job has reached the specified backoff limit".into(),
        ))
    } else if deadline.is_some_and(|d| d <= now) {
        Some(Finishing::Failure(
            "DeadlineExceeded".into(),
            "Job was active longer than specified deadline".into(),
        ))
    } else if criteria_met {
        Some(Finishing::Success)
    } else {
        None
    };

    match finishing {
        Some(f) => {
            p.delete.extend(active.iter().map(|pod| pod.name_any()));
            let done = active.is_empty() && terminating.is_empty();
            match f {
                Finishing::Failure(reason, msg) => {
                    ensure(&mut st, "FailureTarget", "True", &reason, &msg, now);
                    if done && ensure(&mut st, "Failed", "True", &reason, &msg, now) {
                        let ev_reason = if reason == "DeadlineExceeded" {
                            "DeadlineExceeded"
                        } else {
                            "BackoffLimitExceeded"
                        };
                        p.events.push((EventType::Warning, ev_reason, msg.clone()));
                    }
                }
                Finishing::Success => {
                    let msg = "Reached expected number of succeeded pods";
                    ensure(
                        &mut st,
                        "SuccessCriteriaMet",
                        "True",
                        "CompletionsReached",
                        msg,
                        now,
                    );
                    if done && ensure(&mut st, "Complete", "True", "CompletionsReached", msg, now) {
                        st.completion_time = Some(Time(now));
                        p.events
                            .push((EventType::Normal, "Completed", "Job completed".into()));
                    }
                }
            }
            active.clear();
        }
        None if spec.suspend => {
            p.delete.extend(active.iter().map(|pod| pod.name_any()));
            active.clear();
            if ensure(&mut st, "Suspended", "True", "JobSuspended", "Job suspended", now) {
                p.events
                    .push((EventType::Normal, "Suspended", "Job suspended".into()));
            }
        }
        None => {
            if ensure(&mut st, "Suspended", "False", "JobResumed", "Job resumed", now) {
                p.events
                    .push((EventType::Normal, "Resumed", "Job resumed".into()));
                st.start_time = Some(Time(now));
            }
            scale(
                spec,
                &mut p,
                &mut active,
                &terminating,
                &completed,
                succeeded,
                completions,
            );
            // Replacements after failures wait like upstream's backoff.
            let last_success = succeeded_pods
                .iter()
                .filter_map(|pod| pods::finished_at(pod))
                .max();
            let recent: Vec<Timestamp> = failed_pods
                .iter()
                .filter_map(|pod| pods::finished_at(pod))
                .filter(|t| last_success.is_none_or(|s| *t > s))
                .collect();
            if let Some(last) = recent.iter().max()
                && !p.create.is_empty()
            {
                let ready_at = *last + backoff(recent.len());
                if ready_at > now {
                    p.create.clear();
                    p.requeue = Some(secs_until(ready_at, now));
                }
            }
            if let Some(d) = deadline {
                let left = secs_until(d, now);
                p.requeue = Some(p.requeue.map_or(left, |r| r.min(left)));
            }
        }
    }

    st.active = Some(active.len() as i32);
    st.ready = Some(active.iter().filter(|pod| wu::is_ready(pod)).count() as i32);
    st.terminating = Some(terminating.len() as i32);
    st.succeeded = Some(succeeded);
    st.failed = Some(failed);
    if spec.indexed {
        st.completed_indexes = Some(pods::format_indexes(&completed));
    }
    p.status = st;
    p
}

/// Fills `p.create`/`p.delete` so that the right number of pods run.
fn scale(
    spec: &Spec,
    p: &mut Plan,
    active: &mut Vec<&Pod>,
    terminating: &[&Pod],
    completed: &BTreeSet<i32>,
    succeeded: i32,
    completions: i32,
) {
    let busy = active.len()
        + if spec.replace_only_failed {
            terminating.len()
        } else {
            0
        };
    let want = if spec.indexed {
        spec.parallelism.min(completions - completed.len() as i32)
    } else {
        match spec.completions {
            Some(c) => (c - succeeded).min(spec.parallelism),
            // Work-queue Jobs start nothing new once a pod has succeeded.
            None if succeeded > 0 => busy as i32,
            None => spec.parallelism,
        }
    }
    .max(0) as usize;
    if active.len() > want {
        active.sort_by(|a, b| wu::deletion_order(a, b));
        let surplus = active.len() - want;
        p.delete.extend(active.drain(..surplus).map(|pod| pod.name_any()));
    } else if busy < want {
        let n = want - busy;
        if spec.indexed {
            let taken: BTreeSet<i32> = active
                .iter()
                .chain(terminating.iter().filter(|_| spec.replace_only_failed))
                .filter_map(|pod| pods::index(pod, completions))
                .collect();
            p.create = (0..completions)
                .filter(|i| !completed.contains(i) && !taken.contains(i))
                .take(n)
                .map(Some)
                .collect();
        } else {
            p.create = vec![None; n];
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
