//! Unknown-field detection for `fieldValidation=Strict|Warn`: the object is
//! walked along its kind's compiled schema ([`super::schema`]) and every key
//! the schema does not know is reported by its path (`spec.containers[0].foo`).
//! Kinds without a compiled schema fall back to a typed round trip through
//! the kind's `normalize`, comparing what survived with what was sent.

use crate::registry::ResourceDef;
use serde_json::Value;

/// Field paths present in `obj` that `def`'s schema does not know.
pub fn unknown_fields(def: &ResourceDef, obj: &Value) -> Vec<String> {
    if let Some(tree) = super::schema::tree(def) {
        return tree.unknown(obj);
    }
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
                    // The round trip drops nulls and type meta without them being unknown.
                    None if value.is_null() || path == "apiVersion" || path == "kind" => {}
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
