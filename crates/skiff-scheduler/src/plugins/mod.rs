//! The in-tree plugins, one file each, and [`default_framework`], which
//! registers them at their extension points with upstream's default score
//! weights.

pub mod balanced_allocation;
pub mod default_binder;
pub mod default_preemption;
pub mod inter_pod_affinity;
pub mod least_allocated;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;

use std::sync::Arc;

use crate::framework::Framework;

/// Score weights of the default profile (upstream's defaults).
#[derive(Debug, Clone)]
pub struct ScoreWeights {
    /// NodeResourcesLeastAllocated.
    pub least_allocated: i64,
    /// NodeResourcesBalancedAllocation.
    pub balanced_allocation: i64,
    /// TaintToleration.
    pub taint_toleration: i64,
    /// NodeAffinity.
    pub node_affinity: i64,
    /// InterPodAffinity.
    pub inter_pod_affinity: i64,
    /// PodTopologySpread.
    pub pod_topology_spread: i64,
}

impl Default for ScoreWeights {
    fn default() -> Self {
        ScoreWeights {
            least_allocated: 1,
            balanced_allocation: 1,
            taint_toleration: 3,
            node_affinity: 2,
            inter_pod_affinity: 2,
            pod_topology_spread: 2,
        }
    }
}

/// The default profile without a binder (filters cheapest first).
pub fn default_framework(weights: &ScoreWeights) -> Framework {
    let fit = Arc::new(node_resources_fit::NodeResourcesFit);
    let affinity = Arc::new(node_affinity::NodeAffinity);
    let taints = Arc::new(taint_toleration::TaintToleration);
    let ipa = Arc::new(inter_pod_affinity::InterPodAffinity);
    let spread = Arc::new(pod_topology_spread::PodTopologySpread);
    let balanced = Arc::new(balanced_allocation::BalancedAllocation);
    Framework::new()
        .pre_filter(affinity.clone())
        .pre_filter(spread.clone())
        .pre_filter(ipa.clone())
        .filter(Arc::new(node_unschedulable::NodeUnschedulable))
        .filter(Arc::new(node_name::NodeName))
        .filter(taints.clone())
        .filter(affinity.clone())
        .filter(Arc::new(node_ports::NodePorts))
        .filter(fit)
        .filter(spread.clone())
        .filter(ipa.clone())
        .post_filter(Arc::new(default_preemption::DefaultPreemption::default()))
        .pre_score(affinity.clone())
        .pre_score(spread.clone())
        .pre_score(ipa.clone())
        .pre_score(balanced.clone())
        .score(taints, weights.taint_toleration)
        .score(affinity, weights.node_affinity)
        .score(spread, weights.pod_topology_spread)
        .score(ipa, weights.inter_pod_affinity)
        .score(
            Arc::new(least_allocated::LeastAllocated::default()),
            weights.least_allocated,
        )
        .score(balanced, weights.balanced_allocation)
}
