//! Printers of core/v1 kinds other than pods: Service, Node, Namespace,
//! ConfigMap, Secret, ServiceAccount, Event, Endpoints, PersistentVolume(Claim),
//! ResourceQuota, LimitRange, ReplicationController.

use super::format::{age_of, int, labels, list, name, or_none, since, text};
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
const EVENT: &[Column] = &[
    col(
        "Last Seen",
        "string",
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    col(
        "Type",
        "string",
        "Type of this event (Normal, Warning), new types could be added in the future.",
    ),
    col(
        "Reason",
        "string",
        "This should be a short, machine understandable string that gives the reason for this event being generated.",
    ),
    col("Object", "string", "The object that this event is about."),
    wide(
        "Subobject",
        "string",
        "The field of the object that this event is about.",
    ),
    wide(
        "Source",
        "string",
        "The component reporting this event. Should be a short machine understandable string.",
    ),
    col(
        "Message",
        "string",
        "A human-readable description of the status of this operation.",
    ),
    wide(
        "First Seen",
        "string",
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
    ),
    wide("Count", "string", "The number of times this event has occurred."),
    wide("Name", "string", super::NAME_DESC),
];
const PV: &[Column] = &[
    NAME,
    col(
        "Capacity",
        "string",
        "capacity is the description of the persistent volume's resources and capacity.",
    ),
    col(
        "Access Modes",
        "string",
        "accessModes contains all ways the volume can be mounted.",
    ),
    col(
        "Reclaim Policy",
        "string",
        "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim.",
    ),
    col(
        "Status",
        "string",
        "phase indicates if a volume is available, bound to a claim, or released by a claim.",
    ),
    col(
        "Claim",
        "string",
        "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim.",
    ),
    col(
        "StorageClass",
        "string",
        "storageClassName is the name of StorageClass to which this persistent volume belongs.",
    ),
    col(
        "VolumeAttributesClass",
        "string",
        "Name of VolumeAttributesClass to which this persistent volume belongs.",
    ),
    col(
        "Reason",
        "string",
        "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.",
    ),
    AGE,
    wide(
        "VolumeMode",
        "string",
        "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state.",
    ),
];
const PVC: &[Column] = &[
    NAME,
    col(
        "Status",
        "string",
        "phase represents the current phase of PersistentVolumeClaim.",
    ),
    col(
        "Volume",
        "string",
        "volumeName is the binding reference to the PersistentVolume backing this claim.",
    ),
    col(
        "Capacity",
        "string",
        "capacity represents the actual resources of the underlying volume.",
    ),
    col(
        "Access Modes",
        "string",
        "accessModes contains the desired access modes the volume should have.",
    ),
    col(
        "StorageClass",
        "string",
        "storageClassName is the name of the StorageClass required by the claim.",
    ),
    col(
        "VolumeAttributesClass",
        "string",
        "volumeAttributesClassName may be used to set the VolumeAttributesClass used by this claim.",
    ),
    AGE,
    wide(
        "VolumeMode",
        "string",
        "volumeMode defines what type of volume is required by the claim.",
    ),
];
const RESOURCE_QUOTA: &[Column] = &[
    NAME,
    AGE,
    col(
        "Request",
        "string",
        "Request represents a minimum amount of cpu/memory that a container may consume.",
    ),
    col(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
    ),
];
const LIMIT_RANGE: &[Column] = &[NAME, col("Created At", "date", super::AGE_DESC)];

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
        json!(or_none(text(obj, "/spec/clusterIP"))),
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

fn event(obj: &Value, now: jiff::Timestamp) -> Row {
    let first = if text(obj, "/firstTimestamp").is_empty() {
        since(obj, "/eventTime", now)
    } else {
        since(obj, "/firstTimestamp", now)
    };
    let mut last = if text(obj, "/lastTimestamp").is_empty() {
        first.clone()
    } else {
        since(obj, "/lastTimestamp", now)
    };
    let mut count = int(obj, "/count");
    if obj.get("series").is_some_and(Value::is_object) {
        last = since(obj, "/series/lastObservedTime", now);
        count = int(obj, "/series/count");
    } else if count == 0 {
        count = 1;
    }
    let kind = text(obj, "/involvedObject/kind").to_ascii_lowercase();
    let target = match text(obj, "/involvedObject/name") {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let component = text(obj, "/source/component");
    let source = if component.is_empty() && !text(obj, "/reportingController").is_empty() {
        join_source(text(obj, "/reportingController"), text(obj, "/reportingInstance"))
    } else {
        join_source(component, text(obj, "/source/host"))
    };
    vec![
        json!(last),
        json!(text(obj, "/type")),
        json!(text(obj, "/reason")),
        json!(target),
        json!(text(obj, "/involvedObject/fieldPath")),
        json!(source),
        json!(text(obj, "/message").trim()),
        json!(first),
        json!(count),
        json!(name(obj)),
    ]
    .into()
}

fn join_source(component: &str, host: &str) -> String {
    if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    }
}

/// Access modes in upstream's short form: RWO, ROX, RWX, RWOP.
fn access_modes(modes: &[Value]) -> String {
    let mut out = Vec::new();
    for (mode, short) in [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ] {
        if modes.iter().any(|m| m.as_str() == Some(mode)) {
            out.push(short);
        }
    }
    out.join(",")
}

fn pv(obj: &Value, now: jiff::Timestamp) -> Row {
    let claim = match text(obj, "/spec/claimRef/name") {
        "" => String::new(),
        n => format!("{}/{n}", text(obj, "/spec/claimRef/namespace")),
    };
    let deleting = obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null());
    let phase = if deleting {
        "Terminating"
    } else {
        text(obj, "/status/phase")
    };
    let vac = text(obj, "/spec/volumeAttributesClassName");
    vec![
        json!(name(obj)),
        json!(text(obj, "/spec/capacity/storage")),
        json!(access_modes(list(obj, "/spec/accessModes"))),
        json!(text(obj, "/spec/persistentVolumeReclaimPolicy")),
        json!(phase),
        json!(claim),
        json!(storage_class(obj)),
        json!(if vac.is_empty() { "<unset>" } else { vac }),
        json!(text(obj, "/status/reason")),
        json!(age_of(obj, now)),
        json!(text(obj, "/spec/volumeMode")),
    ]
    .into()
}

fn storage_class(obj: &Value) -> String {
    let sc = text(obj, "/spec/storageClassName");
    if sc.is_empty() {
        text(
            obj,
            "/metadata/annotations/volume.beta.kubernetes.io~1storage-class",
        )
        .to_string()
    } else {
        sc.to_string()
    }
}

fn pvc(obj: &Value, now: jiff::Timestamp) -> Row {
    let deleting = obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null());
    let phase = if deleting {
        "Terminating"
    } else {
        text(obj, "/status/phase")
    };
    let bound = !text(obj, "/spec/volumeName").is_empty();
    let (capacity, modes) = if bound {
        (
            text(obj, "/status/capacity/storage").to_string(),
            access_modes(list(obj, "/status/accessModes")),
        )
    } else {
        (String::new(), String::new())
    };
    let vac = text(obj, "/status/currentVolumeAttributesClassName");
    vec![
        json!(name(obj)),
        json!(phase),
        json!(text(obj, "/spec/volumeName")),
        json!(capacity),
        json!(modes),
        json!(storage_class(obj)),
        json!(if vac.is_empty() { "<unset>" } else { vac }),
        json!(age_of(obj, now)),
        json!(text(obj, "/spec/volumeMode")),
    ]
    .into()
}

fn resource_quota(obj: &Value, now: jiff::Timestamp) -> Row {
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    let hard = obj
        .pointer("/status/hard")
        .or_else(|| obj.pointer("/spec/hard"))
        .and_then(Value::as_object);
    let mut names: Vec<&String> = hard.into_iter().flat_map(|h| h.keys()).collect();
    names.sort();
    for res in names {
        let hard_q = hard
            .and_then(|h| h.get(res))
            .and_then(Value::as_str)
            .unwrap_or("0");
        let used = obj
            .pointer("/status/used")
            .and_then(|u| u.get(res))
            .and_then(Value::as_str)
            .unwrap_or("0");
        let entry = format!("{res}: {used}/{hard_q}");
        if res.starts_with("limits.") {
            limits.push(entry)
        } else {
            requests.push(entry)
        }
    }
    vec![
        json!(name(obj)),
        json!(age_of(obj, now)),
        json!(requests.join(", ")),
        json!(limits.join(", ")),
    ]
    .into()
}

fn limit_range(obj: &Value, _now: jiff::Timestamp) -> Row {
    let created = text(obj, "/metadata/creationTimestamp")
        .parse::<jiff::Timestamp>()
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    vec![json!(name(obj)), json!(created)].into()
}
