//! [`AgentConfig`]: everything the agent is told at start, filled from
//! `skiff agent` / `skiff server` flags. Paths default under one data dir.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

/// Settings of one node agent.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The Node object's name (default: the host name).
    pub node_name: String,
    /// The agent's own directory (`DATA_DIR/agent`): pod dirs, volumes,
    /// container logs, local-path volumes, `images/` to import at start.
    pub data_dir: PathBuf,
    /// CRI socket of containerd (`--container-runtime-endpoint`).
    pub container_runtime_endpoint: PathBuf,
    /// The node's InternalIP: where the API server reaches the node API and
    /// where NodePorts answer. A single-machine cluster uses 127.0.0.1.
    pub node_ip: IpAddr,
    /// Port of the node API (logs, exec, attach, port-forward), the
    /// kubelet's 10250; reported in `status.daemonEndpoints`.
    pub node_api_port: u16,
    /// Extra labels on the Node (`--node-label key=value`).
    pub node_labels: BTreeMap<String, String>,
    /// Where the agent writes its CNI config (containerd's CNI conf dir).
    pub cni_conf_dir: PathBuf,
    /// Where the CNI plugin binaries are.
    pub cni_bin_dir: PathBuf,
    /// Name of the pod network's Linux bridge (`skiff0`); nodes sharing one
    /// machine each use their own.
    pub cni_bridge: String,
    /// The cluster DNS Service address written into pods' resolv.conf for
    /// `dnsPolicy: ClusterFirst` (None: pods get the host's resolv.conf).
    pub cluster_dns: Option<IpAddr>,
    /// The cluster domain (`cluster.local`).
    pub cluster_domain: String,
    /// Most pods this node accepts (`status.capacity.pods`).
    pub max_pods: u32,
    /// The `ctr` binary used to import image tarballs.
    pub ctr_binary: String,
    /// The cluster's pod network (all nodes' podCIDRs): traffic from it to
    /// anywhere outside it is masqueraded (default 10.42.0.0/16).
    pub cluster_cidr: ipnet::Ipv4Net,
    /// Run the service proxy (nftables `table ip skiff`) on this host
    /// (`--disable-kube-proxy` turns it off).
    pub service_proxy: bool,
    /// Route other nodes' podCIDRs and masquerade pod traffic leaving the
    /// cluster (`--disable-pod-routes` turns it off).
    pub pod_routes: bool,
}

impl AgentConfig {
    /// Defaults for a node named `node_name` keeping its files in `data_dir`.
    pub fn new(node_name: impl Into<String>, data_dir: impl Into<PathBuf>) -> AgentConfig {
        let data_dir = data_dir.into();
        AgentConfig {
            node_name: node_name.into(),
            container_runtime_endpoint: PathBuf::from("/run/containerd/containerd.sock"),
            node_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            node_api_port: 10250,
            node_labels: BTreeMap::new(),
            cni_conf_dir: data_dir.join("cni/net.d"),
            cni_bin_dir: PathBuf::from("/usr/lib/cni"),
            cni_bridge: "skiff0".to_string(),
            cluster_dns: None,
            cluster_domain: "cluster.local".to_string(),
            max_pods: 110,
            ctr_binary: "ctr".to_string(),
            cluster_cidr: ipnet::Ipv4Net::new_assert(Ipv4Addr::new(10, 42, 0, 0), 16),
            service_proxy: true,
            pod_routes: true,
            data_dir,
        }
    }

    /// `DATA_DIR/agent/images`: tarballs imported into containerd at start.
    pub fn images_dir(&self) -> PathBuf {
        self.data_dir.join("images")
    }

    /// `DATA_DIR/agent/pods/<uid>`: one pod's volumes and files.
    pub fn pod_dir(&self, pod_uid: &str) -> PathBuf {
        self.data_dir.join("pods").join(pod_uid)
    }

    /// `DATA_DIR/agent/logs/<ns>_<name>_<uid>`: a pod's container logs
    /// (the sandbox's CRI `log_directory`).
    pub fn pod_log_dir(&self, namespace: &str, name: &str, uid: &str) -> PathBuf {
        self.data_dir
            .join("logs")
            .join(format!("{namespace}_{name}_{uid}"))
    }

    /// `DATA_DIR/agent/storage`: where local-path PersistentVolumes live.
    pub fn storage_dir(&self) -> PathBuf {
        self.data_dir.join("storage")
    }
}
