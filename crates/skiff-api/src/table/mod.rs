//! `meta.k8s.io/v1 Table` responses with upstream's columns per kind, as
//! `kubectl get` asks for them.
//!
//! STUB: only NAME and AGE so far.

use crate::registry::ResourceDef;
use serde_json::{Value, json};

/// Builds a Table of `objects` of `def`'s kind. `include_object` is the
/// `includeObject` parameter (`None`, `Metadata` or `Object`; kubectl sends
/// `Object`); `now` is the time AGE is measured from.
pub fn build_table(
    _def: &ResourceDef,
    objects: &[&Value],
    include_object: &str,
    now: jiff::Timestamp,
    list_meta: Value,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let name = o["metadata"]["name"].as_str().unwrap_or_default();
            let created = o["metadata"]["creationTimestamp"].as_str().unwrap_or_default();
            let row_obj = match include_object {
                "None" => Value::Null,
                _ => (*o).clone(),
            };
            json!({"cells": [name, age(created, now)], "object": row_obj})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0},
            {"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0},
        ],
        "rows": rows,
    })
}

/// Upstream's short human duration (`5s`, `3m`, `2d`) since an RFC 3339 time.
pub fn age(created: &str, now: jiff::Timestamp) -> String {
    match created.parse::<jiff::Timestamp>() {
        Ok(t) => {
            let secs = (now.as_second() - t.as_second()).max(0);
            if secs < 120 {
                format!("{secs}s")
            } else if secs < 3600 {
                format!("{}m", secs / 60)
            } else if secs < 86400 {
                format!("{}h", secs / 3600)
            } else {
                format!("{}d", secs / 86400)
            }
        }
        Err(_) => "<unknown>".to_string(),
    }
}
