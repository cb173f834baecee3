//! Pod garbage collector, as upstream's podgc controller: every
//! [`GC_PERIOD`] it force-deletes
//! - terminated pods (Succeeded/Failed) beyond `--terminated-pod-gc-threshold`,
//!   oldest first;
//! - pods bound to a node that no longer exists, once the node has been
//!   missing for [`ORPHAN_GRACE`] and a live GET confirms it (the pod is
//!   first marked Failed with a `DisruptionTarget` condition);
//! - terminating pods that were never scheduled.
//!
//! It reads the manager's shared pod and node informers (no watch of its own).
//!
//! Must not: delete running pods of live nodes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::Store;
use serde_json::json;

use crate::informer::Informers;
use crate::manager::{ControllerConfig, Error};

/// How often the collector looks for pods to delete.
pub const GC_PERIOD: Duration = Duration::from_secs(2);
/// How long a pod's node must be missing before the pod is collected.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(5);

/// What the collector knows of one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node: Option<String>,
    pub terminated: bool,
    pub deleting: bool,
    /// creationTimestamp in seconds (for oldest-first).
    pub created: i64,
}

impl PodInfo {
    fn of(pod: &Pod) -> PodInfo {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        PodInfo {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            node: pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .filter(|n| !n.is_empty()),
            terminated: matches!(phase, Some("Succeeded" | "Failed")),
            deleting: pod.metadata.deletion_timestamp.is_some(),
            created: pod
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(0, |t| t.0.as_second()),
        }
    }

    fn key(&self) -> (String, String) {
        (self.namespace.clone(), self.name.clone())
    }
}

/// Why a pod is collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Over the terminated-pod threshold.
    Terminated,
    /// Its node is gone.
    Orphaned,
    /// Deleted before it was ever scheduled.
    UnscheduledTerminating,
}

/// Terminated pods to delete: the oldest beyond `threshold` (0 disables).
pub fn over_threshold(pods: &[&PodInfo], threshold: usize) -> Vec<PodInfo> {
    if threshold == 0 {
        return Vec::new();
    }
    let mut terminated: Vec<&PodInfo> = pods
        .iter()
        .copied()
        .filter(|p| p.terminated && !p.deleting)
        .collect();
    if terminated.len() <= threshold {
        return Vec::new();
    }
    terminated.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name)));
    let n = terminated.len() - threshold;
    terminated.into_iter().take(n).cloned().collect()
}

/// Pods bound to a node not in `nodes`.
pub fn orphaned<'a>(pods: &[&'a PodInfo], nodes: &HashSet<String>) -> Vec<&'a PodInfo> {
    pods.iter()
        .copied()
        .filter(|p| p.node.as_ref().is_some_and(|n| !nodes.contains(n)))
        .collect()
}

/// Terminating pods without a node.
pub fn unscheduled_terminating<'a>(pods: &[&'a PodInfo]) -> Vec<&'a PodInfo> {
    pods.iter()
        .copied()
        .filter(|p| p.deleting && p.node.is_none())
        .collect()
}

/// Pods (summaries) and node names as the shared informers show them now.
struct View {
    pods: Vec<PodInfo>,
    nodes: HashSet<String>,
}

impl View {
    fn of(pods: &Store<Pod>, nodes: &Store<Node>) -> View {
        View {
            pods: pods.state().iter().map(|p| PodInfo::of(p)).collect(),
            nodes: nodes
                .state()
                .iter()
                .filter_map(|n| n.metadata.name.clone())
                .collect(),
        }
    }
}

/// Runs the collector on the manager's shared pod and node informers.
pub async fn run_with(informers: Arc<Informers>, cfg: Arc<ControllerConfig>) -> Result<(), Error> {
    let (pods, nodes) = (informers.all::<Pod>(), informers.all::<Node>());
    pods.ready().await;
    nodes.ready().await;
    let (pods, nodes) = (pods.store(), nodes.store());
    let mut missing_since: HashMap<(String, String), Instant> = HashMap::new();
    let mut tick = tokio::time::interval(GC_PERIOD);
    loop {
        tick.tick().await;
        let view = View::of(&pods, &nodes);
        collect(
            informers.client(),
            &view,
            cfg.terminated_pod_gc_threshold,
            &mut missing_since,
        )
        .await;
    }
}

async fn collect(
    client: &kube::Client,
    view: &View,
    threshold: usize,
    missing_since: &mut HashMap<(String, String), Instant>,
) {
    let all: Vec<&PodInfo> = view.pods.iter().collect();
    let mut victims: Vec<(PodInfo, Reason)> = over_threshold(&all, threshold)
        .into_iter()
        .map(|p| (p, Reason::Terminated))
        .collect();
    let now = Instant::now();
    let orphans = orphaned(&all, &view.nodes);
    let current: HashSet<(String, String)> = orphans.iter().map(|p| p.key()).collect();
    missing_since.retain(|k, _| current.contains(k));
    let nodes_api: Api<Node> = Api::all(client.clone());
    for p in orphans {
        let since = *missing_since.entry(p.key()).or_insert(now);
        if now.duration_since(since) < ORPHAN_GRACE {
            continue;
        }
        let node = p.node.as_deref().unwrap_or_default();
        match nodes_api.get_opt(node).await {
            Ok(None) => victims.push((p.clone(), Reason::Orphaned)),
            Ok(Some(_)) => {}
            Err(e) => tracing::warn!(node, error = %e, "podgc: could not confirm node is gone"),
        }
    }
    victims.extend(
        unscheduled_terminating(&all)
            .into_iter()
            .map(|p| (p.clone(), Reason::UnscheduledTerminating)),
    );
    for (pod, reason) in victims {
        if let Err(e) = delete(client, &pod, reason).await {
            tracing::warn!(pod = %pod.name, namespace = %pod.namespace, error = %e, "podgc: delete failed");
        }
    }
}

async fn delete(client: &kube::Client, pod: &PodInfo, reason: Reason) -> Result<(), Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    if reason == Reason::Orphaned && !pod.terminated {
        let status = json!({"status": {"phase": "Failed", "conditions": [{
            "type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
            "message": "PodGC: node no longer exists",
            "lastTransitionTime": jiff::Timestamp::now().to_string(),
        }]}});
        if let Err(e) = api
            .patch_status(&pod.name, &PatchParams::default(), &Patch::Strategic(status))
            .await
        {
            tracing::debug!(pod = %pod.name, error = %e, "podgc: could not mark pod Failed");
        }
    }
    tracing::info!(pod = %pod.name, namespace = %pod.namespace, ?reason, "podgc: deleting pod");
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(pod.uid.clone()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&pod.name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, node: Option<&str>, terminated: bool, created: i64) -> PodInfo {
        PodInfo {
            namespace: "ns".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            node: node.map(Into::into),
            terminated,
            deleting: false,
            created,
        }
    }

    #[test]
    fn the_oldest_terminated_pods_beyond_the_threshold_go() {
        let pods = [
            info("new", Some("n"), true, 30),
            info("old", Some("n"), true, 10),
            info("mid", Some("n"), true, 20),
            info("running", Some("n"), false, 1),
        ];
        let refs: Vec<&PodInfo> = pods.iter().collect();
        let names: Vec<String> = over_threshold(&refs, 1).into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["old", "mid"]);
        assert!(over_threshold(&refs, 3).is_empty());
        assert!(over_threshold(&refs, 0).is_empty());
    }

    #[test]
    fn pods_of_missing_nodes_are_orphans_and_unscheduled_deletes_are_collected() {
        let mut gone = info("gone", None, false, 1);
        gone.deleting = true;
        let pods = [
            info("a", Some("live"), false, 1),
            info("b", Some("dead"), false, 1),
            info("c", None, false, 1),
            gone,
        ];
        let refs: Vec<&PodInfo> = pods.iter().collect();
        let nodes: HashSet<String> = ["live".to_string()].into();
        let o: Vec<&str> = orphaned(&refs, &nodes).iter().map(|p| p.name.as_str()).collect();
        assert_eq!(o, ["b"]);
        let u: Vec<&str> = unscheduled_terminating(&refs)
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(u, ["gone"]);
    }
}
