//! Pod status as the kubelet computes it, from the pod spec, what the
//! runtime holds and the worker's waiting reasons: container statuses
//! (state, lastState, restartCount, ready/started, image IDs), the phase,
//! and the PodReadyToStartContainers / Initialized / Ready /
//! ContainersReady / PodScheduled conditions. Pure: no I/O.

use std::collections::HashMap;

use k8s_cri::v1::{ContainerState as CriState, ContainerStatus as CriStatus};
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::runtime::{PodRuntime, restart_count};
use super::seams::ProbeResult;

/// Why a container is waiting, as the worker decided (image errors, back-off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// `CrashLoopBackOff`, `ErrImagePull`, `ImagePullBackOff`, `CreateContainerError`, ...
    pub reason: String,
    /// The message shown with it.
    pub message: String,
}

/// Everything the status is computed from.
pub struct StatusInput<'a> {
    /// The pod as last seen from the API.
    pub pod: &'a Pod,
    /// The runtime's sandboxes and containers of the pod.
    pub runtime: &'a PodRuntime,
    /// The sandbox's IP.
    pub pod_ip: Option<String>,
    /// Whether a ready sandbox with its network exists.
    pub sandbox_ready: bool,
    /// The node's IP.
    pub host_ip: String,
    /// Waiting reasons by container name.
    pub waiting: &'a HashMap<String, Waiting>,
    /// Probe results by container name.
    pub probes: &'a (dyn Fn(&str) -> ProbeResult + Sync),
    /// The time now, for new conditions and startTime.
    pub now: jiff::Timestamp,
}

/// A CRI time (nanoseconds since the epoch; 0 = unset) as an API time.
pub fn cri_time(nanos: i64) -> Option<Time> {
    if nanos <= 0 {
        return None;
    }
    jiff::Timestamp::from_nanosecond(i128::from(nanos)).ok().map(Time)
}

fn terminated(c: &CriStatus) -> ContainerStateTerminated {
    let reason = if c.reason == "OOMKilled" {
        "OOMKilled".to_string()
    } else if c.exit_code == 0 {
        "Completed".to_string()
    } else {
        "Error".to_string()
    };
    ContainerStateTerminated {
        container_id: Some(format!("containerd://{}", c.id)),
        exit_code: c.exit_code,
        reason: Some(reason),
        message: (!c.message.is_empty()).then(|| c.message.clone()),
        started_at: cri_time(c.started_at),
        finished_at: cri_time(c.finished_at),
        signal: None,
    }
}

fn waiting(reason: &str, message: Option<String>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message,
        }),
        ..ContainerState::default()
    }
}

/// The API state of one runtime instance.
fn state_of(c: &CriStatus) -> ContainerState {
    match c.state {
        s if s == CriState::ContainerRunning as i32 => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: cri_time(c.started_at),
            }),
            ..ContainerState::default()
        },
        s if s == CriState::ContainerExited as i32 => ContainerState {
            terminated: Some(terminated(c)),
            ..ContainerState::default()
        },
        s if s == CriState::ContainerCreated as i32 => waiting("ContainerCreating", None),
        _ => waiting("ContainerStatusUnknown", None),
    }
}

/// The status of container `spec` from its newest instances.
fn container_status(
    input: &StatusInput<'_>,
    spec: &Container,
    init: bool,
    not_started: &str,
) -> ContainerStatus {
    let mut instances = input.runtime.instances(&spec.name);
    let current = instances.next();
    let previous = instances.find(|c| c.state == CriState::ContainerExited as i32);
    let mut status = ContainerStatus {
        name: spec.name.clone(),
        image: spec.image.clone().unwrap_or_default(),
        image_id: String::new(),
        ..ContainerStatus::default()
    };
    let mut last = previous.map(|p| ContainerState {
        terminated: Some(terminated(p)),
        ..ContainerState::default()
    });
    let mut state = match current {
        Some(c) => {
            status.container_id = Some(format!("containerd://{}", c.id));
            status.image_id = c.image_ref.clone();
            status.restart_count = i32::try_from(restart_count(c)).unwrap_or(i32::MAX);
            state_of(c)
        }
        None => waiting(not_started, None),
    };
    if let Some(w) = input.waiting.get(&spec.name) {
        if state.terminated.is_some() {
            last = Some(state.clone());
        }
        state = waiting(&w.reason, Some(w.message.clone()));
    }
    let running = state.running.is_some();
    let probe = (input.probes)(&spec.name);
    if init {
        status.ready = state.terminated.as_ref().is_some_and(|t| t.exit_code == 0);
        status.started = Some(running);
    } else {
        let started = running && (spec.startup_probe.is_none() || probe.started);
        status.started = Some(started);
        status.ready = started && (spec.readiness_probe.is_none() || probe.ready);
    }
    status.state = Some(state);
    status.last_state = Some(last.unwrap_or_default());
    status
}

/// Counts behind the phase, as the kubelet's getPhase keeps them.
fn phase(pod: &Pod, init: &[ContainerStatus], regular: &[ContainerStatus]) -> String {
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let exited_with = |s: &ContainerStatus| {
        s.state
            .as_ref()
            .and_then(|st| st.terminated.as_ref())
            .map(|t| t.exit_code)
    };
    let last_exit = |s: &ContainerStatus| {
        s.last_state
            .as_ref()
            .and_then(|st| st.terminated.as_ref())
            .map(|t| t.exit_code)
    };
    let mut pending_init = false;
    for s in init {
        match exited_with(s) {
            Some(0) => {}
            Some(_) if policy == "Never" => return "Failed".into(),
            _ if policy == "Never" && last_exit(s).is_some_and(|c| c != 0) => return "Failed".into(),
            _ => pending_init = true,
        }
    }
    if pending_init {
        return "Pending".into();
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in regular {
        let st = s.state.clone().unwrap_or_default();
        if st.running.is_some() {
            running += 1;
        } else if let Some(t) = st.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if last_exit(s).is_some() {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if waiting > 0 {
        return "Pending".into();
    }
    if running > 0 {
        return "Running".into();
    }
    if stopped > 0 {
        return match policy {
            "Always" => "Running".into(),
            "OnFailure" if stopped == succeeded => "Succeeded".into(),
            "OnFailure" => "Running".into(),
            _ if stopped == succeeded => "Succeeded".into(),
            _ => "Failed".into(),
        };
    }
    "Pending".into()
}

fn condition(type_: &str, ok: bool, reason: Option<&str>, message: Option<String>) -> PodCondition {
    PodCondition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.map(str::to_string),
        message,
        ..PodCondition::default()
    }
}

fn names_where(statuses: &[ContainerStatus], pred: impl Fn(&ContainerStatus) -> bool) -> Vec<String> {
    statuses
        .iter()
        .filter(|s| pred(s))
        .map(|s| s.name.clone())
        .collect()
}

/// The pod's status now.
pub fn pod_status(input: &StatusInput<'_>) -> PodStatus {
    let pod = input.pod;
    let spec = pod.spec.clone().unwrap_or_default();
    let old = pod.status.clone().unwrap_or_default();
    let init_specs = spec.init_containers.clone().unwrap_or_default();
    let init: Vec<ContainerStatus> = init_specs
        .iter()
        .map(|c| container_status(input, c, true, "PodInitializing"))
        .collect();
    let initialized = init.iter().all(|s| s.ready);
    let not_started = if initialized {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let regular: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| container_status(input, c, false, not_started))
        .collect();
    let mut phase = phase(pod, &init, &regular);
    if matches!(old.phase.as_deref(), Some("Succeeded" | "Failed")) {
        phase = old.phase.clone().unwrap_or_default();
    }
    let terminal = phase == "Succeeded" || phase == "Failed";
    let mut regular = regular;
    if terminal {
        for s in &mut regular {
            s.ready = false;
        }
    }
    let unready = names_where(&regular, |s| !s.ready);
    let incomplete = names_where(&init, |s| !s.ready);
    let list = |v: &[String]| format!("[{}]", v.join(" "));
    let completed = terminal.then_some("PodCompleted");
    let containers_ready = if unready.is_empty() {
        condition("ContainersReady", true, None, None)
    } else {
        condition(
            "ContainersReady",
            false,
            completed.or(Some("ContainersNotReady")),
            Some(format!("containers with unready status: {}", list(&unready))),
        )
    };
    let gates_failing: Vec<String> = spec
        .readiness_gates
        .iter()
        .flatten()
        .map(|g| g.condition_type.clone())
        .filter(|t| {
            !old.conditions
                .iter()
                .flatten()
                .any(|c| &c.type_ == t && c.status == "True")
        })
        .collect();
    let ready = if !unready.is_empty() {
        PodCondition {
            type_: "Ready".into(),
            ..containers_ready.clone()
        }
    } else if !gates_failing.is_empty() {
        condition(
            "Ready",
            false,
            Some("ReadinessGatesNotReady"),
            Some(format!(
                "corresponding condition of pod readiness gate \"{}\" does not exist.",
                gates_failing[0]
            )),
        )
    } else {
        condition("Ready", true, None, None)
    };
    let initialized_cond = if initialized {
        condition("Initialized", true, None, None)
    } else {
        condition(
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: {}",
                list(&incomplete)
            )),
        )
    };
    let scheduled = old
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled")
        .cloned()
        .unwrap_or_else(|| condition("PodScheduled", true, None, None));
    let mut conditions = vec![
        condition(
            "PodReadyToStartContainers",
            input.sandbox_ready && !terminal,
            None,
            None,
        ),
        initialized_cond,
        ready,
        containers_ready,
        scheduled,
    ];
    // Other writers' conditions (readiness gates) stay.
    for c in old.conditions.iter().flatten() {
        if !conditions.iter().any(|n| n.type_ == c.type_) {
            conditions.push(c.clone());
        }
    }
    let now = Time(input.now);
    for c in &mut conditions {
        let before = old.conditions.iter().flatten().find(|o| o.type_ == c.type_);
        c.last_transition_time = match before {
            Some(b) if b.status == c.status => b.last_transition_time.clone().or(Some(now.clone())),
            _ => c.last_transition_time.clone().or(Some(now.clone())),
        };
        c.last_probe_time = before.and_then(|b| b.last_probe_time.clone());
    }
    let pod_ip = input
        .pod_ip
        .clone()
        .filter(|ip| !ip.is_empty())
        .or(old.pod_ip.clone());
    PodStatus {
        phase: Some(phase),
        conditions: Some(conditions),
        host_ip: Some(input.host_ip.clone()),
        host_ips: Some(vec![HostIP {
            ip: input.host_ip.clone(),
        }]),
        pod_ips: pod_ip.clone().map(|ip| vec![PodIP { ip }]),
        pod_ip,
        start_time: old.start_time.clone().or(Some(now)),
        init_container_statuses: (!init.is_empty()).then_some(init),
        container_statuses: Some(regular),
        qos_class: old.qos_class.clone(),
        ..old
    }
}

#[cfg(test)]
mod tests;
