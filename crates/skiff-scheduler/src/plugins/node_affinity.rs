//! NodeAffinity: `nodeSelector` and required node affinity filter nodes;
//! preferred node affinity terms score them (sum of matching weights,
//! normalised so the best node gets 100).

use crate::framework::{
    Code, CycleState, FilterPlugin, Plugin, PreFilterPlugin, PreScorePlugin, ScorePlugin, Status,
    default_normalize,
};
use crate::labels::{Labels, NodeTerm, any_term_matches};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

const KEY: &str = "NodeAffinity";
const SCORE_KEY: &str = "NodeAffinity/score";

/// The plugin.
#[derive(Debug, Default)]
pub struct NodeAffinity;

/// A pod's compiled node requirements.
#[derive(Debug, Clone, Default)]
pub struct RequiredNodeAffinity {
    selector: Labels,
    terms: Option<Vec<NodeTerm>>,
}

impl RequiredNodeAffinity {
    /// Compiles `pod`'s nodeSelector and required node affinity.
    pub fn of(pod: &PodInfo) -> Self {
        let spec = pod.pod.spec.as_ref();
        let selector = spec.and_then(|s| s.node_selector.clone()).unwrap_or_default();
        let terms = spec
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| na.required_during_scheduling_ignored_during_execution.as_ref())
            .map(|r| r.node_selector_terms.iter().map(NodeTerm::new).collect());
        RequiredNodeAffinity { selector, terms }
    }

    /// Whether the pod has no node requirement at all.
    pub fn is_empty(&self) -> bool {
        self.selector.is_empty() && self.terms.is_none()
    }

    /// Whether `node` satisfies them.
    pub fn matches(&self, node: &NodeInfo) -> bool {
        self.selector.iter().all(|(k, v)| node.labels.get(k) == Some(v))
            && self
                .terms
                .as_ref()
                .is_none_or(|t| any_term_matches(t, &node.name, &node.labels))
    }
}

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        KEY
    }
}

impl PreFilterPlugin for NodeAffinity {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, _: &[NodeInfo]) -> Status {
        let req = RequiredNodeAffinity::of(pod);
        if req.is_empty() {
            return Status::skip();
        }
        state.write(KEY, req);
        Status::success()
    }
}

impl FilterPlugin for NodeAffinity {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let owned;
        let req = match state.read::<RequiredNodeAffinity>(KEY) {
            Some(r) => r,
            None => {
                owned = RequiredNodeAffinity::of(pod);
                &owned
            }
        };
        if req.matches(node) {
            Status::success()
        } else {
            Status::new(
                Code::UnschedulableAndUnresolvable,
                "node(s) didn't match Pod's node affinity/selector",
            )
        }
    }
}

impl PreScorePlugin for NodeAffinity {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _: &[&NodeInfo], _: &[NodeInfo]) -> Status {
        let preferred: Vec<(NodeTerm, i64)> = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| na.preferred_during_scheduling_ignored_during_execution.as_ref())
            .into_iter()
            .flatten()
            .filter(|t| t.weight != 0)
            .map(|t| (NodeTerm::new(&t.preference), i64::from(t.weight)))
            .collect();
        if preferred.is_empty() {
            return Status::skip();
        }
        state.write(SCORE_KEY, preferred);
        Status::success()
    }
}

impl ScorePlugin for NodeAffinity {
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> i64 {
        state
            .read::<Vec<(NodeTerm, i64)>>(SCORE_KEY)
            .map(|terms| {
                terms
                    .iter()
                    .filter(|(t, _)| t.matches(&node.name, &node.labels))
                    .map(|(_, w)| w)
                    .sum()
            })
            .unwrap_or(0)
    }

    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) {
        default_normalize(scores, false);
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        Affinity, NodeAffinity as NA, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
        PreferredSchedulingTerm,
    };

    use super::*;
    use crate::test_util::{node, pod};

    fn term(key: &str, op: &str, vals: &[&str]) -> NodeSelectorTerm {
        NodeSelectorTerm {
            match_expressions: Some(vec![NodeSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: Some(vals.iter().map(|s| s.to_string()).collect()),
            }]),
            match_fields: None,
        }
    }

    fn filter(p: &PodInfo, n: &NodeInfo) -> Status {
        let mut st = CycleState::new();
        NodeAffinity.pre_filter(&mut st, p, &[]);
        NodeAffinity.filter(&st, p, n)
    }

    #[test]
    fn node_selector_and_required_terms() {
        let ssd = node("a").label("disk", "ssd").label("zone", "z1").info();
        let hdd = node("b").label("disk", "hdd").label("zone", "z2").info();
        let p = pod("p").node_selector("disk", "ssd").info();
        assert!(filter(&p, &ssd).is_success());
        let s = filter(&p, &hdd);
        assert_eq!(s.message(), "node(s) didn't match Pod's node affinity/selector");
        assert_eq!(s.code, Code::UnschedulableAndUnresolvable);
        let aff = Affinity {
            node_affinity: Some(NA {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![term("zone", "In", &["z9"]), term("zone", "NotIn", &["z1"])],
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let p = pod("p").affinity(aff).info();
        assert!(!filter(&p, &ssd).is_success());
        assert!(filter(&p, &hdd).is_success(), "terms are ORed");
    }

    #[test]
    fn preferred_terms_score_by_weight() {
        let aff = Affinity {
            node_affinity: Some(NA {
                preferred_during_scheduling_ignored_during_execution: Some(vec![
                    PreferredSchedulingTerm {
                        weight: 10,
                        preference: term("zone", "In", &["z1"]),
                    },
                    PreferredSchedulingTerm {
                        weight: 5,
                        preference: term("disk", "In", &["ssd"]),
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let p = pod("p").affinity(aff).info();
        let nodes = [
            node("a").label("zone", "z1").label("disk", "ssd").info(),
            node("b").label("zone", "z1").info(),
            node("c").info(),
        ];
        let mut st = CycleState::new();
        assert!(NodeAffinity.pre_score(&mut st, &p, &[], &[]).is_success());
        let mut s: Vec<i64> = nodes.iter().map(|n| NodeAffinity.score(&st, &p, n)).collect();
        NodeAffinity.normalize(&st, &p, &mut s);
        assert_eq!(s, vec![100, 66, 0]);
    }
}
