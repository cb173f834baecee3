//! Printers of apps/v1 kinds (Deployment, ReplicaSet, StatefulSet,
//! DaemonSet, ControllerRevision) and core/v1 ReplicationController.

use super::format::{age_of, containers_images, int, label_selector, labels, name, text};
use super::{AGE, Column, NAME, Printer, Row, col, wide};
use serde_json::{Value, json};

const CONTAINERS_DESC: &str = "Names of each container in the template.";
const IMAGES_DESC: &str = "Images referenced by each container in the template.";
const SELECTOR_DESC: &str = "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.";

const DEPLOYMENT: &[Column] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    col(
        "Up-to-date",
        "string",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    col(
        "Available",
        "string",
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide("Selector", "string", SELECTOR_DESC),
];

const REPLICAS: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "Replicas is the number of desired replicas.",
    ),
    col(
        "Current",
        "integer",
        "Replicas is the most recently observed number of replicas.",
    ),
    col(
        "Ready",
        "integer",
        "The number of ready replicas for this replica set.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide("Selector", "string", SELECTOR_DESC),
];

const STATEFUL_SET: &[Column] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
];

const DAEMON_SET: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod).",
    ),
    col(
        "Current",
        "integer",
        "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
    ),
    col(
        "Ready",
        "integer",
        "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.",
    ),
    col(
        "Up-to-date",
        "integer",
        "The total number of nodes that are running updated daemon pod",
    ),
    col(
        "Available",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
    ),
    col(
        "Node Selector",
        "string",
        "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide("Selector", "string", SELECTOR_DESC),
];

const CONTROLLER_REVISION: &[Column] = &[
    NAME,
    col("Controller", "string", "Controller of the object"),
    col(
        "Revision",
        "string",
        "Revision indicates the revision of the state represented by Data.",
    ),
    AGE,
];

pub(super) fn printer(kind: &str) -> Option<Printer> {
    Some(match kind {
        "Deployment" => Printer {
            columns: DEPLOYMENT,
            row: deployment,
        },
        "ReplicaSet" => Printer {
            columns: REPLICAS,
            row: replica_set,
        },
        "StatefulSet" => Printer {
            columns: STATEFUL_SET,
            row: stateful_set,
        },
        "DaemonSet" => Printer {
            columns: DAEMON_SET,
            row: daemon_set,
        },
        "ControllerRevision" => Printer {
            columns: CONTROLLER_REVISION,
            row: controller_revision,
        },
        _ => return None,
    })
}

/// Printer of core/v1 ReplicationControllers (same columns as ReplicaSets).
pub(super) fn replication_controller_printer() -> Printer {
    Printer {
        columns: REPLICAS,
        row: replication_controller,
    }
}

fn template_cells(obj: &Value) -> (String, String) {
    containers_images(obj.pointer("/spec/template/spec"))
}

fn deployment(obj: &Value, now: jiff::Timestamp) -> Row {
    let (containers, images) = template_cells(obj);
    vec![
        json!(name(obj)),
        json!(format!(
            "{}/{}",
            int(obj, "/status/readyReplicas"),
            int(obj, "/spec/replicas")
        )),
        json!(int(obj, "/status/updatedReplicas")),
        json!(int(obj, "/status/availableReplicas")),
        json!(age_of(obj, now)),
        json!(containers),
        json!(images),
        json!(label_selector(obj.pointer("/spec/selector"))),
    ]
    .into()
}

fn replica_set(obj: &Value, now: jiff::Timestamp) -> Row {
    replicas_row(obj, now, label_selector(obj.pointer("/spec/selector")))
}

fn replication_controller(obj: &Value, now: jiff::Timestamp) -> Row {
    replicas_row(obj, now, labels(obj.pointer("/spec/selector")))
}

fn replicas_row(obj: &Value, now: jiff::Timestamp, selector: String) -> Row {
    let (containers, images) = template_cells(obj);
    vec![
        json!(name(obj)),
        json!(int(obj, "/spec/replicas")),
        json!(int(obj, "/status/replicas")),
        json!(int(obj, "/status/readyReplicas")),
        json!(age_of(obj, now)),
        json!(containers),
        json!(images),
        json!(selector),
    ]
    .into()
}

fn stateful_set(obj: &Value, now: jiff::Timestamp) -> Row {
    let (containers, images) = template_cells(obj);
    vec![
        json!(name(obj)),
        json!(format!(
            "{}/{}",
            int(obj, "/status/readyReplicas"),
            int(obj, "/spec/replicas")
        )),
        json!(age_of(obj, now)),
        json!(containers),
        json!(images),
    ]
    .into()
}

fn daemon_set(obj: &Value, now: jiff::Timestamp) -> Row {
    let (containers, images) = template_cells(obj);
    vec![
        json!(name(obj)),
        json!(int(obj, "/status/desiredNumberScheduled")),
        json!(int(obj, "/status/currentNumberScheduled")),
        json!(int(obj, "/status/numberReady")),
        json!(int(obj, "/status/updatedNumberScheduled")),
        json!(int(obj, "/status/numberAvailable")),
        json!(labels(obj.pointer("/spec/template/spec/nodeSelector"))),
        json!(age_of(obj, now)),
        json!(containers),
        json!(images),
        json!(label_selector(obj.pointer("/spec/selector"))),
    ]
    .into()
}

/// `<kind>.<group>/<name>` of the controlling owner, `<none>` without one.
pub(super) fn controller_of(obj: &Value) -> String {
    let owners = obj.pointer("/metadata/ownerReferences").and_then(Value::as_array);
    let controller = owners
        .into_iter()
        .flatten()
        .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true));
    match controller {
        Some(o) => {
            let api_version = text(o, "/apiVersion");
            let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or_default();
            let kind = text(o, "/kind").to_ascii_lowercase();
            let kind = if group.is_empty() {
                kind
            } else {
                format!("{kind}.{group}")
            };
            format!("{kind}/{}", text(o, "/name"))
        }
        None => "<none>".to_string(),
    }
}

fn controller_revision(obj: &Value, now: jiff::Timestamp) -> Row {
    vec![
        json!(name(obj)),
        json!(controller_of(obj)),
        json!(int(obj, "/revision")),
        json!(age_of(obj, now)),
    ]
    .into()
}
