//! Walks the OpenAPI schema of a built-in kind (generated from its
//! `k8s-openapi` type through schemars) so that patch and apply know, at any
//! point of an object, which definition they are in: whether a field is a
//! struct, a map or a list, and how that list merges ([`super::merge_keys`]).
//!
//! Schemas are generated once per kind and kept for the process lifetime.

use super::merge_keys::{self, ListKind};
use crate::registry::ResourceDef;
use k8s_openapi::schemars::{JsonSchema, SchemaGenerator};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// A position in a kind's schema. `Node::unknown()` stands for "no schema":
/// objects merge key by key and lists are atomic.
#[derive(Debug, Clone, Copy)]
pub struct Node {
    schema: Option<&'static Value>,
    defs: Option<&'static Value>,
    /// The OpenAPI definition name, when this node is a named type.
    name: Option<&'static str>,
}

fn root_schema<T: JsonSchema>() -> (String, Value) {
    let schema = SchemaGenerator::default().into_root_schema_for::<T>();
    (T::schema_name().into_owned(), schema.to_value())
}

/// The schema of a built-in kind, by group/version/kind.
fn generate(group: &str, version: &str, kind: &str) -> Option<(String, Value)> {
    use k8s_openapi::api::{
        apps::v1 as apps, autoscaling::v1 as as1, autoscaling::v2 as as2, batch::v1 as batch,
        coordination::v1 as coord, core::v1 as core, discovery::v1 as disc, events::v1 as ev,
        policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as sched, storage::v1 as storage,
    };
    macro_rules! kinds {
        ($(($g:literal, $v:literal, $k:literal) => $ty:ty),* $(,)?) => {
            match (group, version, kind) {
                $(($g, $v, $k) => Some(root_schema::<$ty>()),)*
                _ => None,
            }
        };
    }
    kinds! {
        ("", "v1", "Namespace") => core::Namespace,
        ("", "v1", "Node") => core::Node,
        ("", "v1", "Pod") => core::Pod,
        ("", "v1", "Service") => core::Service,
        ("", "v1", "Endpoints") => core::Endpoints,
        ("", "v1", "ConfigMap") => core::ConfigMap,
        ("", "v1", "Secret") => core::Secret,
        ("", "v1", "ServiceAccount") => core::ServiceAccount,
        ("", "v1", "Event") => core::Event,
        ("", "v1", "ReplicationController") => core::ReplicationController,
        ("", "v1", "PersistentVolume") => core::PersistentVolume,
        ("", "v1", "PersistentVolumeClaim") => core::PersistentVolumeClaim,
        ("", "v1", "ResourceQuota") => core::ResourceQuota,
        ("", "v1", "LimitRange") => core::LimitRange,
        ("apps", "v1", "Deployment") => apps::Deployment,
        ("apps", "v1", "ReplicaSet") => apps::ReplicaSet,
        ("apps", "v1", "StatefulSet") => apps::StatefulSet,
        ("apps", "v1", "DaemonSet") => apps::DaemonSet,
        ("apps", "v1", "ControllerRevision") => apps::ControllerRevision,
        ("batch", "v1", "Job") => batch::Job,
        ("batch", "v1", "CronJob") => batch::CronJob,
        ("certificates.k8s.io", "v1", "CertificateSigningRequest") => k8s_openapi::api::certificates::v1::CertificateSigningRequest,
        ("coordination.k8s.io", "v1", "Lease") => coord::Lease,
        ("discovery.k8s.io", "v1", "EndpointSlice") => disc::EndpointSlice,
        ("events.k8s.io", "v1", "Event") => ev::Event,
        ("rbac.authorization.k8s.io", "v1", "Role") => rbac::Role,
        ("rbac.authorization.k8s.io", "v1", "RoleBinding") => rbac::RoleBinding,
        ("rbac.authorization.k8s.io", "v1", "ClusterRole") => rbac::ClusterRole,
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => rbac::ClusterRoleBinding,
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => as2::HorizontalPodAutoscaler,
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => as1::HorizontalPodAutoscaler,
        ("policy", "v1", "PodDisruptionBudget") => policy::PodDisruptionBudget,
        ("storage.k8s.io", "v1", "StorageClass") => storage::StorageClass,
        ("scheduling.k8s.io", "v1", "PriorityClass") => sched::PriorityClass,
    }
}

type Cache = Mutex<HashMap<String, Option<(&'static str, &'static Value)>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

impl Node {
    /// A node with no schema information.
    pub fn unknown() -> Self {
        Node {
            schema: None,
            defs: None,
            name: None,
        }
    }

    /// The root of the schema of `def`'s kind (unknown for kinds without one).
    pub fn root(def: &ResourceDef) -> Self {
        let key = format!("{}/{}/{}", def.group, def.version, def.kind);
        let mut guard = match cache().lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let entry = guard.entry(key).or_insert_with(|| {
            generate(def.group, def.version, def.kind).map(|(name, value)| {
                let leaked: &'static Value = Box::leak(Box::new(value));
                let name: &'static str = Box::leak(name.into_boxed_str());
                (name, leaked)
            })
        });
        match entry {
            Some((name, value)) => Node {
                schema: Some(*value),
                defs: value.get("$defs"),
                name: Some(*name),
            },
            None => Node::unknown(),
        }
    }

    /// Follows a `$ref` to its definition.
    fn resolve(&self, schema: Option<&'static Value>) -> Node {
        let Some(s) = schema else { return Node::unknown() };
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap_or(r);
            let def = self.defs.and_then(|d| d.get(name));
            // The definition name as stored is the key in `$defs`.
            let name = self
                .defs
                .and_then(|d| d.as_object())
                .and_then(|m| m.get_key_value(name))
                .map(|(k, _)| k);
            return Node {
                schema: def,
                defs: self.defs,
                name: name.map(String::as_str),
            };
        }
        Node {
            schema: Some(s),
            defs: self.defs,
            name: None,
        }
    }

    /// The OpenAPI definition name of this node, if it is a named type.
    pub fn type_name(&self) -> Option<&'static str> {
        self.name
    }

    /// The schema of the property `field` of this struct.
    pub fn field(&self, field: &str) -> Node {
        self.resolve(
            self.schema
                .and_then(|s| s.get("properties"))
                .and_then(|p| p.get(field)),
        )
    }

    /// The schema of the items of this list.
    pub fn items(&self) -> Node {
        self.resolve(self.schema.and_then(|s| s.get("items")))
    }

    /// The schema of the values of this map.
    pub fn map_values(&self) -> Node {
        self.resolve(
            self.schema
                .and_then(|s| s.get("additionalProperties"))
                .filter(|v| v.is_object()),
        )
    }

    /// The child schema for `key` whether this node is a struct or a map.
    pub fn child(&self, key: &str) -> Node {
        if self.is_map() {
            self.map_values()
        } else {
            self.field(key)
        }
    }

    /// True for a string-keyed map (`additionalProperties`), as opposed to a struct.
    pub fn is_map(&self) -> bool {
        self.schema
            .and_then(|s| s.get("additionalProperties"))
            .is_some_and(Value::is_object)
    }

    /// How the list in property `field` of this struct merges.
    pub fn list_kind(&self, field: &str) -> ListKind {
        match self.name {
            Some(name) => merge_keys::list_kind(name, field),
            None => ListKind::Atomic,
        }
    }

    /// Whether `field` is a required property of this struct (Go fields
    /// without `omitempty`, present even in an empty object).
    pub fn is_required(&self, field: &str) -> bool {
        self.schema
            .and_then(|s| s.get("required"))
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|f| f.as_str() == Some(field)))
    }

    /// Whether apply owns this struct as a single value.
    pub fn is_atomic_struct(&self) -> bool {
        self.name.is_some_and(merge_keys::is_atomic_struct)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn walks_from_a_deployment_to_its_containers() {
        let reg = Registry::builtin();
        let deploy = reg.find("apps", "v1", "deployments").unwrap();
        let root = Node::root(deploy);
        assert_eq!(root.type_name(), Some("io.k8s.api.apps.v1.Deployment"));
        let pod_spec = root.field("spec").field("template").field("spec");
        assert_eq!(pod_spec.type_name(), Some("io.k8s.api.core.v1.PodSpec"));
        assert!(matches!(
            pod_spec.list_kind("containers"),
            ListKind::Map {
                patch_key: "name",
                ..
            }
        ));
        let container = pod_spec.field("containers").items();
        assert_eq!(container.type_name(), Some("io.k8s.api.core.v1.Container"));
        assert!(root.field("metadata").field("labels").is_map());
        assert!(root.field("spec").field("selector").is_atomic_struct());
    }
}
