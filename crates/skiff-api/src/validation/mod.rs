//! Upstream validation: names, labels, annotations, and per-kind rules, each
//! failure a [`Cause`] with upstream's field path and message
//! (`pkg/apis/*/validation/validation.go`).
//!
//! Owns: the per-kind dispatch for creates and updates, and unknown-field
//! detection. Must not: change the object (defaulting runs first and is
//! [`crate::defaults`]' job). Validation runs on defaulted objects, as
//! upstream does.

mod batch;
mod certificates;
mod config;
mod container;
pub mod cron;
mod events;
mod labelsel;
mod meta;
pub mod names;
mod others;
mod pod;
mod pod_update;
pub mod quantity;
mod schema;
mod service;
mod unknown;
mod workloads;

#[cfg(test)]
mod tests;

pub use names::NameRule;
pub use unknown::unknown_fields;

use crate::registry::ResourceDef;
use crate::status::Cause;
use serde_json::Value;

/// How `metadata.name` is checked for `def`'s kind.
pub fn name_rule(def: &ResourceDef) -> NameRule {
    match (def.group, def.kind) {
        ("", "Namespace") => NameRule::Label,
        ("", "Service") => NameRule::Dns1035,
        ("", "PersistentVolume")
        | ("autoscaling", _)
        | ("rbac.authorization.k8s.io", _)
        | ("certificates.k8s.io", _) => NameRule::PathSegment,
        _ => NameRule::Subdomain,
    }
}

/// Problems with a new object of `def`'s kind.
pub fn validate_create(def: &ResourceDef, obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    let meta = obj.get("metadata").unwrap_or(&Value::Null);
    meta::validate(meta, def.namespaced, name_rule(def), &mut out);
    kind_rules(def, obj, &mut out);
    out
}

/// Problems with an update of `old` to `new` (immutable fields, etc.).
pub fn validate_update(def: &ResourceDef, new: &Value, old: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    let meta = new.get("metadata").unwrap_or(&Value::Null);
    let old_meta = old.get("metadata").unwrap_or(&Value::Null);
    let mut meta_causes = Vec::new();
    meta::validate(meta, def.namespaced, name_rule(def), &mut meta_causes);
    // A name that was accepted once is not re-judged (e.g. a generated name).
    out.extend(
        meta_causes
            .into_iter()
            .filter(|c| c.field != "metadata.name" && c.field != "metadata.generateName"),
    );
    meta::validate_update(meta, old_meta, &mut out);
    kind_rules(def, new, &mut out);
    match (def.group, def.kind) {
        ("", "Pod") => pod_update::validate(
            new.get("spec").unwrap_or(&Value::Null),
            old.get("spec").unwrap_or(&Value::Null),
            &mut out,
        ),
        ("", "Service") => service::validate_update(new, old, &mut out),
        ("", "ConfigMap" | "Secret") => config::immutable_update(new, old, &mut out),
        ("", "Node") => config::node_update(new, old, &mut out),
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet") => {
            workloads::selector_immutable(new, old, &mut out)
        }
        ("apps", "StatefulSet") => {
            workloads::selector_immutable(new, old, &mut out);
            workloads::stateful_set_update(new, old, &mut out);
        }
        ("batch", "Job") => batch::job_update(new, old, &mut out),
        ("events.k8s.io", "Event") => events::strict_update(
            &crate::conversion::event_to_core(new.clone()),
            &crate::conversion::event_to_core(old.clone()),
            &mut out,
        ),
        ("", "PersistentVolumeClaim") => others::pvc_update(new, old, &mut out),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            others::role_binding_update(new, old, &mut out)
        }
        ("scheduling.k8s.io", "PriorityClass") => others::priority_class_update(new, old, &mut out),
        ("certificates.k8s.io", "CertificateSigningRequest") => certificates::csr_update(new, old, &mut out),
        _ => {}
    }
    out
}

fn kind_rules(def: &ResourceDef, obj: &Value, out: &mut Vec<Cause>) {
    match (def.group, def.kind) {
        ("", "Pod") => pod::spec(obj.get("spec").unwrap_or(&Value::Null), "spec", out),
        ("", "Service") => service::validate(obj, out),
        ("", "ConfigMap") => config::config_map(obj, out),
        ("", "Secret") => config::secret(obj, out),
        ("", "Node") => config::node(obj, out),
        ("", "ReplicationController") => workloads::replication_controller(obj, out),
        ("apps", "Deployment") => workloads::deployment(obj, out),
        ("apps", "ReplicaSet") => workloads::replica_set(obj, out),
        ("apps", "StatefulSet") => workloads::stateful_set(obj, out),
        ("apps", "DaemonSet") => workloads::daemon_set(obj, out),
        ("batch", "Job") => batch::job(obj, out),
        ("batch", "CronJob") => batch::cron_job(obj, out),
        ("", "PersistentVolumeClaim") => others::pvc(obj, out),
        ("", "PersistentVolume") => others::pv(obj, out),
        ("", "ResourceQuota") => others::resource_quota(obj, out),
        ("autoscaling", "HorizontalPodAutoscaler") => others::hpa(obj, out),
        ("policy", "PodDisruptionBudget") => others::pdb(obj, out),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            others::role_binding(obj, def.namespaced, out)
        }
        ("scheduling.k8s.io", "PriorityClass") => others::priority_class(obj, out),
        ("discovery.k8s.io", "EndpointSlice") => others::endpoint_slice(obj, out),
        ("certificates.k8s.io", "CertificateSigningRequest") => certificates::csr(obj, out),
        ("", "Event") => events::legacy(obj, out),
        ("events.k8s.io", "Event") => {
            let core = crate::conversion::event_to_core(obj.clone());
            events::legacy(&core, out);
            events::strict(&core, out);
        }
        _ => {}
    }
}

/// The string at `v[k]`, or `""` when it is absent or not a string.
fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

/// The array at `v[k]`, or an empty slice when it is absent or not an array.
fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}
