//! Pod and pod-template defaults: `SetDefaults_PodSpec`, `_Container`,
//! `_Probe`, `_Volume` and friends from core/v1, plus what the apiserver adds
//! to a bare Pod on create (service account, priority, default tolerations,
//! requests from limits, `status.phase`/`qosClass`).

use super::{each, existing, object, set, set_str, str_of};
use crate::validation::quantity::Quantity;
use serde_json::{Value, json};

/// Defaults for a Pod object (not a template).
pub(crate) fn pod(obj: &mut Value) {
    let Some(spec) = object(obj, "spec") else { return };
    pod_spec(spec);
    pod_only_spec(spec);
    requests_from_limits(spec);
    set_str(spec, "serviceAccountName", "default");
    let sa = str_of(spec, "serviceAccountName").to_string();
    set_str(spec, "serviceAccount", &sa);
    if str_of(spec, "priorityClassName").is_empty() {
        set(spec, "priority", json!(0));
    }
    set_str(spec, "preemptionPolicy", "PreemptLowerPriority");
    let qos = qos_class(spec);
    if let Some(status) = object(obj, "status") {
        set_str(status, "phase", "Pending");
        set_str(status, "qosClass", qos);
    }
}

/// Defaults the pod template under `obj[key]` (`spec.template` of a workload).
pub(crate) fn template_in(obj: &mut Value, key: &str) {
    if let Some(spec) = existing(obj, key).and_then(|t| existing(t, "spec")) {
        pod_spec(spec);
    }
}

/// `SetDefaults_PodSpec` and everything under it.
pub(crate) fn pod_spec(spec: &mut Value) {
    set_str(spec, "dnsPolicy", "ClusterFirst");
    set_str(spec, "restartPolicy", "Always");
    set(spec, "securityContext", json!({}));
    set(spec, "terminationGracePeriodSeconds", json!(30));
    set_str(spec, "schedulerName", "default-scheduler");
    for key in ["initContainers", "containers", "ephemeralContainers"] {
        each(spec, key, container);
    }
    each(spec, "volumes", volume);
}

/// What `SetDefaults_Pod` adds for Pods only (not templates): service links,
/// and host ports equal to container ports under host networking.
fn pod_only_spec(spec: &mut Value) {
    set(spec, "enableServiceLinks", json!(true));
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for key in ["initContainers", "containers"] {
            each(spec, key, |c| {
                each(c, "ports", |p| {
                    let unset = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0) == 0;
                    if unset && let Some(port) = p.get("containerPort").cloned() {
                        p["hostPort"] = port;
                    }
                })
            });
        }
    }
}

fn container(c: &mut Value) {
    if str_of(c, "imagePullPolicy").is_empty() {
        let policy = if image_tag(str_of(c, "image")) == Some("latest") {
            "Always"
        } else {
            "IfNotPresent"
        };
        set_str(c, "imagePullPolicy", policy);
    }
    set_str(c, "terminationMessagePath", "/dev/termination-log");
    set_str(c, "terminationMessagePolicy", "File");
    set(c, "resources", json!({}));
    each(c, "ports", |p| set_str(p, "protocol", "TCP"));
    each(c, "env", |e| {
        if let Some(field_ref) = existing(e, "valueFrom").and_then(|v| existing(v, "fieldRef")) {
            set_str(field_ref, "apiVersion", "v1");
        }
    });
    for probe_key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = existing(c, probe_key) {
            probe(p);
        }
    }
    if let Some(lifecycle) = existing(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(get) = existing(lifecycle, hook).and_then(|h| existing(h, "httpGet")) {
                http_get(get);
            }
        }
    }
}

fn probe(p: &mut Value) {
    set(p, "timeoutSeconds", json!(1));
    set(p, "periodSeconds", json!(10));
    set(p, "successThreshold", json!(1));
    set(p, "failureThreshold", json!(3));
    if let Some(get) = existing(p, "httpGet") {
        http_get(get);
    }
    if let Some(grpc) = existing(p, "grpc") {
        set_str(grpc, "service", "");
    }
}

fn http_get(get: &mut Value) {
    set_str(get, "path", "/");
    set_str(get, "scheme", "HTTP");
}

const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

/// Names of every volume source field of a pod volume.
pub(crate) fn volume_sources() -> &'static [&'static str] {
    VOLUME_SOURCES
}

fn volume(v: &mut Value) {
    if !VOLUME_SOURCES
        .iter()
        .any(|s| v.get(*s).is_some_and(|x| !x.is_null()))
    {
        set(v, "emptyDir", json!({}));
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = existing(v, source) {
            set(s, "defaultMode", json!(420));
        }
    }
    if let Some(projected) = existing(v, "projected") {
        each(projected, "sources", |source| {
            if let Some(token) = existing(source, "serviceAccountToken") {
                set(token, "expirationSeconds", json!(3600));
            }
        });
    }
    if let Some(host_path) = existing(v, "hostPath") {
        set_str(host_path, "type", "");
    }
    if let Some(downward) = existing(v, "downwardAPI") {
        each(downward, "items", |item| {
            if let Some(field_ref) = existing(item, "fieldRef") {
                set_str(field_ref, "apiVersion", "v1");
            }
        });
    }
    if let Some(image) = existing(v, "image") {
        let policy = if image_tag(str_of(image, "reference")) == Some("latest") {
            "Always"
        } else {
            "IfNotPresent"
        };
        set_str(image, "pullPolicy", policy);
    }
}

/// The tag of an image reference as upstream's `ParseImageName` sees it:
/// `latest` when neither tag nor digest is given, `None` with a digest only.
pub(crate) fn image_tag(image: &str) -> Option<&str> {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[last_slash..].rfind(':') {
        Some(i) => Some(&name[last_slash + i + 1..]),
        None if digest.is_none() => Some("latest"),
        None => None,
    }
}

/// Requests default to limits for every resource with only a limit.
fn requests_from_limits(spec: &mut Value) {
    for key in ["initContainers", "containers"] {
        each(spec, key, |c| {
            let Some(resources) = existing(c, "resources") else {
                return;
            };
            let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned() else {
                return;
            };
            if let Some(requests) = object(resources, "requests") {
                for (name, q) in limits {
                    set(requests, &name, q);
                }
            }
        });
    }
}

/// Adds the NoExecute tolerations for not-ready/unreachable nodes that
/// upstream's DefaultTolerationSeconds admission plugin adds to a new pod's
/// `spec` unless it tolerates them already (upstream's default: 300 s).
/// An admission step, not defaulting: only creates get it.
pub fn add_default_tolerations(spec: &mut Value, toleration_seconds: i64) {
    let keys = ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"];
    let existing_tolerations = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let tolerates = |key: &str| {
        existing_tolerations.iter().any(|t| {
            let effect = str_of(t, "effect");
            let op = str_of(t, "operator");
            let k = str_of(t, "key");
            (effect.is_empty() || effect == "NoExecute") && (k == key || (k.is_empty() && op == "Exists"))
        })
    };
    let add: Vec<Value> = keys
        .iter()
        .filter(|k| !tolerates(k))
        .map(|k| json!({"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": toleration_seconds}))
        .collect();
    if add.is_empty() {
        return;
    }
    set(spec, "tolerations", json!([]));
    if let Some(list) = spec.get_mut("tolerations").and_then(Value::as_array_mut) {
        list.extend(add);
    }
}

/// Upstream's pod QoS class: Guaranteed, Burstable or BestEffort.
pub(crate) fn qos_class(spec: &Value) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    for key in ["initContainers", "containers"] {
        for c in spec.get(key).and_then(Value::as_array).into_iter().flatten() {
            let requests = c.pointer("/resources/requests").and_then(Value::as_object);
            let limits = c.pointer("/resources/limits").and_then(Value::as_object);
            let compute = |m: Option<&serde_json::Map<String, Value>>, r: &str| {
                m.and_then(|m| m.get(r))
                    .and_then(Value::as_str)
                    .and_then(|s| Quantity::parse(s).ok())
            };
            for r in ["cpu", "memory"] {
                let req = compute(requests, r);
                let lim = compute(limits, r);
                if req.is_some_and(|q| !q.is_zero()) || lim.is_some_and(|q| !q.is_zero()) {
                    any = true;
                }
                match (req, lim) {
                    (Some(q), Some(l)) if q == l => {}
                    (None, Some(_)) => {}
                    _ => guaranteed = false,
                }
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}
