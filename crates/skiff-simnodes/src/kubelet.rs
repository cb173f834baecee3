//! The simulated kubelet's pod loop: one watch of all bound pods
//! (`spec.nodeName!=`), filtered to our nodes, acting on each as
//! [`crate::pods::next_action`] decides, with bounded concurrency.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch};
use tokio::sync::Semaphore;

use crate::config::SimConfig;
use crate::pods::{self, PodAction};
use crate::run::{Health, Nodes};

/// Pods (by uid) with an action in flight, so repeated events do not repeat it.
#[derive(Default)]
struct InFlight {
    started: HashSet<String>,
    completing: HashSet<String>,
    deleting: HashSet<String>,
}

/// Plays the kubelet for every pod bound to one of `nodes` until dropped.
pub async fn pod_loop(client: kube::Client, cfg: Arc<SimConfig>, nodes: Nodes, health: Arc<Health>) {
    let all: Api<Pod> = Api::all(client.clone());
    let limit = Arc::new(Semaphore::new(128));
    let inflight = Arc::new(Mutex::new(InFlight::default()));
    let config = watcher::Config::default().fields("spec.nodeName!=");
    let mut events = watch(all, config).default_backoff().boxed();
    while let Some(ev) = events.next().await {
        let pod = match ev {
            Ok(Event::Apply(pod) | Event::InitApply(pod)) => pod,
            Ok(Event::Delete(pod)) => {
                if let (Some(uid), Ok(mut f)) = (pod.metadata.uid.as_deref(), inflight.lock()) {
                    f.started.remove(uid);
                    f.completing.remove(uid);
                    f.deleting.remove(uid);
                }
                continue;
            }
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "pod watch");
                continue;
            }
        };
        let Some(node_name) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
            continue;
        };
        let Some(sim) = nodes.get(&node_name).cloned() else {
            continue;
        };
        if health.is_stopped(&node_name) {
            continue;
        }
        let (Some(ns), Some(name), Some(uid)) = (
            pod.metadata.namespace.clone(),
            pod.metadata.name.clone(),
            pod.metadata.uid.clone(),
        ) else {
            continue;
        };
        let action = pods::next_action(&pod, jiff::Timestamp::now(), cfg.job_runtime);
        let first = match (&action, inflight.lock()) {
            (PodAction::Nothing, _) | (_, Err(_)) => continue,
            (PodAction::Start, Ok(mut f)) => f.started.insert(uid.clone()),
            (PodAction::CompleteAfter(_), Ok(mut f)) => f.completing.insert(uid.clone()),
            (PodAction::FinishDeletion, Ok(mut f)) => f.deleting.insert(uid.clone()),
        };
        if !first {
            continue;
        }
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let limit = limit.clone();
        let inflight = inflight.clone();
        tokio::spawn(async move {
            if let PodAction::CompleteAfter(delay) = action {
                tokio::time::sleep(delay).await;
            }
            let Ok(_permit) = limit.acquire().await else {
                return;
            };
            let now = jiff::Timestamp::now();
            let result = match action {
                PodAction::Start => {
                    let patch = pods::running_patch(
                        &pod,
                        &sim.host_ip.to_string(),
                        &sim.allocate_ip().to_string(),
                        now,
                    );
                    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map(|_| ())
                }
                PodAction::CompleteAfter(_) => {
                    let patch = pods::succeeded_patch(&pod, now);
                    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map(|_| ())
                }
                PodAction::FinishDeletion => {
                    let params = DeleteParams {
                        grace_period_seconds: Some(0),
                        ..DeleteParams::default()
                    };
                    api.delete(&name, &params).await.map(|_| ())
                }
                PodAction::Nothing => Ok(()),
            };
            match result {
                Ok(()) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => {
                    tracing::warn!(pod = %format!("{ns}/{name}"), error = %e, "updating pod");
                    // Let the next event for this pod try again.
                    if let Ok(mut f) = inflight.lock() {
                        f.started.remove(&uid);
                        f.completing.remove(&uid);
                        f.deleting.remove(&uid);
                    }
                }
            }
        });
    }
}
