//! Resource quota controller: keeps every ResourceQuota's `status.hard`
//! equal to `spec.hard` and `status.used` equal to what the namespace's
//! objects use (pods that are not terminal, services, claims, and
//! `count/<resource>` of any kind), as upstream's resourcequota controller.
//!
//! A namespace is recomputed soon after one of its quotas or pods changes
//! and every [`RESYNC`] in any case (other kinds are picked up then). The
//! arithmetic is `skiff_api::quota`'s, shared with quota admission.
//!
//! Must not: refuse anything; admission does that.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{Pod, ResourceQuota};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};
use skiff_api::quota::{Quota, amount};

use crate::informer::{Informers, namespace_of};
use crate::manager::{ControllerConfig, Error};

/// Every namespace with quotas is recomputed at least this often.
pub const RESYNC: Duration = Duration::from_secs(5);
/// Changes are batched for this long before namespaces are recomputed.
const BATCH: Duration = Duration::from_millis(200);

enum Signal {
    /// A quota appeared or changed in a namespace.
    Quota(String, String),
    /// A quota went away.
    QuotaGone(String, String),
    /// Quotas are being listed afresh.
    Relist,
    /// A pod changed in a namespace.
    Pod(String),
}

/// Watches quotas (and the manager's shared pod informer) and keeps quota
/// status current, until a watch fails.
pub async fn run_with(informers: Arc<Informers>, _cfg: Arc<ControllerConfig>) -> Result<(), Error> {
    let client = informers.client().clone();
    let quotas = watcher::watcher(
        Api::<ResourceQuota>::all(client.clone()),
        watcher::Config::default(),
    )
    .map_ok(|ev| match ev {
        Event::Init => vec![Signal::Relist],
        Event::Apply(q) | Event::InitApply(q) => {
            vec![Signal::Quota(
                q.metadata.namespace.unwrap_or_default(),
                q.metadata.name.unwrap_or_default(),
            )]
        }
        Event::Delete(q) => vec![Signal::QuotaGone(
            q.metadata.namespace.unwrap_or_default(),
            q.metadata.name.unwrap_or_default(),
        )],
        Event::InitDone => Vec::new(),
    })
    .boxed();
    let pods = informers
        .all::<Pod>()
        .subscribe()
        .map(|c| Ok(vec![Signal::Pod(namespace_of(&c))]))
        .boxed();
    let mut signals = stream::select(quotas, pods);
    let mut with_quotas: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut dirty: HashSet<String> = HashSet::new();
    let mut kinds = Kinds::default();
    let mut batch = tokio::time::interval(BATCH);
    let mut resync = tokio::time::interval(RESYNC);
    loop {
        tokio::select! {
            next = signals.try_next() => {
                let Some(batch_of) = next? else { return Ok(()) };
                for s in batch_of {
                    match s {
                        Signal::Relist => with_quotas.clear(),
                        Signal::Quota(ns, name) => {
                            with_quotas.entry(ns.clone()).or_default().insert(name);
                            dirty.insert(ns);
                        }
                        Signal::QuotaGone(ns, name) => {
                            if let Some(set) = with_quotas.get_mut(&ns) {
                                set.remove(&name);
                            }
                        }
                        Signal::Pod(ns) if with_quotas.get(&ns).is_some_and(|s| !s.is_empty()) => {
                            dirty.insert(ns);
                        }
                        Signal::Pod(_) => {}
                    }
                }
            }
            _ = batch.tick() => {
                for ns in std::mem::take(&mut dirty) {
                    if let Err(e) = sync_namespace(&client, &mut kinds, &ns).await {
                        tracing::warn!(namespace = %ns, error = %e, "resourcequota: sync failed");
                        dirty.insert(ns);
                    }
                }
            }
            _ = resync.tick() => {
                kinds.resolved.clear();
                dirty.extend(with_quotas.iter().filter(|(_, s)| !s.is_empty()).map(|(ns, _)| ns.clone()));
            }
        }
    }
}

/// API resources of counted kinds, found by discovery and kept until the next resync.
#[derive(Default)]
pub struct Kinds {
    resolved: HashMap<(String, String), Option<ApiResource>>,
}

impl Kinds {
    async fn resolve(&mut self, client: &kube::Client, group: &str, plural: &str) -> Option<ApiResource> {
        let key = (group.to_string(), plural.to_string());
        if let Some(ar) = self.resolved.get(&key) {
            return ar.clone();
        }
        let ar = if group.is_empty() {
            Some(ApiResource {
                group: String::new(),
                version: "v1".into(),
                api_version: "v1".into(),
                kind: String::new(),
                plural: plural.to_string(),
            })
        } else {
            match kube::discovery::group(client, group).await {
                Ok(g) => g
                    .recommended_resources()
                    .into_iter()
                    .map(|(ar, _)| ar)
                    .find(|ar| ar.plural == plural),
                Err(e) => {
                    tracing::debug!(group, error = %e, "resourcequota: group not served");
                    None
                }
            }
        };
        self.resolved.insert(key, ar.clone());
        ar
    }
}

/// Recomputes every quota of `ns` and writes the statuses that changed.
pub async fn sync_namespace(client: &kube::Client, kinds: &mut Kinds, ns: &str) -> Result<(), Error> {
    let api: Api<ResourceQuota> = Api::namespaced(client.clone(), ns);
    let quotas = api.list(&ListParams::default()).await?.items;
    let mut listed: HashMap<(String, String), Vec<Value>> = HashMap::new();
    for q in quotas {
        let raw = serde_json::to_value(&q)?;
        let quota = Quota::from_json(&raw);
        for (group, plural) in quota.kinds() {
            let key = (group.clone(), plural.clone());
            if listed.contains_key(&key) {
                continue;
            }
            let items = match kinds.resolve(client, &group, &plural).await {
                Some(ar) => {
                    let dyn_api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
                    let list = dyn_api.list(&ListParams::default()).await?;
                    list.items
                        .iter()
                        .map(serde_json::to_value)
                        .collect::<Result<Vec<_>, _>>()?
                }
                None => Vec::new(),
            };
            listed.insert(key, items);
        }
        let objects = listed
            .iter()
            .flat_map(|((g, p), items)| items.iter().map(move |o| (p.as_str(), g.as_str(), o)));
        let used = quota.usage(objects, jiff::Timestamp::now());
        let hard = raw["spec"]["hard"].clone();
        let used_json = amount::to_json(&used);
        if raw["status"]["hard"] == hard && raw["status"]["used"] == used_json {
            continue;
        }
        let patch = status_patch(&raw["status"], &hard, &used_json);
        api.patch_status(&quota.name, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
    }
    Ok(())
}

/// A merge patch setting status.hard and status.used, removing stale keys.
fn status_patch(old: &Value, hard: &Value, used: &Value) -> Value {
    let with_removals = |old: &Value, new: &Value| -> Value {
        let mut out = new.as_object().cloned().unwrap_or_default();
        for k in old.as_object().into_iter().flatten().map(|(k, _)| k) {
            out.entry(k.clone()).or_insert(Value::Null);
        }
        Value::Object(out)
    };
    json!({"status": {"hard": with_removals(&old["hard"], hard), "used": with_removals(&old["used"], used)}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_patch_removes_resources_no_longer_limited() {
        let old = json!({"hard": {"pods": "2", "secrets": "1"}, "used": {"pods": "1", "secrets": "0"}});
        let p = status_patch(&old, &json!({"pods": "3"}), &json!({"pods": "1"}));
        assert_eq!(
            p,
            json!({"status": {"hard": {"pods": "3", "secrets": null}, "used": {"pods": "1", "secrets": null}}})
        );
    }
}
