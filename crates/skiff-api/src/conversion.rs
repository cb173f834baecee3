//! Conversion between served versions that share one storage form:
//! events.k8s.io/v1 Events are stored as core/v1 Events, autoscaling/v1 HPAs
//! as autoscaling/v2 HPAs (as upstream's `pkg/apis/events/v1` and
//! `pkg/apis/autoscaling/v1` conversions do). Fields with no place in the
//! older HPA version travel in `autoscaling.alpha.kubernetes.io/*`
//! annotations so a round trip through v1 loses nothing.
//!
//! Must not: default or validate; only move fields between shapes.

use crate::registry::{Registry, ResourceDef};
use serde_json::{Map, Value, json};

const METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
const CURRENT_METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";

/// The resource whose shape is stored for `def` (itself unless another version owns storage).
pub fn storage_def<'a>(registry: &'a Registry, def: &'a ResourceDef) -> &'a ResourceDef {
    if def.group == "events.k8s.io" {
        return registry.find("", "v1", "events").unwrap_or(def);
    }
    registry
        .all()
        .iter()
        .find(|r| r.plural == def.storage_resource && r.kind == def.kind && r.group == def.group)
        .unwrap_or(def)
}

/// Converts an object served as `def` into its storage form.
pub fn to_storage(registry: &Registry, def: &ResourceDef, obj: Value) -> Value {
    let storage = storage_def(registry, def);
    let mut obj = match (def.group, def.version, storage.group, storage.version) {
        ("events.k8s.io", "v1", "", "v1") => event_to_core(obj),
        ("autoscaling", "v1", "autoscaling", "v2") => hpa_v1_to_v2(obj),
        _ => obj,
    };
    set_type(&mut obj, storage);
    obj
}

/// Converts a stored object into the form served as `def`.
pub fn from_storage(registry: &Registry, def: &ResourceDef, obj: Value) -> Value {
    let storage = storage_def(registry, def);
    let mut obj = match (storage.group, storage.version, def.group, def.version) {
        ("", "v1", "events.k8s.io", "v1") => event_from_core(obj),
        ("autoscaling", "v2", "autoscaling", "v1") => hpa_v2_to_v1(obj),
        _ => obj,
    };
    set_type(&mut obj, def);
    obj
}

fn set_type(obj: &mut Value, def: &ResourceDef) {
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(def.api_version()));
        map.insert("kind".into(), Value::String(def.kind.to_string()));
    }
}

/// Moves `from[src]` to `to[dst]` when present and not null.
fn carry(from: &mut Map<String, Value>, src: &str, to: &mut Map<String, Value>, dst: &str) {
    if let Some(v) = from.remove(src).filter(|v| !v.is_null()) {
        to.insert(dst.to_string(), v);
    }
}

/// events.k8s.io/v1 → core/v1 Event field mapping (events name, core name).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("metadata", "metadata"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("reportingController", "reportingComponent"),
    ("reportingInstance", "reportingInstance"),
    ("action", "action"),
    ("reason", "reason"),
    ("regarding", "involvedObject"),
    ("related", "related"),
    ("note", "message"),
    ("type", "type"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// An events.k8s.io/v1 Event in core/v1 form.
pub fn event_to_core(obj: Value) -> Value {
    let Value::Object(mut from) = obj else { return obj };
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!("v1"));
    out.insert("kind".into(), json!("Event"));
    for (ev, core) in EVENT_FIELDS {
        carry(&mut from, ev, &mut out, core);
    }
    out.entry("involvedObject").or_insert_with(|| json!({}));
    Value::Object(out)
}

/// A core/v1 Event in events.k8s.io/v1 form. An event recorded by an old
/// client without reporting fields reports its `source` instead.
pub fn event_from_core(obj: Value) -> Value {
    let Value::Object(mut from) = obj else { return obj };
    let source = from.get("source").cloned().unwrap_or(Value::Null);
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!("events.k8s.io/v1"));
    out.insert("kind".into(), json!("Event"));
    for (ev, core) in EVENT_FIELDS {
        carry(&mut from, core, &mut out, ev);
    }
    let empty = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).is_none_or(str::is_empty);
    if empty(&out, "reportingController")
        && let Some(c) = source
            .get("component")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
    {
        out.insert("reportingController".into(), json!(c));
    }
    if empty(&out, "reportingInstance")
        && let Some(h) = source
            .get("host")
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty())
    {
        out.insert("reportingInstance".into(), json!(h));
    }
    Value::Object(out)
}

fn is_cpu_utilization(metric: &Value) -> bool {
    metric.get("type").and_then(Value::as_str) == Some("Resource")
        && metric.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
        && metric.pointer("/resource/target/type").and_then(Value::as_str) == Some("Utilization")
}

fn annotations(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let meta = obj
        .as_object_mut()?
        .entry("metadata")
        .or_insert_with(|| json!({}));
    meta.as_object_mut()?
        .entry("annotations")
        .or_insert_with(|| json!({}))
        .as_object_mut()
}

fn take_annotation(obj: &mut Value, key: &str) -> Option<Value> {
    let anns = obj
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)?;
    let raw = anns.remove(key)?;
    let empty = anns.is_empty();
    if empty && let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("annotations");
    }
    serde_json::from_str(raw.as_str()?).ok()
}

fn put_annotation(obj: &mut Value, key: &str, value: &Value) {
    if let Some(anns) = annotations(obj) {
        anns.insert(key.to_string(), Value::String(value.to_string()));
    }
}

/// An autoscaling/v1 HPA in autoscaling/v2 form.
pub fn hpa_v1_to_v2(mut obj: Value) -> Value {
    let mut metrics: Vec<Value> = Vec::new();
    if let Some(Value::Array(extra)) = take_annotation(&mut obj, METRICS_ANNOTATION) {
        metrics.extend(extra);
    }
    let behavior = take_annotation(&mut obj, BEHAVIOR_ANNOTATION);
    let mut current: Vec<Value> = Vec::new();
    if let Some(Value::Array(extra)) = take_annotation(&mut obj, CURRENT_METRICS_ANNOTATION) {
        current.extend(extra);
    }
    let conditions = take_annotation(&mut obj, CONDITIONS_ANNOTATION);
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        if let Some(cpu) = spec
            .remove("targetCPUUtilizationPercentage")
            .filter(|v| !v.is_null())
        {
            metrics.insert(
                0,
                json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}}}),
            );
        }
        if !metrics.is_empty() {
            spec.insert("metrics".into(), Value::Array(metrics));
        }
        if let Some(b) = behavior {
            spec.insert("behavior".into(), b);
        }
    }
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        if let Some(cpu) = status
            .remove("currentCPUUtilizationPercentage")
            .filter(|v| !v.is_null())
        {
            current.insert(0, json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": cpu}}}));
        }
        if !current.is_empty() {
            status.insert("currentMetrics".into(), Value::Array(current));
        }
        if let Some(c) = conditions {
            status.insert("conditions".into(), c);
        }
        status.entry("desiredReplicas").or_insert(json!(0));
    }
    obj
}

/// An autoscaling/v2 HPA in autoscaling/v1 form.
pub fn hpa_v2_to_v1(mut obj: Value) -> Value {
    let mut spec_metrics = Vec::new();
    let mut behavior = None;
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        let metrics = spec
            .remove("metrics")
            .and_then(|m| m.as_array().cloned())
            .unwrap_or_default();
        for m in metrics {
            if is_cpu_utilization(&m)
                && !spec.contains_key("targetCPUUtilizationPercentage")
                && let Some(pct) = m.pointer("/resource/target/averageUtilization")
            {
                spec.insert("targetCPUUtilizationPercentage".into(), pct.clone());
                continue;
            }
            spec_metrics.push(m);
        }
        behavior = spec.remove("behavior").filter(|b| !b.is_null());
    }
    let mut current_metrics = Vec::new();
    let mut conditions = None;
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        let current = status
            .remove("currentMetrics")
            .and_then(|m| m.as_array().cloned())
            .unwrap_or_default();
        for m in current {
            let cpu = m.get("type").and_then(Value::as_str) == Some("Resource")
                && m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu");
            if cpu
                && !status.contains_key("currentCPUUtilizationPercentage")
                && let Some(pct) = m.pointer("/resource/current/averageUtilization")
            {
                status.insert("currentCPUUtilizationPercentage".into(), pct.clone());
                continue;
            }
            current_metrics.push(m);
        }
        conditions = status
            .remove("conditions")
            .filter(|c| c.as_array().is_some_and(|a| !a.is_empty()));
    }
    if !spec_metrics.is_empty() {
        put_annotation(&mut obj, METRICS_ANNOTATION, &Value::Array(spec_metrics));
    }
    if !current_metrics.is_empty() {
        put_annotation(
            &mut obj,
            CURRENT_METRICS_ANNOTATION,
            &Value::Array(current_metrics),
        );
    }
    if let Some(c) = conditions {
        put_annotation(&mut obj, CONDITIONS_ANNOTATION, &c);
    }
    if let Some(b) = behavior {
        put_annotation(&mut obj, BEHAVIOR_ANNOTATION, &b);
    }
    obj
}
