//! What a DaemonSet reconcile should do, decided from a snapshot: per node,
//! create the missing daemon pod or delete surplus/misplaced/failed ones
//! (upstream's `podsShouldBeOnNode`), then pick old pods to replace under
//! maxUnavailable or nodes to surge onto under maxSurge (upstream's
//! `rollingUpdate`), and count the status.
//!
//! Pure functions; no API access.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::eligibility::Placement;
use super::history::REVISION_HASH_LABEL;
use crate::workload_util as wu;

/// One node (or a vanished node that still has daemon pods) and the
/// DaemonSet's pods targeting it.
#[derive(Debug, Clone)]
pub struct NodeView {
    /// Node name.
    pub name: String,
    /// Where the daemon belongs; `None` for a node that no longer exists.
    pub placement: Option<Placement>,
    /// The DaemonSet's pods on (or pinned to) the node, terminating included.
    pub pods: Vec<Pod>,
}

impl NodeView {
    fn should_run(&self) -> bool {
        self.placement.is_some_and(|p| p.should_run)
    }
    fn should_continue(&self) -> bool {
        self.placement.is_some_and(|p| p.should_continue)
    }
}

/// Pods to delete and nodes to create a daemon pod on.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Nodes that need a daemon pod of the current revision.
    pub create_on: Vec<String>,
    /// Names of pods to delete.
    pub delete: Vec<String>,
    /// Failed daemon pods among `delete`, as (pod, node), for the
    /// `FailedDaemonPod` event.
    pub failed: Vec<(String, String)>,
}

fn terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
}

fn phase(p: &Pod) -> Option<&str> {
    p.status.as_ref().and_then(|s| s.phase.as_deref())
}

/// Failed or Succeeded: a daemon pod that must be replaced.
fn failed(p: &Pod) -> bool {
    matches!(phase(p), Some("Failed" | "Succeeded"))
}

fn created(p: &Pod) -> Option<jiff::Timestamp> {
    p.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// Whether the pod was made from the revision with `hash`.
pub fn is_updated(p: &Pod, hash: &str) -> bool {
    p.labels().get(REVISION_HASH_LABEL).map(String::as_str) == Some(hash)
}

/// The node's live pods split into (new, old), each oldest first.
fn split<'a>(pods: &'a [Pod], hash: &str) -> (Vec<&'a Pod>, Vec<&'a Pod>) {
    let mut live: Vec<&Pod> = pods.iter().filter(|p| !terminating(p) && !failed(p)).collect();
    live.sort_by_key(|p| (created(p), p.name_any()));
    live.into_iter().partition(|p| is_updated(p, hash))
}

/// Creations and deletions that make every node hold exactly the daemon
/// pods it should (ignoring the update strategy).
pub fn manage(nodes: &[NodeView], hash: &str, surge: bool, min_ready: i32, now: jiff::Timestamp) -> Plan {
    let mut plan = Plan::default();
    for n in nodes {
        if !n.should_continue() {
            plan.delete
                .extend(n.pods.iter().filter(|p| !terminating(p)).map(|p| p.name_any()));
            continue;
        }
        plan.delete.extend(
            n.pods
                .iter()
                .filter(|p| failed(p) && !terminating(p))
                .map(|p| p.name_any()),
        );
        plan.failed.extend(
            n.pods
                .iter()
                .filter(|p| phase(p) == Some("Failed") && !terminating(p))
                .map(|p| (p.name_any(), n.name.clone())),
        );
        let (new, old) = split(&n.pods, hash);
        // Failed and terminating pods still count: the replacement comes once they are gone.
        if n.should_run() && n.pods.is_empty() {
            plan.create_on.push(n.name.clone());
            continue;
        }
        let mut keep: Vec<&Pod> = Vec::new();
        if surge {
            // Keep the oldest new pod, and the oldest old pod until the new one is available.
            if let Some(nw) = new.first() {
                keep.push(nw);
                if !wu::is_available(nw, min_ready, now)
                    && let Some(o) = old.first()
                {
                    keep.push(o);
                }
            } else if let Some(o) = old.first() {
                keep.push(o);
            }
        } else {
            let mut all: Vec<&Pod> = new.iter().chain(old.iter()).copied().collect();
            all.sort_by_key(|p| (created(p), p.name_any()));
            keep.extend(all.first());
        }
        let kept: BTreeSet<String> = keep.iter().map(|p| p.name_any()).collect();
        plan.delete.extend(
            new.iter()
                .chain(old.iter())
                .map(|p| p.name_any())
                .filter(|name| !kept.contains(name)),
        );
    }
    plan
}

/// Old pods to replace (and nodes to surge onto) in one rolling-update step.
pub fn rolling(
    nodes: &[NodeView],
    hash: &str,
    max_unavailable: i32,
    max_surge: i32,
    min_ready: i32,
    now: jiff::Timestamp,
) -> Plan {
    let mut plan = Plan::default();
    let available = |p: &Pod| wu::is_available(p, min_ready, now);
    let relevant = nodes.iter().filter(|n| n.should_run() || !n.pods.is_empty());
    if max_surge == 0 {
        let mut unavailable = 0;
        let mut replace = Vec::new();
        let mut candidates = Vec::new();
        for n in relevant {
            let (new, old) = split(&n.pods, hash);
            if new.len() > 1 || old.len() > 1 {
                unavailable += 1;
                continue;
            }
            match (new.first(), old.first()) {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (Some(nw), None) => {
                    if !available(nw) {
                        unavailable += 1;
                    }
                }
                (None, Some(o)) => {
                    if !available(o) {
                        replace.push(o.name_any());
                    } else if unavailable < max_unavailable {
                        candidates.push(o.name_any());
                    }
                }
            }
        }
        let room = (max_unavailable - unavailable).max(0) as usize;
        candidates.truncate(room);
        plan.delete = replace;
        plan.delete.extend(candidates);
        return plan;
    }
    let mut surged = 0;
    let mut allowed = Vec::new();
    let mut candidates = Vec::new();
    for n in relevant {
        let (new, old) = split(&n.pods, hash);
        if new.len() > 1 || old.len() > 1 {
            surged += 1;
            continue;
        }
        if !n.should_run() {
            continue;
        }
        match (new.first(), old.first()) {
            (_, None) => {}
            (None, Some(o)) => {
                if !available(o) {
                    allowed.push(n.name.clone());
                } else if surged < max_surge {
                    candidates.push(n.name.clone());
                }
            }
            (Some(nw), Some(o)) => {
                if available(nw) {
                    plan.delete.push(o.name_any());
                } else {
                    surged += 1;
                }
            }
        }
    }
    let room = (max_surge - surged).max(0) as usize;
    candidates.truncate(room);
    plan.create_on = allowed;
    plan.create_on.extend(candidates);
    plan
}

/// The counts a DaemonSet reports.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Nodes that should run the daemon.
    pub desired: i32,
    /// Of those, nodes running at least one daemon pod.
    pub current: i32,
    /// Nodes running a daemon pod they should not.
    pub misscheduled: i32,
    /// Nodes whose daemon pod is ready.
    pub ready: i32,
    /// Nodes whose daemon pod is available.
    pub available: i32,
    /// Nodes running a pod of the current revision.
    pub updated: i32,
}

/// Counts the status the way upstream's `updateDaemonSetStatus` does.
pub fn count(nodes: &[NodeView], hash: &str, min_ready: i32, now: jiff::Timestamp) -> Counts {
    let mut c = Counts::default();
    for n in nodes.iter().filter(|n| n.placement.is_some()) {
        let live: Vec<&Pod> = n.pods.iter().filter(|p| !terminating(p)).collect();
        if n.should_run() {
            c.desired += 1;
            if live.is_empty() {
                continue;
            }
            c.current += 1;
            let mut sorted = live.clone();
            sorted.sort_by_key(|p| (created(p), p.name_any()));
            if let Some(first) = sorted.first() {
                if wu::is_ready(first) {
                    c.ready += 1;
                }
                if wu::is_available(first, min_ready, now) {
                    c.available += 1;
                }
            }
            if live.iter().any(|p| is_updated(p, hash)) {
                c.updated += 1;
            }
        } else if !live.is_empty() {
            c.misscheduled += 1;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    const RUN: Option<Placement> = Some(Placement {
        should_run: true,
        should_continue: true,
    });
    const NO: Option<Placement> = Some(Placement {
        should_run: false,
        should_continue: false,
    });

    fn pod(name: &str, hash: &str, age_secs: i64, ready: bool) -> Pod {
        let now = jiff::Timestamp::now();
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some([(REVISION_HASH_LABEL.to_string(), hash.to_string())].into()),
                creation_timestamp: Some(Time(now - jiff::SignedDuration::from_secs(age_secs))),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn view(name: &str, placement: Option<Placement>, pods: Vec<Pod>) -> NodeView {
        NodeView {
            name: name.into(),
            placement,
            pods,
        }
    }

    #[test]
    fn one_pod_per_eligible_node() {
        let now = jiff::Timestamp::now();
        let nodes = vec![
            view("a", RUN, vec![]),
            view("b", RUN, vec![pod("b1", "h", 20, true), pod("b2", "h", 10, true)]),
            view("c", NO, vec![pod("c1", "h", 10, true)]),
            view("gone", None, vec![pod("g1", "h", 10, true)]),
        ];
        let plan = manage(&nodes, "h", false, 0, now);
        assert_eq!(plan.create_on, ["a"]);
        assert_eq!(plan.delete, ["b2", "c1", "g1"]);
        let c = count(&nodes, "h", 0, now);
        assert_eq!(
            (c.desired, c.current, c.misscheduled, c.ready, c.updated),
            (2, 1, 1, 1, 1)
        );
    }

    #[test]
    fn failed_daemon_pods_are_killed_and_replaced_later() {
        let now = jiff::Timestamp::now();
        let mut dead = pod("f1", "h", 10, false);
        if let Some(st) = dead.status.as_mut() {
            st.phase = Some("Failed".into());
        }
        let nodes = vec![view("f", RUN, vec![dead])];
        let plan = manage(&nodes, "h", false, 0, now);
        assert_eq!(plan.delete, ["f1"]);
        assert_eq!(plan.failed, [("f1".to_string(), "f".to_string())]);
        assert!(
            plan.create_on.is_empty(),
            "a new pod only once the failed one is gone"
        );
    }

    #[test]
    fn rolling_update_respects_max_unavailable() {
        let now = jiff::Timestamp::now();
        let nodes: Vec<NodeView> = (0..4)
            .map(|i| {
                view(
                    &format!("n{i}"),
                    RUN,
                    vec![pod(&format!("p{i}"), "old", 10, true)],
                )
            })
            .collect();
        assert_eq!(rolling(&nodes, "new", 1, 0, 0, now).delete, ["p0"]);
        assert_eq!(rolling(&nodes, "new", 2, 0, 0, now).delete, ["p0", "p1"]);
        // One node already replacing (new pod not ready): no more room.
        let mut busy = nodes.clone();
        busy[0].pods = vec![pod("q0", "new", 1, false)];
        assert!(rolling(&busy, "new", 1, 0, 0, now).delete.is_empty());
        // Unavailable old pods are replaced regardless of the budget.
        busy[1].pods = vec![pod("p1", "old", 10, false)];
        assert_eq!(rolling(&busy, "new", 1, 0, 0, now).delete, ["p1"]);
    }

    #[test]
    fn surge_creates_first_and_deletes_old_once_new_is_available() {
        let now = jiff::Timestamp::now();
        let mut nodes: Vec<NodeView> = (0..3)
            .map(|i| {
                view(
                    &format!("n{i}"),
                    RUN,
                    vec![pod(&format!("p{i}"), "old", 10, true)],
                )
            })
            .collect();
        let plan = rolling(&nodes, "new", 0, 1, 0, now);
        assert_eq!((plan.create_on, plan.delete), (vec!["n0".to_string()], vec![]));
        nodes[0].pods.push(pod("q0", "new", 1, true));
        let plan = rolling(&nodes, "new", 0, 1, 0, now);
        assert_eq!(plan.delete, ["p0"]);
        assert_eq!(plan.create_on, ["n1"]);
    }
}
