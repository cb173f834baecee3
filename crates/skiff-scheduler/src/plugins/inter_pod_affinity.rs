//! InterPodAffinity: required pod affinity / anti-affinity of the incoming
//! pod, and the required anti-affinity of pods already running (symmetry),
//! filter nodes by topology domain; preferred terms of both sides score
//! them. Counts are computed once per attempt in PreFilter/PreScore, so the
//! per-node work is a few hash lookups.
//!
//! `namespaceSelector` is honoured only as "all namespaces" when empty; a
//! non-empty one is treated like unset (the pod's namespace list).

use std::collections::HashMap;

use crate::framework::{
    Code, CycleState, FilterPlugin, Plugin, PreFilterPlugin, PreScorePlugin, ScorePlugin, Status,
    min_max_normalize,
};
use crate::node_info::NodeInfo;
use crate::pod_info::{AffinityTerm, PodInfo};

const KEY: &str = "InterPodAffinity";
const SCORE_KEY: &str = "InterPodAffinity/score";

type Pair = (String, String);

/// The plugin.
#[derive(Debug, Default)]
pub struct InterPodAffinity;

#[derive(Debug, Default)]
struct FilterState {
    existing_anti: HashMap<Pair, i64>,
    affinity: HashMap<Pair, i64>,
    anti: HashMap<Pair, i64>,
}

fn pair(term: &AffinityTerm, node: &NodeInfo) -> Option<Pair> {
    node.labels
        .get(&term.topology_key)
        .map(|v| (term.topology_key.clone(), v.clone()))
}

fn matches_all(terms: &[AffinityTerm], pod: &PodInfo) -> bool {
    terms.iter().all(|t| t.matches(pod))
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        KEY
    }
}

impl PreFilterPlugin for InterPodAffinity {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, nodes: &[NodeInfo]) -> Status {
        let mut fs = FilterState::default();
        let own_terms = !pod.required_affinity.is_empty() || !pod.required_anti_affinity.is_empty();
        for node in nodes {
            if !own_terms && node.pods_with_affinity == 0 {
                continue;
            }
            for existing in &node.pods {
                for t in &existing.required_anti_affinity {
                    if t.matches(pod)
                        && let Some(p) = pair(t, node)
                    {
                        *fs.existing_anti.entry(p).or_default() += 1;
                    }
                }
                if !own_terms {
                    continue;
                }
                if !pod.required_affinity.is_empty() && matches_all(&pod.required_affinity, existing) {
                    for t in &pod.required_affinity {
                        if let Some(p) = pair(t, node) {
                            *fs.affinity.entry(p).or_default() += 1;
                        }
                    }
                }
                for t in &pod.required_anti_affinity {
                    if t.matches(existing)
                        && let Some(p) = pair(t, node)
                    {
                        *fs.anti.entry(p).or_default() += 1;
                    }
                }
            }
        }
        if !own_terms && fs.existing_anti.is_empty() {
            return Status::skip();
        }
        state.write(KEY, fs);
        Status::success()
    }
}

impl FilterPlugin for InterPodAffinity {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(fs) = state.read::<FilterState>(KEY) else {
            return Status::error("InterPodAffinity: PreFilter state missing");
        };
        if node.labels.iter().any(|(k, v)| {
            fs.existing_anti
                .get(&(k.clone(), v.clone()))
                .is_some_and(|c| *c > 0)
        }) {
            return Status::unschedulable(vec![
                "node(s) didn't satisfy existing pods anti-affinity rules".into(),
            ]);
        }
        let mut pods_exist = true;
        for t in &pod.required_affinity {
            match pair(t, node) {
                Some(p) => {
                    if fs.affinity.get(&p).is_none_or(|c| *c <= 0) {
                        pods_exist = false;
                    }
                }
                None => {
                    return Status::new(
                        Code::UnschedulableAndUnresolvable,
                        "node(s) didn't match pod affinity rules",
                    );
                }
            }
        }
        let first_of_group = fs.affinity.is_empty() && matches_all(&pod.required_affinity, pod);
        if !pods_exist && !first_of_group {
            return Status::new(
                Code::UnschedulableAndUnresolvable,
                "node(s) didn't match pod affinity rules",
            );
        }
        for t in &pod.required_anti_affinity {
            if pair(t, node).is_some_and(|p| fs.anti.get(&p).is_some_and(|c| *c > 0)) {
                return Status::unschedulable(vec!["node(s) didn't match pod anti-affinity rules".into()]);
            }
        }
        Status::success()
    }
}

fn add(scores: &mut HashMap<Pair, i64>, term: &AffinityTerm, node: &NodeInfo, weight: i64) {
    if let Some(p) = pair(term, node) {
        *scores.entry(p).or_default() += weight;
    }
}

impl PreScorePlugin for InterPodAffinity {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _: &[&NodeInfo], all: &[NodeInfo]) -> Status {
        let own = !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
        let mut scores: HashMap<Pair, i64> = HashMap::new();
        for node in all {
            if !own && node.pods_with_affinity == 0 {
                continue;
            }
            for existing in &node.pods {
                for t in &pod.preferred_affinity {
                    if t.matches(existing) {
                        add(&mut scores, t, node, t.weight);
                    }
                }
                for t in &pod.preferred_anti_affinity {
                    if t.matches(existing) {
                        add(&mut scores, t, node, -t.weight);
                    }
                }
                for t in existing
                    .required_affinity
                    .iter()
                    .chain(&existing.preferred_affinity)
                {
                    if t.matches(pod) {
                        add(&mut scores, t, node, t.weight);
                    }
                }
                for t in &existing.preferred_anti_affinity {
                    if t.matches(pod) {
                        add(&mut scores, t, node, -t.weight);
                    }
                }
            }
        }
        if scores.is_empty() {
            return Status::skip();
        }
        state.write(SCORE_KEY, scores);
        Status::success()
    }
}

impl ScorePlugin for InterPodAffinity {
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(scores) = state.read::<HashMap<Pair, i64>>(SCORE_KEY) else {
            return 0;
        };
        scores
            .iter()
            .filter(|((k, v), _)| node.labels.get(k) == Some(v))
            .map(|(_, s)| s)
            .sum()
    }

    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) {
        min_max_normalize(scores);
    }
}

#[cfg(test)]
mod tests;
