//! Garbage collector: keeps the ownerReferences graph consistent.
//!
//! Every resync it discovers all listable, deletable resources, lists them,
//! and acts as upstream's garbage collector does:
//! - **Background**: a dependent whose owners are all gone is deleted;
//!   dangling references next to a live owner are removed.
//! - **Foreground**: an owner being deleted with the `foregroundDeletion`
//!   finalizer gets its dependents deleted (blocking ones in foreground
//!   too); once no dependent with `blockOwnerDeletion` is left, the finalizer goes.
//! - **Orphan**: an owner being deleted with the `orphan` finalizer has its
//!   reference removed from every dependent, then the finalizer goes.
//!
//! An owner is only judged gone after a live GET confirms it (404, or a
//! different uid under the same name), so an owner created after the scan's
//! list is never mistaken for a deleted one.
//!
//! The graph holds metadata only. Pods, nodes, leases, ReplicaSets and Jobs
//! (the bulk of any cluster) come from the manager's shared informers
//! instead of a list per scan; events are ignored, as upstream's
//! `ignoredResources` does.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node as CoreNode, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, Preconditions,
    PropagationPolicy,
};
use kube::discovery::{Discovery, Scope, verbs};
use serde_json::json;

use crate::informer::{Informers, Watched};
use crate::manager::{ControllerConfig, Error};

/// Upstream's foreground deletion finalizer.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
/// Upstream's orphan finalizer.
pub const ORPHAN_FINALIZER: &str = "orphan";

/// One resource kind the API serves, as found by discovery.
#[derive(Debug, Clone)]
pub struct Resource {
    /// Group, version, kind and plural.
    pub ar: ApiResource,
    /// Namespaced (true) or cluster-scoped.
    pub namespaced: bool,
    /// Supports `deletecollection`.
    pub delete_collection: bool,
}

/// Every resource that can be listed and deleted, preferred version per group.
pub async fn discover(client: &kube::Client) -> Result<Vec<Resource>, Error> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut out = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if caps.supports_operation(verbs::LIST) && caps.supports_operation(verbs::DELETE) {
                out.push(Resource {
                    namespaced: matches!(caps.scope, Scope::Namespaced),
                    delete_collection: caps.supports_operation(verbs::DELETE_COLLECTION),
                    ar,
                });
            }
        }
    }
    Ok(out)
}

/// Whether upstream's garbage collector ignores the kind (`events`, core and
/// `events.k8s.io`): they are many, short-lived and never owners.
fn ignored(r: &Resource) -> bool {
    r.ar.plural == "events" && (r.ar.group.is_empty() || r.ar.group == "events.k8s.io")
}

/// Anything with object metadata (a shared informer's object).
trait HasMeta: Send + Sync {
    fn object_meta(&self) -> &ObjectMeta;
}

impl<K: kube::Resource + Send + Sync> HasMeta for K {
    fn object_meta(&self) -> &ObjectMeta {
        self.meta()
    }
}

/// The metadata of an object in the graph: a listed object's own, or a
/// shared informer's object (no copy).
#[derive(Clone)]
enum Meta {
    Listed(Box<ObjectMeta>),
    Shared(Arc<dyn HasMeta>),
}

impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = match self {
            Meta::Listed(m) => m.as_ref(),
            Meta::Shared(o) => o.object_meta(),
        };
        m.fmt(f)
    }
}

/// A kind the graph takes from a shared informer: (group, kind, snapshot).
type SharedKind = (
    String,
    String,
    Box<dyn Fn() -> Vec<Arc<dyn HasMeta>> + Send + Sync>,
);

fn shared_kind<K: Watched>(informers: &Informers) -> SharedKind {
    let store = informers.all::<K>().store();
    let snapshot = move || {
        store
            .state()
            .into_iter()
            .map(|o| o as Arc<dyn HasMeta>)
            .collect::<Vec<_>>()
    };
    (
        K::group(&()).into_owned(),
        K::kind(&()).into_owned(),
        Box::new(snapshot),
    )
}

/// An object in the graph.
#[derive(Debug, Clone)]
struct Node {
    resource: usize,
    meta: Meta,
}

impl Node {
    fn meta(&self) -> &ObjectMeta {
        match &self.meta {
            Meta::Listed(m) => m,
            Meta::Shared(o) => o.object_meta(),
        }
    }
    fn uid(&self) -> &str {
        self.meta().uid.as_deref().unwrap_or("")
    }
    fn deleting(&self) -> bool {
        self.meta().deletion_timestamp.is_some()
    }
    fn has_finalizer(&self, f: &str) -> bool {
        self.meta()
            .finalizers
            .as_ref()
            .is_some_and(|v| v.iter().any(|x| x == f))
    }
    fn owners(&self) -> &[OwnerReference] {
        self.meta().owner_references.as_deref().unwrap_or(&[])
    }
}

/// Runs the garbage collector with its own pod informer until an error.
pub async fn run(client: kube::Client, cfg: Arc<ControllerConfig>) -> Result<(), Error> {
    run_with(Arc::new(Informers::new(client)), cfg).await
}

/// Runs the garbage collector on the manager's shared informers.
pub async fn run_with(informers: Arc<Informers>, cfg: Arc<ControllerConfig>) -> Result<(), Error> {
    let shared = vec![
        shared_kind::<Pod>(&informers),
        shared_kind::<CoreNode>(&informers),
        shared_kind::<Lease>(&informers),
        shared_kind::<ReplicaSet>(&informers),
        shared_kind::<Job>(&informers),
    ];
    informers.all::<Pod>().ready().await;
    informers.all::<CoreNode>().ready().await;
    informers.all::<Lease>().ready().await;
    informers.all::<ReplicaSet>().ready().await;
    informers.all::<Job>().ready().await;
    loop {
        if let Err(e) = scan_with(informers.client(), &shared).await {
            tracing::warn!(error = %e, "garbage collector scan failed");
        }
        tokio::time::sleep(cfg.gc_resync).await;
    }
}

/// One pass over the whole ownership graph, listing every kind.
pub async fn scan(client: &kube::Client) -> Result<(), Error> {
    scan_with(client, &[]).await
}

/// One pass over the whole ownership graph; the `shared` kinds come from
/// informers, the others from a list each.
async fn scan_with(client: &kube::Client, shared: &[SharedKind]) -> Result<(), Error> {
    let resources = discover(client).await?;
    let mut nodes = Vec::new();
    let mut listed_kinds = HashSet::new();
    for (i, r) in resources.iter().enumerate() {
        if ignored(r) {
            continue;
        }
        if let Some((_, _, snapshot)) = shared
            .iter()
            .find(|(g, k, _)| r.ar.group == *g && r.ar.kind == *k)
        {
            listed_kinds.insert((r.ar.group.clone(), r.ar.kind.clone()));
            nodes.extend(snapshot().into_iter().map(|o| Node {
                resource: i,
                meta: Meta::Shared(o),
            }));
            continue;
        }
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &r.ar);
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                listed_kinds.insert((r.ar.group.clone(), r.ar.kind.clone()));
                nodes.extend(list.items.into_iter().map(|obj| Node {
                    resource: i,
                    meta: Meta::Listed(Box::new(obj.metadata)),
                }));
            }
            Err(e) => tracing::debug!(resource = %r.ar.plural, error = %e, "gc: list failed"),
        }
    }
    let present: HashSet<&str> = nodes.iter().map(Node::uid).collect();
    let mut dependents: HashMap<&str, Vec<&Node>> = HashMap::new();
    for n in &nodes {
        for o in n.owners() {
            dependents.entry(o.uid.as_str()).or_default().push(n);
        }
    }
    let gc = Gc {
        client,
        resources: &resources,
    };
    for owner in nodes.iter().filter(|n| n.deleting()) {
        let deps = dependents.get(owner.uid()).map(Vec::as_slice).unwrap_or(&[]);
        if owner.has_finalizer(ORPHAN_FINALIZER) {
            gc.orphan(owner, deps).await;
        } else if owner.has_finalizer(FOREGROUND_FINALIZER) {
            gc.foreground(owner, deps).await;
        }
    }
    for n in nodes.iter().filter(|n| !n.owners().is_empty() && !n.deleting()) {
        let mut dangling = Vec::new();
        for o in n.owners() {
            if present.contains(o.uid.as_str()) {
                continue;
            }
            let kind = (group_of(&o.api_version), o.kind.clone());
            if listed_kinds.contains(&kind) && gc.owner_gone(n, o).await {
                dangling.push(o.uid.clone());
            }
        }
        match decide(n.owners(), &dangling) {
            Verdict::Keep => {}
            Verdict::Delete => gc.delete(n, PropagationPolicy::Background).await,
            Verdict::DropRefs(keep) => gc.set_owners(n, keep).await,
        }
    }
    Ok(())
}

/// What to do with a dependent given which of its owners are confirmed gone.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Every owner is alive.
    Keep,
    /// Every owner is gone.
    Delete,
    /// Some owners are gone: keep only these references.
    DropRefs(Vec<OwnerReference>),
}

/// Decides a dependent's fate from its references and the gone owners' uids.
pub fn decide(owners: &[OwnerReference], gone: &[String]) -> Verdict {
    if gone.is_empty() {
        return Verdict::Keep;
    }
    let keep: Vec<OwnerReference> = owners
        .iter()
        .filter(|o| !gone.contains(&o.uid))
        .cloned()
        .collect();
    if keep.is_empty() {
        Verdict::Delete
    } else {
        Verdict::DropRefs(keep)
    }
}

fn group_of(api_version: &str) -> String {
    match api_version.split_once('/') {
        Some((g, _)) => g.to_string(),
        None => String::new(),
    }
}

struct Gc<'a> {
    client: &'a kube::Client,
    resources: &'a [Resource],
}

impl Gc<'_> {
    fn api(&self, n: &Node) -> Api<DynamicObject> {
        let r = &self.resources[n.resource];
        match (r.namespaced, n.meta().namespace.as_deref()) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &r.ar),
            _ => Api::all_with(self.client.clone(), &r.ar),
        }
    }

    /// True when a live GET shows the owner does not exist (any more).
    async fn owner_gone(&self, dep: &Node, o: &OwnerReference) -> bool {
        let group = group_of(&o.api_version);
        let Some(r) = self
            .resources
            .iter()
            .find(|r| r.ar.group == group && r.ar.kind == o.kind)
        else {
            return false;
        };
        let api: Api<DynamicObject> = match (r.namespaced, dep.meta().namespace.as_deref()) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &r.ar),
            (true, None) => return true,
            (false, _) => Api::all_with(self.client.clone(), &r.ar),
        };
        match api.get_opt(&o.name).await {
            Ok(None) => true,
            Ok(Some(live)) => live.metadata.uid.as_deref() != Some(o.uid.as_str()),
            Err(_) => false,
        }
    }

    async fn delete(&self, n: &Node, policy: PropagationPolicy) {
        let Some(name) = n.meta().name.as_deref() else {
            return;
        };
        let dp = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions {
                uid: n.meta().uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self.api(n).delete(name, &dp).await {
            Ok(_) => tracing::debug!(name, "gc: deleted dependent"),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => tracing::warn!(name, error = %e, "gc: delete failed"),
        }
    }

    /// Writes `metadata.ownerReferences` (guarded by resourceVersion).
    async fn set_owners(&self, n: &Node, keep: Vec<OwnerReference>) {
        let patch = json!({"metadata": {
            "resourceVersion": n.meta().resource_version,
            "ownerReferences": keep,
        }});
        self.patch(n, patch).await;
    }

    /// Removes finalizer `f` (guarded by resourceVersion).
    async fn drop_finalizer(&self, n: &Node, f: &str) {
        let rest: Vec<&String> = n
            .meta()
            .finalizers
            .iter()
            .flatten()
            .filter(|x| x.as_str() != f)
            .collect();
        let patch = json!({"metadata": {
            "resourceVersion": n.meta().resource_version,
            "finalizers": rest,
        }});
        self.patch(n, patch).await;
    }

    async fn patch(&self, n: &Node, patch: serde_json::Value) {
        let Some(name) = n.meta().name.as_deref() else {
            return;
        };
        match self
            .api(n)
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => tracing::warn!(name, error = %e, "gc: patch failed"),
        }
    }

    async fn orphan(&self, owner: &Node, deps: &[&Node]) {
        for d in deps {
            let keep: Vec<OwnerReference> = d
                .owners()
                .iter()
                .filter(|o| o.uid != owner.uid())
                .cloned()
                .collect();
            self.set_owners(d, keep).await;
        }
        self.drop_finalizer(owner, ORPHAN_FINALIZER).await;
    }

    async fn foreground(&self, owner: &Node, deps: &[&Node]) {
        let mut blocking = 0;
        for d in deps {
            let blocks = d
                .owners()
                .iter()
                .any(|o| o.uid == owner.uid() && o.block_owner_deletion == Some(true));
            if blocks {
                blocking += 1;
            }
            if !d.deleting() {
                let policy = if blocks {
                    PropagationPolicy::Foreground
                } else {
                    PropagationPolicy::Background
                };
                self.delete(d, policy).await;
            }
        }
        if blocking == 0 {
            self.drop_finalizer(owner, FOREGROUND_FINALIZER).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oref(uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: format!("rs-{uid}"),
            uid: uid.into(),
            ..OwnerReference::default()
        }
    }

    #[test]
    fn a_dependent_with_every_owner_gone_is_deleted() {
        assert_eq!(decide(&[oref("a")], &["a".into()]), Verdict::Delete);
    }

    #[test]
    fn a_dependent_with_a_live_owner_only_loses_the_dangling_reference() {
        let v = decide(&[oref("a"), oref("b")], &["a".into()]);
        assert_eq!(v, Verdict::DropRefs(vec![oref("b")]));
    }

    #[test]
    fn a_dependent_with_live_owners_is_kept() {
        assert_eq!(decide(&[oref("a")], &[]), Verdict::Keep);
    }

    #[test]
    fn core_owners_have_the_empty_group() {
        assert_eq!(group_of("v1"), "");
        assert_eq!(group_of("apps/v1"), "apps");
    }
}
