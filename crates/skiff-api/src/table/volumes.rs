//! Printers of PersistentVolumes, PersistentVolumeClaims, ResourceQuotas
//! and LimitRanges.

use super::format::{age_of, list, name, text};
use super::{AGE, Column, NAME, Row, col, wide};
use serde_json::{Value, json};

pub(super) const PV: &[Column] = &[
    NAME,
    col(
        "Capacity",
        "string",
        "capacity is the description of the persistent volume's resources and capacity.",
    ),
    col(
        "Access Modes",
        "string",
        "accessModes contains all ways the volume can be mounted.",
    ),
    col(
        "Reclaim Policy",
        "string",
        "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim.",
    ),
    col(
        "Status",
        "string",
        "phase indicates if a volume is available, bound to a claim, or released by a claim.",
    ),
    col(
        "Claim",
        "string",
        "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim.",
    ),
    col(
        "StorageClass",
        "string",
        "storageClassName is the name of StorageClass to which this persistent volume belongs.",
    ),
    col(
        "VolumeAttributesClass",
        "string",
        "Name of VolumeAttributesClass to which this persistent volume belongs.",
    ),
    col(
        "Reason",
        "string",
        "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.",
    ),
    AGE,
    wide(
        "VolumeMode",
        "string",
        "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state.",
    ),
];
pub(super) const PVC: &[Column] = &[
    NAME,
    col(
        "Status",
        "string",
        "phase represents the current phase of PersistentVolumeClaim.",
    ),
    col(
        "Volume",
        "string",
        "volumeName is the binding reference to the PersistentVolume backing this claim.",
    ),
    col(
        "Capacity",
        "string",
        "capacity represents the actual resources of the underlying volume.",
    ),
    col(
        "Access Modes",
        "string",
        "accessModes contains the desired access modes the volume should have.",
    ),
    col(
        "StorageClass",
        "string",
        "storageClassName is the name of the StorageClass required by the claim.",
    ),
    col(
        "VolumeAttributesClass",
        "string",
        "volumeAttributesClassName may be used to set the VolumeAttributesClass used by this claim.",
    ),
    AGE,
    wide(
        "VolumeMode",
        "string",
        "volumeMode defines what type of volume is required by the claim.",
    ),
];
pub(super) const RESOURCE_QUOTA: &[Column] = &[
    NAME,
    col(
        "Request",
        "string",
        "Request represents a minimum amount of cpu/memory that a container may consume.",
    ),
    col(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
    ),
    AGE,
];
pub(super) const LIMIT_RANGE: &[Column] = &[NAME, col("Created At", "date", super::AGE_DESC)];

/// Access modes in upstream's short form: RWO, ROX, RWX, RWOP.
fn access_modes(modes: &[Value]) -> String {
    let mut out = Vec::new();
    for (mode, short) in [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ] {
        if modes.iter().any(|m| m.as_str() == Some(mode)) {
            out.push(short);
        }
    }
    out.join(",")
}

pub(super) fn pv(obj: &Value, now: jiff::Timestamp) -> Row {
    let claim = match text(obj, "/spec/claimRef/name") {
        "" => String::new(),
        n => format!("{}/{n}", text(obj, "/spec/claimRef/namespace")),
    };
    let deleting = obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null());
    let phase = if deleting {
        "Terminating"
    } else {
        text(obj, "/status/phase")
    };
    let vac = text(obj, "/spec/volumeAttributesClassName");
    vec![
        json!(name(obj)),
        json!(text(obj, "/spec/capacity/storage")),
        json!(access_modes(list(obj, "/spec/accessModes"))),
        json!(text(obj, "/spec/persistentVolumeReclaimPolicy")),
        json!(phase),
        json!(claim),
        json!(storage_class(obj)),
        json!(if vac.is_empty() { "<unset>" } else { vac }),
        json!(text(obj, "/status/reason")),
        json!(age_of(obj, now)),
        json!(unset_if_empty(text(obj, "/spec/volumeMode"))),
    ]
    .into()
}

fn storage_class(obj: &Value) -> String {
    let sc = text(obj, "/spec/storageClassName");
    if sc.is_empty() {
        text(
            obj,
            "/metadata/annotations/volume.beta.kubernetes.io~1storage-class",
        )
        .to_string()
    } else {
        sc.to_string()
    }
}

pub(super) fn pvc(obj: &Value, now: jiff::Timestamp) -> Row {
    let deleting = obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null());
    let phase = if deleting {
        "Terminating"
    } else {
        text(obj, "/status/phase")
    };
    let bound = !text(obj, "/spec/volumeName").is_empty();
    let (capacity, modes) = if bound {
        (
            text(obj, "/status/capacity/storage").to_string(),
            access_modes(list(obj, "/status/accessModes")),
        )
    } else {
        (String::new(), String::new())
    };
    let vac = text(obj, "/spec/volumeAttributesClassName");
    vec![
        json!(name(obj)),
        json!(phase),
        json!(text(obj, "/spec/volumeName")),
        json!(capacity),
        json!(modes),
        json!(storage_class(obj)),
        json!(if vac.is_empty() { "<unset>" } else { vac }),
        json!(age_of(obj, now)),
        json!(unset_if_empty(text(obj, "/spec/volumeMode"))),
    ]
    .into()
}

pub(super) fn resource_quota(obj: &Value, now: jiff::Timestamp) -> Row {
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    let hard = obj
        .pointer("/status/hard")
        .or_else(|| obj.pointer("/spec/hard"))
        .and_then(Value::as_object);
    let mut names: Vec<&String> = hard.into_iter().flat_map(|h| h.keys()).collect();
    names.sort();
    for res in names {
        let hard_q = hard
            .and_then(|h| h.get(res))
            .and_then(Value::as_str)
            .unwrap_or("0");
        let used = obj
            .pointer("/status/used")
            .and_then(|u| u.get(res))
            .and_then(Value::as_str)
            .unwrap_or("0");
        let entry = format!("{res}: {used}/{hard_q}");
        if res.starts_with("limits.") {
            limits.push(entry)
        } else {
            requests.push(entry)
        }
    }
    vec![
        json!(name(obj)),
        json!(requests.join(", ")),
        json!(limits.join(", ")),
        json!(age_of(obj, now)),
    ]
    .into()
}

pub(super) fn limit_range(obj: &Value, _now: jiff::Timestamp) -> Row {
    let created = text(obj, "/metadata/creationTimestamp")
        .parse::<jiff::Timestamp>()
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    vec![json!(name(obj)), json!(created)].into()
}

fn unset_if_empty(v: &str) -> &str {
    if v.is_empty() { "<unset>" } else { v }
}
