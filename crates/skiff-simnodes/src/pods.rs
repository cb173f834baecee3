//! The kubelet's part for one pod, as pure functions: what to do next for a
//! pod bound to a simulated node, and the status patches that make it
//! Running/Ready or Succeeded.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

/// What the simulated kubelet does next for a pod bound to one of its nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodAction {
    /// Nothing: the pod is already where it should be.
    Nothing,
    /// Start the pod: status Running and Ready.
    Start,
    /// A run-to-completion pod is running: complete it after this long.
    CompleteAfter(Duration),
    /// The pod is being deleted: finish it (delete with grace period 0).
    FinishDeletion,
}

/// Whether the pod would run to completion (restartPolicy Never or OnFailure).
pub fn runs_to_completion(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .is_some_and(|p| p == "Never" || p == "OnFailure")
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// Decides the next step for `pod`; `now` is the current time and
/// `job_runtime` how long run-to-completion pods run.
pub fn next_action(pod: &Pod, now: jiff::Timestamp, job_runtime: Duration) -> PodAction {
    if pod.metadata.deletion_timestamp.is_some() {
        return PodAction::FinishDeletion;
    }
    match phase(pod) {
        "Succeeded" | "Failed" => PodAction::Nothing,
        "Running" if runs_to_completion(pod) => {
            let started = pod
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0);
            let elapsed = started
                .and_then(|s| now.duration_since(s).try_into().ok())
                .unwrap_or(Duration::ZERO);
            PodAction::CompleteAfter(job_runtime.saturating_sub(elapsed))
        }
        "Running" => PodAction::Nothing,
        _ => PodAction::Start,
    }
}

/// `now` as the API's `Time` serializes it (RFC 3339, whole seconds).
fn time_string(now: jiff::Timestamp) -> String {
    match serde_json::to_value(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now)) {
        Ok(Value::String(s)) => s,
        _ => now.to_string(),
    }
}

fn container_names_images(pod: &Pod) -> Vec<(String, String)> {
    pod.spec
        .as_ref()
        .map(|s| {
            s.containers
                .iter()
                .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

fn container_id(pod: &Pod, name: &str) -> String {
    let uid = pod.metadata.uid.as_deref().unwrap_or("");
    format!("containerd://sim-{}-{name}", uid.replace('-', ""))
}

fn conditions(now: &str, ready: &str, reason: Option<&str>) -> Value {
    let cond = |t: &str, s: &str, r: Option<&str>| {
        let mut c = json!({"type": t, "status": s, "lastProbeTime": null, "lastTransitionTime": now});
        if let Some(r) = r {
            c["reason"] = json!(r);
        }
        c
    };
    json!([
        cond("PodReadyToStartContainers", "True", None),
        cond("Initialized", "True", reason),
        cond("Ready", ready, reason),
        cond("ContainersReady", ready, reason),
        cond("PodScheduled", "True", None),
    ])
}

/// The status merge patch that makes `pod` Running and Ready with `pod_ip`
/// on a node whose address is `host_ip`.
pub fn running_patch(pod: &Pod, host_ip: &str, pod_ip: &str, now: jiff::Timestamp) -> Value {
    let now = time_string(now);
    let statuses: Vec<Value> = container_names_images(pod)
        .into_iter()
        .map(|(name, image)| {
            json!({
                "name": name, "image": image, "imageID": format!("{image}@sha256:sim"),
                "containerID": container_id(pod, &name), "ready": true, "started": true,
                "restartCount": 0, "state": {"running": {"startedAt": now}},
            })
        })
        .collect();
    json!({"status": {
        "phase": "Running", "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "startTime": now,
        "qosClass": pod.status.as_ref().and_then(|s| s.qos_class.clone()).unwrap_or_else(|| "BestEffort".into()),
        "conditions": conditions(&now, "True", None), "containerStatuses": statuses,
    }})
}

/// The status merge patch that completes a run-to-completion pod: phase
/// Succeeded, every container terminated with exit code 0 (Completed).
pub fn succeeded_patch(pod: &Pod, now: jiff::Timestamp) -> Value {
    let now_s = time_string(now);
    let started = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| time_string(t.0))
        .unwrap_or_else(|| now_s.clone());
    let statuses: Vec<Value> = container_names_images(pod)
        .into_iter()
        .map(|(name, image)| {
            json!({
                "name": name, "image": image, "imageID": format!("{image}@sha256:sim"),
                "containerID": container_id(pod, &name), "ready": false, "started": false,
                "restartCount": 0, "state": {"terminated": {
                    "exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": now_s,
                    "containerID": container_id(pod, &name),
                }},
            })
        })
        .collect();
    json!({"status": {
        "phase": "Succeeded",
        "conditions": conditions(&now_s, "False", Some("PodCompleted")),
        "containerStatuses": statuses,
    }})
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pod(restart: &str, phase: Option<&str>) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "1234-5678"},
            "spec": {"nodeName": "sim-0", "restartPolicy": restart,
                     "containers": [{"name": "c", "image": "nginx"}]},
            "status": {"phase": phase, "startTime": "2026-01-01T00:00:00Z"},
        }))
        .unwrap()
    }

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn pending_pods_start_and_running_services_are_left_alone() {
        let t = at("2026-01-01T00:00:01Z");
        assert_eq!(
            next_action(&pod("Always", None), t, Duration::from_secs(2)),
            PodAction::Start
        );
        assert_eq!(
            next_action(&pod("Always", Some("Pending")), t, Duration::from_secs(2)),
            PodAction::Start
        );
        assert_eq!(
            next_action(&pod("Always", Some("Running")), t, Duration::from_secs(2)),
            PodAction::Nothing
        );
    }

    #[test]
    fn job_pods_complete_after_the_remaining_runtime() {
        let t = at("2026-01-01T00:00:01.5Z");
        let got = next_action(&pod("Never", Some("Running")), t, Duration::from_secs(2));
        assert_eq!(got, PodAction::CompleteAfter(Duration::from_millis(500)));
        let late = at("2026-01-01T00:01:00Z");
        let got = next_action(&pod("OnFailure", Some("Running")), late, Duration::from_secs(2));
        assert_eq!(got, PodAction::CompleteAfter(Duration::ZERO));
        assert_eq!(
            next_action(&pod("Never", Some("Succeeded")), late, Duration::ZERO),
            PodAction::Nothing
        );
    }

    #[test]
    fn terminating_pods_are_finished() {
        let mut p = pod("Always", Some("Running"));
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(
            "2026-01-01T00:00:00Z",
        )));
        assert_eq!(
            next_action(&p, at("2026-01-01T00:00:00Z"), Duration::ZERO),
            PodAction::FinishDeletion
        );
    }

    #[test]
    fn running_patch_is_ready_with_ips_and_container_statuses() {
        let patch = running_patch(
            &pod("Always", None),
            "127.0.0.1",
            "10.42.0.2",
            at("2026-01-01T00:00:00Z"),
        );
        let s = &patch["status"];
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIP"], "10.42.0.2");
        assert_eq!(s["hostIP"], "127.0.0.1");
        let ready = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["status"], "True");
        assert_eq!(s["containerStatuses"][0]["ready"], true);
        assert!(s["containerStatuses"][0]["state"]["running"].is_object());
        // It must deserialize as a valid PodStatus.
        let _: k8s_openapi::api::core::v1::PodStatus = serde_json::from_value(s.clone()).unwrap();
    }

    #[test]
    fn succeeded_patch_terminates_containers_with_exit_zero() {
        let patch = succeeded_patch(&pod("Never", Some("Running")), at("2026-01-01T00:00:02Z"));
        let s = &patch["status"];
        assert_eq!(s["phase"], "Succeeded");
        let term = &s["containerStatuses"][0]["state"]["terminated"];
        assert_eq!(term["exitCode"], 0);
        assert_eq!(term["reason"], "Completed");
        let _: k8s_openapi::api::core::v1::PodStatus = serde_json::from_value(s.clone()).unwrap();
    }
}
