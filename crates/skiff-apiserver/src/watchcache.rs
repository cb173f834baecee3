//! The watch cache: ONE store watch on `/registry/` feeding an in-memory cache
//! per storage resource (`pods`, `deployments`, ...). Lists, gets and watches
//! are served from it.
//!
//! Each cached object keeps its serialised bytes with
//! `metadata.resourceVersion` set, so a list is a concatenation, and only the
//! small part of its parsed JSON that label and field selectors read (a full
//! `serde_json::Value` costs about ten times the JSON it came from); the
//! rare readers that need the whole object parse the bytes again. Each resource keeps a bounded history of recent events for
//! watch resume (older revisions: 410 Gone) and a bounded broadcast channel
//! per resource: a watcher that falls too far behind is dropped, never
//! blocking the others.
//!
//! Must not: write to the store or apply API semantics (selectors, tables,
//! conversion are the handlers' job).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use skiff_store::{KeyValue, ListOptions, Revision, Store, WatchEvent};
use tokio::sync::{broadcast, watch};

/// The prefix every API object lives under.
pub const REGISTRY_PREFIX: &str = "/registry/";

/// How many live events each watcher may fall behind before it has to
/// catch up from the history instead.
const WATCHER_BUFFER: usize = 4096;
/// The most bytes (of objects' JSON) one resource's history holds, whatever its event limit.
const HISTORY_BYTES: usize = 64 << 20;

/// One object as the cache holds it.
#[derive(Debug)]
pub struct CachedObject {
    pub key: String,
    /// The fields selectors read (see [`SELECTABLE`]), in the stored object's shape.
    pub fields: Value,
    /// The stored object (storage version) with `metadata.resourceVersion` set, as compact JSON.
    pub json: Bytes,
    pub mod_revision: Revision,
}

/// The paths kept in [`CachedObject::fields`]: labels and every field label
/// of `skiff_api::selector::field` in any kind (and the stored paths that
/// upstream's field labels of events.k8s.io read).
pub const SELECTABLE: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.labels",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "spec.unschedulable",
    "spec.clusterIP",
    "spec.type",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
    "status.replicas",
    "status.succeeded",
    "involvedObject",
    "regarding",
    "reason",
    "reportingComponent",
    "reportingController",
    "source",
    "deprecatedSource",
    "type",
];

/// Copies the [`SELECTABLE`] paths of `obj` into a new, small object.
fn project(obj: &Value) -> Value {
    let mut out = Value::Object(serde_json::Map::new());
    for path in SELECTABLE {
        let mut src = obj;
        let mut found = true;
        for seg in path.split('.') {
            match src.get(seg) {
                Some(v) => src = v,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if !found {
            continue;
        }
        let mut dst = &mut out;
        let mut segs = path.split('.').peekable();
        while let Some(seg) = segs.next() {
            let Some(map) = dst.as_object_mut() else { break };
            if segs.peek().is_none() {
                map.insert(seg.to_string(), src.clone());
                break;
            }
            dst = map
                .entry(seg.to_string())
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
        }
    }
    out
}

impl CachedObject {
    /// Builds a cached object from stored bytes, stamping `revision` as its resourceVersion.
    pub fn from_stored(key: &str, raw: &[u8], revision: Revision) -> Option<CachedObject> {
        let mut value: Value = serde_json::from_slice(raw).ok()?;
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(revision.to_string()));
        }
        let json = Bytes::from(serde_json::to_vec(&value).ok()?);
        Some(CachedObject {
            key: key.to_string(),
            fields: project(&value),
            json,
            mod_revision: revision,
        })
    }

    /// The whole stored object, parsed again from [`CachedObject::json`]
    /// (`Null` if that ever failed, which `from_stored` rules out).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }

    /// `metadata.namespace`, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.fields["metadata"]["namespace"].as_str()
    }

    /// `metadata.name`.
    pub fn name(&self) -> Option<&str> {
        self.fields["metadata"]["name"].as_str()
    }
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Added,
    Modified,
    Deleted,
}

impl EventKind {
    /// The `type` of a watch event.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Added => "ADDED",
            EventKind::Modified => "MODIFIED",
            EventKind::Deleted => "DELETED",
        }
    }
}

/// One change of one cached resource.
#[derive(Debug)]
pub struct CacheEvent {
    pub kind: EventKind,
    /// The new object (for deletions: the last state, stamped with the deletion revision).
    pub object: Arc<CachedObject>,
    /// The object before the change, if it existed.
    pub prev: Option<Arc<CachedObject>>,
    pub revision: Revision,
}

struct Bucket {
    objects: BTreeMap<String, Arc<CachedObject>>,
    history: VecDeque<Arc<CacheEvent>>,
    /// The JSON bytes of the objects of `history`.
    history_bytes: usize,
    /// Every event with a revision greater than this is in `history`.
    history_start: Revision,
    tx: broadcast::Sender<Arc<CacheEvent>>,
}

impl Bucket {
    fn new(history_start: Revision) -> Bucket {
        Bucket {
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_bytes: 0,
            history_start,
            tx: broadcast::channel(WATCHER_BUFFER).0,
        }
    }
}

/// A consistent copy of one resource's objects.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// In ascending key order.
    pub items: Vec<Arc<CachedObject>>,
    /// The cache revision the snapshot reflects.
    pub revision: Revision,
}

/// Why a watch could not start.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WatchStartError {
    /// The requested revision is older than the history kept.
    #[error("too old resource version: {requested} ({oldest})")]
    TooOld { requested: Revision, oldest: Revision },
}

/// A started watch: events to replay, then live events.
pub struct Subscription {
    /// Objects that exist at `revision`, when initial state was asked for.
    pub initial: Vec<Arc<CachedObject>>,
    /// Events after the requested revision already in history.
    pub backlog: Vec<Arc<CacheEvent>>,
    pub rx: broadcast::Receiver<Arc<CacheEvent>>,
    /// The cache revision at subscription time.
    pub revision: Revision,
}

/// The cache of every resource, fed by one store watch.
pub struct WatchCache {
    buckets: RwLock<HashMap<String, Arc<RwLock<Bucket>>>>,
    rev: watch::Sender<Revision>,
    base_rev: RwLock<Revision>,
    ready: AtomicBool,
    history_limit: usize,
    /// Tells the feeding task to stop (and release the store) when the cache is dropped.
    stop: watch::Sender<bool>,
}

impl Drop for WatchCache {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// The storage resource of a key: `/registry/pods/ns/x` -> `pods`.
pub fn resource_of_key(key: &str) -> Option<&str> {
    key.strip_prefix(REGISTRY_PREFIX)?.split('/').next()
}

impl WatchCache {
    /// Creates the cache and starts feeding it from `store`.
    pub fn start(store: Arc<dyn Store>, history_limit: usize) -> Arc<WatchCache> {
        let cache = Arc::new(WatchCache {
            buckets: RwLock::new(HashMap::new()),
            rev: watch::channel(0).0,
            base_rev: RwLock::new(0),
            ready: AtomicBool::new(false),
            history_limit: history_limit.max(1),
            stop: watch::channel(false).0,
        });
        let weak = Arc::downgrade(&cache);
        let mut stop = cache.stop.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                _ = run(weak, store) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        });
        cache
    }

    /// True once the first full list has been loaded.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The newest revision the cache has applied.
    pub fn revision(&self) -> Revision {
        *self.rev.borrow()
    }

    /// Waits until the cache has applied `rev` (true) or `timeout` passed (false).
    pub async fn wait_for(&self, rev: Revision, timeout: Duration) -> bool {
        let mut rx = self.rev.subscribe();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(|r| *r >= rev)).await,
            Ok(Ok(_))
        )
    }

    /// Waits until the cache is ready (true) or `timeout` passed.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.is_ready() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    fn bucket(&self, resource: &str) -> Arc<RwLock<Bucket>> {
        if let Some(b) = self
            .buckets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(resource)
        {
            return b.clone();
        }
        let start = *self.base_rev.read().unwrap_or_else(|e| e.into_inner());
        let mut all = self.buckets.write().unwrap_or_else(|e| e.into_inner());
        all.entry(resource.to_string())
            .or_insert_with(|| Arc::new(RwLock::new(Bucket::new(start))))
            .clone()
    }

    /// The objects of a resource, optionally only those under `/registry/<resource>/<ns>/`.
    pub fn snapshot(&self, resource: &str, namespace: Option<&str>) -> Snapshot {
        let bucket = self.bucket(resource);
        let b = bucket.read().unwrap_or_else(|e| e.into_inner());
        let revision = self.revision();
        let items = match namespace {
            Some(ns) => {
                let prefix = format!("{REGISTRY_PREFIX}{resource}/{ns}/");
                b.objects
                    .range(prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .map(|(_, v)| v.clone())
                    .collect()
            }
            None => b.objects.values().cloned().collect(),
        };
        Snapshot { items, revision }
    }

    /// One object by key.
    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        let resource = resource_of_key(key)?;
        let bucket = self.bucket(resource);
        let b = bucket.read().unwrap_or_else(|e| e.into_inner());
        b.objects.get(key).cloned()
    }

    /// Starts a watch of a resource. `after`: replay events after this revision
    /// from history; `None`: start now with the current objects as initial state.
    pub fn subscribe(
        &self,
        resource: &str,
        after: Option<Revision>,
    ) -> Result<Subscription, WatchStartError> {
        let bucket = self.bucket(resource);
        let b = bucket.read().unwrap_or_else(|e| e.into_inner());
        let revision = self.revision();
        let rx = b.tx.subscribe();
        match after {
            None => Ok(Subscription {
                initial: b.objects.values().cloned().collect(),
                backlog: Vec::new(),
                rx,
                revision,
            }),
            Some(after) if after < b.history_start => Err(WatchStartError::TooOld {
                requested: after,
                oldest: b.history_start,
            }),
            Some(after) => Ok(Subscription {
                initial: Vec::new(),
                backlog: b.history.iter().filter(|e| e.revision > after).cloned().collect(),
                rx,
                revision,
            }),
        }
    }

    fn reset(&self, kvs: Vec<KeyValue>, revision: Revision) {
        let mut fresh: HashMap<String, Bucket> = HashMap::new();
        for kv in kvs {
            let Some(resource) = resource_of_key(&kv.key) else {
                continue;
            };
            let Some(obj) = CachedObject::from_stored(&kv.key, &kv.value, kv.mod_revision) else {
                continue;
            };
            fresh
                .entry(resource.to_string())
                .or_insert_with(|| Bucket::new(revision))
                .objects
                .insert(kv.key, Arc::new(obj));
        }
        *self.base_rev.write().unwrap_or_else(|e| e.into_inner()) = revision;
        let mut all = self.buckets.write().unwrap_or_else(|e| e.into_inner());
        // Dropping the old buckets closes their channels: current watchers end and resume.
        all.clear();
        for (name, bucket) in fresh {
            all.insert(name, Arc::new(RwLock::new(bucket)));
        }
        self.rev.send_replace(revision);
    }

    fn apply(&self, event: WatchEvent) {
        let revision = event.revision();
        let Some(resource) = resource_of_key(event.key()) else {
            self.rev.send_replace(revision);
            return;
        };
        let bucket = self.bucket(resource);
        let mut b = bucket.write().unwrap_or_else(|e| e.into_inner());
        let ev = match event {
            WatchEvent::Put { kv, .. } => {
                let Some(obj) = CachedObject::from_stored(&kv.key, &kv.value, kv.mod_revision) else {
                    tracing::warn!(key = %kv.key, "watch cache: skipping undecodable object");
                    self.rev.send_replace(revision);
                    return;
                };
                let obj = Arc::new(obj);
                let prev = b.objects.insert(kv.key, obj.clone());
                let kind = if prev.is_some() {
                    EventKind::Modified
                } else {
                    EventKind::Added
                };
                CacheEvent {
                    kind,
                    object: obj,
                    prev,
                    revision,
                }
            }
            WatchEvent::Delete { prev, revision } => {
                let old = b.objects.remove(&prev.key);
                let Some(obj) = CachedObject::from_stored(&prev.key, &prev.value, revision) else {
                    self.rev.send_replace(revision);
                    return;
                };
                CacheEvent {
                    kind: EventKind::Deleted,
                    object: Arc::new(obj),
                    prev: old,
                    revision,
                }
            }
        };
        let ev = Arc::new(ev);
        b.history_bytes += ev.object.json.len();
        b.history.push_back(ev.clone());
        while b.history.len() > self.history_limit || b.history_bytes > HISTORY_BYTES {
            let Some(old) = b.history.pop_front() else { break };
            b.history_bytes -= old.object.json.len();
            b.history_start = old.revision;
        }
        let _ = b.tx.send(ev);
        self.rev.send_replace(revision);
    }
}

async fn run(cache: std::sync::Weak<WatchCache>, store: Arc<dyn Store>) {
    loop {
        if cache.strong_count() == 0 {
            return;
        }
        let listed = match store.list(REGISTRY_PREFIX, ListOptions::default()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "watch cache: list failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let revision = listed.revision;
        match cache.upgrade() {
            Some(c) => {
                c.reset(listed.kvs, revision);
                c.ready.store(true, Ordering::Release);
            }
            None => return,
        }
        let mut stream = match store.watch(REGISTRY_PREFIX, revision).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "watch cache: watch failed; relisting");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        while let Some(item) = stream.next().await {
            let Some(c) = cache.upgrade() else { return };
            match item {
                Ok(ev) => c.apply(ev),
                Err(e) => {
                    tracing::warn!(error = %e, "watch cache: store watch ended; relisting");
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn kv(key: &str, rev: Revision, name: &str) -> KeyValue {
        let value =
            serde_json::to_vec(&serde_json::json!({"metadata": {"name": name, "namespace": "d"}})).unwrap();
        KeyValue {
            key: key.into(),
            value: value.into(),
            create_revision: rev,
            mod_revision: rev,
        }
    }

    fn cache(limit: usize) -> WatchCache {
        WatchCache {
            buckets: RwLock::new(HashMap::new()),
            rev: watch::channel(0).0,
            base_rev: RwLock::new(0),
            ready: AtomicBool::new(false),
            history_limit: limit,
            stop: watch::channel(false).0,
        }
    }

    #[test]
    fn objects_carry_their_revision_in_json() {
        let c = cache(10);
        c.reset(vec![kv("/registry/pods/d/a", 3, "a")], 3);
        c.apply(WatchEvent::Put {
            kv: kv("/registry/pods/d/b", 4, "b"),
            prev: None,
        });
        let snap = c.snapshot("pods", Some("d"));
        assert_eq!(snap.revision, 4);
        assert_eq!(snap.items.len(), 2);
        let b: Value = serde_json::from_slice(&snap.items[1].json).unwrap();
        assert_eq!(b["metadata"]["resourceVersion"], "4");
        assert!(c.snapshot("pods", Some("other")).items.is_empty());
    }

    #[test]
    fn watch_resume_replays_history_and_expires_old_revisions() {
        let c = cache(2);
        c.reset(vec![], 1);
        for (i, rev) in [2, 3, 4].into_iter().enumerate() {
            c.apply(WatchEvent::Put {
                kv: kv(&format!("/registry/pods/d/p{i}"), rev, "p"),
                prev: None,
            });
        }
        let sub = c.subscribe("pods", Some(3)).unwrap();
        assert_eq!(sub.backlog.len(), 1);
        assert_eq!(sub.backlog[0].revision, 4);
        assert!(matches!(
            c.subscribe("pods", Some(1)),
            Err(WatchStartError::TooOld { .. })
        ));
        let p = kv("/registry/pods/d/p0", 2, "p");
        c.apply(WatchEvent::Delete { prev: p, revision: 5 });
        let sub = c.subscribe("pods", Some(4)).unwrap();
        assert_eq!(sub.backlog[0].kind, EventKind::Deleted);
        assert_eq!(sub.backlog[0].object.value()["metadata"]["resourceVersion"], "5");
    }

    #[test]
    fn selectors_read_the_same_values_from_the_kept_fields() {
        let pod = serde_json::json!({
            "metadata": {"name": "p", "namespace": "d", "labels": {"app": "x"}, "uid": "u",
                "managedFields": [{"manager": "m"}], "annotations": {"a": "b"}},
            "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "s",
                "serviceAccountName": "sa", "hostNetwork": true, "containers": [{"name": "c"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}],
                "nominatedNodeName": "n2", "conditions": [{"type": "Ready"}]},
        });
        let event = serde_json::json!({
            "metadata": {"name": "e", "namespace": "d"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "d", "uid": "u",
                "apiVersion": "v1", "resourceVersion": "3", "fieldPath": "spec"},
            "regarding": {"kind": "Pod", "name": "p"}, "reason": "Scheduled", "type": "Normal",
            "source": {"component": "sched"}, "deprecatedSource": {"component": "sched"},
            "reportingComponent": "sched", "reportingController": "sched", "message": "long text",
        });
        let misc = serde_json::json!({
            "metadata": {"name": "m"}, "type": "Opaque",
            "spec": {"unschedulable": true, "clusterIP": "10.43.0.1", "type": "ClusterIP"},
            "status": {"phase": "Active", "replicas": 3, "succeeded": 2},
        });
        let registry = skiff_api::registry::Registry::builtin();
        for def in registry.all() {
            let fields = skiff_api::selector::field::kind_fields(def)
                .iter()
                .chain(&["metadata.name", "metadata.namespace"]);
            for field in fields {
                for obj in [&pod, &event, &misc] {
                    let kept = project(obj);
                    assert_eq!(
                        skiff_api::selector::field::field_values(def, &kept, field),
                        skiff_api::selector::field::field_values(def, obj, field),
                        "{} {field}",
                        def.kind
                    );
                    assert_eq!(kept["metadata"].get("labels"), obj["metadata"].get("labels"));
                }
            }
        }
        let kept = project(&pod);
        assert!(kept["metadata"].get("managedFields").is_none());
        assert!(kept["spec"].get("containers").is_none());
    }

    #[tokio::test]
    async fn live_events_reach_subscribers() {
        let c = cache(10);
        c.reset(vec![], 1);
        let mut sub = c.subscribe("configmaps", None).unwrap();
        c.apply(WatchEvent::Put {
            kv: kv("/registry/configmaps/d/x", 2, "x"),
            prev: None,
        });
        let ev = sub.rx.recv().await.unwrap();
        assert_eq!(ev.kind, EventKind::Added);
        assert!(c.wait_for(2, Duration::from_millis(10)).await);
        assert!(!c.wait_for(3, Duration::from_millis(10)).await);
    }
}
