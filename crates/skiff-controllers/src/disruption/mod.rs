//! Disruption controller: keeps each PodDisruptionBudget's status (expected
//! pods from the pods' controllers' scale, desired/current healthy pods,
//! allowed disruptions, the `DisruptionAllowed` condition, awaited
//! evictions) current, as upstream's disruption controller. The eviction
//! subresource of the API server reads that status.
//!
//! A namespace is recomputed soon after one of its budgets or pods changes,
//! and every [`RESYNC`] (so awaited evictions expire).
//!
//! Must not: evict or delete pods.

pub mod status;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::watcher::{self, Event};
use skiff_api::selector::LabelSelector;

use crate::informer::{Informers, namespace_of};
use crate::manager::{ControllerConfig, Error};
use crate::workload_util::controller_of;

/// Every namespace with budgets is recomputed at least this often.
pub const RESYNC: Duration = Duration::from_secs(5);
const BATCH: Duration = Duration::from_millis(200);

enum Signal {
    Budget(String, String),
    BudgetGone(String, String),
    Relist,
    Pod(String),
}

/// Watches budgets (and the manager's shared pod informer) and keeps budget
/// status current, until a watch fails.
pub async fn run_with(informers: Arc<Informers>, _cfg: Arc<ControllerConfig>) -> Result<(), Error> {
    let client = informers.client().clone();
    let budgets = watcher::watcher(
        Api::<PodDisruptionBudget>::all(client.clone()),
        watcher::Config::default(),
    )
    .map_ok(|ev| match ev {
        Event::Init => Some(Signal::Relist),
        Event::Apply(b) | Event::InitApply(b) => Some(Signal::Budget(
            b.metadata.namespace.unwrap_or_default(),
            b.metadata.name.unwrap_or_default(),
        )),
        Event::Delete(b) => Some(Signal::BudgetGone(
            b.metadata.namespace.unwrap_or_default(),
            b.metadata.name.unwrap_or_default(),
        )),
        Event::InitDone => None,
    })
    .boxed();
    let pods = informers
        .all::<Pod>()
        .subscribe()
        .map(|c| Ok(Some(Signal::Pod(namespace_of(&c)))))
        .boxed();
    let mut signals = stream::select(budgets, pods);
    let mut with_budgets: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut dirty: HashSet<String> = HashSet::new();
    let mut batch = tokio::time::interval(BATCH);
    let mut resync = tokio::time::interval(RESYNC);
    loop {
        tokio::select! {
            next = signals.try_next() => {
                let Some(signal) = next? else { return Ok(()) };
                match signal {
                    Some(Signal::Relist) => with_budgets.clear(),
                    Some(Signal::Budget(ns, name)) => {
                        with_budgets.entry(ns.clone()).or_default().insert(name);
                        dirty.insert(ns);
                    }
                    Some(Signal::BudgetGone(ns, name)) => {
                        if let Some(set) = with_budgets.get_mut(&ns) {
                            set.remove(&name);
                        }
                    }
                    Some(Signal::Pod(ns)) if with_budgets.get(&ns).is_some_and(|s| !s.is_empty()) => {
                        dirty.insert(ns);
                    }
                    _ => {}
                }
            }
            _ = batch.tick() => {
                for ns in std::mem::take(&mut dirty) {
                    if let Err(e) = sync_namespace(&client, &ns).await {
                        tracing::warn!(namespace = %ns, error = %e, "disruption: sync failed");
                        dirty.insert(ns);
                    }
                }
            }
            _ = resync.tick() => {
                dirty.extend(with_budgets.iter().filter(|(_, s)| !s.is_empty()).map(|(ns, _)| ns.clone()));
            }
        }
    }
}

/// Replicas of the controllers of a namespace's pods, looked up once per sync.
struct Scales {
    client: kube::Client,
    ns: String,
    /// (kind, name) -> (uid, replicas) of the scaling controller, None if there is none.
    found: HashMap<(String, String), Option<(String, i32)>>,
}

impl Scales {
    async fn lookup(&self, kind: &str, name: &str) -> Result<Option<(String, i32)>, Error> {
        let c = self.client.clone();
        let ns = self.ns.as_str();
        let uid_replicas =
            |uid: Option<String>, r: Option<i32>| Some((uid.unwrap_or_default(), r.unwrap_or(1)));
        Ok(match kind {
            "ReplicaSet" => {
                let Some(rs) = Api::<ReplicaSet>::namespaced(c.clone(), ns).get_opt(name).await? else {
                    return Ok(None);
                };
                match controller_of(&rs.metadata).filter(|r| r.kind == "Deployment") {
                    Some(d) => Api::<Deployment>::namespaced(c, ns)
                        .get_opt(&d.name)
                        .await?
                        .and_then(|d| uid_replicas(d.metadata.uid, d.spec.and_then(|s| s.replicas))),
                    None => uid_replicas(rs.metadata.uid, rs.spec.and_then(|s| s.replicas)),
                }
            }
            "ReplicationController" => Api::<ReplicationController>::namespaced(c, ns)
                .get_opt(name)
                .await?
                .and_then(|rc| uid_replicas(rc.metadata.uid, rc.spec.and_then(|s| s.replicas))),
            "StatefulSet" => Api::<StatefulSet>::namespaced(c, ns)
                .get_opt(name)
                .await?
                .and_then(|s| uid_replicas(s.metadata.uid, s.spec.and_then(|s| s.replicas))),
            _ => None,
        })
    }

    /// The summed replicas of the pods' controllers, or `Err(pod name)` for a
    /// pod without one.
    async fn expected(&mut self, pods: &[&Pod]) -> Result<Result<i32, String>, Error> {
        let mut seen: HashMap<String, i32> = HashMap::new();
        for pod in pods {
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            let Some(owner) = controller_of(&pod.metadata) else {
                return Ok(Err(pod_name));
            };
            let key = (owner.kind.clone(), owner.name.clone());
            if !self.found.contains_key(&key) {
                let v = self.lookup(&owner.kind, &owner.name).await?;
                self.found.insert(key.clone(), v);
            }
            match self.found.get(&key).cloned().flatten() {
                Some((uid, replicas)) => {
                    seen.insert(uid, replicas);
                }
                None => return Ok(Err(pod_name)),
            }
        }
        Ok(Ok(seen.values().sum()))
    }
}

fn needs_scale(pdb: &PodDisruptionBudget) -> bool {
    let spec = pdb.spec.as_ref();
    spec.is_some_and(|s| s.max_unavailable.is_some())
        || matches!(
            spec.and_then(|s| s.min_available.as_ref()),
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(
                _
            ))
        )
}

fn selects(pdb: &PodDisruptionBudget, pod: &Pod) -> bool {
    let sel = pdb
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(serde_json::Value::Null);
    let labels = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| serde_json::to_value(l).ok());
    LabelSelector::from_label_selector(&sel).is_ok_and(|s| s.matches(labels.as_ref()))
}

/// Recomputes every budget of `ns` and writes the statuses that changed
/// (compare-and-swap on resourceVersion: evictions write the same status).
pub async fn sync_namespace(client: &kube::Client, ns: &str) -> Result<(), Error> {
    let api: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns);
    let budgets = api.list(&ListParams::default()).await?.items;
    if budgets.is_empty() {
        return Ok(());
    }
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await?
        .items;
    let mut scales = Scales {
        client: client.clone(),
        ns: ns.to_string(),
        found: HashMap::new(),
    };
    for pdb in budgets {
        let matching: Vec<&Pod> = pods.iter().filter(|p| selects(&pdb, p)).collect();
        let scale = if needs_scale(&pdb) {
            scales.expected(&matching).await?
        } else {
            Ok(0)
        };
        let count = i32::try_from(matching.len()).unwrap_or(i32::MAX);
        let targets = status::targets(&pdb, count, || scale);
        if let Err(e) = &targets {
            tracing::info!(namespace = %ns, budget = ?pdb.metadata.name, error = %e, "disruption: cannot compute expected pods");
        }
        let desired = status::desired_status(&pdb, &matching, &targets, jiff::Timestamp::now());
        if pdb.status.as_ref() == Some(&desired) {
            continue;
        }
        let name = pdb.metadata.name.clone().unwrap_or_default();
        let mut updated = pdb;
        updated.status = Some(desired);
        api.replace_status(&name, &PostParams::default(), &updated)
            .await?;
    }
    Ok(())
}
