//! Decoding of `application/vnd.kubernetes.protobuf` request bodies into JSON
//! objects. kubectl's `create <kind>` generators send protobuf for built-in
//! kinds and client-go never falls back to JSON for request bodies, so the
//! kinds those generators make are decoded here (via `k8s-pb`'s types).
//!
//! Covered: ConfigMap, Secret, Namespace, ServiceAccount, Service, Deployment,
//! Job, CronJob, Role, ClusterRole, RoleBinding, ClusterRoleBinding,
//! PriorityClass, ResourceQuota, PodDisruptionBudget, with the fields those
//! generators and typical clients set (pod templates: containers with name,
//! image, command, args, ports, env, resources; not volumes or probes).
//! Anything else is 415, as from a server without protobuf.
//!
//! Must not: encode responses (they are JSON; clients accept that).

#![allow(clippy::result_large_err)] // ApiError is the API-facing error; handlers move it on unchanged.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use prost::Message;
use serde_json::{Map, Value, json};
use skiff_api::status::ApiError;

/// The 4-byte prefix of every Kubernetes protobuf body.
pub const MAGIC: &[u8] = b"k8s\0";

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("failed to decode protobuf body: {e}"))
}

/// Decodes a protobuf body (envelope + object) into the object's JSON form.
pub fn decode(bytes: &[u8]) -> Result<Value, ApiError> {
    let body = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("missing k8s protobuf prefix"))?;
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(body).map_err(bad)?;
    let tm = unknown.type_meta.unwrap_or_default();
    let (api_version, kind) = (tm.api_version.unwrap_or_default(), tm.kind.unwrap_or_default());
    let raw = unknown.raw.unwrap_or_default();
    let raw = raw.as_slice();
    let mut obj = match (api_version.as_str(), kind.as_str()) {
        ("v1", "ConfigMap") => config_map(core::ConfigMap::decode(raw).map_err(bad)?),
        ("v1", "Secret") => secret(core::Secret::decode(raw).map_err(bad)?),
        ("v1", "Namespace") => {
            let ns = core::Namespace::decode(raw).map_err(bad)?;
            let mut o = with_meta(ns.metadata);
            if let Some(spec) = ns.spec.filter(|s| !s.finalizers.is_empty()) {
                o.insert("spec".into(), json!({"finalizers": spec.finalizers}));
            }
            o
        }
        ("v1", "ServiceAccount") => {
            let sa = core::ServiceAccount::decode(raw).map_err(bad)?;
            let mut o = with_meta(sa.metadata);
            put(
                &mut o,
                "automountServiceAccountToken",
                sa.automount_service_account_token.map(Value::Bool),
            );
            o
        }
        ("v1", "Service") => service(core::Service::decode(raw).map_err(bad)?),
        ("apps/v1", "Deployment") => {
            let d = k8s_pb::api::apps::v1::Deployment::decode(raw).map_err(bad)?;
            let mut o = with_meta(d.metadata);
            if let Some(s) = d.spec {
                let mut spec = Map::new();
                put(&mut spec, "replicas", s.replicas.map(Value::from));
                put(&mut spec, "selector", s.selector.map(selector));
                put(&mut spec, "template", s.template.map(pod_template));
                if let Some(st) = s.strategy {
                    spec.insert("strategy".into(), opt_obj([("type", st.r#type.map(Value::from))]));
                }
                put(&mut spec, "minReadySeconds", s.min_ready_seconds.map(Value::from));
                put(
                    &mut spec,
                    "revisionHistoryLimit",
                    s.revision_history_limit.map(Value::from),
                );
                put(&mut spec, "paused", s.paused.map(Value::from));
                o.insert("spec".into(), Value::Object(spec));
            }
            o
        }
        ("batch/v1", "Job") => {
            let j = k8s_pb::api::batch::v1::Job::decode(raw).map_err(bad)?;
            let mut o = with_meta(j.metadata);
            put(&mut o, "spec", j.spec.map(job_spec));
            o
        }
        ("batch/v1", "CronJob") => {
            let c = k8s_pb::api::batch::v1::CronJob::decode(raw).map_err(bad)?;
            let mut o = with_meta(c.metadata);
            if let Some(s) = c.spec {
                let mut spec = Map::new();
                put(&mut spec, "schedule", s.schedule.map(Value::from));
                put(&mut spec, "timeZone", s.time_zone.map(Value::from));
                put(
                    &mut spec,
                    "concurrencyPolicy",
                    s.concurrency_policy.map(Value::from),
                );
                put(&mut spec, "suspend", s.suspend.map(Value::from));
                if let Some(t) = s.job_template {
                    let mut jt = with_meta(t.metadata);
                    put(&mut jt, "spec", t.spec.map(job_spec));
                    spec.insert("jobTemplate".into(), Value::Object(jt));
                }
                o.insert("spec".into(), Value::Object(spec));
            }
            o
        }
        ("rbac.authorization.k8s.io/v1", "Role") => {
            let r = k8s_pb::api::rbac::v1::Role::decode(raw).map_err(bad)?;
            let mut o = with_meta(r.metadata);
            o.insert(
                "rules".into(),
                Value::Array(r.rules.into_iter().map(rule).collect()),
            );
            o
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
            let r = k8s_pb::api::rbac::v1::ClusterRole::decode(raw).map_err(bad)?;
            let mut o = with_meta(r.metadata);
            o.insert(
                "rules".into(),
                Value::Array(r.rules.into_iter().map(rule).collect()),
            );
            o
        }
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
            let b = k8s_pb::api::rbac::v1::RoleBinding::decode(raw).map_err(bad)?;
            binding(b.metadata, b.subjects, b.role_ref)
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            let b = k8s_pb::api::rbac::v1::ClusterRoleBinding::decode(raw).map_err(bad)?;
            binding(b.metadata, b.subjects, b.role_ref)
        }
        ("scheduling.k8s.io/v1", "PriorityClass") => {
            let p = k8s_pb::api::scheduling::v1::PriorityClass::decode(raw).map_err(bad)?;
            let mut o = with_meta(p.metadata);
            put(&mut o, "value", p.value.map(Value::from));
            put(&mut o, "globalDefault", p.global_default.map(Value::from));
            put(&mut o, "description", p.description.map(Value::from));
            put(&mut o, "preemptionPolicy", p.preemption_policy.map(Value::from));
            o
        }
        ("v1", "ResourceQuota") => {
            let q = core::ResourceQuota::decode(raw).map_err(bad)?;
            let mut o = with_meta(q.metadata);
            if let Some(s) = q.spec {
                let mut spec = Map::new();
                put(&mut spec, "hard", quantities(s.hard));
                if !s.scopes.is_empty() {
                    spec.insert("scopes".into(), json!(s.scopes));
                }
                o.insert("spec".into(), Value::Object(spec));
            }
            o
        }
        ("policy/v1", "PodDisruptionBudget") => {
            let p = k8s_pb::api::policy::v1::PodDisruptionBudget::decode(raw).map_err(bad)?;
            let mut o = with_meta(p.metadata);
            if let Some(s) = p.spec {
                let mut spec = Map::new();
                put(&mut spec, "minAvailable", s.min_available.map(int_or_string));
                put(&mut spec, "maxUnavailable", s.max_unavailable.map(int_or_string));
                put(&mut spec, "selector", s.selector.map(selector));
                o.insert("spec".into(), Value::Object(spec));
            }
            o
        }
        _ => {
            return Err(ApiError::unsupported_media_type(&format!(
                "application/vnd.kubernetes.protobuf for {api_version} {kind}"
            )));
        }
    };
    obj.insert("apiVersion".into(), Value::String(api_version));
    obj.insert("kind".into(), Value::String(kind));
    Ok(Value::Object(obj))
}

fn put(map: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        map.insert(key.into(), v);
    }
}

fn opt_obj<const N: usize>(fields: [(&str, Option<Value>); N]) -> Value {
    let mut m = Map::new();
    for (k, v) in fields {
        put(&mut m, k, v);
    }
    Value::Object(m)
}

fn strings(v: Vec<String>) -> Option<Value> {
    (!v.is_empty()).then(|| json!(v))
}

fn string_map(m: BTreeMap<String, String>) -> Option<Value> {
    (!m.is_empty()).then(|| json!(m))
}

fn time(t: meta::Time) -> Value {
    let ts = jiff::Timestamp::from_second(t.seconds.unwrap_or(0)).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    Value::String(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

fn object_meta(m: meta::ObjectMeta) -> Value {
    let mut o = Map::new();
    put(&mut o, "name", m.name.map(Value::from));
    put(&mut o, "generateName", m.generate_name.map(Value::from));
    put(&mut o, "namespace", m.namespace.map(Value::from));
    put(
        &mut o,
        "resourceVersion",
        m.resource_version.filter(|s| !s.is_empty()).map(Value::from),
    );
    put(&mut o, "uid", m.uid.filter(|s| !s.is_empty()).map(Value::from));
    put(
        &mut o,
        "creationTimestamp",
        m.creation_timestamp
            .filter(|t| t.seconds.unwrap_or(0) > 0)
            .map(time),
    );
    put(&mut o, "labels", string_map(m.labels));
    put(&mut o, "annotations", string_map(m.annotations));
    put(&mut o, "finalizers", strings(m.finalizers));
    if !m.owner_references.is_empty() {
        let refs = m.owner_references.into_iter().map(|r| {
            opt_obj([
                ("apiVersion", r.api_version.map(Value::from)),
                ("kind", r.kind.map(Value::from)),
                ("name", r.name.map(Value::from)),
                ("uid", r.uid.map(Value::from)),
                ("controller", r.controller.map(Value::from)),
                ("blockOwnerDeletion", r.block_owner_deletion.map(Value::from)),
            ])
        });
        o.insert("ownerReferences".into(), Value::Array(refs.collect()));
    }
    Value::Object(o)
}

fn with_meta(m: Option<meta::ObjectMeta>) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("metadata".into(), m.map(object_meta).unwrap_or_else(|| json!({})));
    o
}

fn b64(b: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(b))
}

fn config_map(c: core::ConfigMap) -> Map<String, Value> {
    let mut o = with_meta(c.metadata);
    put(&mut o, "data", string_map(c.data));
    if !c.binary_data.is_empty() {
        let m: Map<String, Value> = c.binary_data.into_iter().map(|(k, v)| (k, b64(&v))).collect();
        o.insert("binaryData".into(), Value::Object(m));
    }
    put(&mut o, "immutable", c.immutable.map(Value::from));
    o
}

fn secret(s: core::Secret) -> Map<String, Value> {
    let mut o = with_meta(s.metadata);
    if !s.data.is_empty() {
        let m: Map<String, Value> = s.data.into_iter().map(|(k, v)| (k, b64(&v))).collect();
        o.insert("data".into(), Value::Object(m));
    }
    put(&mut o, "stringData", string_map(s.string_data));
    put(&mut o, "type", s.r#type.map(Value::from));
    put(&mut o, "immutable", s.immutable.map(Value::from));
    o
}

fn int_or_string(v: k8s_pb::apimachinery::pkg::util::intstr::IntOrString) -> Value {
    match v.r#type {
        Some(1) => Value::from(v.str_val.unwrap_or_default()),
        _ => Value::from(v.int_val.unwrap_or(0)),
    }
}

fn service(s: core::Service) -> Map<String, Value> {
    let mut o = with_meta(s.metadata);
    if let Some(spec) = s.spec {
        let mut m = Map::new();
        put(&mut m, "type", spec.r#type.map(Value::from));
        put(
            &mut m,
            "clusterIP",
            spec.cluster_ip.filter(|s| !s.is_empty()).map(Value::from),
        );
        put(&mut m, "selector", string_map(spec.selector));
        put(&mut m, "externalName", spec.external_name.map(Value::from));
        put(&mut m, "sessionAffinity", spec.session_affinity.map(Value::from));
        let ports: Vec<Value> = spec
            .ports
            .into_iter()
            .map(|p| {
                opt_obj([
                    ("name", p.name.filter(|s| !s.is_empty()).map(Value::from)),
                    ("protocol", p.protocol.map(Value::from)),
                    ("port", p.port.map(Value::from)),
                    ("targetPort", p.target_port.map(int_or_string)),
                    ("nodePort", p.node_port.filter(|n| *n != 0).map(Value::from)),
                ])
            })
            .collect();
        if !ports.is_empty() {
            m.insert("ports".into(), Value::Array(ports));
        }
        o.insert("spec".into(), Value::Object(m));
    }
    o
}

fn selector(s: meta::LabelSelector) -> Value {
    let mut m = Map::new();
    put(&mut m, "matchLabels", string_map(s.match_labels));
    if !s.match_expressions.is_empty() {
        let exprs = s.match_expressions.into_iter().map(|e| {
            opt_obj([
                ("key", e.key.map(Value::from)),
                ("operator", e.operator.map(Value::from)),
                ("values", strings(e.values)),
            ])
        });
        m.insert("matchExpressions".into(), Value::Array(exprs.collect()));
    }
    Value::Object(m)
}

fn quantities(m: BTreeMap<String, k8s_pb::apimachinery::pkg::api::resource::Quantity>) -> Option<Value> {
    (!m.is_empty()).then(|| {
        Value::Object(
            m.into_iter()
                .map(|(k, q)| (k, Value::from(q.string.unwrap_or_default())))
                .collect(),
        )
    })
}

fn container(c: core::Container) -> Value {
    let mut m = Map::new();
    put(&mut m, "name", c.name.map(Value::from));
    put(&mut m, "image", c.image.map(Value::from));
    put(&mut m, "command", strings(c.command));
    put(&mut m, "args", strings(c.args));
    put(&mut m, "workingDir", c.working_dir.map(Value::from));
    if !c.ports.is_empty() {
        let ports = c.ports.into_iter().map(|p| {
            opt_obj([
                ("name", p.name.filter(|s| !s.is_empty()).map(Value::from)),
                ("containerPort", p.container_port.map(Value::from)),
                ("hostPort", p.host_port.filter(|h| *h != 0).map(Value::from)),
                ("protocol", p.protocol.map(Value::from)),
            ])
        });
        m.insert("ports".into(), Value::Array(ports.collect()));
    }
    if !c.env.is_empty() {
        let env = c.env.into_iter().map(|e| {
            opt_obj([
                ("name", e.name.map(Value::from)),
                ("value", e.value.map(Value::from)),
            ])
        });
        m.insert("env".into(), Value::Array(env.collect()));
    }
    if let Some(r) = c.resources {
        m.insert(
            "resources".into(),
            opt_obj([
                ("limits", quantities(r.limits)),
                ("requests", quantities(r.requests)),
            ]),
        );
    }
    put(&mut m, "imagePullPolicy", c.image_pull_policy.map(Value::from));
    put(
        &mut m,
        "terminationMessagePath",
        c.termination_message_path.map(Value::from),
    );
    put(
        &mut m,
        "terminationMessagePolicy",
        c.termination_message_policy.map(Value::from),
    );
    put(&mut m, "stdin", c.stdin.map(Value::from));
    put(&mut m, "tty", c.tty.map(Value::from));
    Value::Object(m)
}

fn pod_spec(s: core::PodSpec) -> Value {
    let mut m = Map::new();
    m.insert(
        "containers".into(),
        Value::Array(s.containers.into_iter().map(container).collect()),
    );
    if !s.init_containers.is_empty() {
        m.insert(
            "initContainers".into(),
            Value::Array(s.init_containers.into_iter().map(container).collect()),
        );
    }
    put(&mut m, "restartPolicy", s.restart_policy.map(Value::from));
    put(
        &mut m,
        "terminationGracePeriodSeconds",
        s.termination_grace_period_seconds.map(Value::from),
    );
    put(&mut m, "dnsPolicy", s.dns_policy.map(Value::from));
    put(&mut m, "nodeSelector", string_map(s.node_selector));
    put(
        &mut m,
        "serviceAccountName",
        s.service_account_name.map(Value::from),
    );
    put(&mut m, "nodeName", s.node_name.map(Value::from));
    put(&mut m, "hostNetwork", s.host_network.map(Value::from));
    put(&mut m, "schedulerName", s.scheduler_name.map(Value::from));
    Value::Object(m)
}

fn pod_template(t: core::PodTemplateSpec) -> Value {
    let mut o = with_meta(t.metadata);
    put(&mut o, "spec", t.spec.map(pod_spec));
    Value::Object(o)
}

fn job_spec(s: k8s_pb::api::batch::v1::JobSpec) -> Value {
    let mut m = Map::new();
    put(&mut m, "parallelism", s.parallelism.map(Value::from));
    put(&mut m, "completions", s.completions.map(Value::from));
    put(&mut m, "backoffLimit", s.backoff_limit.map(Value::from));
    put(
        &mut m,
        "activeDeadlineSeconds",
        s.active_deadline_seconds.map(Value::from),
    );
    put(&mut m, "selector", s.selector.map(selector));
    put(&mut m, "manualSelector", s.manual_selector.map(Value::from));
    put(&mut m, "template", s.template.map(pod_template));
    Value::Object(m)
}

fn rule(r: k8s_pb::api::rbac::v1::PolicyRule) -> Value {
    opt_obj([
        ("verbs", Some(json!(r.verbs))),
        ("apiGroups", strings(r.api_groups)),
        ("resources", strings(r.resources)),
        ("resourceNames", strings(r.resource_names)),
        ("nonResourceURLs", strings(r.non_resource_ur_ls)),
    ])
}

fn binding(
    m: Option<meta::ObjectMeta>,
    subjects: Vec<k8s_pb::api::rbac::v1::Subject>,
    role_ref: Option<k8s_pb::api::rbac::v1::RoleRef>,
) -> Map<String, Value> {
    let mut o = with_meta(m);
    if !subjects.is_empty() {
        let s = subjects.into_iter().map(|s| {
            opt_obj([
                ("kind", s.kind.map(Value::from)),
                ("apiGroup", s.api_group.filter(|g| !g.is_empty()).map(Value::from)),
                ("name", s.name.map(Value::from)),
                (
                    "namespace",
                    s.namespace.filter(|n| !n.is_empty()).map(Value::from),
                ),
            ])
        });
        o.insert("subjects".into(), Value::Array(s.collect()));
    }
    if let Some(r) = role_ref {
        o.insert(
            "roleRef".into(),
            opt_obj([
                ("apiGroup", r.api_group.map(Value::from)),
                ("kind", r.kind.map(Value::from)),
                ("name", r.name.map(Value::from)),
            ]),
        );
    }
    o
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown {
            type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let mut out = MAGIC.to_vec();
        out.extend(unknown.encode_to_vec());
        out
    }

    #[test]
    fn config_map_decodes_to_json() {
        let cm = core::ConfigMap {
            metadata: Some(meta::ObjectMeta {
                name: Some("c".into()),
                ..Default::default()
            }),
            data: BTreeMap::from([("a".into(), "b".into())]),
            ..Default::default()
        };
        let v = decode(&envelope("v1", "ConfigMap", cm.encode_to_vec())).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}})
        );
    }

    #[test]
    fn unknown_kinds_and_garbage_are_rejected() {
        assert_eq!(decode(&envelope("v1", "Pod", vec![])).unwrap_err().code, 415);
        assert_eq!(decode(b"nope").unwrap_err().code, 400);
    }
}
