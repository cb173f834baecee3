//! Pods bound to this node as real containers. [`run`] watches the node's
//! pods (fieldSelector `spec.nodeName`), keeps one [`worker::Worker`] task
//! per pod (syncs of a pod are serial, pods run in parallel), wakes a
//! worker on every watch event, probe change and runtime change seen by a
//! relist of CRI containers each second (the kubelet's PLEG), and removes
//! sandboxes and containers of pods the API no longer has (orphans, e.g.
//! deleted while the agent was down). A restarted agent adopts what runs:
//! workers read the runtime by pod UID, so nothing is started twice.

pub mod backoff;
pub mod runtime;
pub mod sandbox;
pub mod seams;
mod start;
pub mod status;
mod terminate;
pub mod worker;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_cri::v1::{ListContainersRequest, ListPodSandboxRequest};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;

use crate::config::AgentConfig;
use crate::cri::CriClient;
use crate::labels;
use crate::probes::EventSink;
use worker::{Ctx, Next, Worker};

/// How often the runtime is relisted for changes.
const RELIST: Duration = Duration::from_secs(1);

/// The newest view of a pod a worker acts on: `None` once the API deleted it.
type PodView = Option<Pod>;

/// What wakes a worker: the newest view of its pod and a count of pokes
/// (runtime or probe changes), so a wake by the watch alone can be told
/// apart from a poke.
#[derive(Clone)]
struct Wake {
    view: PodView,
    pokes: u64,
}

/// Live workers by pod UID.
#[derive(Clone, Default)]
struct Workers(Arc<Mutex<HashMap<String, watch::Sender<Wake>>>>);

impl Workers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<Wake>>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn uids(&self) -> HashSet<String> {
        self.lock().keys().cloned().collect()
    }

    /// Wakes the worker of `uid` without new data.
    fn poke(&self, uid: &str) {
        if let Some(tx) = self.lock().get(uid) {
            tx.send_modify(|w| w.pokes = w.pokes.wrapping_add(1));
        }
    }

    /// Hands `view` to the pod's worker, starting one if needed.
    fn dispatch(&self, ctx: &Arc<Ctx>, uid: String, view: PodView) {
        let mut map = self.lock();
        if let Some(tx) = map.get(&uid) {
            tx.send_modify(|w| w.view = view);
            return;
        }
        if view.is_none() {
            return;
        }
        let (tx, rx) = watch::channel(Wake { view, pokes: 0 });
        map.insert(uid.clone(), tx);
        tokio::spawn(worker_task(Worker::new(ctx.clone(), uid), rx, self.clone()));
    }
}

async fn worker_task(mut worker: Worker, mut rx: watch::Receiver<Wake>, workers: Workers) {
    'syncs: loop {
        let (view, pokes) = {
            let wake = rx.borrow_and_update();
            (wake.view.clone(), wake.pokes)
        };
        let wait = match worker.sync(view).await {
            Ok(Next::Done) => break,
            Ok(Next::After(d)) => d,
            Err(e) => {
                tracing::warn!(pod = %worker.uid, error = %e, "pod sync failed");
                Duration::from_secs(1)
            }
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        break 'syncs;
                    }
                    // The watch bringing back the status this worker just
                    // wrote, and nothing else: no need to sync again.
                    let wake = rx.borrow_and_update();
                    if wake.pokes == pokes && wake.view.as_ref().is_some_and(|p| worker.wrote(p)) {
                        continue;
                    }
                    break;
                }
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
    }
    workers.lock().remove(&worker.uid);
}

/// Runs the node's pods until the watch ends (never, in practice).
pub async fn run(
    client: kube::Client,
    cfg: AgentConfig,
    cri: CriClient,
    probes: seams::Probes,
    events: Option<EventSink>,
) {
    let node = cfg.node_name.clone();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        cfg,
        cri: cri.clone(),
        probes: probes.clone(),
        events,
    });
    let workers = Workers::default();
    let listed = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(relist_loop(cri, workers.clone(), listed.clone()));
    let mut changes = probes.subscribe();
    let poked = workers.clone();
    tokio::spawn(async move {
        loop {
            match changes.recv().await {
                Ok(uid) => poked.poke(&uid),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    for uid in poked.uids() {
                        poked.poke(&uid);
                    }
                }
                Err(_) => break,
            }
        }
    });
    let api: Api<Pod> = Api::all(client);
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let mut events = watcher(api, config).default_backoff().boxed();
    let mut seen: HashSet<String> = HashSet::new();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "pod watch");
                continue;
            }
        };
        match event {
            watcher::Event::Init => seen.clear(),
            watcher::Event::InitApply(pod) | watcher::Event::Apply(pod) => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                seen.insert(uid.clone());
                workers.dispatch(&ctx, uid, Some(pod));
            }
            watcher::Event::Delete(pod) => {
                workers.dispatch(&ctx, pod.metadata.uid.clone().unwrap_or_default(), None);
            }
            watcher::Event::InitDone => {
                for uid in workers.uids().difference(&seen) {
                    workers.dispatch(&ctx, uid.clone(), None);
                }
                listed.notify_one();
            }
        }
    }
}

/// Each second: wakes workers whose containers changed state, and removes
/// runtime objects of pods no worker owns (once the first list is in).
async fn relist_loop(cri: CriClient, workers: Workers, listed: Arc<tokio::sync::Notify>) {
    listed.notified().await;
    let mut last: HashMap<String, Vec<(String, i32)>> = HashMap::new();
    let mut ticker = tokio::time::interval(RELIST);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let containers = match cri
            .runtime
            .clone()
            .list_containers(ListContainersRequest { filter: None })
            .await
        {
            Ok(r) => r.into_inner().containers,
            Err(e) => {
                tracing::warn!(error = %e, "relisting containers");
                continue;
            }
        };
        let mut now: HashMap<String, Vec<(String, i32)>> = HashMap::new();
        for c in &containers {
            if let Some(uid) = c.labels.get(labels::POD_UID) {
                now.entry(uid.clone()).or_default().push((c.id.clone(), c.state));
            }
        }
        for list in now.values_mut() {
            list.sort();
        }
        for uid in now.keys().chain(last.keys()).collect::<HashSet<_>>() {
            if now.get(uid) != last.get(uid) {
                workers.poke(uid);
            }
        }
        last = now;
        sweep_orphans(&cri, &workers, &containers).await;
    }
}

/// Removes sandboxes and containers labelled with a pod UID no worker has.
async fn sweep_orphans(cri: &CriClient, workers: &Workers, containers: &[k8s_cri::v1::Container]) {
    let sandboxes = match cri
        .runtime
        .clone()
        .list_pod_sandbox(ListPodSandboxRequest { filter: None })
        .await
    {
        Ok(r) => r.into_inner().items,
        Err(e) => {
            tracing::warn!(error = %e, "listing sandboxes");
            return;
        }
    };
    let owned = workers.uids();
    let orphan = |l: &HashMap<String, String>| l.get(labels::POD_UID).is_some_and(|uid| !owned.contains(uid));
    for s in sandboxes.iter().filter(|s| orphan(&s.labels)) {
        tracing::info!(sandbox = %s.id, pod = ?s.labels.get(labels::POD_NAME), "removing orphaned sandbox");
        if let Err(e) = runtime::remove_sandbox(cri, &s.id).await {
            tracing::warn!(sandbox = %s.id, error = %e, "removing orphaned sandbox");
        }
    }
    for c in containers.iter().filter(|c| orphan(&c.labels)) {
        if let Err(e) = runtime::remove_container(cri, &c.id).await {
            tracing::warn!(container = %c.id, error = %e, "removing orphaned container");
        }
    }
}
