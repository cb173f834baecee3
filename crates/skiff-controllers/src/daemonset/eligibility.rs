//! Which nodes a DaemonSet's pod belongs on, as upstream's
//! `NodeShouldRunDaemonPod`: the template's nodeName, nodeSelector and
//! required node affinity must match the node, and its tolerations (plus
//! the automatic daemon tolerations) must tolerate the node's NoSchedule and
//! NoExecute taints; a pod already there may stay unless a NoExecute taint is
//! untolerated. Also builds the per-node pod spec (tolerations and the
//! `metadata.name` node affinity the default scheduler places it by).
//!
//! Pure functions; no API access.

use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodSpec, Taint,
    Toleration,
};
use skiff_scheduler::labels::{Labels, NodeTerm, any_term_matches};

use crate::node_lifecycle::eviction::tolerates;

/// Whether the daemon pod should be created on a node, and whether one
/// already there may keep running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// A daemon pod belongs on the node.
    pub should_run: bool,
    /// An existing daemon pod may stay on the node.
    pub should_continue: bool,
}

/// The tolerations every daemon pod gets (upstream's
/// `AddOrUpdateDaemonPodTolerations`), as (key, effect).
pub const DAEMON_TOLERATIONS: &[(&str, &str)] = &[
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
];

/// Tolerated on host-network daemon pods as well.
const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

fn exists_toleration(key: &str, effect: &str) -> Toleration {
    Toleration {
        key: Some(key.to_string()),
        operator: Some("Exists".to_string()),
        effect: Some(effect.to_string()),
        ..Toleration::default()
    }
}

fn add_or_update(tolerations: &mut Vec<Toleration>, t: Toleration) {
    let same = |o: &Toleration| {
        o.key == t.key
            && o.effect == t.effect
            && o.operator.as_deref().unwrap_or("Equal") == t.operator.as_deref().unwrap_or("Equal")
            && o.value.as_deref().unwrap_or("") == t.value.as_deref().unwrap_or("")
    };
    match tolerations.iter_mut().find(|o| same(o)) {
        Some(o) => *o = t,
        None => tolerations.push(t),
    }
}

/// Adds the automatic daemon tolerations to `spec`.
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let mut tols = spec.tolerations.take().unwrap_or_default();
    for (key, effect) in DAEMON_TOLERATIONS {
        add_or_update(&mut tols, exists_toleration(key, effect));
    }
    if spec.host_network == Some(true) {
        add_or_update(&mut tols, exists_toleration(NETWORK_UNAVAILABLE, "NoSchedule"));
    }
    spec.tolerations = Some(tols);
}

/// Pins `spec` to `node` with a required `metadata.name In [node]` node
/// affinity term, replacing any required terms (already checked by
/// [`placement`]), as upstream's `ReplaceDaemonSetPodNodeNameNodeAffinity`.
pub fn pin_to_node(spec: &mut PodSpec, node: &str) {
    let term = NodeSelectorTerm {
        match_expressions: None,
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".to_string(),
            operator: "In".to_string(),
            values: Some(vec![node.to_string()]),
        }]),
    };
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let na = affinity.node_affinity.get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![term],
    });
}

/// The node a daemon pod targets: its nodeName, or the node of its
/// `metadata.name` affinity term while it is not yet bound.
pub fn target_node(spec: &PodSpec) -> Option<String> {
    if let Some(n) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(n.clone());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == "metadata.name" && r.operator == "In")
        .and_then(|r| r.values.as_ref()?.first().cloned())
}

fn untolerated(taints: &[Taint], tols: &[Toleration], effects: &[&str]) -> bool {
    taints
        .iter()
        .filter(|t| effects.contains(&t.effect.as_str()))
        .any(|t| !tols.iter().any(|tol| tolerates(tol, t)))
}

/// Whether a daemon pod from `template` (tolerations not yet added) belongs
/// on `node`.
pub fn placement(template: &PodSpec, node: &Node) -> Placement {
    let never = Placement {
        should_run: false,
        should_continue: false,
    };
    let name = node.metadata.name.as_deref().unwrap_or("");
    if template
        .node_name
        .as_ref()
        .is_some_and(|n| !n.is_empty() && n != name)
    {
        return never;
    }
    let empty = Labels::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    if let Some(sel) = &template.node_selector
        && !sel.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return never;
    }
    let required = template
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| na.required_during_scheduling_ignored_during_execution.as_ref());
    if let Some(req) = required {
        let terms: Vec<NodeTerm> = req.node_selector_terms.iter().map(NodeTerm::new).collect();
        if !any_term_matches(&terms, name, labels) {
            return never;
        }
    }
    let mut spec = template.clone();
    add_daemon_tolerations(&mut spec);
    let tols = spec.tolerations.unwrap_or_default();
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    if untolerated(&taints, &tols, &["NoSchedule", "NoExecute"]) {
        return Placement {
            should_run: false,
            should_continue: !untolerated(&taints, &tols, &["NoExecute"]),
        };
    }
    Placement {
        should_run: true,
        should_continue: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: Some(
                    taints
                        .iter()
                        .map(|(k, e)| Taint {
                            key: k.to_string(),
                            effect: e.to_string(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            status: None,
        }
    }

    const RUN: Placement = Placement {
        should_run: true,
        should_continue: true,
    };
    const NEVER: Placement = Placement {
        should_run: false,
        should_continue: false,
    };

    #[test]
    fn node_selector_and_required_affinity_choose_nodes() {
        let spec = PodSpec {
            node_selector: Some([("disk".to_string(), "ssd".to_string())].into()),
            ..Default::default()
        };
        assert_eq!(placement(&spec, &node("a", &[("disk", "ssd")], &[])), RUN);
        assert_eq!(placement(&spec, &node("b", &[("disk", "hdd")], &[])), NEVER);
        let mut spec = PodSpec::default();
        pin_to_node(&mut spec, "a");
        assert_eq!(placement(&spec, &node("a", &[], &[])), RUN);
        assert_eq!(placement(&spec, &node("b", &[], &[])), NEVER);
    }

    #[test]
    fn taints_block_new_pods_and_no_execute_evicts() {
        let spec = PodSpec::default();
        let no_sched = node("a", &[], &[("gpu", "NoSchedule")]);
        assert_eq!(
            placement(&spec, &no_sched),
            Placement {
                should_run: false,
                should_continue: true
            }
        );
        assert_eq!(placement(&spec, &node("a", &[], &[("gpu", "NoExecute")])), NEVER);
        // Automatic tolerations: cordoned and not-ready nodes still get daemons.
        let cordoned = node(
            "a",
            &[],
            &[
                ("node.kubernetes.io/unschedulable", "NoSchedule"),
                ("node.kubernetes.io/not-ready", "NoExecute"),
            ],
        );
        assert_eq!(placement(&spec, &cordoned), RUN);
    }

    #[test]
    fn daemon_tolerations_are_added_once_and_pods_pinned() {
        let mut spec = PodSpec {
            host_network: Some(true),
            ..Default::default()
        };
        add_daemon_tolerations(&mut spec);
        add_daemon_tolerations(&mut spec);
        assert_eq!(
            spec.tolerations.as_ref().map(Vec::len),
            Some(DAEMON_TOLERATIONS.len() + 1)
        );
        pin_to_node(&mut spec, "n7");
        assert_eq!(target_node(&spec).as_deref(), Some("n7"));
        spec.node_name = Some("n8".into());
        assert_eq!(target_node(&spec).as_deref(), Some("n8"));
    }
}
