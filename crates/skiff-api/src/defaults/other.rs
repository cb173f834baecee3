//! Defaults of the remaining groups: autoscaling HPAs, RBAC bindings,
//! PriorityClass and StorageClass.

use super::{each, existing, object, set, set_str, str_of};
use serde_json::{Value, json};

/// `minReplicas: 1` in both versions; autoscaling/v2 also defaults an empty
/// metric list to 80% CPU utilization and fills `behavior` when present.
pub(crate) fn hpa(version: &str, obj: &mut Value) {
    let Some(spec) = object(obj, "spec") else { return };
    set(spec, "minReplicas", json!(1));
    if version != "v2" {
        return;
    }
    let no_metrics = spec
        .get("metrics")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if no_metrics {
        spec["metrics"] = json!([{
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}
        }]);
    }
    let Some(behavior) = existing(spec, "behavior") else {
        return;
    };
    if let Some(up) = object(behavior, "scaleUp") {
        set(up, "stabilizationWindowSeconds", json!(0));
        set_str(up, "selectPolicy", "Max");
        set(
            up,
            "policies",
            json!([
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15}
            ]),
        );
    }
    // The scale-down stabilization window stays unset: the controller's flag decides it.
    if let Some(down) = object(behavior, "scaleDown") {
        set_str(down, "selectPolicy", "Max");
        set(
            down,
            "policies",
            json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]),
        );
    }
}

/// `roleRef.apiGroup` and subjects' `apiGroup` as upstream fills them.
pub(crate) fn role_binding(obj: &mut Value) {
    if let Some(role_ref) = existing(obj, "roleRef") {
        set_str(role_ref, "apiGroup", "rbac.authorization.k8s.io");
    }
    each(obj, "subjects", |s| {
        let group = if str_of(s, "kind") == "ServiceAccount" {
            ""
        } else {
            "rbac.authorization.k8s.io"
        };
        if s.get("apiGroup").is_none() {
            s["apiGroup"] = json!(group);
        }
    });
}

pub(crate) fn priority_class(obj: &mut Value) {
    set_str(obj, "preemptionPolicy", "PreemptLowerPriority");
}

pub(crate) fn storage_class(obj: &mut Value) {
    set_str(obj, "reclaimPolicy", "Delete");
    set_str(obj, "volumeBindingMode", "Immediate");
}
