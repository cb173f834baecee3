//! Rules of the smaller kinds: PersistentVolume(Claim)s, HPAs, PDBs, RBAC
//! bindings (immutable roleRef), PriorityClasses, ResourceQuotas and
//! EndpointSlices.

use super::labelsel;
use super::quantity::Quantity;
use crate::status::Cause;
use serde_json::{Value, json};

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

fn has(v: &Value, ptr: &str) -> bool {
    v.pointer(ptr).is_some_and(|x| !x.is_null())
}

const ACCESS_MODES: [&str; 4] = [
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

fn access_modes(obj: &Value, out: &mut Vec<Cause>) {
    let modes = obj
        .pointer("/spec/accessModes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if modes.is_empty() {
        out.push(Cause::new(
            "FieldValueRequired",
            "spec.accessModes",
            "Required value: at least 1 access mode is required",
        ));
    }
    for m in modes {
        if !m.as_str().is_some_and(|m| ACCESS_MODES.contains(&m)) {
            out.push(Cause::not_supported("spec.accessModes", m, &ACCESS_MODES));
        }
    }
}

/// A quantity map (`capacity`, `requests`, `hard`): every value parses and is not negative.
fn quantities(map: Option<&Value>, path: &str, out: &mut Vec<Cause>) {
    for (k, v) in map.and_then(Value::as_object).into_iter().flatten() {
        let text = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
        match Quantity::parse(&text) {
            Ok(q) if q.is_negative() => out.push(Cause::invalid(
                format!("{path}[{k}]"),
                &json!(text),
                "must be greater than or equal to 0",
            )),
            Ok(_) => {}
            Err(e) => out.push(Cause::invalid(
                format!("{path}[{k}]"),
                &json!(text),
                e.to_string(),
            )),
        }
    }
}

pub(crate) fn pvc(obj: &Value, out: &mut Vec<Cause>) {
    access_modes(obj, out);
    let from_source = has(obj, "/spec/dataSource") || has(obj, "/spec/dataSourceRef");
    if !has(obj, "/spec/resources/requests/storage") && !from_source {
        out.push(Cause::required("spec.resources[storage]"));
    }
    quantities(
        obj.pointer("/spec/resources/requests"),
        "spec.resources.requests",
        out,
    );
    if let Some(sel) = obj.pointer("/spec/selector").filter(|v| v.is_object()) {
        labelsel::validate(sel, "spec.selector", out);
    }
}

/// A PVC's spec is immutable except its storage request, its volume
/// attributes class, and the volume name binding fills in once.
pub(crate) fn pvc_update(new: &Value, old: &Value, out: &mut Vec<Cause>) {
    let unbound = s(old, "/spec/volumeName").is_empty();
    let strip = |v: &Value| {
        let mut spec = v.get("spec").cloned().unwrap_or(Value::Null);
        if let Some(m) = spec.pointer_mut("/resources").and_then(Value::as_object_mut) {
            m.remove("requests");
        }
        if let Some(m) = spec.as_object_mut() {
            m.remove("volumeAttributesClassName");
            if unbound {
                m.remove("volumeName");
            }
        }
        spec
    };
    if strip(new) != strip(old) {
        out.push(Cause::forbidden(
            "spec",
            "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
        ));
    }
}

pub(crate) fn pv(obj: &Value, out: &mut Vec<Cause>) {
    access_modes(obj, out);
    if !has(obj, "/spec/capacity/storage") {
        out.push(Cause::required("spec.capacity[storage]"));
    }
    quantities(obj.pointer("/spec/capacity"), "spec.capacity", out);
    let policy = s(obj, "/spec/persistentVolumeReclaimPolicy");
    let policies = ["Delete", "Recycle", "Retain"];
    if !policy.is_empty() && !policies.contains(&policy) {
        out.push(Cause::not_supported(
            "spec.persistentVolumeReclaimPolicy",
            &json!(policy),
            &policies,
        ));
    }
    let not_sources = [
        "accessModes",
        "capacity",
        "claimRef",
        "mountOptions",
        "nodeAffinity",
        "persistentVolumeReclaimPolicy",
        "storageClassName",
        "volumeMode",
        "volumeAttributesClassName",
    ];
    let spec = obj.get("spec").and_then(Value::as_object);
    let has_source = spec.is_some_and(|m| {
        m.iter()
            .any(|(k, v)| !v.is_null() && !not_sources.contains(&k.as_str()))
    });
    if !has_source {
        out.push(Cause::new(
            "FieldValueRequired",
            "spec",
            "Required value: must specify a volume type",
        ));
    }
}

pub(crate) fn hpa(obj: &Value, out: &mut Vec<Cause>) {
    if s(obj, "/spec/scaleTargetRef/kind").is_empty() {
        out.push(Cause::required("spec.scaleTargetRef.kind"));
    }
    if s(obj, "/spec/scaleTargetRef/name").is_empty() {
        out.push(Cause::required("spec.scaleTargetRef.name"));
    }
    let min = obj.pointer("/spec/minReplicas").and_then(Value::as_i64);
    let max = obj
        .pointer("/spec/maxReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if let Some(min) = min.filter(|m| *m < 1) {
        out.push(Cause::invalid(
            "spec.minReplicas",
            &json!(min),
            "must be greater than or equal to 1",
        ));
    }
    if max < min.unwrap_or(1).max(1) {
        out.push(Cause::invalid(
            "spec.maxReplicas",
            &json!(max),
            "must be greater than or equal to `minReplicas`",
        ));
    }
    if let Some(pct) = obj
        .pointer("/spec/targetCPUUtilizationPercentage")
        .and_then(Value::as_i64)
        .filter(|p| *p < 1)
    {
        out.push(Cause::invalid(
            "spec.targetCPUUtilizationPercentage",
            &json!(pct),
            "must be greater than or equal to 1",
        ));
    }
}

pub(crate) fn pdb(obj: &Value, out: &mut Vec<Cause>) {
    if has(obj, "/spec/minAvailable") && has(obj, "/spec/maxUnavailable") {
        out.push(Cause::invalid(
            "spec",
            obj.get("spec").unwrap_or(&Value::Null),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    if let Some(sel) = obj.pointer("/spec/selector").filter(|v| v.is_object()) {
        labelsel::validate(sel, "spec.selector", out);
    }
    let policy = s(obj, "/spec/unhealthyPodEvictionPolicy");
    let policies = ["AlwaysAllow", "IfHealthyBudget"];
    if !policy.is_empty() && !policies.contains(&policy) {
        out.push(Cause::not_supported(
            "spec.unhealthyPodEvictionPolicy",
            &json!(policy),
            &policies,
        ));
    }
}

pub(crate) fn role_binding(obj: &Value, namespaced: bool, out: &mut Vec<Cause>) {
    let kind = s(obj, "/roleRef/kind");
    let supported: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if kind.is_empty() {
        out.push(Cause::required("roleRef.kind"));
    } else if !supported.contains(&kind) {
        out.push(Cause::not_supported("roleRef.kind", &json!(kind), supported));
    }
    if s(obj, "/roleRef/name").is_empty() {
        out.push(Cause::required("roleRef.name"));
    }
    let subjects = obj
        .get("subjects")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, subject) in subjects.iter().enumerate() {
        if s(subject, "/name").is_empty() {
            out.push(Cause::required(format!("subjects[{i}].name")));
        }
        let kind = s(subject, "/kind");
        let kinds = ["ServiceAccount", "User", "Group"];
        if !kinds.contains(&kind) {
            out.push(Cause::not_supported(
                format!("subjects[{i}].kind"),
                &json!(kind),
                &kinds,
            ));
        }
    }
}

/// A binding's roleRef may not change.
pub(crate) fn role_binding_update(new: &Value, old: &Value, out: &mut Vec<Cause>) {
    let n = new.get("roleRef").unwrap_or(&Value::Null);
    if n != old.get("roleRef").unwrap_or(&Value::Null) {
        out.push(Cause::invalid("roleRef", n, "cannot change roleRef"));
    }
}

pub(crate) fn priority_class(obj: &Value, out: &mut Vec<Cause>) {
    let name = s(obj, "/metadata/name");
    let value = obj.get("value").and_then(Value::as_i64).unwrap_or(0);
    if !name.starts_with("system-") && value > 1_000_000_000 {
        out.push(Cause::forbidden(
            "value",
            "maximum allowed value of a user defined priority is 1000000000",
        ));
    }
    let policy = s(obj, "/preemptionPolicy");
    let policies = ["Never", "PreemptLowerPriority"];
    if !policy.is_empty() && !policies.contains(&policy) {
        out.push(Cause::not_supported(
            "preemptionPolicy",
            &json!(policy),
            &policies,
        ));
    }
}

/// A PriorityClass's value may not change.
pub(crate) fn priority_class_update(new: &Value, old: &Value, out: &mut Vec<Cause>) {
    let n = new.get("value").unwrap_or(&Value::Null);
    if n != old.get("value").unwrap_or(&Value::Null) {
        out.push(Cause::forbidden("value", "may not be changed in an update."));
    }
}

pub(crate) fn resource_quota(obj: &Value, out: &mut Vec<Cause>) {
    quantities(obj.pointer("/spec/hard"), "spec.hard", out);
}

pub(crate) fn endpoint_slice(obj: &Value, out: &mut Vec<Cause>) {
    let ty = s(obj, "/addressType");
    let types = ["IPv4", "IPv6", "FQDN"];
    if ty.is_empty() {
        out.push(Cause::required("addressType"));
    } else if !types.contains(&ty) {
        out.push(Cause::not_supported("addressType", &json!(ty), &types));
    }
    let ports = obj
        .get("ports")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, p) in ports.iter().enumerate() {
        if let Some(port) = p.get("port").and_then(Value::as_i64) {
            super::container::port_number(port, &format!("ports[{i}].port"), out);
        }
    }
}
