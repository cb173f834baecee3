//! Upstream defaulting: fills the fields Kubernetes fills when a client leaves
//! them out (restartPolicy, dnsPolicy, imagePullPolicy, strategy 25%/25%, ...),
//! as `pkg/apis/*/v1/defaults.go` plus the admission plugins and registry
//! strategies whose effects `kubectl get -o yaml` shows on every object
//! (ServiceAccount, Priority, DefaultTolerationSeconds, pod QoS class).
//!
//! Owns: the per-kind dispatch and the small JSON helpers the per-kind modules
//! share. Must not: reject anything (that is validation's job) or panic on
//! objects of the wrong shape — a field of the wrong JSON type is left alone.

mod core;
mod other;
mod pod;

pub(crate) use pod::volume_sources as pod_volume_sources;
mod workloads;

#[cfg(test)]
mod tests;

use crate::registry::ResourceDef;
use serde_json::{Map, Value};

pub use pod::add_default_tolerations;

/// Upstream's default `--default-not-ready-toleration-seconds`.
pub const UPSTREAM_DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// Applies upstream defaults for `def`'s kind to `obj` in place.
///
/// Call it on creates and updates after `metadata.uid` is set: a Job's
/// generated selector (`batch.kubernetes.io/controller-uid`) needs the uid.
pub fn apply_defaults(def: &ResourceDef, obj: &mut Value) {
    match (def.group, def.kind) {
        ("", "Pod") => pod::pod(obj),
        ("", "PodTemplate") => pod::template_in(obj, "template"),
        ("", "ReplicationController") => workloads::replication_controller(obj),
        ("apps", "Deployment") => workloads::deployment(obj),
        ("apps", "ReplicaSet") => workloads::replica_set(obj),
        ("apps", "StatefulSet") => workloads::stateful_set(obj),
        ("apps", "DaemonSet") => workloads::daemon_set(obj),
        ("batch", "Job") => workloads::job(obj),
        ("batch", "CronJob") => workloads::cron_job(obj),
        ("", "Service") => core::service(obj),
        ("", "Secret") => core::secret(obj),
        ("", "Namespace") => core::namespace(obj),
        ("", "PersistentVolumeClaim") => core::pvc(obj),
        ("", "PersistentVolume") => core::pv(obj),
        ("", "Node") => core::node(obj),
        ("", "Endpoints") => core::endpoints(obj),
        ("", "LimitRange") => core::limit_range(obj),
        ("discovery.k8s.io", "EndpointSlice") => core::endpoint_slice(obj),
        ("autoscaling", "HorizontalPodAutoscaler") => other::hpa(def.version, obj),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => other::role_binding(obj),
        ("scheduling.k8s.io", "PriorityClass") => other::priority_class(obj),
        ("storage.k8s.io", "StorageClass") => other::storage_class(obj),
        _ => {}
    }
}

/// Sets `obj[key] = value` when `obj` is an object whose `key` is absent or null.
pub(crate) fn set(obj: &mut Value, key: &str, value: Value) {
    if let Some(map) = obj.as_object_mut() {
        match map.get(key) {
            None | Some(Value::Null) => {
                map.insert(key.to_string(), value);
            }
            Some(_) => {}
        }
    }
}

/// Like [`set`], but also replaces an empty string (Go's zero value).
pub(crate) fn set_str(obj: &mut Value, key: &str, value: &str) {
    if obj.get(key).and_then(Value::as_str) == Some("")
        && let Some(map) = obj.as_object_mut()
    {
        map.remove(key);
    }
    set(obj, key, Value::String(value.to_string()));
}

/// The object under `key`, created empty when absent or null. `None` when
/// `obj` is not an object or `key` holds something other than an object.
pub(crate) fn object<'a>(obj: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    set(obj, key, Value::Object(Map::new()));
    obj.get_mut(key).filter(|v| v.is_object())
}

/// The object under `key` when it exists (nothing is created).
pub(crate) fn existing<'a>(obj: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    obj.get_mut(key).filter(|v| v.is_object())
}

/// Runs `f` on every object element of the array under `key`.
pub(crate) fn each(obj: &mut Value, key: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(items) = obj.get_mut(key).and_then(Value::as_array_mut) {
        items.iter_mut().filter(|v| v.is_object()).for_each(&mut f);
    }
}

/// The string at `key`, or "" when absent or not a string.
pub(crate) fn str_of<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.get(key).and_then(Value::as_str).unwrap_or_default()
}
