//! NodeResourcesBalancedAllocation: prefers nodes whose cpu and memory
//! utilisation (with the pod) stay close to each other: score =
//! (1 - standard deviation of the fractions) × 100. Best-effort pods skip it.

use crate::framework::{CycleState, MAX_NODE_SCORE, Plugin, PreScorePlugin, ScorePlugin, Status};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

/// The plugin.
#[derive(Debug, Default)]
pub struct BalancedAllocation;

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        "NodeResourcesBalancedAllocation"
    }
}

fn fraction(requested: i64, capacity: i64) -> f64 {
    if capacity <= 0 {
        return 0.0;
    }
    (requested as f64 / capacity as f64).min(1.0)
}

impl PreScorePlugin for BalancedAllocation {
    fn pre_score(&self, _: &mut CycleState, pod: &PodInfo, _: &[&NodeInfo], _: &[NodeInfo]) -> Status {
        if pod.requests.milli_cpu == 0 && pod.requests.memory == 0 {
            Status::skip()
        } else {
            Status::success()
        }
    }
}

impl ScorePlugin for BalancedAllocation {
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let cpu = fraction(
            node.requested.milli_cpu + pod.requests.milli_cpu,
            node.allocatable.milli_cpu,
        );
        let mem = fraction(
            node.requested.memory + pod.requests.memory,
            node.allocatable.memory,
        );
        let std = (cpu - mem).abs() / 2.0;
        ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{container, node, pod};

    #[test]
    fn balanced_use_scores_higher() {
        let n = node("a").cpu("4").memory("4Gi").info();
        let st = CycleState::new();
        let balanced = pod("p").containers(vec![container("2", "2Gi")]).info();
        let skewed = pod("q").containers(vec![container("4", "0")]).info();
        assert_eq!(BalancedAllocation.score(&st, &balanced, &n), 100);
        assert_eq!(BalancedAllocation.score(&st, &skewed, &n), 50);
        let mut st = CycleState::new();
        assert_eq!(
            BalancedAllocation
                .pre_score(&mut st, &pod("b").info(), &[], &[])
                .code,
            crate::framework::Code::Skip
        );
    }
}
