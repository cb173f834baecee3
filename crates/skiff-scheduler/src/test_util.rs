//! Builders for pods and nodes shared by the unit tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerPort, Node, NodeSpec, NodeStatus, Pod, PodSpec, ResourceRequirements,
    Taint, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::cache::Cache;
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

/// A container requesting `cpu` and `memory` ("0" leaves it unset).
pub fn container(cpu: &str, memory: &str) -> Container {
    let mut req = BTreeMap::new();
    if cpu != "0" {
        req.insert("cpu".to_string(), Quantity(cpu.into()));
    }
    if memory != "0" {
        req.insert("memory".to_string(), Quantity(memory.into()));
    }
    Container {
        name: "c".into(),
        image: Some("busybox".into()),
        resources: Some(ResourceRequirements {
            requests: Some(req),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Builds a pod.
pub struct PodBuilder(Pod);

/// A pod in "default" with one container that requests nothing.
pub fn pod(name: &str) -> PodBuilder {
    PodBuilder(Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![container("0", "0")],
            ..Default::default()
        }),
        status: None,
    })
}

impl PodBuilder {
    fn spec(&mut self) -> &mut PodSpec {
        self.0.spec.get_or_insert_with(Default::default)
    }

    /// Replaces the containers.
    pub fn containers(mut self, c: Vec<Container>) -> Self {
        self.spec().containers = c;
        self
    }

    /// Sets init containers.
    pub fn init_containers(mut self, c: Vec<Container>) -> Self {
        self.spec().init_containers = Some(c);
        self
    }

    /// Sets the namespace.
    pub fn namespace(mut self, ns: &str) -> Self {
        self.0.metadata.namespace = Some(ns.into());
        self
    }

    /// Adds a label.
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.0
            .metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(k.into(), v.into());
        self
    }

    /// Adds a nodeSelector entry.
    pub fn node_selector(mut self, k: &str, v: &str) -> Self {
        self.spec()
            .node_selector
            .get_or_insert_with(Default::default)
            .insert(k.into(), v.into());
        self
    }

    /// Sets the affinity.
    pub fn affinity(mut self, a: Affinity) -> Self {
        self.spec().affinity = Some(a);
        self
    }

    /// Adds a toleration.
    pub fn toleration(mut self, key: &str, op: &str, value: &str, effect: &str) -> Self {
        self.spec()
            .tolerations
            .get_or_insert_with(Default::default)
            .push(Toleration {
                key: (!key.is_empty()).then(|| key.into()),
                operator: Some(op.into()),
                value: (!value.is_empty()).then(|| value.into()),
                effect: (!effect.is_empty()).then(|| effect.into()),
                toleration_seconds: None,
            });
        self
    }

    /// Sets spec.priority.
    pub fn priority(mut self, p: i32) -> Self {
        self.spec().priority = Some(p);
        self
    }

    /// Adds a topology spread constraint.
    pub fn spread(mut self, c: TopologySpreadConstraint) -> Self {
        self.spec()
            .topology_spread_constraints
            .get_or_insert_with(Default::default)
            .push(c);
        self
    }

    /// Adds a host port to the first container.
    pub fn host_port(mut self, port: i32) -> Self {
        self.spec().containers[0]
            .ports
            .get_or_insert_with(Default::default)
            .push(ContainerPort {
                container_port: port,
                host_port: Some(port),
                ..Default::default()
            });
        self
    }

    /// Sets spec.nodeName.
    pub fn node_name(mut self, n: &str) -> Self {
        self.spec().node_name = Some(n.into());
        self
    }

    /// The pod.
    pub fn build(self) -> Pod {
        self.0
    }

    /// The pod's [`PodInfo`] (priority from spec.priority).
    pub fn info(self) -> PodInfo {
        let prio = self.0.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
        PodInfo::new(Arc::new(self.0), prio)
    }
}

/// Builds a node.
pub struct NodeBuilder(Node);

/// A node with 4 cpu, 8Gi memory, 110 pods and a hostname label.
pub fn node(name: &str) -> NodeBuilder {
    let alloc: BTreeMap<String, Quantity> = [("cpu", "4"), ("memory", "8Gi"), ("pods", "110")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Quantity(v.into())))
        .collect();
    NodeBuilder(Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                [("kubernetes.io/hostname".to_string(), name.to_string())]
                    .into_iter()
                    .collect(),
            ),
            ..Default::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            allocatable: Some(alloc),
            ..Default::default()
        }),
    })
}

impl NodeBuilder {
    fn alloc(&mut self, k: &str, v: &str) {
        if let Some(a) = self.0.status.as_mut().and_then(|s| s.allocatable.as_mut()) {
            a.insert(k.into(), Quantity(v.into()));
        }
    }

    /// Sets allocatable cpu.
    pub fn cpu(mut self, v: &str) -> Self {
        self.alloc("cpu", v);
        self
    }

    /// Sets allocatable memory.
    pub fn memory(mut self, v: &str) -> Self {
        self.alloc("memory", v);
        self
    }

    /// Sets allocatable pods.
    pub fn pods(mut self, v: &str) -> Self {
        self.alloc("pods", v);
        self
    }

    /// Sets an allocatable extended resource.
    pub fn extended(mut self, k: &str, v: &str) -> Self {
        self.alloc(k, v);
        self
    }

    /// Adds a label.
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.0
            .metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(k.into(), v.into());
        self
    }

    /// Adds a taint.
    pub fn taint(mut self, key: &str, value: &str, effect: &str) -> Self {
        if let Some(s) = self.0.spec.as_mut() {
            s.taints.get_or_insert_with(Default::default).push(Taint {
                key: key.into(),
                value: (!value.is_empty()).then(|| value.into()),
                effect: effect.into(),
                time_added: None,
            });
        }
        self
    }

    /// Marks the node unschedulable (cordoned).
    pub fn unschedulable(mut self) -> Self {
        if let Some(s) = self.0.spec.as_mut() {
            s.unschedulable = Some(true);
        }
        self
    }

    /// The node.
    pub fn build(self) -> Node {
        self.0
    }

    /// The node's [`NodeInfo`] with no pods.
    pub fn info(self) -> NodeInfo {
        NodeInfo::new(Arc::new(self.0))
    }
}

/// A cache with these nodes and these pods bound to the named nodes.
pub fn cache_with(nodes: Vec<Node>, pods: Vec<(&str, PodInfo)>) -> Cache {
    let mut c = Cache::new();
    for n in nodes {
        c.apply_node(Arc::new(n));
    }
    for (node, p) in pods {
        c.apply_bound_pod(Arc::new(p), node);
    }
    c
}
