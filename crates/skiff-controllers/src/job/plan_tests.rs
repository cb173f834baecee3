//! Unit tests of the Job controller's [`plan`](super::plan).

use super::*;
use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, ContainerStatus, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const NOW: &str = "2026-01-01T00:10:00Z";

fn spec(completions: Option<i32>, parallelism: i32) -> Spec {
    Spec {
        completions,
        parallelism,
        backoff_limit: 6,
        active_deadline_seconds: None,
        suspend: false,
        indexed: false,
        on_failure: false,
        replace_only_failed: false,
    }
}

fn pod(name: &str, phase: &str, index: Option<i32>) -> Pod {
    let annotations = index.map(|i| BTreeMap::from([(pods::COMPLETION_INDEX.to_string(), i.to_string())]));
    let finished = ContainerStatus {
        name: "c".into(),
        state: Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                finished_at: Some(Time(ts("2026-01-01T00:09:55Z"))),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            annotations,
            ..Default::default()
        },
        spec: None,
        status: Some(PodStatus {
            phase: Some(phase.into()),
            container_statuses: matches!(phase, "Failed" | "Succeeded").then(|| vec![finished]),
            ..Default::default()
        }),
    }
}

fn cond<'a>(st: &'a JobStatus, type_: &str) -> Option<&'a JobCondition> {
    st.conditions.iter().flatten().find(|c| c.type_ == type_)
}

#[test]
fn starts_up_to_parallelism_pods_and_sets_start_time() {
    let p = plan(&spec(Some(5), 2), None, &[], ts(NOW));
    assert_eq!(p.create, [None, None]);
    assert_eq!(p.status.start_time, Some(Time(ts(NOW))));
    let p = plan(
        &spec(Some(5), 3),
        None,
        &[
            pod("a", "Succeeded", None),
            pod("b", "Succeeded", None),
            pod("c", "Succeeded", None),
            pod("d", "Running", None),
        ],
        ts(NOW),
    );
    // 2 completions left, one already running.
    assert_eq!(p.create.len(), 1);
    assert_eq!((p.status.succeeded, p.status.active), (Some(3), Some(1)));
}

#[test]
fn completes_once_completions_succeed_and_no_pod_runs() {
    let p = plan(&spec(Some(1), 1), None, &[pod("a", "Succeeded", None)], ts(NOW));
    assert!(p.create.is_empty());
    let st = &p.status;
    assert_eq!(
        cond(st, "SuccessCriteriaMet").unwrap().reason.as_deref(),
        Some("CompletionsReached")
    );
    assert_eq!(cond(st, "Complete").unwrap().status, "True");
    assert_eq!(st.completion_time, Some(Time(ts(NOW))));
    assert!(is_finished(Some(st)));
    assert!(
        p.events
            .iter()
            .any(|(_, r, m)| *r == "Completed" && m == "Job completed")
    );
}

#[test]
fn success_with_lingering_pods_deletes_them_before_complete() {
    let pods = [pod("a", "Succeeded", None), pod("b", "Running", None)];
    let p = plan(&spec(Some(1), 2), None, &pods, ts(NOW));
    assert_eq!(p.delete, ["b"]);
    assert!(cond(&p.status, "SuccessCriteriaMet").is_some());
    assert!(cond(&p.status, "Complete").is_none());
}

#[test]
fn work_queue_job_waits_for_active_pods_after_a_success() {
    let pods = [pod("a", "Succeeded", None), pod("b", "Running", None)];
    let p = plan(&spec(None, 3), None, &pods, ts(NOW));
    assert!(p.create.is_empty() && p.delete.is_empty());
    assert!(!is_finished(Some(&p.status)));
}

#[test]
fn backoff_limit_fails_the_job() {
    let mut s = spec(Some(1), 1);
    s.backoff_limit = 1;
    let pods = [pod("a", "Failed", None), pod("b", "Failed", None)];
    let p = plan(&s, None, &pods, ts(NOW));
    let failed = cond(&p.status, "Failed").unwrap();
    assert_eq!(failed.reason.as_deref(), Some("BackoffLimitExceeded"));
    assert_eq!(
        failed.message.as_deref(),
        Some("Job has reached the specified backoff limit")
    );
    assert_eq!(cond(&p.status, "FailureTarget").unwrap().status, "True");
    assert!(
        p.events
            .iter()
            .any(|(k, r, _)| *k == EventType::Warning && *r == "BackoffLimitExceeded")
    );
    assert_eq!(p.status.failed, Some(2));
}

#[test]
fn failed_pods_are_replaced_after_the_backoff() {
    let pods = [pod("a", "Failed", None)];
    // Failed 5 s ago: the 10 s backoff is still running.
    let p = plan(&spec(Some(1), 1), None, &pods, ts(NOW));
    assert!(p.create.is_empty());
    assert_eq!(p.requeue, Some(Duration::from_secs(5)));
    let later = plan(&spec(Some(1), 1), None, &pods, ts("2026-01-01T00:10:10Z"));
    assert_eq!(later.create.len(), 1);
    assert_eq!(backoff(3), Duration::from_secs(40));
    assert_eq!(backoff(30), Duration::from_secs(600));
}

#[test]
fn active_deadline_deletes_active_pods_then_fails() {
    let mut s = spec(Some(2), 2);
    s.active_deadline_seconds = Some(60);
    let old = JobStatus {
        start_time: Some(Time(ts("2026-01-01T00:08:00Z"))),
        ..Default::default()
    };
    let pods = [pod("a", "Running", None)];
    let p = plan(&s, Some(&old), &pods, ts(NOW));
    assert_eq!(p.delete, ["a"]);
    assert_eq!(
        cond(&p.status, "FailureTarget").unwrap().reason.as_deref(),
        Some("DeadlineExceeded")
    );
    assert!(cond(&p.status, "Failed").is_none());
    // Next sync: the pod is gone, the Job fails.
    let p = plan(&s, Some(&p.status), &[], ts(NOW));
    assert_eq!(
        cond(&p.status, "Failed").unwrap().reason.as_deref(),
        Some("DeadlineExceeded")
    );
    assert!(p.create.is_empty());
    // Before the deadline, the plan asks to be woken at it.
    let p = plan(&s, Some(&old), &pods, ts("2026-01-01T00:08:30Z"));
    assert_eq!(p.requeue, Some(Duration::from_secs(30)));
}

#[test]
fn suspend_deletes_pods_and_resume_restarts_the_clock() {
    let mut s = spec(Some(1), 1);
    s.suspend = true;
    let p = plan(&s, None, &[pod("a", "Running", None)], ts(NOW));
    assert_eq!(p.delete, ["a"]);
    assert_eq!(
        cond(&p.status, "Suspended").unwrap().reason.as_deref(),
        Some("JobSuspended")
    );
    assert!(p.status.start_time.is_none());
    s.suspend = false;
    let resumed = plan(&s, Some(&p.status), &[], ts("2026-01-01T00:20:00Z"));
    let c = cond(&resumed.status, "Suspended").unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("False", Some("JobResumed"))
    );
    assert_eq!(resumed.status.start_time, Some(Time(ts("2026-01-01T00:20:00Z"))));
    assert_eq!(resumed.create.len(), 1);
}

#[test]
fn indexed_jobs_create_missing_indexes_and_report_completed_ones() {
    let mut s = spec(Some(5), 2);
    s.indexed = true;
    let pods = [
        pod("i0", "Succeeded", Some(0)),
        pod("i2", "Running", Some(2)),
        pod("dup", "Running", Some(2)),
        pod("bad", "Running", Some(9)),
    ];
    let old = JobStatus {
        completed_indexes: Some("3".into()),
        ..Default::default()
    };
    let p = plan(&s, Some(&old), &pods, ts(NOW));
    assert_eq!(p.delete.len(), 2);
    assert!(p.delete.contains(&"bad".to_string()));
    assert_eq!(p.create, [Some(1)]);
    assert_eq!(p.status.completed_indexes.as_deref(), Some("0,3"));
    assert_eq!(p.status.succeeded, Some(2));
}

#[test]
fn counts_never_go_backwards() {
    let old = JobStatus {
        succeeded: Some(2),
        failed: Some(1),
        ..Default::default()
    };
    let p = plan(&spec(Some(3), 1), Some(&old), &[], ts(NOW));
    assert_eq!((p.status.succeeded, p.status.failed), (Some(2), Some(1)));
    assert_eq!(p.create.len(), 1);
}
