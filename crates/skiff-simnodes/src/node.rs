//! The objects a simulated kubelet publishes about its node: the Node with
//! capacity, addresses, nodeInfo and Ready conditions, its heartbeat Lease,
//! and pod IP allocation from the node's podCIDR.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};

use crate::config::SimConfig;

/// Namespace of node heartbeat Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// The kubelet version simulated nodes report.
pub const KUBELET_VERSION: &str = "v1.33.0-skiff-sim";
/// Lease duration the kubelet uses (seconds).
pub const LEASE_DURATION_SECONDS: i32 = 40;

/// The fake InternalIP of node `index`: 127.x.y.z, unique for 16M nodes.
pub fn internal_ip(index: usize) -> Ipv4Addr {
    let n = (index as u32 % 0x00ff_ffff) + 1;
    Ipv4Addr::new(127, (n >> 16) as u8, (n >> 8) as u8, n as u8)
}

/// The private /24 a node uses for pods when it has no `spec.podCIDR`:
/// inside 100.64.0.0/10 (carrier-grade NAT space), so it cannot clash with
/// the default cluster CIDR 10.42.0.0/16.
pub fn fallback_cidr_base(index: usize) -> Ipv4Addr {
    let n = index as u32 % (1 << 14);
    Ipv4Addr::new(100, 64 + (n >> 8) as u8, n as u8, 0)
}

/// Parses the network address of an IPv4 `a.b.c.d/len` CIDR.
pub fn cidr_base(cidr: &str) -> Option<Ipv4Addr> {
    let (addr, len) = cidr.split_once('/')?;
    let len: u32 = len.parse().ok()?;
    let ip: Ipv4Addr = addr.parse().ok()?;
    if len > 30 {
        return None;
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some(Ipv4Addr::from(u32::from(ip) & mask))
}

/// The `slot`-th pod IP in a /24 starting at `base`: .2 to .254, wrapping.
pub fn pod_ip(base: Ipv4Addr, slot: u64) -> Ipv4Addr {
    let host = 2 + (slot % 253) as u32;
    Ipv4Addr::from(u32::from(base) + host)
}

fn now_time() -> Time {
    Time(jiff::Timestamp::now())
}

/// The conditions of a healthy node, heartbeats stamped now.
pub fn healthy_conditions() -> Vec<NodeCondition> {
    let now = now_time();
    let cond = |type_: &str, status: &str, reason: &str, message: &str| NodeCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    };
    vec![
        cond(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        cond(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        cond(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]
}

/// The status a simulated node reports.
pub fn node_status(cfg: &SimConfig, index: usize) -> NodeStatus {
    let mut capacity = BTreeMap::new();
    capacity.insert("cpu".to_string(), Quantity(cfg.cpu.clone()));
    capacity.insert("memory".to_string(), Quantity(cfg.memory.clone()));
    capacity.insert("pods".to_string(), Quantity(cfg.pods.to_string()));
    capacity.insert("ephemeral-storage".to_string(), Quantity("100Gi".into()));
    let name = cfg.node_name(index);
    NodeStatus {
        allocatable: Some(capacity.clone()),
        capacity: Some(capacity),
        conditions: Some(healthy_conditions()),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: internal_ip(index).to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: name,
            },
        ]),
        node_info: Some(NodeSystemInfo {
            architecture: "amd64".into(),
            boot_id: format!("sim-boot-{index}"),
            container_runtime_version: "containerd://1.7.0-sim".into(),
            kernel_version: "6.1.0-sim".into(),
            kube_proxy_version: KUBELET_VERSION.into(),
            kubelet_version: KUBELET_VERSION.into(),
            machine_id: format!("sim-machine-{index}"),
            operating_system: "linux".into(),
            os_image: "skiff simulated node".into(),
            system_uuid: format!("sim-uuid-{index}"),
            swap: None,
        }),
        ..NodeStatus::default()
    }
}

/// The Node object registered for node `index`.
pub fn node_object(cfg: &SimConfig, index: usize) -> Node {
    let name = cfg.node_name(index);
    let mut labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), name.clone()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), "amd64".to_string()),
        ("type".to_string(), "simulated".to_string()),
    ]);
    labels.extend(cfg.labels.clone());
    Node {
        metadata: ObjectMeta {
            name: Some(name),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            taints: (!cfg.taints.is_empty()).then(|| cfg.taints.clone()),
            ..NodeSpec::default()
        }),
        status: Some(node_status(cfg, index)),
    }
}

/// The heartbeat Lease of `node` (owned by the Node, as the kubelet does).
pub fn lease_object(node: &str, node_uid: Option<&str>) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(node.to_string()),
            namespace: Some(LEASE_NAMESPACE.to_string()),
            owner_references: node_uid.map(|uid| {
                vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "Node".into(),
                    name: node.to_string(),
                    uid: uid.to_string(),
                    ..OwnerReference::default()
                }]
            }),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(node.to_string()),
            lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
            renew_time: Some(MicroTime(jiff::Timestamp::now())),
            ..LeaseSpec::default()
        }),
    }
}

/// Whether a node object says Ready=True.
pub fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn internal_ips_are_loopback_and_unique() {
        assert_eq!(internal_ip(0), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(internal_ip(255), Ipv4Addr::new(127, 0, 1, 0));
        assert_ne!(internal_ip(1000), internal_ip(1001));
        assert!(internal_ip(4999).is_loopback());
    }

    #[test]
    fn pod_ips_come_from_the_pod_cidr() {
        let base = cidr_base("10.42.7.0/24").unwrap();
        assert_eq!(pod_ip(base, 0), Ipv4Addr::new(10, 42, 7, 2));
        assert_eq!(pod_ip(base, 252), Ipv4Addr::new(10, 42, 7, 254));
        assert_eq!(pod_ip(base, 253), Ipv4Addr::new(10, 42, 7, 2));
        assert_eq!(cidr_base("10.42.7.9/24"), Some(Ipv4Addr::new(10, 42, 7, 0)));
        assert_eq!(cidr_base("fd00::/64"), None);
        assert_eq!(fallback_cidr_base(300), Ipv4Addr::new(100, 65, 44, 0));
    }

    #[test]
    fn registered_node_carries_capacity_labels_taints_and_ready() {
        let cfg = SimConfig {
            labels: [("zone".to_string(), "a".to_string())].into(),
            taints: vec![crate::config::parse_taint("gpu=1:NoSchedule").unwrap()],
            ..SimConfig::default()
        };
        let node = node_object(&cfg, 3);
        assert_eq!(node.metadata.name.as_deref(), Some("sim-3"));
        let labels = node.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["zone"], "a");
        assert_eq!(labels["kubernetes.io/hostname"], "sim-3");
        assert_eq!(node.spec.as_ref().unwrap().taints.as_ref().unwrap()[0].key, "gpu");
        let status = node.status.as_ref().unwrap();
        assert_eq!(status.capacity.as_ref().unwrap()["memory"].0, "32Gi");
        assert_eq!(status.allocatable.as_ref().unwrap()["pods"].0, "110");
        assert!(is_ready(&node));
        assert_eq!(
            status.node_info.as_ref().unwrap().kubelet_version,
            KUBELET_VERSION
        );
    }
}
