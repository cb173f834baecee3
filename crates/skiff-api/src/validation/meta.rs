//! `ObjectMeta` rules (`ValidateObjectMeta`, `ValidateObjectMetaUpdate`):
//! name/generateName, namespace scope, labels, annotations (256 KiB total),
//! ownerReferences and finalizers, and the fields an update may not change.

use super::names::{self, NameRule};
use crate::status::Cause;
use serde_json::{Value, json};

const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Problems with a new object's metadata.
pub(crate) fn validate(meta: &Value, namespaced: bool, rule: NameRule, out: &mut Vec<Cause>) {
    let name = meta.get("name").and_then(Value::as_str).unwrap_or_default();
    let generate = meta
        .get("generateName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !generate.is_empty() {
        for msg in rule.check(generate, true) {
            out.push(Cause::invalid("metadata.generateName", &json!(generate), msg));
        }
    }
    if name.is_empty() {
        if generate.is_empty() {
            out.push(Cause::new(
                "FieldValueRequired",
                "metadata.name",
                "Required value: name or generateName is required",
            ));
        }
    } else {
        for msg in rule.check(name, false) {
            out.push(Cause::invalid("metadata.name", &json!(name), msg));
        }
    }
    let namespace = meta.get("namespace").and_then(Value::as_str).unwrap_or_default();
    if namespaced {
        if namespace.is_empty() {
            out.push(Cause::required("metadata.namespace"));
        } else {
            for msg in names::dns1123_label(namespace) {
                out.push(Cause::invalid("metadata.namespace", &json!(namespace), msg));
            }
        }
    } else if !namespace.is_empty() {
        out.push(Cause::forbidden("metadata.namespace", "not allowed on this type"));
    }
    if let Some(generation) = meta.get("generation").and_then(Value::as_i64).filter(|g| *g < 0) {
        out.push(Cause::invalid(
            "metadata.generation",
            &json!(generation),
            "must be greater than or equal to 0",
        ));
    }
    labels(meta.get("labels"), "metadata.labels", out);
    annotations(meta.get("annotations"), "metadata.annotations", out);
    owner_references(meta.get("ownerReferences"), out);
    finalizers(meta.get("finalizers"), out);
}

/// Label keys must be qualified names and values valid label values.
pub(crate) fn labels(labels: Option<&Value>, path: &str, out: &mut Vec<Cause>) {
    let Some(map) = labels.and_then(Value::as_object) else {
        return;
    };
    for (k, v) in map {
        for msg in names::qualified_name(k) {
            out.push(Cause::invalid(path, &json!(k), msg));
        }
        let value = v.as_str().unwrap_or_default();
        for msg in names::label_value(value) {
            out.push(Cause::invalid(path, &json!(value), msg));
        }
    }
}

/// Annotation keys must be qualified names; keys and values together at most 256 KiB.
pub(crate) fn annotations(annotations: Option<&Value>, path: &str, out: &mut Vec<Cause>) {
    let Some(map) = annotations.and_then(Value::as_object) else {
        return;
    };
    let mut total = 0;
    for (k, v) in map {
        for msg in names::qualified_name(&k.to_ascii_lowercase()) {
            out.push(Cause::invalid(path, &json!(k), msg));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        out.push(Cause::new(
            "FieldValueTooLong",
            path,
            format!("Too long: may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"),
        ));
    }
}

fn owner_references(refs: Option<&Value>, out: &mut Vec<Cause>) {
    let Some(list) = refs.and_then(Value::as_array) else {
        return;
    };
    let path = "metadata.ownerReferences";
    let mut controllers = Vec::new();
    for r in list {
        let field = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
        let api_version = field("apiVersion");
        if api_version.is_empty() || api_version.split('/').next_back().is_some_and(str::is_empty) {
            out.push(Cause::invalid(
                format!("{path}.apiVersion"),
                &json!(api_version),
                "version must not be empty",
            ));
        }
        if field("kind").is_empty() {
            out.push(Cause::invalid(
                format!("{path}.kind"),
                &json!(""),
                "kind must not be empty",
            ));
        }
        if field("name").is_empty() {
            out.push(Cause::invalid(
                format!("{path}.name"),
                &json!(""),
                "name must not be empty",
            ));
        }
        if field("uid").is_empty() {
            out.push(Cause::invalid(
                format!("{path}.uid"),
                &json!(""),
                "uid must not be empty",
            ));
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            controllers.push(format!("{}/{}", field("kind"), field("name")));
        }
    }
    if controllers.len() > 1 {
        out.push(Cause::invalid(
            path,
            &Value::Array(list.clone()),
            format!(
                "Only one reference can have Controller set to true. Found \"true\" in references for {}",
                controllers.join(" and ")
            ),
        ));
    }
}

fn finalizers(finalizers: Option<&Value>, out: &mut Vec<Cause>) {
    let Some(list) = finalizers.and_then(Value::as_array) else {
        return;
    };
    for f in list {
        let name = f.as_str().unwrap_or_default();
        for msg in names::qualified_name(name) {
            out.push(Cause::invalid("metadata.finalizers", &json!(name), msg));
        }
    }
}

/// Metadata fields an update may not change: name, namespace, uid,
/// creationTimestamp, generateName is free; deletion fields are the server's.
pub(crate) fn validate_update(new: &Value, old: &Value, out: &mut Vec<Cause>) {
    for (key, path) in [
        ("name", "metadata.name"),
        ("namespace", "metadata.namespace"),
        ("uid", "metadata.uid"),
        ("creationTimestamp", "metadata.creationTimestamp"),
    ] {
        let n = new.get(key).unwrap_or(&Value::Null);
        let o = old.get(key).unwrap_or(&Value::Null);
        // An update that leaves a server-set field out keeps the stored value.
        if n != o && !(n.is_null() && matches!(key, "uid" | "creationTimestamp")) {
            out.push(Cause::invalid(path, n, "field is immutable"));
        }
    }
}
