//! The registry of built-in kinds: group/version/kind, plural, scope, short
//! names, verbs and subresources for every resource skiff serves.
//!
//! Adding a built-in kind is one line in [`builtin_resources`]: name its
//! `k8s-openapi` type, short names, categories and subresources.

use serde_json::Value;

/// Every verb of a full read-write resource, in discovery order.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Turns a JSON object into its typed form and back: unknown fields dropped,
/// field shapes checked. Returns the serde error for a field of the wrong shape.
pub type Normalizer = fn(Value) -> Result<Value, serde_json::Error>;

/// One served resource (e.g. `apps/v1 deployments`).
#[derive(Debug, Clone)]
pub struct ResourceDef {
    /// API group; empty for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub list_kind: &'static str,
    /// Lower-case plural, the URL segment (`deployments`).
    pub plural: &'static str,
    /// Lower-case singular (`deployment`).
    pub singular: String,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub namespaced: bool,
    pub verbs: &'static [&'static str],
    /// Subresource names served under `<plural>/<name>/<sub>` (`status`, `scale`, ...).
    pub subresources: &'static [&'static str],
    /// The resource that owns this kind's storage, when it is another
    /// version of the same objects (e.g. `autoscaling/v1` HPAs are stored as
    /// `autoscaling/v2`). `None`: stored under its own plural.
    pub storage_resource: &'static str,
    /// Round-trips an object through its `k8s-openapi` type.
    pub normalize: Normalizer,
}

impl ResourceDef {
    /// `apiVersion` as written in objects (`v1`, `apps/v1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `group/version` as used in discovery and by [`Registry::find`].
    pub fn group_version(&self) -> String {
        self.api_version()
    }

    /// True when the resource has the named subresource.
    pub fn has_subresource(&self, name: &str) -> bool {
        self.subresources.contains(&name)
    }

    /// The store key prefix for all objects of this resource:
    /// `/registry/<storage resource>/` (the group is not part of upstream's keys
    /// for built-ins, except where two groups share a plural).
    pub fn key_prefix(&self) -> String {
        format!("/registry/{}/", self.storage_resource)
    }

    /// The store key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("/registry/{}/{}/{}", self.storage_resource, ns, name),
            _ => format!("/registry/{}/{}", self.storage_resource, name),
        }
    }
}

/// All served resources, looked up by group/version/plural or kind.
#[derive(Debug, Clone)]
pub struct Registry {
    resources: Vec<ResourceDef>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// The registry of every built-in kind skiff serves.
    pub fn builtin() -> Self {
        Registry {
            resources: builtin_resources(),
        }
    }

    /// Every resource, in registration order.
    pub fn all(&self) -> &[ResourceDef] {
        &self.resources
    }

    /// The resource served at `group/version` under `plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceDef> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// The resource of a kind in a group/version.
    pub fn find_kind(&self, group: &str, version: &str, kind: &str) -> Option<&ResourceDef> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
    }

    /// Every group with its versions, in registration order (core group first).
    pub fn groups(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
        for r in &self.resources {
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) => {
                    if !versions.contains(&r.version) {
                        versions.push(r.version);
                    }
                }
                None => out.push((r.group, vec![r.version])),
            }
        }
        out
    }

    /// The resources of one group/version.
    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a ResourceDef> + 'a {
        self.resources
            .iter()
            .filter(move |r| r.group == group && r.version == version)
    }
}

fn normalize_as<T>(value: Value) -> Result<Value, serde_json::Error>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let typed: T = serde_json::from_value(value)?;
    serde_json::to_value(typed)
}

/// Declares one resource from its `k8s-openapi` type.
macro_rules! resource {
    ($ty:ty, short: [$($short:expr),*], categories: [$($cat:expr),*], sub: [$($sub:expr),*]) => {
        resource!($ty, short: [$($short),*], categories: [$($cat),*], sub: [$($sub),*], storage: None)
    };
    ($ty:ty, short: [$($short:expr),*], categories: [$($cat:expr),*], sub: [$($sub:expr),*], storage: $storage:expr) => {{
        use k8s_openapi::{ListableResource, Resource};
        let plural = <$ty as Resource>::URL_PATH_SEGMENT;
        let storage: Option<&'static str> = $storage;
        ResourceDef {
            group: <$ty as Resource>::GROUP,
            version: <$ty as Resource>::VERSION,
            kind: <$ty as Resource>::KIND,
            list_kind: <$ty as ListableResource>::LIST_KIND,
            plural,
            singular: <$ty as Resource>::KIND.to_ascii_lowercase(),
            short_names: &[$($short),*],
            categories: &[$($cat),*],
            namespaced: is_namespaced::<<$ty as Resource>::Scope>(),
            verbs: ALL_VERBS,
            subresources: &[$($sub),*],
            storage_resource: storage.unwrap_or(plural),
            normalize: normalize_as::<$ty>,
        }
    }};
}

fn is_namespaced<S: k8s_openapi::ResourceScope + 'static>() -> bool {
    std::any::TypeId::of::<S>() == std::any::TypeId::of::<k8s_openapi::NamespaceResourceScope>()
}

/// Every built-in resource. Core group first, then groups in upstream's
/// discovery order.
pub fn builtin_resources() -> Vec<ResourceDef> {
    use k8s_openapi::api::{
        apps::v1 as apps, autoscaling::v1 as as1, autoscaling::v2 as as2, batch::v1 as batch,
        certificates::v1 as certs, coordination::v1 as coord, core::v1 as core, discovery::v1 as disc,
        events::v1 as ev, policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as sched,
        storage::v1 as storage,
    };
    vec![
        resource!(core::Namespace, short: ["ns"], categories: [], sub: ["status", "finalize"]),
        resource!(core::Node, short: ["no"], categories: [], sub: ["status", "proxy"]),
        resource!(core::Pod, short: ["po"], categories: ["all"],
            sub: ["status", "binding", "eviction", "log", "exec", "attach", "portforward"]),
        resource!(core::Service, short: ["svc"], categories: ["all"], sub: ["status", "proxy"]),
        resource!(core::Endpoints, short: ["ep"], categories: [], sub: []),
        resource!(core::ConfigMap, short: ["cm"], categories: [], sub: []),
        resource!(core::Secret, short: [], categories: [], sub: []),
        resource!(core::ServiceAccount, short: ["sa"], categories: [], sub: ["token"]),
        resource!(core::Event, short: ["ev"], categories: [], sub: []),
        resource!(core::ReplicationController, short: ["rc"], categories: ["all"], sub: ["scale", "status"]),
        resource!(core::PersistentVolume, short: ["pv"], categories: [], sub: ["status"]),
        resource!(core::PersistentVolumeClaim, short: ["pvc"], categories: [], sub: ["status"]),
        resource!(core::ResourceQuota, short: ["quota"], categories: [], sub: ["status"]),
        resource!(core::LimitRange, short: ["limits"], categories: [], sub: []),
        resource!(apps::Deployment, short: ["deploy"], categories: ["all"], sub: ["scale", "status"]),
        resource!(apps::ReplicaSet, short: ["rs"], categories: ["all"], sub: ["scale", "status"]),
        resource!(apps::StatefulSet, short: ["sts"], categories: ["all"], sub: ["scale", "status"]),
        resource!(apps::DaemonSet, short: ["ds"], categories: ["all"], sub: ["status"]),
        resource!(apps::ControllerRevision, short: [], categories: [], sub: []),
        resource!(batch::Job, short: [], categories: ["all"], sub: ["status"]),
        resource!(batch::CronJob, short: ["cj"], categories: ["all"], sub: ["status"]),
        resource!(certs::CertificateSigningRequest, short: ["csr"], categories: [], sub: ["approval", "status"]),
        resource!(coord::Lease, short: [], categories: [], sub: []),
        resource!(disc::EndpointSlice, short: [], categories: [], sub: []),
        resource!(ev::Event, short: ["ev"], categories: [], sub: [], storage: Some("events")),
        resource!(rbac::Role, short: [], categories: [], sub: []),
        resource!(rbac::RoleBinding, short: [], categories: [], sub: []),
        resource!(rbac::ClusterRole, short: [], categories: [], sub: []),
        resource!(rbac::ClusterRoleBinding, short: [], categories: [], sub: []),
        resource!(as2::HorizontalPodAutoscaler, short: ["hpa"], categories: ["all"], sub: ["status"]),
        resource!(as1::HorizontalPodAutoscaler, short: ["hpa"], categories: ["all"], sub: ["status"],
            storage: Some("horizontalpodautoscalers")),
        resource!(policy::PodDisruptionBudget, short: ["pdb"], categories: [], sub: ["status"]),
        resource!(storage::StorageClass, short: ["sc"], categories: [], sub: []),
        resource!(sched::PriorityClass, short: ["pc"], categories: [], sub: []),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_core_and_group_resources() {
        let reg = Registry::builtin();
        let pods = reg.find("", "v1", "pods").expect("pods registered");
        assert_eq!(pods.kind, "Pod");
        assert!(pods.namespaced);
        assert_eq!(pods.key(Some("default"), "web"), "/registry/pods/default/web");
        let nodes = reg.find("", "v1", "nodes").expect("nodes registered");
        assert!(!nodes.namespaced);
        assert_eq!(nodes.key(None, "n1"), "/registry/nodes/n1");
        let deploy = reg
            .find("apps", "v1", "deployments")
            .expect("deployments registered");
        assert_eq!(deploy.api_version(), "apps/v1");
        assert!(deploy.has_subresource("scale"));
    }

    #[test]
    fn both_hpa_versions_share_storage() {
        let reg = Registry::builtin();
        let v1 = reg
            .find("autoscaling", "v1", "horizontalpodautoscalers")
            .expect("v1");
        let v2 = reg
            .find("autoscaling", "v2", "horizontalpodautoscalers")
            .expect("v2");
        assert_eq!(v1.key_prefix(), v2.key_prefix());
    }

    #[test]
    fn normalize_rejects_wrong_shapes() {
        let reg = Registry::builtin();
        let pods = reg.find("", "v1", "pods").expect("pods");
        let bad = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": "nope"}});
        assert!((pods.normalize)(bad).is_err());
    }
}
