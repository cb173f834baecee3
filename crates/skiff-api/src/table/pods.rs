//! The Pod printer: READY, STATUS (upstream's reason logic: Init:N/M,
//! CrashLoopBackOff, Completed, Terminating, ...), RESTARTS with the time of
//! the last restart, and the wide IP/NODE/NOMINATED NODE/READINESS GATES.

use super::format::{age_of, list, name, text};
use super::{AGE, Column, NAME, Printer, Row, col, wide};
use serde_json::{Value, json};

const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide(
        "IP",
        "string",
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
    ),
    wide(
        "Node",
        "string",
        "NodeName indicates in which node this pod is scheduled.",
    ),
    wide(
        "Nominated Node",
        "string",
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.",
    ),
    wide(
        "Readiness Gates",
        "string",
        "If specified, all readiness gates will be evaluated for pod readiness.",
    ),
];

pub(super) fn printer(kind: &str) -> Option<Printer> {
    (kind == "Pod").then_some(Printer {
        columns: COLUMNS,
        row: pod_row,
    })
}

fn terminated_reason(t: &Value, prefix: &str) -> String {
    let reason = text(t, "/reason");
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    let signal = t.get("signal").and_then(Value::as_i64).unwrap_or(0);
    if signal != 0 {
        format!("{prefix}Signal:{signal}")
    } else {
        format!(
            "{prefix}ExitCode:{}",
            t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
        )
    }
}

fn condition_true(pod: &Value, ty: &str) -> bool {
    list(pod, "/status/conditions")
        .iter()
        .any(|c| text(c, "/type") == ty && text(c, "/status") == "True")
}

/// The later of `current` and the container's last termination time.
fn later(current: Option<jiff::Timestamp>, status: &Value) -> Option<jiff::Timestamp> {
    let finished = text(status, "/lastState/terminated/finishedAt")
        .parse::<jiff::Timestamp>()
        .ok();
    match (current, finished) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn pod_row(pod: &Value, now: jiff::Timestamp) -> Row {
    let spec_init = list(pod, "/spec/initContainers");
    let restartable = |n: &str| {
        spec_init
            .iter()
            .any(|c| text(c, "/name") == n && text(c, "/restartPolicy") == "Always")
    };
    let total = list(pod, "/spec/containers").len()
        + spec_init
            .iter()
            .filter(|c| text(c, "/restartPolicy") == "Always")
            .count();
    let mut ready = 0;
    let mut restarts = 0;
    let mut sidecar_restarts = 0;
    let mut last_restart = None;
    let mut last_sidecar_restart = None;
    let phase = text(pod, "/status/phase");
    let mut reason = phase.to_string();
    if !text(pod, "/status/reason").is_empty() {
        reason = text(pod, "/status/reason").to_string();
    }
    if list(pod, "/status/conditions")
        .iter()
        .any(|c| text(c, "/type") == "PodScheduled" && text(c, "/reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }
    let mut initializing = false;
    for (i, c) in list(pod, "/status/initContainerStatuses").iter().enumerate() {
        let count = c.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
        restarts += count;
        last_restart = later(last_restart, c);
        let sidecar = restartable(text(c, "/name"));
        if sidecar {
            sidecar_restarts += count;
            last_sidecar_restart = later(last_sidecar_restart, c);
        }
        let terminated = c.pointer("/state/terminated").filter(|t| t.is_object());
        let waiting_reason = text(c, "/state/waiting/reason");
        if terminated.is_some_and(|t| t.get("exitCode").and_then(Value::as_i64).unwrap_or(0) == 0) {
            continue;
        }
        if sidecar && c.get("started").and_then(Value::as_bool) == Some(true) {
            if c.get("ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            reason = terminated_reason(t, "Init:");
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{}/{}", i, spec_init.len());
        }
        initializing = true;
        break;
    }
    if !initializing || condition_true(pod, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for c in list(pod, "/status/containerStatuses").iter().rev() {
            restarts += c.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
            last_restart = later(last_restart, c);
            let waiting = text(c, "/state/waiting/reason");
            let terminated = c.pointer("/state/terminated").filter(|t| t.is_object());
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if let Some(t) = terminated {
                reason = terminated_reason(t, "");
            } else if c.get("ready").and_then(Value::as_bool) == Some(true)
                && c.pointer("/state/running").is_some_and(Value::is_object)
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, "Ready") {
                "Running"
            } else {
                "NotReady"
            }
            .to_string();
        }
    }
    let deleting = pod
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null());
    if deleting && text(pod, "/status/reason") == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }
    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!(
            "{restarts} ({} ago)",
            super::human_duration(now.as_second() - t.as_second())
        ),
        _ => restarts.to_string(),
    };
    let pod_ip = list(pod, "/status/podIPs")
        .first()
        .map(|p| text(p, "/ip"))
        .unwrap_or_default();
    let pod_ip = if pod_ip.is_empty() {
        text(pod, "/status/podIP")
    } else {
        pod_ip
    };
    let gates = list(pod, "/spec/readinessGates");
    let gates_cell = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_count = gates
            .iter()
            .filter(|g| condition_true(pod, text(g, "/conditionType")))
            .count();
        format!("{true_count}/{}", gates.len())
    };
    let none = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s.to_string()
        }
    };
    let conditions = match phase {
        "Succeeded" => vec![
            json!({"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}),
        ],
        "Failed" => vec![
            json!({"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}),
        ],
        _ => Vec::new(),
    };
    Row {
        cells: vec![
            json!(name(pod)),
            json!(format!("{ready}/{total}")),
            json!(reason),
            json!(restarts_cell),
            json!(age_of(pod, now)),
            json!(none(pod_ip)),
            json!(none(text(pod, "/spec/nodeName"))),
            json!(none(text(pod, "/status/nominatedNodeName"))),
            json!(gates_cell),
        ],
        conditions,
    }
}
