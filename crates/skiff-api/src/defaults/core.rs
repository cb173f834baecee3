//! Defaults of core/v1 kinds other than pods: Service, Secret, Namespace,
//! PersistentVolume(Claim), Node, Endpoints, LimitRange, and discovery/v1
//! EndpointSlice.

use super::{each, existing, object, set, set_str, str_of};
use serde_json::{Value, json};

pub(crate) fn service(obj: &mut Value) {
    let Some(spec) = object(obj, "spec") else { return };
    set_str(spec, "sessionAffinity", "None");
    if str_of(spec, "sessionAffinity") == "None"
        && let Some(map) = spec.as_object_mut()
    {
        map.remove("sessionAffinityConfig");
    }
    set_str(spec, "type", "ClusterIP");
    let ty = str_of(spec, "type").to_string();
    each(spec, "ports", |p| {
        set_str(p, "protocol", "TCP");
        let unset = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            Some(_) => false,
        };
        if unset && let Some(port) = p.get("port").cloned() {
            p["targetPort"] = port;
        }
    });
    if str_of(spec, "sessionAffinity") == "ClientIP"
        && let Some(cfg) = object(spec, "sessionAffinityConfig").and_then(|c| object(c, "clientIP"))
    {
        set(cfg, "timeoutSeconds", json!(10800));
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        set_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if ty == "LoadBalancer" {
        set(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if ty != "ExternalName" {
        set_str(spec, "internalTrafficPolicy", "Cluster");
        let cluster_ip = str_of(spec, "clusterIP").to_string();
        if !cluster_ip.is_empty() {
            set(spec, "clusterIPs", json!([cluster_ip]));
        }
        let family = if cluster_ip.contains(':') { "IPv6" } else { "IPv4" };
        set(spec, "ipFamilies", json!([family]));
        set_str(spec, "ipFamilyPolicy", "SingleStack");
    }
    if let Some(status) = object(obj, "status") {
        set(status, "loadBalancer", json!({}));
        if ty == "LoadBalancer"
            && let Some(lb) = existing(status, "loadBalancer")
        {
            each(lb, "ingress", |ing| {
                if !str_of(ing, "ip").is_empty() {
                    set_str(ing, "ipMode", "VIP");
                }
            });
        }
    }
}

/// Secret defaults, and `stringData` folded into `data` (base64) as
/// upstream's conversion does: a `stringData` key wins over the same `data`
/// key, and `stringData` itself is never stored.
pub(crate) fn secret(obj: &mut Value) {
    set_str(obj, "type", "Opaque");
    use base64::Engine as _;
    // Only a map of strings is folded; anything else stays for validation to reject.
    let foldable = obj
        .get("stringData")
        .and_then(Value::as_object)
        .is_some_and(|m| m.values().all(Value::is_string));
    if !foldable {
        return;
    }
    let Some(Value::Object(strings)) = obj.as_object_mut().and_then(|o| o.remove("stringData")) else {
        return;
    };
    if !obj.get("data").is_some_and(Value::is_object) {
        obj["data"] = json!({});
    }
    for (key, value) in strings {
        let text = value.as_str().unwrap_or_default();
        obj["data"][key] = Value::String(base64::engine::general_purpose::STANDARD.encode(text));
    }
}

/// Namespace defaults plus the `kubernetes.io/metadata.name` label the
/// namespace strategy always sets.
pub(crate) fn namespace(obj: &mut Value) {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if let Some(spec) = object(obj, "spec") {
        set(spec, "finalizers", json!(["kubernetes"]));
    }
    if let Some(status) = object(obj, "status") {
        set_str(status, "phase", "Active");
    }
    if !name.is_empty()
        && let Some(labels) = object(obj, "metadata").and_then(|m| object(m, "labels"))
    {
        labels["kubernetes.io/metadata.name"] = Value::String(name);
    }
}

pub(crate) fn pvc(obj: &mut Value) {
    if let Some(spec) = object(obj, "spec") {
        set_str(spec, "volumeMode", "Filesystem");
    }
    if let Some(status) = object(obj, "status") {
        set_str(status, "phase", "Pending");
    }
}

pub(crate) fn pv(obj: &mut Value) {
    if let Some(spec) = object(obj, "spec") {
        set_str(spec, "persistentVolumeReclaimPolicy", "Retain");
        set_str(spec, "volumeMode", "Filesystem");
    }
    if let Some(status) = object(obj, "status") {
        set_str(status, "phase", "Pending");
    }
}

/// Node status: allocatable defaults to capacity.
pub(crate) fn node(obj: &mut Value) {
    if let Some(status) = existing(obj, "status")
        && let Some(capacity) = status.get("capacity").filter(|c| c.is_object()).cloned()
    {
        set(status, "allocatable", capacity);
    }
}

pub(crate) fn endpoints(obj: &mut Value) {
    each(obj, "subsets", |s| {
        each(s, "ports", |p| set_str(p, "protocol", "TCP"))
    });
}

pub(crate) fn endpoint_slice(obj: &mut Value) {
    each(obj, "ports", |p| {
        set_str(p, "protocol", "TCP");
        set(p, "name", json!(""));
    });
}

/// For Container limits: `default` from `max`, `defaultRequest` from
/// `default`, then from `min`.
pub(crate) fn limit_range(obj: &mut Value) {
    let Some(spec) = existing(obj, "spec") else { return };
    each(spec, "limits", |item| {
        if str_of(item, "type") != "Container" {
            return;
        }
        if let Some(max) = item.get("max").and_then(Value::as_object).cloned()
            && let Some(default) = object(item, "default")
        {
            for (k, q) in max {
                set(default, &k, q);
            }
        }
        for source in ["default", "min"] {
            if let Some(from) = item.get(source).and_then(Value::as_object).cloned()
                && let Some(request) = object(item, "defaultRequest")
            {
                for (k, q) in from {
                    set(request, &k, q);
                }
            }
        }
    });
}
