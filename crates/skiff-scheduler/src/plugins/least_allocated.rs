//! NodeResourcesLeastAllocated (upstream: NodeResourcesFit's default
//! `LeastAllocated` scoring): prefers nodes with the most cpu and memory left
//! after placing the pod, so pods spread over the cluster. Unset requests
//! count as 100m cpu / 200Mi memory, as upstream.

use crate::framework::{CycleState, MAX_NODE_SCORE, Plugin, ScorePlugin};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

/// The plugin, with per-resource weights.
#[derive(Debug)]
pub struct LeastAllocated {
    /// Weight of cpu.
    pub cpu_weight: i64,
    /// Weight of memory.
    pub memory_weight: i64,
}

impl Default for LeastAllocated {
    fn default() -> Self {
        LeastAllocated {
            cpu_weight: 1,
            memory_weight: 1,
        }
    }
}

fn least(requested: i64, capacity: i64) -> i64 {
    if capacity <= 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

impl Plugin for LeastAllocated {
    fn name(&self) -> &'static str {
        "NodeResourcesLeastAllocated"
    }
}

impl ScorePlugin for LeastAllocated {
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let cpu = least(
            node.non_zero_requested.milli_cpu + pod.non_zero_requests.milli_cpu,
            node.allocatable.milli_cpu,
        );
        let mem = least(
            node.non_zero_requested.memory + pod.non_zero_requests.memory,
            node.allocatable.memory,
        );
        let weights = self.cpu_weight + self.memory_weight;
        if weights == 0 {
            return 0;
        }
        (cpu * self.cpu_weight + mem * self.memory_weight) / weights
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::test_util::{container, node, pod};

    #[test]
    fn emptier_nodes_score_higher() {
        let empty = node("a").cpu("4").memory("8Gi").info();
        let mut busy = node("b").cpu("4").memory("8Gi").info();
        busy.add_pod(Arc::new(pod("x").containers(vec![container("2", "4Gi")]).info()));
        let p = pod("p").containers(vec![container("1", "2Gi")]).info();
        let st = CycleState::new();
        // (4-1)/4 = 75 for both resources on the empty node; (4-3)/4 = 25 on the busy one.
        assert_eq!(LeastAllocated::default().score(&st, &p, &empty), 75);
        assert_eq!(LeastAllocated::default().score(&st, &p, &busy), 25);
    }

    #[test]
    fn best_effort_pods_count_default_requests() {
        let n = node("a").cpu("1").memory("1Gi").info();
        // 100m of 1000m used: 90; 200Mi of 1024Mi: 80 (integer division) → 85.
        assert_eq!(
            LeastAllocated::default().score(&CycleState::new(), &pod("p").info(), &n),
            85
        );
    }
}
