//! How upstream's built-in types merge their lists: the
//! `x-kubernetes-patch-merge-key` / `x-kubernetes-patch-strategy` of strategic
//! merge patch and the `x-kubernetes-list-type` / `x-kubernetes-list-map-keys`
//! of server-side apply, keyed by OpenAPI definition name and field.
//!
//! k8s-openapi's schemars schemas do not carry these extensions, so this
//! table restates them (it matches k8s-openapi's `DeepMerge` strategies, with
//! apply's multi-field keys where upstream declares them). A list not listed
//! here is atomic: replaced whole by a patch, owned whole by one manager.

/// How a list field merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// Replaced as a whole (`patchStrategy` absent, `listType: atomic`).
    Atomic,
    /// A set of scalars (`patchStrategy: merge` on a primitive list, `listType: set`).
    Set,
    /// A list of objects keyed by fields (`listType: map`). Strategic merge
    /// patch matches on `patch_key`; apply identifies items by all `keys`.
    Map {
        patch_key: &'static str,
        keys: &'static [&'static str],
    },
}

const fn map(patch_key: &'static str, keys: &'static [&'static str]) -> ListKind {
    ListKind::Map { patch_key, keys }
}

const NAME: ListKind = map("name", &["name"]);
const TYPE: ListKind = map("type", &["type"]);
const IP: ListKind = map("ip", &["ip"]);
const CONTAINER_PORTS: ListKind = map("containerPort", &["containerPort", "protocol"]);

/// (definition name, field, kind) for every merging list of the built-in kinds.
const TABLE: &[(&str, &str, ListKind)] = &[
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
        ListKind::Set,
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        map("uid", &["uid"]),
    ),
    ("io.k8s.api.core.v1.PodSpec", "containers", NAME),
    ("io.k8s.api.core.v1.PodSpec", "initContainers", NAME),
    ("io.k8s.api.core.v1.PodSpec", "ephemeralContainers", NAME),
    ("io.k8s.api.core.v1.PodSpec", "volumes", NAME),
    ("io.k8s.api.core.v1.PodSpec", "imagePullSecrets", NAME),
    ("io.k8s.api.core.v1.PodSpec", "hostAliases", IP),
    ("io.k8s.api.core.v1.PodSpec", "resourceClaims", NAME),
    ("io.k8s.api.core.v1.PodSpec", "schedulingGates", NAME),
    (
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        map("topologyKey", &["topologyKey", "whenUnsatisfiable"]),
    ),
    ("io.k8s.api.core.v1.Container", "env", NAME),
    ("io.k8s.api.core.v1.Container", "ports", CONTAINER_PORTS),
    (
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        map("mountPath", &["mountPath"]),
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        map("devicePath", &["devicePath"]),
    ),
    ("io.k8s.api.core.v1.EphemeralContainer", "env", NAME),
    ("io.k8s.api.core.v1.EphemeralContainer", "ports", CONTAINER_PORTS),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        map("mountPath", &["mountPath"]),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeDevices",
        map("devicePath", &["devicePath"]),
    ),
    ("io.k8s.api.core.v1.ResourceRequirements", "claims", NAME),
    (
        "io.k8s.api.core.v1.ContainerStatus",
        "volumeMounts",
        map("mountPath", &["mountPath"]),
    ),
    (
        "io.k8s.api.core.v1.ContainerStatus",
        "allocatedResourcesStatus",
        NAME,
    ),
    (
        "io.k8s.api.core.v1.ResourceStatus",
        "resources",
        map("resourceID", &["resourceID"]),
    ),
    ("io.k8s.api.core.v1.PodStatus", "conditions", TYPE),
    ("io.k8s.api.core.v1.PodStatus", "podIPs", IP),
    ("io.k8s.api.core.v1.PodStatus", "hostIPs", IP),
    ("io.k8s.api.core.v1.PodStatus", "resourceClaimStatuses", NAME),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        map("port", &["port", "protocol"]),
    ),
    ("io.k8s.api.core.v1.ServiceStatus", "conditions", TYPE),
    ("io.k8s.api.core.v1.ServiceAccount", "secrets", NAME),
    ("io.k8s.api.core.v1.NodeSpec", "podCIDRs", ListKind::Set),
    ("io.k8s.api.core.v1.NodeStatus", "addresses", TYPE),
    ("io.k8s.api.core.v1.NodeStatus", "conditions", TYPE),
    ("io.k8s.api.core.v1.NamespaceStatus", "conditions", TYPE),
    (
        "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
        "conditions",
        TYPE,
    ),
    (
        "io.k8s.api.core.v1.ReplicationControllerStatus",
        "conditions",
        TYPE,
    ),
    ("io.k8s.api.core.v1.ComponentStatus", "conditions", TYPE),
    ("io.k8s.api.apps.v1.DeploymentStatus", "conditions", TYPE),
    ("io.k8s.api.apps.v1.ReplicaSetStatus", "conditions", TYPE),
    ("io.k8s.api.apps.v1.StatefulSetStatus", "conditions", TYPE),
    ("io.k8s.api.apps.v1.DaemonSetStatus", "conditions", TYPE),
    ("io.k8s.api.batch.v1.JobStatus", "conditions", TYPE),
    (
        "io.k8s.api.batch.v1.UncountedTerminatedPods",
        "succeeded",
        ListKind::Set,
    ),
    (
        "io.k8s.api.batch.v1.UncountedTerminatedPods",
        "failed",
        ListKind::Set,
    ),
    (
        "io.k8s.api.batch.v1.PodFailurePolicyOnExitCodesRequirement",
        "values",
        ListKind::Set,
    ),
    (
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        "conditions",
        TYPE,
    ),
    (
        "io.k8s.api.policy.v1.PodDisruptionBudgetStatus",
        "conditions",
        TYPE,
    ),
    ("io.k8s.api.discovery.v1.Endpoint", "addresses", ListKind::Set),
    (
        "io.k8s.api.storage.v1.CSIDriverSpec",
        "volumeLifecycleModes",
        ListKind::Set,
    ),
    ("io.k8s.api.storage.v1.CSINodeSpec", "drivers", NAME),
];

/// Structs that server-side apply treats as one atomic value
/// (`x-kubernetes-map-type: atomic` / `+structType=atomic`).
const ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.core.v1.LocalObjectReference",
];

/// The list kind of `field` in the definition `type_name`.
pub fn list_kind(type_name: &str, field: &str) -> ListKind {
    TABLE
        .iter()
        .find(|(t, f, _)| *t == type_name && *f == field)
        .map(|(_, _, k)| *k)
        .unwrap_or(ListKind::Atomic)
}

/// Fields whose strategic merge patch strategy includes `retainKeys`.
const RETAIN_KEYS: &[(&str, &str, &str)] = &[
    ("io.k8s.api.core.v1.PodSpec", "volumes", "merge,retainKeys"),
    ("io.k8s.api.apps.v1.DeploymentSpec", "strategy", "retainKeys"),
];

/// The OpenAPI extensions upstream publishes on property `field` of
/// `type_name` (`x-kubernetes-patch-merge-key`, `x-kubernetes-patch-strategy`,
/// `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`), for an OpenAPI
/// document that lets kubectl compute strategic merge patches as upstream's
/// does. Empty for properties without them.
pub fn openapi_extensions(type_name: &str, field: &str) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::{Value, json};
    let mut m = serde_json::Map::new();
    let retain = RETAIN_KEYS
        .iter()
        .find(|(t, f, _)| *t == type_name && *f == field)
        .map(|(_, _, s)| *s);
    match list_kind(type_name, field) {
        ListKind::Map { patch_key, keys } => {
            m.insert("x-kubernetes-list-map-keys".into(), json!(keys));
            m.insert("x-kubernetes-list-type".into(), json!("map"));
            m.insert("x-kubernetes-patch-merge-key".into(), json!(patch_key));
            m.insert(
                "x-kubernetes-patch-strategy".into(),
                json!(retain.unwrap_or("merge")),
            );
        }
        ListKind::Set => {
            m.insert("x-kubernetes-list-type".into(), json!("set"));
            m.insert("x-kubernetes-patch-strategy".into(), json!("merge"));
        }
        ListKind::Atomic => {
            if let Some(strategy) = retain {
                m.insert(
                    "x-kubernetes-patch-strategy".into(),
                    Value::String(strategy.to_string()),
                );
            }
        }
    }
    m
}

/// Whether apply treats the struct `type_name` as atomic.
pub fn is_atomic_struct(type_name: &str) -> bool {
    ATOMIC_STRUCTS.contains(&type_name)
}

/// The value upstream's schema defaults a missing list-map key field to
/// (`protocol` is `TCP` in container and service ports).
pub fn key_default(field: &str) -> Option<&'static str> {
    (field == "protocol").then_some("TCP")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_upstream_merge_keys() {
        assert_eq!(list_kind("io.k8s.api.core.v1.PodSpec", "containers"), NAME);
        assert_eq!(
            list_kind("io.k8s.api.core.v1.PodSpec", "tolerations"),
            ListKind::Atomic
        );
        assert_eq!(
            list_kind("io.k8s.api.core.v1.Container", "args"),
            ListKind::Atomic
        );
        assert_eq!(
            list_kind("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers"),
            ListKind::Set
        );
        assert!(matches!(
            list_kind("io.k8s.api.core.v1.ServiceSpec", "ports"),
            ListKind::Map {
                patch_key: "port",
                keys: &["port", "protocol"]
            }
        ));
        assert!(is_atomic_struct(
            "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"
        ));
    }

    #[test]
    fn publishes_openapi_extensions_like_upstream() {
        let v = serde_json::Value::Object(openapi_extensions("io.k8s.api.core.v1.PodSpec", "volumes"));
        assert_eq!(
            v,
            serde_json::json!({"x-kubernetes-list-map-keys": ["name"], "x-kubernetes-list-type": "map",
                "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge,retainKeys"})
        );
        let strategy = openapi_extensions("io.k8s.api.apps.v1.DeploymentSpec", "strategy");
        assert_eq!(
            strategy.get("x-kubernetes-patch-strategy"),
            Some(&serde_json::json!("retainKeys"))
        );
        assert!(openapi_extensions("io.k8s.api.core.v1.PodSpec", "tolerations").is_empty());
    }
}
