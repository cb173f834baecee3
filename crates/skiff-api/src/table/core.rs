//! Printers of core/v1 kinds other than pods: Service, Node, Namespace,
//! ConfigMap, Secret, ServiceAccount, Endpoints; dispatches Events and the
//! volume/quota kinds to their own modules.

use super::events::{EVENT, event};
use super::format::{age_of, int, labels, list, name, or_none, text};
use super::volumes::{LIMIT_RANGE, PV, PVC, RESOURCE_QUOTA, limit_range, pv, pvc, resource_quota};
use super::{AGE, Column, NAME, Printer, Row, col, wide};
use serde_json::{Value, json};

const SERVICE: &[Column] = &[
    NAME,
    col("Type", "string", "type determines how the Service is exposed."),
    col(
        "Cluster-IP",
        "string",
        "clusterIP is the IP address of the service and is usually assigned randomly.",
    ),
    col(
        "External-IP",
        "string",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
    ),
    col(
        "Port(s)",
        "string",
        "The list of ports that are exposed by this service.",
    ),
    AGE,
    wide(
        "Selector",
        "string",
        "Route service traffic to pods with label keys and values matching this selector.",
    ),
];

const NODE: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    AGE,
    col("Version", "string", "Kubelet Version reported by the node."),
    wide(
        "Internal-IP",
        "string",
        "List of addresses reachable to the node. Queried from cloud provider, if available.",
    ),
    wide(
        "External-IP",
        "string",
        "List of addresses reachable to the node. Queried from cloud provider, if available.",
    ),
    wide(
        "OS-Image",
        "string",
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
    ),
    wide(
        "Kernel-Version",
        "string",
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
    ),
    wide(
        "Container-Runtime",
        "string",
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
    ),
];

const NAMESPACE: &[Column] = &[NAME, col("Status", "string", "The status of the namespace"), AGE];
const CONFIG_MAP: &[Column] = &[
    NAME,
    col("Data", "string", "Data contains the configuration data."),
    AGE,
];
const SECRET: &[Column] = &[
    NAME,
    col(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data.",
    ),
    col("Data", "string", "Data contains the secret data."),
    AGE,
];
const SERVICE_ACCOUNT: &[Column] = &[
    NAME,
    col(
        "Secrets",
        "string",
        "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
    ),
    AGE,
];
const ENDPOINTS: &[Column] = &[NAME, col("Endpoints", "string", "Endpoints of the service"), AGE];

pub(super) fn printer(kind: &str) -> Option<Printer> {
    Some(match kind {
        "Service" => Printer {
            columns: SERVICE,
            row: service,
        },
        "Node" => Printer {
            columns: NODE,
            row: node,
        },
        "Namespace" => Printer {
            columns: NAMESPACE,
            row: namespace,
        },
        "ConfigMap" => Printer {
            columns: CONFIG_MAP,
            row: config_map,
        },
        "Secret" => Printer {
            columns: SECRET,
            row: secret,
        },
        "ServiceAccount" => Printer {
            columns: SERVICE_ACCOUNT,
            row: service_account,
        },
        "Endpoints" => Printer {
            columns: ENDPOINTS,
            row: endpoints,
        },
        "Event" => Printer {
            columns: EVENT,
            row: event,
        },
        "PersistentVolume" => Printer { columns: PV, row: pv },
        "PersistentVolumeClaim" => Printer {
            columns: PVC,
            row: pvc,
        },
        "ResourceQuota" => Printer {
            columns: RESOURCE_QUOTA,
            row: resource_quota,
        },
        "LimitRange" => Printer {
            columns: LIMIT_RANGE,
            row: limit_range,
        },
        "ReplicationController" => super::apps::replication_controller_printer(),
        _ => return None,
    })
}

fn count(obj: &Value, key: &str) -> usize {
    obj.get(key).and_then(Value::as_object).map_or(0, |m| m.len())
}

fn service(obj: &Value, now: jiff::Timestamp) -> Row {
    let ty = text(obj, "/spec/type");
    let external_ips: Vec<&str> = list(obj, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external = match ty {
        "ClusterIP" | "NodePort" | "" => or_none(external_ips.join(",")),
        "LoadBalancer" => {
            let mut ips: Vec<&str> = list(obj, "/status/loadBalancer/ingress")
                .iter()
                .map(|i| {
                    if text(i, "/ip").is_empty() {
                        text(i, "/hostname")
                    } else {
                        text(i, "/ip")
                    }
                })
                .filter(|s| !s.is_empty())
                .collect();
            ips.sort_unstable();
            ips.dedup();
            ips.extend(external_ips);
            if ips.is_empty() {
                "<pending>".to_string()
            } else {
                ips.join(",")
            }
        }
        "ExternalName" => text(obj, "/spec/externalName").to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = list(obj, "/spec/ports")
        .iter()
        .map(|p| {
            let proto = text(p, "/protocol");
            match int(p, "/nodePort") {
                0 => format!("{}/{proto}", int(p, "/port")),
                np => format!("{}:{np}/{proto}", int(p, "/port")),
            }
        })
        .collect();
    vec![
        json!(name(obj)),
        json!(ty),
        json!(cluster_ip(obj)),
        json!(external),
        json!(or_none(ports.join(","))),
        json!(age_of(obj, now)),
        json!(labels(obj.pointer("/spec/selector"))),
    ]
    .into()
}

fn node(obj: &Value, now: jiff::Timestamp) -> Row {
    let mut status: Vec<String> = list(obj, "/status/conditions")
        .iter()
        .filter(|c| text(c, "/type") == "Ready")
        .take(1)
        .map(|c| {
            if text(c, "/status") == "True" {
                "Ready".to_string()
            } else {
                "NotReady".to_string()
            }
        })
        .collect();
    if status.is_empty() {
        status.push("Unknown".to_string());
    }
    if obj.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled".to_string());
    }
    let mut roles: Vec<String> = Vec::new();
    for (k, v) in obj
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let Some(role) = k
            .strip_prefix("node-role.kubernetes.io/")
            .filter(|r| !r.is_empty())
        {
            roles.push(role.to_string());
        } else if k == "kubernetes.io/role"
            && let Some(v) = v.as_str().filter(|v| !v.is_empty())
        {
            roles.push(v.to_string());
        }
    }
    roles.sort();
    roles.dedup();
    let address = |ty: &str| {
        list(obj, "/status/addresses")
            .iter()
            .find(|a| text(a, "/type") == ty)
            .map_or("<none>", |a| text(a, "/address"))
    };
    let info = |field: &str| {
        let v = text(obj, &format!("/status/nodeInfo/{field}"));
        if v.is_empty() {
            "<unknown>".to_string()
        } else {
            v.to_string()
        }
    };
    vec![
        json!(name(obj)),
        json!(status.join(",")),
        json!(or_none(roles.join(","))),
        json!(age_of(obj, now)),
        json!(text(obj, "/status/nodeInfo/kubeletVersion")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
    .into()
}

fn namespace(obj: &Value, now: jiff::Timestamp) -> Row {
    vec![
        json!(name(obj)),
        json!(text(obj, "/status/phase")),
        json!(age_of(obj, now)),
    ]
    .into()
}

fn config_map(obj: &Value, now: jiff::Timestamp) -> Row {
    let n = count(obj, "data") + count(obj, "binaryData");
    vec![json!(name(obj)), json!(n), json!(age_of(obj, now))].into()
}

fn secret(obj: &Value, now: jiff::Timestamp) -> Row {
    vec![
        json!(name(obj)),
        json!(text(obj, "/type")),
        json!(count(obj, "data")),
        json!(age_of(obj, now)),
    ]
    .into()
}

fn service_account(obj: &Value, now: jiff::Timestamp) -> Row {
    vec![
        json!(name(obj)),
        json!(list(obj, "/secrets").len()),
        json!(age_of(obj, now)),
    ]
    .into()
}

/// Upstream's `formatEndpoints`: up to three `ip:port`, then ` + N more...`.
fn endpoints(obj: &Value, now: jiff::Timestamp) -> Row {
    let subsets = list(obj, "/subsets");
    let cell = if subsets.is_empty() {
        "<none>".to_string()
    } else {
        let mut shown = Vec::new();
        let mut total = 0;
        for ss in subsets {
            let addresses: Vec<&str> = list(ss, "/addresses").iter().map(|a| text(a, "/ip")).collect();
            let ports = list(ss, "/ports");
            if ports.is_empty() {
                total += addresses.len();
                shown.extend(addresses.iter().map(|a| a.to_string()));
            } else {
                for p in ports {
                    total += addresses.len();
                    for a in &addresses {
                        let host = if a.contains(':') {
                            format!("[{a}]")
                        } else {
                            a.to_string()
                        };
                        shown.push(format!("{host}:{}", int(p, "/port")));
                    }
                }
            }
        }
        if total > 3 {
            shown.truncate(3);
            format!("{} + {} more...", shown.join(","), total - 3)
        } else {
            shown.join(",")
        }
    };
    vec![json!(name(obj)), json!(cell), json!(age_of(obj, now))].into()
}

/// The first of `spec.clusterIPs` (or `spec.clusterIP`), `<none>` without one.
fn cluster_ip(obj: &Value) -> String {
    let first = list(obj, "/spec/clusterIPs")
        .first()
        .and_then(Value::as_str)
        .unwrap_or_default();
    or_none(if first.is_empty() {
        text(obj, "/spec/clusterIP")
    } else {
        first
    })
}
