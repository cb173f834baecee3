//! The resource entries of discovery, built from the [`Registry`]: legacy
//! `APIResource`s (`/api/v1`, `/apis/<g>/<v>`) and aggregated
//! `APIResourceDiscovery` entries (`apidiscovery.k8s.io/v2`), with every
//! subresource's kind and verbs as upstream reports them.
//!
//! Must not: do HTTP; the documents built here are serialised once by the
//! router in [`super`].

use ring::digest;
use serde_json::{Map, Value, json};
use skiff_api::registry::{Registry, ResourceDef};

/// What upstream reports for one subresource: the kind it accepts/returns
/// (group, version, kind; empty group/version mean "the parent's") and its verbs.
pub(crate) struct SubresourceInfo {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

const GET_PATCH_UPDATE: &[&str] = &["get", "patch", "update"];
const CREATE: &[&str] = &["create"];
const CREATE_GET: &[&str] = &["create", "get"];
const PROXY_VERBS: &[&str] = &["create", "delete", "get", "patch", "update"];

/// Upstream's kind and verbs for subresource `sub` of `parent`.
pub(crate) fn subresource_info(parent: &ResourceDef, sub: &str) -> SubresourceInfo {
    let same = |verbs| SubresourceInfo {
        group: "",
        version: "",
        kind: parent.kind,
        verbs,
    };
    let core = |kind, verbs| SubresourceInfo {
        group: "",
        version: "v1",
        kind,
        verbs,
    };
    match sub {
        "scale" => SubresourceInfo {
            group: "autoscaling",
            version: "v1",
            kind: "Scale",
            verbs: GET_PATCH_UPDATE,
        },
        "binding" => core("Binding", CREATE),
        "eviction" => SubresourceInfo {
            group: "policy",
            version: "v1",
            kind: "Eviction",
            verbs: CREATE,
        },
        "log" => same(&["get"]),
        "exec" => core("PodExecOptions", CREATE_GET),
        "attach" => core("PodAttachOptions", CREATE_GET),
        "portforward" => core("PodPortForwardOptions", CREATE_GET),
        "proxy" => {
            let kind = match parent.kind {
                "Node" => "NodeProxyOptions",
                "Service" => "ServiceProxyOptions",
                _ => "PodProxyOptions",
            };
            core(kind, PROXY_VERBS)
        }
        "finalize" => same(&["update"]),
        "token" => SubresourceInfo {
            group: "authentication.k8s.io",
            version: "v1",
            kind: "TokenRequest",
            verbs: CREATE,
        },
        // status, ephemeralcontainers, resize and anything else that reads and
        // writes a part of the parent object.
        _ => same(GET_PATCH_UPDATE),
    }
}

/// Upstream's `storageVersionHash`: base64 of the first 8 bytes of
/// sha256("<group>/<version>/<kind>") of the version objects are stored in.
pub(crate) fn storage_version_hash(registry: &Registry, def: &ResourceDef) -> String {
    // Resources sharing storage (autoscaling/v1 and v2 HPAs, core and
    // events.k8s.io Events) share one hash: that of the first registered.
    let stored = registry
        .all()
        .iter()
        .find(|r| r.storage_resource == def.storage_resource)
        .unwrap_or(def);
    let gvk = format!("{}/{}/{}", stored.group, stored.version, stored.kind);
    let sum = digest::digest(&digest::SHA256, gvk.as_bytes());
    base64_std(&sum.as_ref()[..8])
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn sorted_subresources(def: &ResourceDef) -> Vec<&'static str> {
    let mut subs = def.subresources.to_vec();
    subs.sort_unstable();
    subs
}

fn sorted_verbs(verbs: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = verbs.iter().map(|s| s.to_string()).collect();
    v.sort_unstable();
    v
}

/// The legacy `APIResourceList` of one group/version, resources and their
/// subresources sorted by name as upstream serves them.
pub(crate) fn legacy_resource_list(registry: &Registry, group: &str, version: &str) -> Value {
    let mut entries: Vec<(String, Value)> = Vec::new();
    for def in registry.in_group_version(group, version) {
        let mut res = Map::new();
        res.insert("name".into(), json!(def.plural));
        res.insert("singularName".into(), json!(def.singular));
        res.insert("namespaced".into(), json!(def.namespaced));
        res.insert("kind".into(), json!(def.kind));
        res.insert("verbs".into(), json!(sorted_verbs(def.verbs)));
        if !def.short_names.is_empty() {
            res.insert("shortNames".into(), json!(def.short_names));
        }
        if !def.categories.is_empty() {
            res.insert("categories".into(), json!(def.categories));
        }
        res.insert(
            "storageVersionHash".into(),
            json!(storage_version_hash(registry, def)),
        );
        entries.push((def.plural.to_string(), Value::Object(res)));
        for sub in sorted_subresources(def) {
            let info = subresource_info(def, sub);
            let name = format!("{}/{}", def.plural, sub);
            let mut res = Map::new();
            res.insert("name".into(), json!(name));
            res.insert("singularName".into(), json!(""));
            res.insert("namespaced".into(), json!(def.namespaced));
            if !info.version.is_empty() && (info.group != def.group || info.version != def.version) {
                res.insert("group".into(), json!(info.group));
                res.insert("version".into(), json!(info.version));
            }
            res.insert("kind".into(), json!(info.kind));
            res.insert("verbs".into(), json!(sorted_verbs(info.verbs)));
            entries.push((name, Value::Object(res)));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let resources: Vec<Value> = entries.into_iter().map(|(_, v)| v).collect();
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut list = Map::new();
    list.insert("kind".into(), json!("APIResourceList"));
    // Upstream omits apiVersion on the core group's list.
    if !group.is_empty() {
        list.insert("apiVersion".into(), json!("v1"));
    }
    list.insert("groupVersion".into(), json!(group_version));
    list.insert("resources".into(), Value::Array(resources));
    Value::Object(list)
}

fn response_kind(def: &ResourceDef, group: &str, version: &str, kind: &str) -> Value {
    if version.is_empty() || (group == def.group && version == def.version) {
        json!({"group": "", "version": "", "kind": kind})
    } else {
        json!({"group": group, "version": version, "kind": kind})
    }
}

/// One aggregated `APIResourceDiscovery` entry with its subresources.
fn aggregated_resource(def: &ResourceDef) -> Value {
    let mut res = Map::new();
    res.insert("resource".into(), json!(def.plural));
    res.insert("responseKind".into(), response_kind(def, "", "", def.kind));
    res.insert(
        "scope".into(),
        json!(if def.namespaced { "Namespaced" } else { "Cluster" }),
    );
    res.insert("singularResource".into(), json!(def.singular));
    res.insert("verbs".into(), json!(sorted_verbs(def.verbs)));
    if !def.short_names.is_empty() {
        res.insert("shortNames".into(), json!(def.short_names));
    }
    if !def.categories.is_empty() {
        res.insert("categories".into(), json!(def.categories));
    }
    let subs: Vec<Value> = sorted_subresources(def)
        .into_iter()
        .map(|sub| {
            let info = subresource_info(def, sub);
            json!({
                "subresource": sub,
                "responseKind": response_kind(def, info.group, info.version, info.kind),
                "verbs": sorted_verbs(info.verbs),
            })
        })
        .collect();
    if !subs.is_empty() {
        res.insert("subresources".into(), Value::Array(subs));
    }
    Value::Object(res)
}

/// The aggregated `APIGroupDiscovery` of one group, versions in preference
/// order (the registry lists the preferred version first).
fn aggregated_group(registry: &Registry, group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|version| {
            let mut defs: Vec<&ResourceDef> = registry.in_group_version(group, version).collect();
            defs.sort_by(|a, b| a.plural.cmp(b.plural));
            let resources: Vec<Value> = defs.into_iter().map(aggregated_resource).collect();
            json!({"version": version, "resources": resources, "freshness": "Current"})
        })
        .collect();
    let metadata = if group.is_empty() {
        json!({"creationTimestamp": null})
    } else {
        json!({"name": group, "creationTimestamp": null})
    };
    json!({"metadata": metadata, "versions": versions})
}

/// The aggregated `APIGroupDiscoveryList` of the core group (`/api`) or of
/// every named group (`/apis`).
pub(crate) fn aggregated_list(registry: &Registry, core: bool) -> Value {
    let items: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|(group, _)| group.is_empty() == core)
        .map(|(group, versions)| aggregated_group(registry, group, &versions))
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

fn group_version_entry(group: &str, version: &str) -> Value {
    json!({"groupVersion": format!("{group}/{version}"), "version": version})
}

/// The `APIGroup` entry of one named group (also an item of `APIGroupList`).
pub(crate) fn api_group(group: &str, versions: &[&str]) -> Value {
    let entries: Vec<Value> = versions.iter().map(|v| group_version_entry(group, v)).collect();
    let preferred = versions
        .first()
        .map(|v| group_version_entry(group, v))
        .unwrap_or(Value::Null);
    json!({"name": group, "versions": entries, "preferredVersion": preferred})
}

/// The legacy `APIGroupList` served at `/apis`.
pub(crate) fn api_group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|(group, _)| !group.is_empty())
        .map(|(group, versions)| api_group(group, &versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}
