//! The scheduler's cluster snapshot: every node's [`NodeInfo`] with the pods
//! bound to it (from the pod informer) and the pods this scheduler has
//! assumed onto it but not yet seen bound (assume on Reserve, forget on a
//! failed bind, confirmed when the informer reports the binding).
//!
//! Updated incrementally, one event at a time; the scheduling loop owns it,
//! so a scheduling cycle reads it without copies or locks.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;

use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

#[derive(Debug, Clone)]
struct PodState {
    node: String,
    assumed: bool,
}

/// Nodes, their pods, and assumed pods.
#[derive(Debug, Default)]
pub struct Cache {
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    pods: HashMap<String, PodState>,
    /// Pods bound to nodes the cache has not seen (yet).
    orphans: HashMap<String, Vec<Arc<PodInfo>>>,
}

/// What a node update changed, as far as scheduling is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeChange {
    /// A node the cache did not know.
    Added,
    /// Labels, taints, allocatable or unschedulable changed.
    Updated,
    /// Only fields scheduling ignores (heartbeats, conditions) changed.
    Irrelevant,
}

impl Cache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// All nodes, in a stable order.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// One node by name.
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|i| &self.nodes[*i])
    }

    /// Number of pods the cache accounts for (bound and assumed).
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// Adds or updates a node.
    pub fn apply_node(&mut self, node: Arc<Node>) -> NodeChange {
        let name = node.metadata.name.clone().unwrap_or_default();
        if let Some(&i) = self.index.get(&name) {
            let info = &mut self.nodes[i];
            let before = (
                info.labels.clone(),
                info.taints.clone(),
                info.allocatable.clone(),
                info.unschedulable,
            );
            info.set_node(node);
            let after = (&info.labels, &info.taints, &info.allocatable, info.unschedulable);
            if (&before.0, &before.1, &before.2, before.3) == after {
                NodeChange::Irrelevant
            } else {
                NodeChange::Updated
            }
        } else {
            let mut info = NodeInfo::new(node);
            for pod in self.orphans.remove(&name).unwrap_or_default() {
                info.add_pod(pod);
            }
            self.index.insert(name, self.nodes.len());
            self.nodes.push(info);
            NodeChange::Added
        }
    }

    /// Removes a node; its pods stay accounted as orphans until deleted.
    pub fn remove_node(&mut self, name: &str) {
        let Some(i) = self.index.remove(name) else {
            return;
        };
        let info = self.nodes.swap_remove(i);
        if let Some(moved) = self.nodes.get(i) {
            self.index.insert(moved.name.clone(), i);
        }
        if !info.pods.is_empty() {
            self.orphans.insert(name.to_string(), info.pods);
        }
    }

    fn place(&mut self, node: &str, pod: Arc<PodInfo>) {
        match self.index.get(node) {
            Some(&i) => self.nodes[i].add_pod(pod),
            None => self.orphans.entry(node.to_string()).or_default().push(pod),
        }
    }

    fn unplace(&mut self, node: &str, uid: &str) -> Option<Arc<PodInfo>> {
        match self.index.get(node) {
            Some(&i) => self.nodes[i].remove_pod(uid),
            None => {
                let list = self.orphans.get_mut(node)?;
                let idx = list.iter().position(|p| p.uid == uid)?;
                let pod = list.swap_remove(idx);
                if list.is_empty() {
                    self.orphans.remove(node);
                }
                Some(pod)
            }
        }
    }

    /// Adds or updates a pod bound to `node` (from the informer); confirms
    /// an assumed pod.
    pub fn apply_bound_pod(&mut self, pod: Arc<PodInfo>, node: &str) {
        if let Some(state) = self.pods.get(&pod.uid).cloned() {
            self.unplace(&state.node, &pod.uid);
        }
        self.pods.insert(
            pod.uid.clone(),
            PodState {
                node: node.to_string(),
                assumed: false,
            },
        );
        self.place(node, pod);
    }

    /// Removes a pod (deleted, or finished so it no longer holds resources).
    /// Returns whether the cache held it.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        match self.pods.remove(uid) {
            Some(state) => {
                self.unplace(&state.node, uid);
                true
            }
            None => false,
        }
    }

    /// Accounts `pod` on `node` before its binding is written.
    pub fn assume(&mut self, pod: Arc<PodInfo>, node: &str) {
        self.remove_pod(&pod.uid);
        self.pods.insert(
            pod.uid.clone(),
            PodState {
                node: node.to_string(),
                assumed: true,
            },
        );
        self.place(node, pod);
    }

    /// Drops an assumed pod whose binding failed. A pod the informer has
    /// already confirmed is left alone.
    pub fn forget(&mut self, uid: &str) {
        if self.pods.get(uid).is_some_and(|s| s.assumed) {
            self.remove_pod(uid);
        }
    }

    /// Whether `uid` is assumed (bound by us, not yet confirmed).
    pub fn is_assumed(&self, uid: &str) -> bool {
        self.pods.get(uid).is_some_and(|s| s.assumed)
    }

    /// Whether the cache holds `uid` at all.
    pub fn contains_pod(&self, uid: &str) -> bool {
        self.pods.contains_key(uid)
    }

    /// A copy of one node's info (preemption simulates on copies).
    pub fn node_clone(&self, name: &str) -> Option<NodeInfo> {
        self.node(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{container, node, pod};

    #[test]
    fn assumed_pods_count_and_are_forgotten() {
        let mut c = Cache::new();
        assert_eq!(
            c.apply_node(Arc::new(node("n1").cpu("2").build())),
            NodeChange::Added
        );
        let p = Arc::new(PodInfo::new(
            Arc::new(pod("a").containers(vec![container("500m", "0")]).build()),
            0,
        ));
        c.assume(p.clone(), "n1");
        assert_eq!(c.node("n1").unwrap().requested.milli_cpu, 500);
        assert!(c.is_assumed(&p.uid));
        c.forget(&p.uid);
        assert_eq!(c.node("n1").unwrap().requested.milli_cpu, 0);
        c.assume(p.clone(), "n1");
        c.apply_bound_pod(p.clone(), "n1");
        assert!(!c.is_assumed(&p.uid));
        c.forget(&p.uid);
        assert_eq!(
            c.node("n1").unwrap().requested.milli_cpu,
            500,
            "confirmed pods are kept"
        );
    }

    #[test]
    fn pods_of_unknown_nodes_join_when_the_node_appears() {
        let mut c = Cache::new();
        let p = Arc::new(PodInfo::new(
            Arc::new(pod("a").containers(vec![container("1", "0")]).build()),
            0,
        ));
        c.apply_bound_pod(p, "n1");
        c.apply_node(Arc::new(node("n1").cpu("2").build()));
        assert_eq!(c.node("n1").unwrap().requested.milli_cpu, 1000);
        c.apply_node(Arc::new(node("n2").build()));
        c.remove_node("n1");
        assert!(c.node("n1").is_none());
        assert_eq!(c.node("n2").unwrap().name, "n2");
        assert_eq!(
            c.apply_node(Arc::new(node("n2").build())),
            NodeChange::Irrelevant,
            "same node again changes nothing"
        );
    }
}
