//! Node lifecycle: watches node heartbeats (Leases in `kube-node-lease` and
//! the Ready condition's lastHeartbeatTime). A node silent for longer than
//! `--node-monitor-grace-period` gets its conditions set to Unknown (reason
//! `NodeStatusUnknown`); nodes that are NotReady or unreachable get upstream's
//! `node.kubernetes.io/not-ready` / `unreachable` taints (NoSchedule and
//! NoExecute), removed again once Ready. Pods on a node with those NoExecute
//! taints are evicted as the taint manager does (see [`eviction`] for
//! the toleration arithmetic).

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PostParams};

use crate::informer::Informers;
use crate::manager::{ControllerConfig, Error};
use eviction::{Evictor, NOT_READY, UNREACHABLE};

pub mod eviction;

/// Namespace of node heartbeat Leases.
pub const NODE_LEASE_NS: &str = "kube-node-lease";

/// Runs the node monitor on the manager's shared node and lease informers
/// until an error.
pub async fn run_with(informers: Arc<Informers>, cfg: Arc<ControllerConfig>) -> Result<(), Error> {
    let nodes_api: Api<Node> = Api::all(informers.client().clone());
    let (nodes, leases) = (informers.all::<Node>(), informers.all::<Lease>());
    nodes.ready().await;
    leases.ready().await;
    let (nodes, leases) = (nodes.store(), leases.store());
    let evictor = Evictor::new(informers.client().clone());
    loop {
        let renewed: HashMap<String, Arc<Lease>> = leases
            .state()
            .into_iter()
            .filter(|l| l.metadata.namespace.as_deref() == Some(NODE_LEASE_NS))
            .filter_map(|l| Some((l.metadata.name.clone()?, l)))
            .collect();
        monitor_once(&nodes_api, nodes.state(), &renewed, &cfg, &evictor).await;
        tokio::time::sleep(cfg.node_monitor_period).await;
    }
}

async fn monitor_once(
    api: &Api<Node>,
    nodes: Vec<Arc<Node>>,
    leases: &HashMap<String, Arc<Lease>>,
    cfg: &ControllerConfig,
    evictor: &Evictor,
) {
    let now = jiff::Timestamp::now();
    for node in nodes {
        let Some(name) = node.metadata.name.clone() else {
            continue;
        };
        let last = last_heartbeat(&node, leases.get(&name).map(Arc::as_ref));
        let silent = now.duration_since(last).unsigned_abs();
        if silent > cfg.node_monitor_grace_period {
            let mut updated = Node::clone(&node);
            if mark_unknown(&mut updated, now) {
                tracing::info!(node = %name, "node stopped posting status; marking Unknown");
                if let Err(e) = api.replace_status(&name, &PostParams::default(), &updated).await {
                    tracing::warn!(node = %name, error = %e, "node-lifecycle: status update failed");
                }
                continue; // the taints follow on the next pass, from the stored status
            }
        }
        let want = desired_taints(&node, now);
        let have = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_deref())
            .unwrap_or(&[]);
        if want != have {
            let mut updated = Node::clone(&node);
            updated.spec.get_or_insert_with(Default::default).taints = Some(want.clone());
            if let Err(e) = api.replace(&name, &PostParams::default(), &updated).await {
                tracing::debug!(node = %name, error = %e, "node-lifecycle: taint update failed");
            }
        }
        if want
            .iter()
            .any(|t| t.effect == "NoExecute" && (t.key == NOT_READY || t.key == UNREACHABLE))
        {
            evictor.evict_from(&name, &want, now).await;
        }
    }
}

/// The newest of the node's Lease renewal, Ready heartbeat and creation time.
pub fn last_heartbeat(node: &Node, lease: Option<&Lease>) -> jiff::Timestamp {
    let created = node.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let renewed = lease
        .and_then(|l| l.spec.as_ref()?.renew_time.as_ref())
        .map(|t| t.0);
    let ready = ready_condition(node)
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .map(|t| t.0);
    [created, renewed, ready]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// Sets Ready and the pressure conditions to Unknown as upstream does;
/// false when they already were.
pub fn mark_unknown(node: &mut Node, now: jiff::Timestamp) -> bool {
    let status = node.status.get_or_insert_with(Default::default);
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let mut changed = false;
    for kind in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
        match conditions.iter_mut().find(|c| c.type_ == kind) {
            Some(c) if c.status == "Unknown" => {}
            Some(c) => {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
                c.last_transition_time = Some(Time(now));
                changed = true;
            }
            None => {
                conditions.push(NodeCondition {
                    type_: kind.into(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_transition_time: Some(Time(now)),
                    last_heartbeat_time: None,
                });
                changed = true;
            }
        }
    }
    changed
}

/// The node's taints with the not-ready/unreachable ones set from its Ready
/// condition (timeAdded kept for taints already there).
pub fn desired_taints(node: &Node, now: jiff::Timestamp) -> Vec<Taint> {
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let key = match ready_condition(node).map(|c| c.status.as_str()) {
        Some("True") => None,
        Some("False") => Some(NOT_READY),
        Some(_) => Some(UNREACHABLE),
        None => None, // a node that never reported is left to the Unknown pass first
    };
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|t| t.key != NOT_READY && t.key != UNREACHABLE)
        .cloned()
        .collect();
    if let Some(key) = key {
        for effect in ["NoSchedule", "NoExecute"] {
            let kept = current
                .iter()
                .find(|t| t.key == key && t.effect == effect)
                .cloned();
            out.push(kept.unwrap_or_else(|| Taint {
                key: key.into(),
                effect: effect.into(),
                time_added: (effect == "NoExecute").then_some(Time(now)),
                value: None,
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus};

    fn node(ready: Option<&str>, taints: Vec<Taint>) -> Node {
        Node {
            spec: Some(NodeSpec {
                taints: Some(taints),
                ..NodeSpec::default()
            }),
            status: Some(NodeStatus {
                conditions: ready.map(|s| {
                    vec![NodeCondition {
                        type_: "Ready".into(),
                        status: s.into(),
                        ..NodeCondition::default()
                    }]
                }),
                ..NodeStatus::default()
            }),
            ..Node::default()
        }
    }

    #[test]
    fn an_unknown_node_gets_both_unreachable_taints() {
        let t = desired_taints(&node(Some("Unknown"), vec![]), jiff::Timestamp::now());
        let keys: Vec<(&str, &str)> = t.iter().map(|t| (t.key.as_str(), t.effect.as_str())).collect();
        assert_eq!(
            keys,
            vec![(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")]
        );
    }

    #[test]
    fn a_ready_node_loses_lifecycle_taints_but_keeps_others() {
        let other = Taint {
            key: "dedicated".into(),
            effect: "NoSchedule".into(),
            ..Taint::default()
        };
        let nr = Taint {
            key: NOT_READY.into(),
            effect: "NoExecute".into(),
            ..Taint::default()
        };
        let t = desired_taints(
            &node(Some("True"), vec![other.clone(), nr]),
            jiff::Timestamp::now(),
        );
        assert_eq!(t, vec![other]);
    }

    #[test]
    fn marking_unknown_sets_upstream_reason_once() {
        let mut n = node(Some("True"), vec![]);
        assert!(mark_unknown(&mut n, jiff::Timestamp::now()));
        let c = ready_condition(&n).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("Unknown", Some("NodeStatusUnknown"))
        );
        assert!(!mark_unknown(&mut n, jiff::Timestamp::now()));
    }
}
