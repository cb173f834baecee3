//! ResourceQuota admission: a create that would take a namespace's usage
//! over any of its quotas is refused with 403 Forbidden and upstream's
//! message (`pods "x" is forbidden: exceeded quota: q1, requested: pods=1,
//! used: pods=2, limited: pods=2`).
//!
//! Usage is computed here from the watch cache (not from the controller's
//! `status.used`, which lags), and checks of one namespace are serialised:
//! the returned guard is held until the new object is in the cache, so two
//! quick creates cannot both take the last unit.
//!
//! Must not: write quota status; the resource quota controller does that.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;
use skiff_api::quota::{self, Quota, ResourceList};
use skiff_api::registry::ResourceDef;
use skiff_api::status::{ApiError, qualified_resource};
use tokio::sync::OwnedMutexGuard;

use crate::server::ApiServer;

/// Held while a create that quotas cover is written; dropping it lets the
/// next create of the namespace be checked.
pub type QuotaGuard = Option<OwnedMutexGuard<()>>;

type LockTable = Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>;

/// One lock per namespace that has quotas. Process-wide: servers sharing a
/// process only ever wait on each other a little longer.
fn namespace_lock(ns: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<LockTable> = OnceLock::new();
    let table = LOCKS.get_or_init(Default::default);
    let mut t = table.lock().unwrap_or_else(|e| e.into_inner());
    t.entry(ns.to_string()).or_default().clone()
}

fn quotas_of(server: &ApiServer, ns: &str) -> Vec<Quota> {
    let mut quotas: Vec<Quota> = server
        .cache
        .snapshot("resourcequotas", Some(ns))
        .items
        .iter()
        .map(|o| Quota::from_json(&o.value()))
        .filter(|q| !q.hard.is_empty())
        .collect();
    quotas.sort_by(|a, b| a.name.cmp(&b.name));
    quotas
}

fn storage_of<'a>(server: &'a ApiServer, group: &str, plural: &str) -> Option<&'a ResourceDef> {
    server
        .registry
        .all()
        .iter()
        .find(|r| r.group == group && r.plural == plural)
}

/// The usage of `quota` by the objects in `ns` as the watch cache has them.
pub fn usage_in_cache(server: &ApiServer, ns: &str, quota: &Quota) -> ResourceList {
    let mut objects: Vec<(&'static str, &'static str, Arc<crate::watchcache::CachedObject>)> = Vec::new();
    for (group, plural) in quota.kinds() {
        let Some(def) = storage_of(server, &group, &plural) else {
            continue;
        };
        for item in server.cache.snapshot(def.storage_resource, Some(ns)).items {
            objects.push((def.plural, def.group, item));
        }
    }
    let values: Vec<(&str, &str, serde_json::Value)> =
        objects.iter().map(|(p, g, o)| (*p, *g, o.value())).collect();
    quota.usage(values.iter().map(|(p, g, v)| (*p, *g, v)), jiff::Timestamp::now())
}

/// Checks a create of `obj` (defaulted and validated) against the quotas of
/// its namespace. Returns a guard to hold until the object is written and
/// visible in the watch cache.
pub async fn admit_create(
    server: &ApiServer,
    def: &ResourceDef,
    namespace: Option<&str>,
    name: &str,
    obj: &Value,
) -> Result<QuotaGuard, ApiError> {
    let Some(ns) = namespace else {
        return Ok(None);
    };
    if quotas_of(server, ns).is_empty() {
        return Ok(None);
    }
    let guard = namespace_lock(ns).lock_owned().await;
    // Read quotas and usage again under the lock: an earlier create may have landed.
    let checked: Vec<(Quota, ResourceList)> = quotas_of(server, ns)
        .into_iter()
        .filter(|q| q.matches(def.plural, def.group, obj))
        .map(|q| {
            let used = usage_in_cache(server, ns, &q);
            (q, used)
        })
        .collect();
    if checked.is_empty() {
        return Ok(None);
    }
    match quota::admit(&checked, def.plural, def.group, obj) {
        Ok(()) => Ok(Some(guard)),
        Err(denial) => {
            let mut err = ApiError::forbidden(format!(
                "{} \"{name}\" is forbidden: {denial}",
                qualified_resource(def.plural, def.group)
            ));
            err.name = Some(name.to_string());
            err.group = Some(def.group.to_string());
            err.kind = Some(def.plural.to_string());
            Err(err)
        }
    }
}
