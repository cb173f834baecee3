//! `metav1.LabelSelector` rules: well-formed matchLabels/matchExpressions,
//! emptiness, and whether a selector selects a label set (used to check that
//! a workload's selector matches its template).

use crate::status::Cause;
use serde_json::{Map, Value, json};

/// True when the selector has neither matchLabels nor matchExpressions.
pub(crate) fn is_empty(sel: &Value) -> bool {
    let empty = |k: &str| match sel.get(k) {
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => true,
    };
    empty("matchLabels") && empty("matchExpressions")
}

/// Problems with a selector at `path`.
pub(crate) fn validate(sel: &Value, path: &str, out: &mut Vec<Cause>) {
    super::meta::labels(sel.get("matchLabels"), &format!("{path}.matchLabels"), out);
    let exprs = sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, e) in exprs.iter().enumerate() {
        let p = format!("{path}.matchExpressions[{i}]");
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        for msg in super::names::qualified_name(key) {
            out.push(Cause::invalid(format!("{p}.key"), &json!(key), msg));
        }
        let op = e.get("operator").and_then(Value::as_str).unwrap_or_default();
        let values = e.get("values").and_then(Value::as_array).map_or(0, Vec::len);
        match op {
            "In" | "NotIn" if values == 0 => out.push(Cause::new(
                "FieldValueRequired",
                format!("{p}.values"),
                "Required value: must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if values > 0 => out.push(Cause::forbidden(
                format!("{p}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => out.push(Cause::not_supported(
                format!("{p}.operator"),
                &json!(other),
                &["In", "NotIn", "Exists", "DoesNotExist"],
            )),
        }
    }
}

/// True when `sel` selects objects labelled `labels`.
pub(crate) fn matches(sel: &Value, labels: Option<&Value>) -> bool {
    let empty = Map::new();
    let labels = labels.and_then(Value::as_object).unwrap_or(&empty);
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    let match_labels = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten();
    for (k, v) in match_labels {
        if get(k) != v.as_str() {
            return false;
        }
    }
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let ok = match e.get("operator").and_then(Value::as_str).unwrap_or_default() {
            "In" => get(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => get(key).is_none_or(|v| !values.contains(&v)),
            "Exists" => get(key).is_some(),
            "DoesNotExist" => get(key).is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// A label map as shown in an `Invalid value` message (`{}` when absent).
pub(crate) fn labels_value(labels: Option<&Value>) -> Value {
    labels
        .filter(|l| l.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}))
}
