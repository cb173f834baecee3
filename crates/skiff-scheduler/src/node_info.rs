//! [`NodeInfo`]: a node plus the pods assigned to it (bound or assumed),
//! with their requests, host ports and affinity pods aggregated so that
//! filters and scores are O(1) per node in the common case.
//!
//! Pure data; kept up to date by [`crate::cache`].

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Taint};

use crate::labels::Labels;
use crate::pod_info::{HostPort, PodInfo};
use crate::resources::Resource;

/// One node's scheduling view.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// The node object.
    pub node: Arc<Node>,
    /// Node name.
    pub name: String,
    /// Node labels.
    pub labels: Labels,
    /// Taints.
    pub taints: Vec<Taint>,
    /// `spec.unschedulable`.
    pub unschedulable: bool,
    /// `status.allocatable`.
    pub allocatable: Resource,
    /// Sum of the requests of the pods on the node.
    pub requested: Resource,
    /// Same with scoring defaults for unset cpu/memory.
    pub non_zero_requested: Resource,
    /// Pods on the node.
    pub pods: Vec<Arc<PodInfo>>,
    /// Host ports in use.
    pub used_ports: Vec<HostPort>,
    /// How many pods on the node have (anti-)affinity terms.
    pub pods_with_affinity: usize,
}

impl NodeInfo {
    /// A node with no pods.
    pub fn new(node: Arc<Node>) -> Self {
        let mut info = NodeInfo {
            node: node.clone(),
            name: String::new(),
            labels: Labels::new(),
            taints: Vec::new(),
            unschedulable: false,
            allocatable: Resource::default(),
            requested: Resource::default(),
            non_zero_requested: Resource::default(),
            pods: Vec::new(),
            used_ports: Vec::new(),
            pods_with_affinity: 0,
        };
        info.set_node(node);
        info
    }

    /// Replaces the node object, keeping the pods.
    pub fn set_node(&mut self, node: Arc<Node>) {
        self.name = node.metadata.name.clone().unwrap_or_default();
        self.labels = node.metadata.labels.clone().unwrap_or_default();
        let spec = node.spec.as_ref();
        self.taints = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        self.allocatable = node
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .map(Resource::from_list)
            .unwrap_or_default();
        self.node = node;
    }

    /// Adds a pod's requests, ports and affinity to the node.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.milli_cpu += pod.non_zero_requests.milli_cpu;
        self.non_zero_requested.memory += pod.non_zero_requests.memory;
        self.used_ports.extend(pod.host_ports.iter().cloned());
        if pod.has_affinity() {
            self.pods_with_affinity += 1;
        }
        self.pods.push(pod);
    }

    /// Removes the pod with this uid; returns it if it was there.
    pub fn remove_pod(&mut self, uid: &str) -> Option<Arc<PodInfo>> {
        let idx = self.pods.iter().position(|p| p.uid == uid)?;
        let pod = self.pods.swap_remove(idx);
        self.requested.sub(&pod.requests);
        self.non_zero_requested.milli_cpu -= pod.non_zero_requests.milli_cpu;
        self.non_zero_requested.memory -= pod.non_zero_requests.memory;
        for hp in &pod.host_ports {
            if let Some(i) = self.used_ports.iter().position(|u| u == hp) {
                self.used_ports.swap_remove(i);
            }
        }
        if pod.has_affinity() {
            self.pods_with_affinity -= 1;
        }
        Some(pod)
    }
}
