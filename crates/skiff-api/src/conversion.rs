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

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> Registry {
        Registry::builtin()
    }

    #[test]
    fn events_v1_are_stored_as_core_events() {
        let reg = reg();
        let ev1 = reg.find("events.k8s.io", "v1", "events").expect("events.k8s.io");
        assert_eq!(storage_def(&reg, ev1).api_version(), "v1");
        let served = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "web.1", "namespace": "default"},
            "eventTime": "2026-01-01T00:00:00.000000Z", "reason": "Pulled", "note": "Pulled image",
            "type": "Normal", "action": "Pull", "reportingController": "skiff-agent", "reportingInstance": "node-1",
            "regarding": {"kind": "Pod", "name": "web", "namespace": "default"},
            "series": {"count": 2, "lastObservedTime": "2026-01-01T00:01:00.000000Z"},
            "deprecatedCount": 2,
        });
        let stored = to_storage(&reg, ev1, served.clone());
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["message"], "Pulled image");
        assert_eq!(stored["involvedObject"]["name"], "web");
        assert_eq!(stored["reportingComponent"], "skiff-agent");
        assert_eq!(stored["count"], 2);
        assert!(stored.get("note").is_none());
        // The stored form is a valid core/v1 Event and reads back unchanged.
        let core = reg.find("", "v1", "events").expect("core events");
        assert!((core.normalize)(stored.clone()).is_ok());
        assert_eq!(from_storage(&reg, ev1, stored), served);
    }

    #[test]
    fn old_core_events_report_their_source() {
        let reg = reg();
        let ev1 = reg.find("events.k8s.io", "v1", "events").expect("events.k8s.io");
        let stored = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"kind": "Node", "name": "n1"}, "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": "2026-01-01T00:00:00Z"});
        let served = from_storage(&reg, ev1, stored);
        assert_eq!(served["reportingController"], "kubelet");
        assert_eq!(served["reportingInstance"], "n1");
        assert_eq!(served["deprecatedSource"]["component"], "kubelet");
        assert_eq!(served["deprecatedFirstTimestamp"], "2026-01-01T00:00:00Z");
        assert_eq!(served["regarding"]["kind"], "Node");
    }

    #[test]
    fn hpa_v1_round_trips_through_v2() {
        let reg = reg();
        let v1 = reg
            .find("autoscaling", "v1", "horizontalpodautoscalers")
            .expect("v1");
        assert_eq!(storage_def(&reg, v1).version, "v2");
        let served = json!({
            "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 70},
            "status": {"currentReplicas": 2, "desiredReplicas": 3, "currentCPUUtilizationPercentage": 40},
        });
        let stored = to_storage(&reg, v1, served.clone());
        assert_eq!(stored["apiVersion"], "autoscaling/v2");
        assert_eq!(
            stored["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}])
        );
        assert_eq!(
            stored["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
            40
        );
        let v2 = reg
            .find("autoscaling", "v2", "horizontalpodautoscalers")
            .expect("v2");
        assert!((v2.normalize)(stored.clone()).is_ok());
        assert_eq!(from_storage(&reg, v1, stored), served);
    }

    #[test]
    fn v2_only_fields_survive_a_v1_round_trip() {
        let reg = reg();
        let v1 = reg
            .find("autoscaling", "v1", "horizontalpodautoscalers")
            .expect("v1");
        let stored = json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5,
                     "metrics": [{"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}}],
                     "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}},
            "status": {"desiredReplicas": 1, "conditions": [{"type": "AbleToScale", "status": "True"}]},
        });
        let served = from_storage(&reg, v1, stored.clone());
        assert!(served["spec"].get("metrics").is_none());
        assert!(served["spec"].get("targetCPUUtilizationPercentage").is_none());
        assert!(served["metadata"]["annotations"][METRICS_ANNOTATION].is_string());
        assert_eq!(to_storage(&reg, v1, served), stored);
    }

    #[test]
    fn same_version_is_only_retyped() {
        let reg = reg();
        let pods = reg.find("", "v1", "pods").expect("pods");
        let obj = json!({"metadata": {"name": "p"}});
        assert_eq!(
            to_storage(&reg, pods, obj.clone()),
            json!({"metadata": {"name": "p"}, "apiVersion": "v1", "kind": "Pod"})
        );
        assert_eq!(from_storage(&reg, pods, obj)["kind"], "Pod");
    }
}
