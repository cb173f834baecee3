//! ConfigMap, Secret, Namespace and Node rules: data keys, the 1 MiB size
//! limit, Secret types and their required keys, `immutable`, node taints
//! and pod CIDRs.

use super::names;
use crate::status::Cause;
use serde_json::{Value, json};

const MAX_SIZE: usize = 1024 * 1024;

/// Checks the keys of `obj[field]`; returns the data size (decoded when `encoded`).
fn keys(obj: &Value, field: &str, encoded: bool, out: &mut Vec<Cause>) -> usize {
    let mut size = 0;
    for (k, v) in obj.get(field).and_then(Value::as_object).into_iter().flatten() {
        for msg in names::config_map_key(k) {
            out.push(Cause::invalid(format!("{field}[{k}]"), &json!(k), msg));
        }
        let text = v.as_str().unwrap_or_default();
        size += k.len() + if encoded { text.len() / 4 * 3 } else { text.len() };
    }
    size
}

fn is_secret_like(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("Secret")
}

fn too_large(size: usize, out: &mut Vec<Cause>) {
    if size > MAX_SIZE {
        out.push(Cause::new(
            "FieldValueTooLong",
            "",
            format!("Too long: may not be more than {MAX_SIZE} bytes"),
        ));
    }
}

pub(crate) fn config_map(obj: &Value, out: &mut Vec<Cause>) {
    let size = keys(obj, "data", false, out) + keys(obj, "binaryData", true, out);
    let binary = obj.get("binaryData").and_then(Value::as_object);
    for k in obj
        .get("data")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        if binary.is_some_and(|b| b.contains_key(k)) {
            out.push(Cause::invalid(
                format!("data[{k}]"),
                &json!(k),
                "duplicate of key present in binaryData",
            ));
        }
    }
    too_large(size, out);
}

pub(crate) fn secret(obj: &Value, out: &mut Vec<Cause>) {
    let mut size = keys(obj, "data", true, out);
    for (k, v) in obj
        .get("stringData")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        for msg in names::config_map_key(k) {
            out.push(Cause::invalid(format!("stringData[{k}]"), &json!(k), msg));
        }
        size += k.len() + v.as_str().map_or(0, str::len);
    }
    too_large(size, out);
    let has = |k: &str| {
        obj.get("data").and_then(|d| d.get(k)).is_some()
            || obj.get("stringData").and_then(|d| d.get(k)).is_some()
    };
    let required: &[&str] = match obj.get("type").and_then(Value::as_str).unwrap_or_default() {
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        "kubernetes.io/service-account-token" => {
            let annotation = obj.pointer("/metadata/annotations/kubernetes.io~1service-account.name");
            if annotation.and_then(Value::as_str).is_none_or(str::is_empty) {
                out.push(Cause::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                ));
            }
            &[]
        }
        _ => &[],
    };
    for k in required {
        if !has(k) {
            out.push(Cause::required(format!("data[{k}]")));
        }
    }
}

/// Secrets and ConfigMaps marked `immutable` keep their data; a Secret keeps its type.
pub(crate) fn immutable_update(new: &Value, old: &Value, out: &mut Vec<Cause>) {
    if old.get("immutable").and_then(Value::as_bool) == Some(true) {
        if new.get("immutable").and_then(Value::as_bool) != Some(true) {
            out.push(Cause::forbidden(
                "immutable",
                "field is immutable when `immutable` is set",
            ));
        }
        for field in ["data", "binaryData"] {
            if new.get(field) != old.get(field) {
                out.push(Cause::forbidden(
                    field,
                    "field is immutable when `immutable` is set",
                ));
            }
        }
    }
    if is_secret_like(old) && new.get("type") != old.get("type") {
        out.push(Cause::invalid(
            "type",
            new.get("type").unwrap_or(&Value::Null),
            "field is immutable",
        ));
    }
}

pub(crate) fn node(obj: &Value, out: &mut Vec<Cause>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let cidrs = spec
        .get("podCIDRs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, cidr) in cidrs.iter().enumerate() {
        let text = cidr.as_str().unwrap_or_default();
        if !valid_cidr(text) {
            out.push(Cause::invalid(
                format!("spec.podCIDRs[{i}]"),
                cidr,
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    let taints = spec
        .get("taints")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, t) in taints.iter().enumerate() {
        let key = t.get("key").and_then(Value::as_str).unwrap_or_default();
        for msg in names::qualified_name(key) {
            out.push(Cause::invalid(format!("spec.taints[{i}].key"), &json!(key), msg));
        }
        let effect = t.get("effect").and_then(Value::as_str).unwrap_or_default();
        let effects = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
        if effect.is_empty() {
            out.push(Cause::required(format!("spec.taints[{i}].effect")));
        } else if !effects.contains(&effect) {
            out.push(Cause::not_supported(
                format!("spec.taints[{i}].effect"),
                &json!(effect),
                &effects,
            ));
        }
        if !seen.insert((key, effect)) {
            out.push(Cause::duplicate(
                format!("spec.taints[{i}]"),
                &json!({"key": key, "effect": effect}),
            ));
        }
    }
}

fn valid_cidr(text: &str) -> bool {
    let Some((ip, bits)) = text.split_once('/') else {
        return false;
    };
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    bits.parse::<u8>().is_ok_and(|b| b <= max)
}

/// A node's pod CIDRs may be set once, never changed.
pub(crate) fn node_update(new: &Value, old: &Value, out: &mut Vec<Cause>) {
    let old_cidrs = old
        .pointer("/spec/podCIDRs")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty());
    if let Some(old_cidrs) = old_cidrs
        && new.pointer("/spec/podCIDRs").and_then(Value::as_array) != Some(old_cidrs)
    {
        out.push(Cause::forbidden(
            "spec.podCIDRs",
            "node updates may not change podCIDR except from \"\" to valid",
        ));
    }
}
