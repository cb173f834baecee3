//! Pod update rules (`ValidatePodUpdate`): a pod's spec is immutable except
//! container images, `activeDeadlineSeconds`, added tolerations, a negative
//! grace period becoming 1, and removed scheduling gates.

use crate::status::Cause;
use serde_json::{Value, json};

const POD_UPDATE_MESSAGE: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// Problems with changing a pod's spec from `old` to `new`.
pub(crate) fn validate(new: &Value, old: &Value, out: &mut Vec<Cause>) {
    let mut allowed = old.clone();
    let (Some(allowed_map), Some(new_map)) = (allowed.as_object_mut(), new.as_object()) else {
        return;
    };
    for key in ["containers", "initContainers"] {
        let (Some(a), Some(n)) = (
            allowed_map.get_mut(key).and_then(Value::as_array_mut),
            new_map.get(key).and_then(Value::as_array),
        ) else {
            continue;
        };
        if a.len() != n.len() {
            continue;
        }
        for (ac, nc) in a.iter_mut().zip(n) {
            if let (Some(ac), Some(image)) = (ac.as_object_mut(), nc.get("image")) {
                ac.insert("image".into(), image.clone());
            }
        }
    }
    if let Some(ads) = new_map.get("activeDeadlineSeconds").and_then(Value::as_i64) {
        let old_ads = old.get("activeDeadlineSeconds").and_then(Value::as_i64);
        if old_ads.is_some_and(|o| ads > o) {
            out.push(Cause::invalid(
                "spec.activeDeadlineSeconds",
                &json!(ads),
                "must be less than or equal to previous value",
            ));
        }
        allowed_map.insert("activeDeadlineSeconds".into(), json!(ads));
    }
    let old_tolerations = old
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let new_tolerations = new
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if old_tolerations.iter().all(|t| new_tolerations.contains(t)) {
        copy(allowed_map, new_map, "tolerations");
    }
    let old_grace = old.get("terminationGracePeriodSeconds").and_then(Value::as_i64);
    let new_grace = new.get("terminationGracePeriodSeconds").and_then(Value::as_i64);
    if old_grace.is_some_and(|g| g < 0) && new_grace == Some(1) {
        copy(allowed_map, new_map, "terminationGracePeriodSeconds");
    }
    let old_gates = old
        .get("schedulingGates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let new_gates = new
        .get("schedulingGates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if new_gates.iter().all(|g| old_gates.contains(g)) {
        copy(allowed_map, new_map, "schedulingGates");
    }
    if &allowed != new {
        let changed = changed_fields(&allowed, new, "spec");
        let detail = if changed.is_empty() {
            POD_UPDATE_MESSAGE.to_string()
        } else {
            format!("{POD_UPDATE_MESSAGE}\n  changed: {}", changed.join(", "))
        };
        out.push(Cause::forbidden("spec", detail));
    }
}

fn copy(into: &mut serde_json::Map<String, Value>, from: &serde_json::Map<String, Value>, key: &str) {
    match from.get(key) {
        Some(v) => into.insert(key.to_string(), v.clone()),
        None => into.remove(key),
    };
}

/// The field paths where `a` and `b` differ, down to the first difference of each branch.
fn changed_fields(a: &Value, b: &Value, path: &str) -> Vec<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .flat_map(|k| {
                    let (va, vb) = (x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null));
                    changed_fields(va, vb, &format!("{path}.{k}"))
                })
                .collect()
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .flat_map(|(i, (va, vb))| changed_fields(va, vb, &format!("{path}[{i}]")))
            .collect(),
        _ if a == b => Vec::new(),
        _ => vec![path.to_string()],
    }
}
