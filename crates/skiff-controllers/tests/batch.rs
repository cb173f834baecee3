//! The CronJob controller against a real `skiff server` (API only; only
//! the CronJob loop runs, in-process, so the Jobs here stay as written): finished Jobs pruned to the
//! history limits with lastSuccessfulTime kept, and a missed run started at
//! once with concurrencyPolicy Replace (the active Job deleted) but not with
//! Forbid.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use skiff_controllers::ControllerConfig;
use skiff_testkit::server::{ServerOptions, SkiffServer};

async fn start() -> (SkiffServer, kube::Client) {
    let server = SkiffServer::start(ServerOptions::api_only()).unwrap();
    let kc = kube::config::Kubeconfig::read_from(server.kubeconfig()).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap();
    let c = kube::Client::try_from(cfg).unwrap();
    let cc = Arc::new(ControllerConfig::default());
    tokio::spawn(skiff_controllers::cronjob::run(c.clone(), cc));
    (server, c)
}

async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what}");
}

fn cronjob(name: &str, schedule: &str, policy: &str) -> CronJob {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "schedule": schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": policy,
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 1,
            "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}]
            }}}}
        }
    }))
    .unwrap()
}

/// A Job controlled by `cj` (suspended, should a Job controller run).
async fn owned_job(jobs: &Api<Job>, cj: &CronJob, name: &str) -> Job {
    let job: Job = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "ownerReferences": [{
            "apiVersion": "batch/v1", "kind": "CronJob", "name": cj.metadata.name,
            "uid": cj.metadata.uid, "controller": true, "blockOwnerDeletion": true
        }]},
        "spec": {"suspend": true, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox"}]
        }}}
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap()
}

async fn finish(jobs: &Api<Job>, name: &str, kind: &str, minute: u32) {
    let start = format!("2026-01-01T00:{minute:02}:00Z");
    let end = format!("2026-01-01T00:{minute:02}:30Z");
    let mut status = serde_json::json!({
        "startTime": start,
        "conditions": [{"type": kind, "status": "True", "lastTransitionTime": end}]
    });
    if kind == "Complete" {
        status["completionTime"] = serde_json::json!(end);
    }
    jobs.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "status": status })),
    )
    .await
    .unwrap();
}

async fn names(jobs: &Api<Job>) -> Vec<String> {
    let mut n: Vec<String> = jobs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|j| j.metadata.name)
        .collect();
    n.sort();
    n
}

#[tokio::test]
async fn finished_jobs_are_pruned_to_the_history_limits() {
    let (_server, c) = start().await;
    let cjs: Api<CronJob> = Api::namespaced(c.clone(), "default");
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    // Due only on 1 January: nothing new is started during the test.
    let cj = cjs
        .create(&PostParams::default(), &cronjob("hist", "0 0 1 1 *", "Allow"))
        .await
        .unwrap();
    for (name, kind, minute) in [
        ("ok-1", "Complete", 1),
        ("ok-3", "Complete", 3),
        ("ok-2", "Complete", 2),
        ("bad-1", "Failed", 1),
        ("bad-2", "Failed", 2),
    ] {
        owned_job(&jobs, &cj, name).await;
        finish(&jobs, name, kind, minute).await;
    }
    eventually("history pruned to one success and one failure", || async {
        (names(&jobs).await == ["bad-2", "ok-3"]).then_some(())
    })
    .await;
    let last = eventually("lastSuccessfulTime", || async {
        let cj = cjs.get("hist").await.unwrap();
        cj.status?.last_successful_time
    })
    .await;
    assert_eq!(last.0.to_string(), "2026-01-01T00:03:30Z");
}

#[tokio::test]
async fn a_missed_run_replaces_the_active_job_or_is_forbidden() {
    let (_server, c) = start().await;
    let cjs: Api<CronJob> = Api::namespaced(c.clone(), "default");
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let ten_min_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(10);
    for (name, policy) in [("rep", "Replace"), ("forbid", "Forbid")] {
        let cj = cjs
            .create(&PostParams::default(), &cronjob(name, "* * * * *", policy))
            .await
            .unwrap();
        let old = owned_job(&jobs, &cj, &format!("{name}-old")).await;
        let status = serde_json::json!({ "status": {
            "lastScheduleTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(ten_min_ago),
            "active": [{"apiVersion": "batch/v1", "kind": "Job", "namespace": "default",
                        "name": old.metadata.name, "uid": old.metadata.uid}],
        }});
        cjs.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
            .await
            .unwrap();
    }
    // Replace: the old Job goes, a Job for the latest missed minute comes.
    let new = eventually("the replacement job", || async {
        let n = names(&jobs).await;
        let new = n
            .iter()
            .find(|j| j.starts_with("rep-") && *j != "rep-old")
            .cloned();
        (!n.contains(&"rep-old".to_string())).then_some(new).flatten()
    })
    .await;
    let minute = jiff::Timestamp::now().as_second() / 60;
    let got: i64 = new.trim_start_matches("rep-").parse().unwrap();
    assert!(
        (minute - 1..=minute).contains(&got),
        "job {new} for minute {minute}"
    );
    let active = eventually("rep's active list names the new job", || async {
        let st = cjs.get("rep").await.unwrap().status?;
        let names: Vec<String> = st.active?.into_iter().filter_map(|r| r.name).collect();
        (names == [new.clone()]).then_some(names)
    })
    .await;
    assert_eq!(active.len(), 1);
    // Forbid: the old Job keeps running and nothing new starts.
    let n = names(&jobs).await;
    assert!(n.contains(&"forbid-old".to_string()));
    assert!(
        !n.iter().any(|j| j.starts_with("forbid-") && j != "forbid-old"),
        "{n:?}"
    );
    let events: Api<Event> = Api::namespaced(c.clone(), "default");
    eventually("the JobAlreadyActive event", || async {
        let list = events.list(&ListParams::default()).await.unwrap().items;
        list.iter()
            .any(|e| {
                e.involved_object.name.as_deref() == Some("forbid")
                    && e.reason.as_deref() == Some("JobAlreadyActive")
            })
            .then_some(())
    })
    .await;
    assert_eq!(
        names(&jobs)
            .await
            .iter()
            .filter(|j| j.starts_with("forbid-"))
            .count(),
        1
    );
}
