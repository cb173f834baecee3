//! DefaultPreemption (PostFilter): when no node fits, find nodes where
//! evicting pods of lower priority would let the pod fit, keep as few
//! victims as possible (reprieve from the highest priority down), and pick
//! the node whose victims matter least (lowest top priority, then lowest
//! priority sum, then fewest). The scheduler then deletes the victims
//! through the API and sets `status.nominatedNodeName`.
//!
//! Filters are re-run on a copy of the node without the victims; state from
//! PreFilter (affinity and spread counts) still counts them, which can only
//! make preemption more conservative. PodDisruptionBudgets are not
//! consulted.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::framework::{Code, Plugin, PostFilterInput, PostFilterPlugin, PostFilterResult, Status};
use crate::pod_info::PodInfo;

/// The plugin.
#[derive(Debug)]
pub struct DefaultPreemption {
    /// Stop looking after this many candidate nodes (upstream: 10% of nodes,
    /// at least 100).
    pub min_candidates: usize,
}

impl Default for DefaultPreemption {
    fn default() -> Self {
        DefaultPreemption { min_candidates: 100 }
    }
}

const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

struct Candidate {
    node: String,
    victims: Vec<Arc<PodInfo>>,
}

impl Candidate {
    fn rank(&self) -> (i32, i64, usize) {
        let top = self.victims.iter().map(|v| v.priority).max().unwrap_or(i32::MIN);
        let sum = self.victims.iter().map(|v| i64::from(v.priority)).sum();
        (top, sum, self.victims.len())
    }
}

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        "DefaultPreemption"
    }
}

impl DefaultPreemption {
    fn victims_on(&self, input: &PostFilterInput<'_>, node: &str) -> Option<Vec<Arc<PodInfo>>> {
        let mut sim = input.cache.node_clone(node)?;
        let mut lower: Vec<Arc<PodInfo>> = sim
            .pods
            .iter()
            .filter(|p| p.priority < input.pod.priority)
            .cloned()
            .collect();
        if lower.is_empty() {
            return None;
        }
        for v in &lower {
            sim.remove_pod(&v.uid);
        }
        if !input
            .framework
            .run_filter(input.state, input.pod, &sim)
            .is_success()
        {
            return None;
        }
        lower.sort_by_key(|v| std::cmp::Reverse(v.priority));
        let mut victims = Vec::new();
        for v in lower {
            sim.add_pod(v.clone());
            if !input
                .framework
                .run_filter(input.state, input.pod, &sim)
                .is_success()
            {
                sim.remove_pod(&v.uid);
                victims.push(v);
            }
        }
        Some(victims)
    }
}

impl PostFilterPlugin for DefaultPreemption {
    fn post_filter(&self, input: &PostFilterInput<'_>) -> (Option<PostFilterResult>, Status) {
        let spec = input.pod.pod.spec.as_ref();
        if spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
            return (
                None,
                Status::new(
                    Code::Unschedulable,
                    "preemption: not eligible due to preemptionPolicy=Never",
                ),
            );
        }
        let nodes = input.cache.nodes();
        let mut histogram: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut candidates = Vec::new();
        let wanted = self.min_candidates.max(nodes.len() / 10);
        for node in nodes {
            let helpful = input
                .statuses
                .get(&node.name)
                .is_none_or(|s| s.code != Code::UnschedulableAndUnresolvable);
            if !helpful {
                *histogram.entry(NOT_HELPFUL).or_default() += 1;
                continue;
            }
            match self.victims_on(input, &node.name) {
                Some(victims) => candidates.push(Candidate {
                    node: node.name.clone(),
                    victims,
                }),
                None => *histogram.entry(NO_VICTIMS).or_default() += 1,
            }
            if candidates.len() >= wanted {
                break;
            }
        }
        let best = candidates.into_iter().min_by_key(Candidate::rank);
        match best {
            Some(c) => (
                Some(PostFilterResult {
                    nominated_node: Some(c.node),
                    victims: c.victims,
                }),
                Status::success(),
            ),
            None => {
                let mut reasons: Vec<String> = histogram.iter().map(|(r, n)| format!("{n} {r}")).collect();
                reasons.sort();
                let msg = format!(
                    "preemption: 0/{} nodes are available: {}",
                    nodes.len(),
                    reasons.join(", ")
                );
                (None, Status::new(Code::Unschedulable, msg))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;
    use crate::framework::{CycleState, Framework};
    use crate::plugins::node_resources_fit::NodeResourcesFit;
    use crate::test_util::{cache_with, container, node, pod};

    fn run(cache: &crate::cache::Cache, p: &PodInfo) -> (Option<PostFilterResult>, Status) {
        let fw = Framework::new().filter(Arc::new(NodeResourcesFit));
        let state = CycleState::new();
        let statuses = HashMap::new();
        let input = PostFilterInput {
            state: &state,
            pod: p,
            cache,
            statuses: &statuses,
            framework: &fw,
        };
        DefaultPreemption::default().post_filter(&input)
    }

    #[test]
    fn evicts_the_fewest_lowest_priority_pods() {
        let cache = cache_with(
            vec![node("a").cpu("2").build(), node("b").cpu("2").build()],
            vec![
                (
                    "a",
                    pod("a1")
                        .priority(10)
                        .containers(vec![container("1", "0")])
                        .info(),
                ),
                (
                    "a",
                    pod("a2")
                        .priority(100)
                        .containers(vec![container("1", "0")])
                        .info(),
                ),
                (
                    "b",
                    pod("b1")
                        .priority(50)
                        .containers(vec![container("1", "0")])
                        .info(),
                ),
                (
                    "b",
                    pod("b2")
                        .priority(50)
                        .containers(vec![container("1", "0")])
                        .info(),
                ),
            ],
        );
        let p = pod("p")
            .priority(1000)
            .containers(vec![container("1", "0")])
            .info();
        let (res, s) = run(&cache, &p);
        assert!(s.is_success());
        let res = res.unwrap();
        assert_eq!(
            res.nominated_node.as_deref(),
            Some("a"),
            "a1 (priority 10) is the cheapest victim"
        );
        assert_eq!(
            res.victims.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
            vec!["a1"]
        );
    }

    #[test]
    fn no_victims_message_like_upstream() {
        let cache = cache_with(
            vec![
                node("a").cpu("1").build(),
                node("b").cpu("1").build(),
                node("c").cpu("1").build(),
            ],
            vec![(
                "a",
                pod("x")
                    .priority(5000)
                    .containers(vec![container("1", "0")])
                    .info(),
            )],
        );
        let p = pod("p").priority(10).containers(vec![container("2", "0")]).info();
        let (res, s) = run(&cache, &p);
        assert!(res.is_none());
        assert_eq!(
            s.message(),
            "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod"
        );
        let mut never = pod("q").containers(vec![container("2", "0")]).build();
        never.spec.as_mut().unwrap().preemption_policy = Some("Never".into());
        let (_, s) = run(&cache, &PodInfo::new(Arc::new(never), 0));
        assert_eq!(
            s.message(),
            "preemption: not eligible due to preemptionPolicy=Never"
        );
    }
}
