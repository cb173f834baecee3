//! PodTopologySpread: `topologySpreadConstraints`. DoNotSchedule constraints
//! filter (skew = matching pods in the node's domain + 1 − the global
//! minimum must stay within maxSkew; the minimum is 0 while fewer than
//! `minDomains` domains exist); ScheduleAnyway constraints score, fewer
//! matching pods ranking higher. Domains come from nodes that pass the pod's
//! node affinity (nodeAffinityPolicy Honor) and, with nodeTaintsPolicy
//! Honor, its tolerations. Upstream's cluster-level default constraints are
//! not applied.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::TopologySpreadConstraint;

use super::node_affinity::RequiredNodeAffinity;
use super::taint_toleration::tolerates;
use crate::framework::{
    Code, CycleState, FilterPlugin, MAX_NODE_SCORE, Plugin, PreFilterPlugin, PreScorePlugin, ScorePlugin,
    Status,
};
use crate::labels::Selector;
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

const KEY: &str = "PodTopologySpread";
const SCORE_KEY: &str = "PodTopologySpread/score";

/// The plugin.
#[derive(Debug, Default)]
pub struct PodTopologySpread;

#[derive(Debug)]
struct Constraint {
    max_skew: i64,
    key: String,
    selector: Selector,
    min_domains: usize,
    honor_affinity: bool,
    honor_taints: bool,
    /// Matching pods per domain value.
    counts: HashMap<String, i64>,
}

fn compile(pod: &PodInfo, when: &str) -> Vec<Constraint> {
    let list: &[TopologySpreadConstraint] = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_deref())
        .unwrap_or_default();
    list.iter()
        .filter(|c| c.when_unsatisfiable == when)
        .map(|c| {
            let mut selector = Selector::from_label_selector(c.label_selector.as_ref());
            for k in c.match_label_keys.iter().flatten() {
                if let Some(v) = pod.labels.get(k) {
                    selector.require(k, v);
                }
            }
            Constraint {
                max_skew: i64::from(c.max_skew),
                key: c.topology_key.clone(),
                selector,
                min_domains: c.min_domains.map_or(1, |m| m.max(1) as usize),
                honor_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
                counts: HashMap::new(),
            }
        })
        .collect()
}

fn count(constraints: &mut [Constraint], pod: &PodInfo, nodes: &[NodeInfo]) {
    let affinity = RequiredNodeAffinity::of(pod);
    let tolerations = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default();
    for node in nodes {
        if !constraints.iter().all(|c| node.labels.contains_key(&c.key)) {
            continue;
        }
        let affinity_ok = affinity.matches(node);
        let taints_ok = node.taints.iter().all(|taint| {
            !(taint.effect == "NoSchedule" || taint.effect == "NoExecute")
                || tolerations.iter().any(|t| tolerates(t, taint))
        });
        for c in constraints.iter_mut() {
            if (c.honor_affinity && !affinity_ok) || (c.honor_taints && !taints_ok) {
                continue;
            }
            let value = &node.labels[&c.key];
            let n = node
                .pods
                .iter()
                .filter(|p| {
                    p.namespace == pod.namespace
                        && p.pod.metadata.deletion_timestamp.is_none()
                        && c.selector.matches(&p.labels)
                })
                .count() as i64;
            *c.counts.entry(value.clone()).or_default() += n;
        }
    }
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        KEY
    }
}

impl PreFilterPlugin for PodTopologySpread {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, nodes: &[NodeInfo]) -> Status {
        let mut constraints = compile(pod, "DoNotSchedule");
        if constraints.is_empty() {
            return Status::skip();
        }
        count(&mut constraints, pod, nodes);
        state.write(KEY, constraints);
        Status::success()
    }
}

impl FilterPlugin for PodTopologySpread {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(constraints) = state.read::<Vec<Constraint>>(KEY) else {
            return Status::error("PodTopologySpread: PreFilter state missing");
        };
        for c in constraints {
            let Some(value) = node.labels.get(&c.key) else {
                return Status::new(
                    Code::UnschedulableAndUnresolvable,
                    "node(s) didn't match pod topology spread constraints (missing required label)",
                );
            };
            let min = if c.counts.len() < c.min_domains {
                0
            } else {
                c.counts.values().copied().min().unwrap_or(0)
            };
            let self_match = i64::from(c.selector.matches(&pod.labels));
            let skew = c.counts.get(value).copied().unwrap_or(0) + self_match - min;
            if skew > c.max_skew {
                return Status::unschedulable(vec![
                    "node(s) didn't match pod topology spread constraints".into(),
                ]);
            }
        }
        Status::success()
    }
}

impl PreScorePlugin for PodTopologySpread {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _: &[&NodeInfo], all: &[NodeInfo]) -> Status {
        let mut constraints = compile(pod, "ScheduleAnyway");
        if constraints.is_empty() {
            return Status::skip();
        }
        count(&mut constraints, pod, all);
        state.write(SCORE_KEY, constraints);
        Status::success()
    }
}

impl ScorePlugin for PodTopologySpread {
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(constraints) = state.read::<Vec<Constraint>>(SCORE_KEY) else {
            return 0;
        };
        let mut score = 0.0;
        for c in constraints {
            let Some(value) = node.labels.get(&c.key) else {
                return i64::MAX;
            };
            let weight = ((c.counts.len() + 2) as f64).ln();
            let n = c.counts.get(value).copied().unwrap_or(0);
            score += (n + c.max_skew - 1) as f64 * weight;
        }
        score.round() as i64
    }

    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) {
        let known = scores.iter().copied().filter(|s| *s != i64::MAX);
        let (min, max) = known.fold((i64::MAX, 0), |(lo, hi), s| (lo.min(s), hi.max(s)));
        for s in scores.iter_mut() {
            *s = if *s == i64::MAX {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *s) / max
            };
        }
    }
}

#[cfg(test)]
mod tests;
