//! Unknown-field detection for `fieldValidation=Strict|Warn`: the object is
//! round-tripped through its `k8s-openapi` type (which drops unknown fields)
//! and compared with what the client sent; every key that did not survive is
//! reported by its path (`spec.containers[0].foo`).

use crate::registry::ResourceDef;
use serde_json::Value;

/// Field paths present in `obj` that `def`'s schema does not know.
/// An object of the wrong shape yields no paths (decoding reports it).
pub fn unknown_fields(def: &ResourceDef, obj: &Value) -> Vec<String> {
    let Ok(known) = (def.normalize)(obj.clone()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    diff(obj, &known, &mut String::new(), &mut out);
    out
}

fn diff(sent: &Value, known: &Value, path: &mut String, out: &mut Vec<String>) {
    match (sent, known) {
        (Value::Object(s), Value::Object(k)) => {
            for (key, value) in s {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                match k.get(key) {
                    Some(kv) => diff(value, kv, path, out),
                    // Nulls and empty values are dropped by the round trip without being unknown.
                    None if value.is_null() => {}
                    None if is_top_level_type_meta(path) => {}
                    None if is_empty(value) => {}
                    None => out.push(path.clone()),
                }
                path.truncate(len);
            }
        }
        (Value::Array(s), Value::Array(k)) if s.len() == k.len() => {
            for (i, (sv, kv)) in s.iter().zip(k).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                diff(sv, kv, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

fn is_top_level_type_meta(path: &str) -> bool {
    path == "apiVersion" || path == "kind"
}

/// Empty objects and lists may be omitted by the typed form; they cannot hold unknown fields
/// of interest, but an empty object under an unknown key still is one, so only lists count.
fn is_empty(v: &Value) -> bool {
    matches!(v, Value::Array(a) if a.is_empty())
}
