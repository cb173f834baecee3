//! Printers of the remaining groups: discovery EndpointSlices, coordination
//! Leases, RBAC, autoscaling HPAs (in [`super::autoscaling`]), policy
//! PDBs, storage classes, priority classes and events.k8s.io Events (shown
//! through their core/v1 form, as upstream does).

use super::autoscaling::{HPA, hpa};
use super::format::{age_of, int, list, name, text};
use super::{AGE, Column, NAME, Printer, Row, col, wide};
use serde_json::{Value, json};

const ENDPOINT_SLICE: &[Column] = &[
    NAME,
    col(
        "AddressType",
        "string",
        "addressType specifies the type of address carried by this EndpointSlice.",
    ),
    col(
        "Ports",
        "string",
        "ports specifies the list of network ports exposed by each endpoint in this slice.",
    ),
    col(
        "Endpoints",
        "string",
        "endpoints is a list of unique endpoints in this slice.",
    ),
    AGE,
];
const LEASE: &[Column] = &[
    NAME,
    col(
        "Holder",
        "string",
        "holderIdentity contains the identity of the holder of a current lease.",
    ),
    AGE,
];
const ROLE: &[Column] = &[NAME, col("Created At", "date", super::AGE_DESC)];
const BINDING: &[Column] = &[
    NAME,
    col(
        "Role",
        "string",
        "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace.",
    ),
    AGE,
    wide("Users", "string", "Users in the binding"),
    wide("Groups", "string", "Groups in the binding"),
    wide("ServiceAccounts", "string", "ServiceAccounts in the binding"),
];
const PDB: &[Column] = &[
    NAME,
    col(
        "Min Available",
        "string",
        "The minimum number of pods that must be available simultaneously.  This can be either an integer or a string specifying a percentage, e.g. \"28%\".",
    ),
    col(
        "Max Unavailable",
        "string",
        "The maximum number of pods that may be unavailable. This can be either an integer or a string specifying a percentage, e.g. \"33%\".",
    ),
    col(
        "Allowed Disruptions",
        "integer",
        "Number of pod disruptions that are currently allowed.",
    ),
    AGE,
];
const STORAGE_CLASS: &[Column] = &[
    NAME,
    col("Provisioner", "string", "Indicates the type of the provisioner."),
    col(
        "ReclaimPolicy",
        "string",
        "Dynamically provisioned PersistentVolumes of this storage class are created with this reclaimPolicy.",
    ),
    col(
        "VolumeBindingMode",
        "string",
        "VolumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.",
    ),
    col(
        "AllowVolumeExpansion",
        "string",
        "AllowVolumeExpansion shows whether the storage class allow volume expand.",
    ),
    AGE,
];
const PRIORITY_CLASS: &[Column] = &[
    NAME,
    col(
        "Value",
        "integer",
        "value represents the integer value of this priority class.",
    ),
    col(
        "Global-Default",
        "boolean",
        "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class.",
    ),
    AGE,
    col(
        "PreemptionPolicy",
        "string",
        "preemptionPolicy is the Policy for preempting pods with lower priority.",
    ),
];

pub(super) fn printer(group: &str, kind: &str) -> Option<Printer> {
    Some(match (group, kind) {
        ("discovery.k8s.io", "EndpointSlice") => Printer {
            columns: ENDPOINT_SLICE,
            row: endpoint_slice,
        },
        ("coordination.k8s.io", "Lease") => Printer {
            columns: LEASE,
            row: lease,
        },
        ("rbac.authorization.k8s.io", "Role" | "ClusterRole") => Printer {
            columns: ROLE,
            row: role,
        },
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => Printer {
            columns: BINDING,
            row: binding,
        },
        ("autoscaling", "HorizontalPodAutoscaler") => Printer {
            columns: HPA,
            row: hpa,
        },
        ("policy", "PodDisruptionBudget") => Printer {
            columns: PDB,
            row: pdb,
        },
        ("storage.k8s.io", "StorageClass") => Printer {
            columns: STORAGE_CLASS,
            row: storage_class,
        },
        ("scheduling.k8s.io", "PriorityClass") => Printer {
            columns: PRIORITY_CLASS,
            row: priority_class,
        },
        ("events.k8s.io", "Event") => {
            let core = super::core::printer("Event")?;
            Printer {
                columns: core.columns,
                row: events_v1,
            }
        }
        _ => return None,
    })
}

fn events_v1(obj: &Value, now: jiff::Timestamp) -> Row {
    let core = crate::conversion::event_to_core(obj.clone());
    super::core::printer("Event").map_or_else(|| Vec::new().into(), |p| (p.row)(&core, now))
}

fn created_at(obj: &Value) -> String {
    text(obj, "/metadata/creationTimestamp")
        .parse::<jiff::Timestamp>()
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// Up to three items, then ` + N more...`; `<unset>` when empty.
fn first_three(items: Vec<String>) -> String {
    match items.len() {
        0 => "<unset>".to_string(),
        n if n > 3 => format!("{} + {} more...", items[..3].join(","), n - 3),
        _ => items.join(","),
    }
}

fn endpoint_slice(obj: &Value, now: jiff::Timestamp) -> Row {
    let ports: Vec<String> = list(obj, "/ports")
        .iter()
        .map(
            |p| match (p.get("port").and_then(Value::as_i64), text(p, "/name")) {
                (Some(n), _) => n.to_string(),
                (None, "") => "*".to_string(),
                (None, name) => name.to_string(),
            },
        )
        .collect();
    let addresses: Vec<String> = list(obj, "/endpoints")
        .iter()
        .flat_map(|e| {
            list(e, "/addresses")
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    let (ports, addresses) = (first_three(ports), first_three(addresses));
    vec![
        json!(name(obj)),
        json!(text(obj, "/addressType")),
        json!(ports),
        json!(addresses),
        json!(age_of(obj, now)),
    ]
    .into()
}

fn lease(obj: &Value, now: jiff::Timestamp) -> Row {
    vec![
        json!(name(obj)),
        json!(text(obj, "/spec/holderIdentity")),
        json!(age_of(obj, now)),
    ]
    .into()
}

fn role(obj: &Value, _now: jiff::Timestamp) -> Row {
    vec![json!(name(obj)), json!(created_at(obj))].into()
}

fn binding(obj: &Value, now: jiff::Timestamp) -> Row {
    let subjects = list(obj, "/subjects");
    let of_kind = |kind: &str| -> String {
        subjects
            .iter()
            .filter(|s| text(s, "/kind") == kind)
            .map(|s| {
                if kind == "ServiceAccount" {
                    format!("{}/{}", text(s, "/namespace"), text(s, "/name"))
                } else {
                    text(s, "/name").to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        json!(name(obj)),
        json!(format!(
            "{}/{}",
            text(obj, "/roleRef/kind"),
            text(obj, "/roleRef/name")
        )),
        json!(age_of(obj, now)),
        json!(of_kind("User")),
        json!(of_kind("Group")),
        json!(of_kind("ServiceAccount")),
    ]
    .into()
}

fn int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => "N/A".to_string(),
    }
}

fn pdb(obj: &Value, now: jiff::Timestamp) -> Row {
    vec![
        json!(name(obj)),
        json!(int_or_string(obj.pointer("/spec/minAvailable"))),
        json!(int_or_string(obj.pointer("/spec/maxUnavailable"))),
        json!(int(obj, "/status/disruptionsAllowed")),
        json!(age_of(obj, now)),
    ]
    .into()
}

fn storage_class(obj: &Value, now: jiff::Timestamp) -> Row {
    let is_default = |key: &str| {
        obj.pointer("/metadata/annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
            == Some("true")
    };
    let mut n = name(obj).to_string();
    if is_default("storageclass.kubernetes.io/is-default-class")
        || is_default("storageclass.beta.kubernetes.io/is-default-class")
    {
        n.push_str(" (default)");
    }
    let or = |v: &str, d: &'static str| {
        if v.is_empty() {
            d.to_string()
        } else {
            v.to_string()
        }
    };
    vec![
        json!(n),
        json!(text(obj, "/provisioner")),
        json!(or(text(obj, "/reclaimPolicy"), "Delete")),
        json!(or(text(obj, "/volumeBindingMode"), "Immediate")),
        json!(
            obj.get("allowVolumeExpansion")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string()
        ),
        json!(age_of(obj, now)),
    ]
    .into()
}

fn priority_class(obj: &Value, now: jiff::Timestamp) -> Row {
    let policy = text(obj, "/preemptionPolicy");
    vec![
        json!(name(obj)),
        json!(int(obj, "/value")),
        json!(obj.get("globalDefault").and_then(Value::as_bool).unwrap_or(false)),
        json!(age_of(obj, now)),
        json!(if policy.is_empty() {
            "PreemptLowerPriority"
        } else {
            policy
        }),
    ]
    .into()
}
