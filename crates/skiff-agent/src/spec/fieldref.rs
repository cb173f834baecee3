//! The downward API: the value of a `fieldRef` (pod metadata, spec and
//! status fields) and of a `resourceFieldRef` (a container's requests or
//! limits, divided by a divisor), shared by env vars and downwardAPI volumes.
//!
//! Pure: the pod, its IPs and the node's allocatable are passed in.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ObjectFieldSelector, Pod, ResourceFieldSelector};
use skiff_api::validation::quantity::Quantity;

/// What the downward API reads besides the pod object itself.
#[derive(Debug, Clone, Default)]
pub struct DownwardInputs {
    /// The pod's IPs, primary first (empty before the sandbox exists).
    pub pod_ips: Vec<String>,
    /// The node's IPs, primary first.
    pub host_ips: Vec<String>,
    /// The node's allocatable CPU in millicores: a limit's value when unset.
    pub node_cpu_milli: i64,
    /// The node's allocatable memory in bytes: a limit's value when unset.
    pub node_memory_bytes: i64,
}

impl DownwardInputs {
    /// Inputs with the node's allocatable read from this machine.
    pub fn from_machine(pod_ips: Vec<String>, host_ips: Vec<String>) -> DownwardInputs {
        let (node_cpu_milli, node_memory_bytes) = machine_allocatable();
        DownwardInputs {
            pod_ips,
            host_ips,
            node_cpu_milli,
            node_memory_bytes,
        }
    }
}

/// This machine's CPUs (millicores) and memory (bytes, `MemTotal`).
pub fn machine_allocatable() -> (i64, i64) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let rest = line.strip_prefix("MemTotal:")?;
                let kib: i64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
                Some(kib * 1024)
            })
        })
        .unwrap_or(0);
    (i64::try_from(cpus).unwrap_or(1) * 1000, memory)
}

/// Why a downward API reference has no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldRefError {
    /// The field path is not one the downward API supports here.
    #[error("unsupported fieldPath: {0}")]
    UnsupportedField(String),
    /// The resource name is not one the downward API supports.
    #[error("unsupported container resource: {0}")]
    UnsupportedResource(String),
    /// A quantity (request, limit or divisor) does not parse or is zero.
    #[error("invalid quantity {0:?} for {1}")]
    BadQuantity(String, String),
    /// `containerName` names no container of the pod.
    #[error("container {0:?} not found in the pod")]
    NoSuchContainer(String),
}

/// The value of `fieldRef.fieldPath` for `pod`. `metadata.labels` and
/// `metadata.annotations` (whole maps) are allowed only in volumes
/// (`allow_maps`), formatted as upstream writes them.
pub fn field_value(
    pod: &Pod,
    sel: &ObjectFieldSelector,
    inputs: &DownwardInputs,
    allow_maps: bool,
) -> Result<String, FieldRefError> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let path = sel.field_path.as_str();
    let value = match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.podIP" => inputs.pod_ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => inputs.pod_ips.join(","),
        "status.hostIP" => inputs.host_ips.first().cloned().unwrap_or_default(),
        "status.hostIPs" => inputs.host_ips.join(","),
        "metadata.labels" if allow_maps => format_map(meta.labels.as_ref()),
        "metadata.annotations" if allow_maps => format_map(meta.annotations.as_ref()),
        _ => {
            if let Some(key) = subscript(path, "metadata.labels") {
                meta.labels
                    .as_ref()
                    .and_then(|m| m.get(key))
                    .cloned()
                    .unwrap_or_default()
            } else if let Some(key) = subscript(path, "metadata.annotations") {
                meta.annotations
                    .as_ref()
                    .and_then(|m| m.get(key))
                    .cloned()
                    .unwrap_or_default()
            } else {
                return Err(FieldRefError::UnsupportedField(path.to_string()));
            }
        }
    };
    Ok(value)
}

/// `prefix['key']` → `key`.
fn subscript<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    path.strip_prefix(prefix)?.strip_prefix("['")?.strip_suffix("']")
}

/// Upstream's file format for a whole labels/annotations map: one
/// `key="value"` per line, sorted by key, values quoted Go-style.
pub fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A string quoted like Go's `%q`.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The value of a `resourceFieldRef` for `container` (limits default to
/// the node's allocatable), divided by the divisor and rounded up.
pub fn resource_value(
    container: &Container,
    sel: &ResourceFieldSelector,
    inputs: &DownwardInputs,
) -> Result<String, FieldRefError> {
    let resources = container.resources.as_ref();
    let (kind, resource) = sel
        .resource
        .split_once('.')
        .ok_or_else(|| FieldRefError::UnsupportedResource(sel.resource.clone()))?;
    let map = match kind {
        "limits" => resources.and_then(|r| r.limits.as_ref()),
        "requests" => resources.and_then(|r| r.requests.as_ref()),
        _ => return Err(FieldRefError::UnsupportedResource(sel.resource.clone())),
    };
    let parse = |s: &str| {
        Quantity::parse(s).map_err(|_| FieldRefError::BadQuantity(s.to_string(), sel.resource.clone()))
    };
    let set = map
        .and_then(|m| m.get(resource))
        .map(|q| parse(&q.0))
        .transpose()?;
    let divisor = match &sel.divisor {
        Some(d) => parse(&d.0)?,
        None => parse("1")?,
    };
    if divisor.milli() <= 0 {
        return Err(FieldRefError::BadQuantity(
            sel.divisor.as_ref().map(|d| d.0.clone()).unwrap_or_default(),
            sel.resource.clone(),
        ));
    }
    let milli: i128 = match (resource, set) {
        (_, Some(q)) => q.milli(),
        ("cpu", None) if kind == "limits" => i128::from(inputs.node_cpu_milli),
        ("memory", None) if kind == "limits" => i128::from(inputs.node_memory_bytes) * 1000,
        ("cpu" | "memory" | "ephemeral-storage", None) => 0,
        (r, None) if r.starts_with("hugepages-") => 0,
        _ => return Err(FieldRefError::UnsupportedResource(sel.resource.clone())),
    };
    let div = divisor.milli();
    let value = (milli + div - 1).div_euclid(div);
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity as Q;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "prod", "uid": "u-1",
                          "labels": {"app": "web", "tier": "a\"b"}, "annotations": {"note": "x"}},
            "spec": {"nodeName": "n1", "serviceAccountName": "sa",
                     "containers": [{"name": "c", "image": "i"}]}
        }))
        .unwrap()
    }

    fn inputs() -> DownwardInputs {
        DownwardInputs {
            pod_ips: vec!["10.1.0.5".into(), "fd00::5".into()],
            host_ips: vec!["127.0.0.1".into()],
            node_cpu_milli: 2000,
            node_memory_bytes: 4 << 30,
        }
    }

    fn field(path: &str, maps: bool) -> Result<String, FieldRefError> {
        let sel = ObjectFieldSelector {
            field_path: path.into(),
            api_version: None,
        };
        field_value(&pod(), &sel, &inputs(), maps)
    }

    #[test]
    fn field_paths_resolve_like_the_kubelet() {
        assert_eq!(field("metadata.name", false).unwrap(), "web");
        assert_eq!(field("metadata.namespace", false).unwrap(), "prod");
        assert_eq!(field("metadata.uid", false).unwrap(), "u-1");
        assert_eq!(field("metadata.labels['app']", false).unwrap(), "web");
        assert_eq!(field("metadata.labels['none']", false).unwrap(), "");
        assert_eq!(field("metadata.annotations['note']", false).unwrap(), "x");
        assert_eq!(field("spec.nodeName", false).unwrap(), "n1");
        assert_eq!(field("spec.serviceAccountName", false).unwrap(), "sa");
        assert_eq!(field("status.podIP", false).unwrap(), "10.1.0.5");
        assert_eq!(field("status.podIPs", false).unwrap(), "10.1.0.5,fd00::5");
        assert_eq!(field("status.hostIP", false).unwrap(), "127.0.0.1");
        assert!(field("metadata.labels", false).is_err());
        assert_eq!(
            field("metadata.labels", true).unwrap(),
            "app=\"web\"\ntier=\"a\\\"b\""
        );
        assert!(field("spec.restartPolicy", false).is_err());
    }

    fn container(limits: &[(&str, &str)], requests: &[(&str, &str)]) -> Container {
        let map = |l: &[(&str, &str)]| {
            l.iter()
                .map(|(k, v)| (k.to_string(), Q(v.to_string())))
                .collect::<BTreeMap<_, _>>()
        };
        Container {
            name: "c".into(),
            resources: Some(k8s_openapi::api::core::v1::ResourceRequirements {
                limits: Some(map(limits)),
                requests: Some(map(requests)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn res(c: &Container, resource: &str, divisor: Option<&str>) -> String {
        let sel = ResourceFieldSelector {
            resource: resource.into(),
            divisor: divisor.map(|d| Q(d.into())),
            container_name: None,
        };
        resource_value(c, &sel, &inputs()).unwrap()
    }

    #[test]
    fn resource_fields_divide_and_round_up() {
        let c = container(&[("cpu", "500m"), ("memory", "64Mi")], &[("cpu", "250m")]);
        assert_eq!(res(&c, "limits.cpu", None), "1");
        assert_eq!(res(&c, "limits.cpu", Some("1m")), "500");
        assert_eq!(res(&c, "requests.cpu", Some("1m")), "250");
        assert_eq!(res(&c, "limits.memory", None), "67108864");
        assert_eq!(res(&c, "limits.memory", Some("1Mi")), "64");
        assert_eq!(res(&c, "requests.memory", None), "0");
        let unlimited = container(&[], &[]);
        assert_eq!(res(&unlimited, "limits.cpu", None), "2");
        assert_eq!(res(&unlimited, "limits.memory", Some("1Gi")), "4");
        let sel = ResourceFieldSelector {
            resource: "limits.gpu".into(),
            ..Default::default()
        };
        assert!(resource_value(&c, &sel, &inputs()).is_err());
    }
}
