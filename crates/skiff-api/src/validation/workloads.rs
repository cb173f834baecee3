//! Rules of the replica-owning workloads: Deployment, ReplicaSet,
//! StatefulSet, DaemonSet (apps/v1) and ReplicationController: selector
//! required and matching the template, replica counts, update strategies,
//! and what an update may not change.

use super::{arr, s};
use super::{labelsel, pod};
use crate::status::Cause;
use serde_json::{Value, json};

/// `must be greater than or equal to 0` for a negative integer at `spec.<key>`.
pub(crate) fn non_negative(spec: &Value, key: &str, path: &str, out: &mut Vec<Cause>) {
    if let Some(n) = spec.get(key).and_then(Value::as_i64).filter(|n| *n < 0) {
        out.push(Cause::invalid(
            format!("{path}.{key}"),
            &json!(n),
            "must be greater than or equal to 0",
        ));
    }
}

/// Selector present, non-empty, well formed, and matching the template labels.
pub(crate) fn selector_and_template(spec: &Value, kind_word: &str, out: &mut Vec<Cause>) {
    let template_labels = spec.pointer("/template/metadata/labels");
    match spec.get("selector").filter(|v| !v.is_null()) {
        None => out.push(Cause::required("spec.selector")),
        Some(sel) => {
            if labelsel::is_empty(sel) {
                out.push(Cause::invalid(
                    "spec.selector",
                    sel,
                    format!("empty selector is invalid for {kind_word}"),
                ));
            } else {
                labelsel::validate(sel, "spec.selector", out);
                if !labelsel::matches(sel, template_labels) {
                    out.push(Cause::invalid(
                        "spec.template.metadata.labels",
                        &labelsel::labels_value(template_labels),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
        }
    }
}

fn template_restart_always(spec: &Value, out: &mut Vec<Cause>) {
    let policy = spec
        .pointer("/template/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("Always");
    if policy != "Always" {
        out.push(Cause::not_supported(
            "spec.template.spec.restartPolicy",
            &json!(policy),
            &["Always"],
        ));
    }
}

fn template(spec: &Value, out: &mut Vec<Cause>) {
    match spec.get("template").filter(|t| t.is_object()) {
        Some(t) => pod::template(t, "spec.template", out),
        None => out.push(Cause::required("spec.template")),
    }
}

/// Validates an int-or-percent strategy field; returns its value (percent or count) when valid.
fn int_or_percent(v: Option<&Value>, path: &str, out: &mut Vec<Cause>) -> Option<i64> {
    match v? {
        Value::Number(n) => {
            let n = n.as_i64().unwrap_or(-1);
            if n < 0 {
                out.push(Cause::invalid(
                    path,
                    &json!(n),
                    "must be greater than or equal to 0",
                ));
            }
            Some(n)
        }
        Value::String(text) => {
            let pct = text.strip_suffix('%').and_then(|p| p.parse::<i64>().ok());
            match pct {
                None => {
                    out.push(Cause::invalid(path, &json!(text), "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"));
                    None
                }
                Some(p) if p > 100 => {
                    out.push(Cause::invalid(
                        path,
                        &json!(text),
                        "must not be greater than 100%",
                    ));
                    Some(p)
                }
                Some(p) => Some(p),
            }
        }
        other => {
            out.push(Cause::invalid(
                path,
                other,
                "must be an integer or percentage (e.g '5%')",
            ));
            None
        }
    }
}

fn rolling_update(ru: &Value, path: &str, out: &mut Vec<Cause>) {
    let unavailable = int_or_percent(ru.get("maxUnavailable"), &format!("{path}.maxUnavailable"), out);
    let surge = int_or_percent(ru.get("maxSurge"), &format!("{path}.maxSurge"), out);
    if unavailable == Some(0) && surge.unwrap_or(0) == 0 {
        out.push(Cause::invalid(
            format!("{path}.maxUnavailable"),
            ru.get("maxUnavailable").unwrap_or(&Value::Null),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
}

pub(crate) fn deployment(obj: &Value, out: &mut Vec<Cause>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    for key in ["replicas", "minReadySeconds", "revisionHistoryLimit"] {
        non_negative(spec, key, "spec", out);
    }
    selector_and_template(spec, "deployment", out);
    template(spec, out);
    template_restart_always(spec, out);
    if let Some(strategy) = spec.get("strategy").filter(|v| v.is_object()) {
        let ty = s(strategy, "type");
        match ty {
            "Recreate" if strategy.get("rollingUpdate").is_some_and(|v| !v.is_null()) => {
                out.push(Cause::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ))
            }
            "RollingUpdate" => {
                if let Some(ru) = strategy.get("rollingUpdate").filter(|v| v.is_object()) {
                    rolling_update(ru, "spec.strategy.rollingUpdate", out);
                }
            }
            "" | "Recreate" => {}
            other => out.push(Cause::not_supported(
                "spec.strategy.type",
                &json!(other),
                &["Recreate", "RollingUpdate"],
            )),
        }
    }
    if let Some(pds) = spec.get("progressDeadlineSeconds").and_then(Value::as_i64) {
        let min_ready = spec.get("minReadySeconds").and_then(Value::as_i64).unwrap_or(0);
        if pds <= min_ready {
            out.push(Cause::invalid(
                "spec.progressDeadlineSeconds",
                &json!(pds),
                "must be greater than minReadySeconds",
            ));
        }
    }
}

pub(crate) fn replica_set(obj: &Value, out: &mut Vec<Cause>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    non_negative(spec, "replicas", "spec", out);
    non_negative(spec, "minReadySeconds", "spec", out);
    selector_and_template(spec, "deployment", out);
    template(spec, out);
    template_restart_always(spec, out);
}

/// ReplicationControllers use a plain label map as selector.
pub(crate) fn replication_controller(obj: &Value, out: &mut Vec<Cause>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    non_negative(spec, "replicas", "spec", out);
    non_negative(spec, "minReadySeconds", "spec", out);
    let selector = spec.get("selector").and_then(Value::as_object);
    match selector {
        None => out.push(Cause::required("spec.selector")),
        Some(sel) if sel.is_empty() => out.push(Cause::required("spec.selector")),
        Some(sel) => {
            super::meta::labels(spec.get("selector"), "spec.selector", out);
            let labels = spec
                .pointer("/template/metadata/labels")
                .and_then(Value::as_object);
            let matches = sel.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
            if spec.get("template").is_some_and(Value::is_object) && !matches {
                out.push(Cause::invalid(
                    "spec.template.metadata.labels",
                    &labelsel::labels_value(spec.pointer("/template/metadata/labels")),
                    "`selector` does not match template `labels`",
                ));
            }
        }
    }
    template(spec, out);
    template_restart_always(spec, out);
}

pub(crate) fn stateful_set(obj: &Value, out: &mut Vec<Cause>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    for key in ["replicas", "minReadySeconds", "revisionHistoryLimit"] {
        non_negative(spec, key, "spec", out);
    }
    let policy = s(spec, "podManagementPolicy");
    if !policy.is_empty() && !["OrderedReady", "Parallel"].contains(&policy) {
        out.push(Cause::not_supported(
            "spec.podManagementPolicy",
            &json!(policy),
            &["OrderedReady", "Parallel"],
        ));
    }
    if let Some(strategy) = spec.get("updateStrategy").filter(|v| v.is_object()) {
        match s(strategy, "type") {
            "" | "RollingUpdate" => {
                if let Some(ru) = strategy.get("rollingUpdate").filter(|v| v.is_object()) {
                    non_negative(ru, "partition", "spec.updateStrategy.rollingUpdate", out);
                }
            }
            "OnDelete" => {
                if strategy.get("rollingUpdate").is_some_and(|v| !v.is_null()) {
                    out.push(Cause::invalid(
                        "spec.updateStrategy.rollingUpdate",
                        &strategy["rollingUpdate"],
                        "only allowed for updateStrategy 'RollingUpdate'",
                    ));
                }
            }
            other => out.push(Cause::not_supported(
                "spec.updateStrategy.type",
                &json!(other),
                &["OnDelete", "RollingUpdate"],
            )),
        }
    }
    selector_and_template(spec, "statefulset", out);
    template(&with_claim_volumes(spec), out);
    template_restart_always(spec, out);
}

/// The spec with each volumeClaimTemplate added to the template's volumes
/// (as the controller does for every pod), so mounts of claims validate.
fn with_claim_volumes(spec: &Value) -> Value {
    let mut spec = spec.clone();
    let claims: Vec<String> = arr(&spec, "volumeClaimTemplates")
        .iter()
        .filter_map(|c| c.pointer("/metadata/name").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    if let Some(pod) = spec.pointer_mut("/template/spec").and_then(Value::as_object_mut) {
        let vols = pod.entry("volumes").or_insert_with(|| json!([]));
        if let Some(vols) = vols.as_array_mut() {
            for name in claims {
                if !vols.iter().any(|v| v["name"] == name.as_str()) {
                    vols.push(json!({"name": name, "persistentVolumeClaim": {"claimName": name}}));
                }
            }
        }
    }
    spec
}

pub(crate) fn daemon_set(obj: &Value, out: &mut Vec<Cause>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    non_negative(spec, "minReadySeconds", "spec", out);
    non_negative(spec, "revisionHistoryLimit", "spec", out);
    selector_and_template(spec, "daemonset", out);
    template(spec, out);
    template_restart_always(spec, out);
    if let Some(strategy) = spec.get("updateStrategy").filter(|v| v.is_object()) {
        match s(strategy, "type") {
            "" | "OnDelete" => {}
            "RollingUpdate" => {
                if let Some(ru) = strategy.get("rollingUpdate").filter(|v| v.is_object()) {
                    rolling_update(ru, "spec.updateStrategy.rollingUpdate", out);
                }
            }
            other => out.push(Cause::not_supported(
                "spec.updateStrategy.type",
                &json!(other),
                &["OnDelete", "RollingUpdate"],
            )),
        }
    }
}

/// apps/v1 selectors are immutable.
pub(crate) fn selector_immutable(new: &Value, old: &Value, out: &mut Vec<Cause>) {
    let n = new.pointer("/spec/selector").unwrap_or(&Value::Null);
    let o = old.pointer("/spec/selector").unwrap_or(&Value::Null);
    if n != o {
        out.push(Cause::invalid("spec.selector", n, "field is immutable"));
    }
}

/// A StatefulSet update may change only replicas, ordinals, template,
/// updateStrategy, revisionHistoryLimit, PVC retention policy and minReadySeconds.
pub(crate) fn stateful_set_update(new: &Value, old: &Value, out: &mut Vec<Cause>) {
    let mutable = [
        "replicas",
        "ordinals",
        "template",
        "updateStrategy",
        "revisionHistoryLimit",
        "persistentVolumeClaimRetentionPolicy",
        "minReadySeconds",
    ];
    let strip = |v: &Value| -> Value {
        let mut spec = v.get("spec").cloned().unwrap_or(Value::Null);
        if let Some(map) = spec.as_object_mut() {
            for k in mutable {
                map.remove(k);
            }
        }
        spec
    };
    if strip(new) != strip(old) {
        out.push(Cause::forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
}
