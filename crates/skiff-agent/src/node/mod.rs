//! The agent's Node: registration (create, or take over an existing object),
//! the status it reports (capacity, addresses, nodeInfo, conditions, the
//! node API port), its heartbeat Lease in `kube-node-lease`, and waiting for
//! the podCIDR the IPAM controller assigns. Does not touch pods.

pub mod facts;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::config::AgentConfig;
pub use facts::MachineFacts;

/// Namespace of node heartbeat Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// The version the agent reports as `nodeInfo.kubeletVersion`.
pub const KUBELET_VERSION: &str = "v1.33.0-skiff";
/// `spec.leaseDurationSeconds` of the heartbeat Lease (the kubelet's 40 s).
const LEASE_DURATION_SECONDS: i32 = 40;
/// How often the Lease is renewed.
pub const LEASE_RENEW: Duration = Duration::from_secs(1);
/// How often the status is recomputed (posted only when it changed).
const STATUS_CHECK: Duration = Duration::from_secs(10);
/// Longest time between two status posts.
const STATUS_REPORT: Duration = Duration::from_secs(60);

/// Errors registering or reporting the Node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// An API call about the Node or its Lease failed.
    #[error("node {node}: {source}")]
    Api {
        /// The node's name.
        node: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// What the node reports besides machine facts.
#[derive(Debug, Clone)]
pub struct NodeReport {
    /// Facts read from the machine.
    pub facts: MachineFacts,
    /// `containerd://1.6.x`, from CRI Version.
    pub runtime_version: String,
    /// When the agent started reporting: the conditions' lastTransitionTime.
    pub since: Time,
}

/// The labels the kubelet puts on its Node, plus `--node-label`s.
pub fn node_labels(cfg: &AgentConfig, facts: &MachineFacts) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), cfg.node_name.clone()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), facts.arch.clone()),
        ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
        ("beta.kubernetes.io/arch".to_string(), facts.arch.clone()),
    ]);
    labels.extend(cfg.node_labels.clone());
    labels
}

fn condition(type_: &str, status: &str, reason: &str, message: &str, times: &(Time, Time)) -> NodeCondition {
    NodeCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(times.0.clone()),
        last_transition_time: Some(times.1.clone()),
    }
}

/// The status the node posts: capacity, addresses, nodeInfo, healthy conditions.
pub fn node_status(cfg: &AgentConfig, report: &NodeReport) -> NodeStatus {
    let f = &report.facts;
    let capacity = BTreeMap::from([
        ("cpu".to_string(), Quantity(f.cpus.to_string())),
        (
            "memory".to_string(),
            Quantity(format!("{}Ki", f.memory_bytes / 1024)),
        ),
        (
            "ephemeral-storage".to_string(),
            Quantity(format!("{}Ki", f.disk_bytes / 1024)),
        ),
        ("pods".to_string(), Quantity(cfg.max_pods.to_string())),
    ]);
    let now = (Time(jiff::Timestamp::now()), report.since.clone());
    NodeStatus {
        allocatable: Some(capacity.clone()),
        capacity: Some(capacity),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: cfg.node_ip.to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: cfg.node_name.clone(),
            },
        ]),
        conditions: Some(vec![
            condition(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
                &now,
            ),
            condition(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
                &now,
            ),
            condition(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
                &now,
            ),
            condition(
                "Ready",
                "True",
                "KubeletReady",
                "kubelet is posting ready status",
                &now,
            ),
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(cfg.node_api_port),
            }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: f.arch.clone(),
            boot_id: f.boot_id.clone(),
            container_runtime_version: report.runtime_version.clone(),
            kernel_version: f.kernel_version.clone(),
            kube_proxy_version: KUBELET_VERSION.into(),
            kubelet_version: KUBELET_VERSION.into(),
            machine_id: f.machine_id.clone(),
            operating_system: "linux".into(),
            os_image: f.os_image.clone(),
            system_uuid: f.system_uuid.clone(),
            swap: None,
        }),
        ..NodeStatus::default()
    }
}

/// The status without heartbeat times, to tell whether anything changed.
fn comparable(status: &NodeStatus) -> serde_json::Value {
    let mut s = status.clone();
    for c in s.conditions.iter_mut().flatten() {
        c.last_heartbeat_time = None;
        c.last_transition_time = None;
    }
    serde_json::to_value(s).unwrap_or_default()
}

/// Creates the Node or takes over an existing one (labels merged), posts its
/// status and returns its UID.
pub async fn register(
    client: &kube::Client,
    cfg: &AgentConfig,
    report: &NodeReport,
) -> Result<String, NodeError> {
    let api: Api<Node> = Api::all(client.clone());
    let err = |source| NodeError::Api {
        node: cfg.node_name.clone(),
        source,
    };
    let labels = node_labels(cfg, &report.facts);
    let node = Node {
        metadata: ObjectMeta {
            name: Some(cfg.node_name.clone()),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        ..Node::default()
    };
    let created = match api.create(&PostParams::default(), &node).await {
        Ok(n) => n,
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let patch = json!({"metadata": {"labels": labels}});
            api.patch(&cfg.node_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(err)?
        }
        Err(e) => return Err(err(e)),
    };
    post_status(&api, cfg, &node_status(cfg, report)).await?;
    Ok(created.metadata.uid.unwrap_or_default())
}

async fn post_status(api: &Api<Node>, cfg: &AgentConfig, status: &NodeStatus) -> Result<(), NodeError> {
    api.patch_status(
        &cfg.node_name,
        &PatchParams::default(),
        &Patch::Merge(&json!({ "status": status })),
    )
    .await
    .map_err(|source| NodeError::Api {
        node: cfg.node_name.clone(),
        source,
    })?;
    Ok(())
}

/// Posts the node status when it changes and at least every minute; never returns.
pub async fn status_loop(client: kube::Client, cfg: AgentConfig, mut report: NodeReport) {
    let api: Api<Node> = Api::all(client);
    let mut last = comparable(&node_status(&cfg, &report));
    let mut posted = Instant::now();
    loop {
        tokio::time::sleep(STATUS_CHECK).await;
        report.facts = MachineFacts::read(&cfg.data_dir);
        let status = node_status(&cfg, &report);
        let now = comparable(&status);
        if now != last || posted.elapsed() >= STATUS_REPORT {
            match post_status(&api, &cfg, &status).await {
                Ok(()) => {
                    last = now;
                    posted = Instant::now();
                }
                Err(e) => tracing::warn!(error = %e, "posting node status"),
            }
        }
    }
}

/// The heartbeat Lease of `node`, owned by the Node as the kubelet's is.
pub fn lease_object(node: &str, node_uid: &str) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(node.to_string()),
            namespace: Some(LEASE_NAMESPACE.to_string()),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Node".into(),
                name: node.to_string(),
                uid: node_uid.to_string(),
                ..OwnerReference::default()
            }]),
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

/// Renews the node's Lease every [`LEASE_RENEW`], creating it when missing; never returns.
pub async fn lease_loop(client: kube::Client, node: String, node_uid: String) {
    let api: Api<Lease> = Api::namespaced(client, LEASE_NAMESPACE);
    let mut ticker = tokio::time::interval(LEASE_RENEW);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let now = serde_json::to_value(MicroTime(jiff::Timestamp::now())).unwrap_or_default();
        let patch = json!({"spec": {"renewTime": now, "holderIdentity": node}});
        match api
            .patch(&node, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {
                if let Err(e) = api
                    .create(&PostParams::default(), &lease_object(&node, &node_uid))
                    .await
                {
                    tracing::warn!(error = %e, "creating node lease");
                }
            }
            Err(e) => tracing::warn!(error = %e, "renewing node lease"),
        }
    }
}

/// Waits until the Node has `spec.podCIDR` and returns it.
pub async fn wait_pod_cidr(client: &kube::Client, node: &str) -> String {
    let api: Api<Node> = Api::all(client.clone());
    let mut logged = false;
    loop {
        match api.get(node).await {
            Ok(n) => {
                if let Some(cidr) = n.spec.and_then(|s| s.pod_cidr).filter(|c| !c.is_empty()) {
                    return cidr;
                }
                if !logged {
                    tracing::info!(node, "waiting for the node's podCIDR");
                    logged = true;
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading the node for its podCIDR"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_reports_capacity_addresses_and_node_api_port() {
        let mut cfg = AgentConfig::new("n1", "/tmp/x");
        cfg.node_api_port = 10260;
        cfg.max_pods = 50;
        let report = NodeReport {
            facts: MachineFacts::read(std::path::Path::new("/tmp")),
            runtime_version: "containerd://1.6.20".into(),
            since: Time(jiff::Timestamp::now()),
        };
        let s = node_status(&cfg, &report);
        let cap = s.capacity.clone().unwrap_or_default();
        assert_eq!(cap["pods"].0, "50");
        assert!(cap["memory"].0.ends_with("Ki"));
        assert_eq!(
            s.daemon_endpoints
                .and_then(|d| d.kubelet_endpoint)
                .map(|e| e.port),
            Some(10260)
        );
        let addrs = s.addresses.unwrap_or_default();
        assert_eq!(addrs[0].address, "127.0.0.1");
        assert_eq!(addrs[1].address, "n1");
        let info = s.node_info.unwrap_or_default();
        assert_eq!(info.container_runtime_version, "containerd://1.6.20");
        let ready = s.conditions.unwrap_or_default();
        assert!(ready.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        assert_eq!(node_labels(&cfg, &report.facts)["kubernetes.io/hostname"], "n1");
    }
}
