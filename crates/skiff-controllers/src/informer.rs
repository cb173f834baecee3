//! Shared informers: one watch per resource kind for the whole controller
//! manager, each object kept once (as `Arc<K>`, with `managedFields` and
//! other fields no controller reads stripped on arrival), read by every
//! controller through a kube-runtime [`Store`] and fanned out to every
//! subscriber as [`Change`]s.
//!
//! Upstream's controller manager works the same way (one SharedInformer per
//! kind); before this module every controller kept its own reflector with
//! its own typed copy of every pod, and decoded each pod event once per
//! controller.
//!
//! Ordering: an object is in the store before its [`Change`] is delivered;
//! a subscriber that joins late first gets every stored object as
//! [`Change::Applied`]. After a relist (a watch that could not resume) every
//! object is delivered again, and objects that vanished meanwhile are
//! delivered as [`Change::Deleted`] (plain kube-runtime watchers lose those).
//!
//! Must not: write to the API server; decide anything.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::{Stream, StreamExt};
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// The annotation `kubectl apply` leaves on objects; no controller reads it
/// and it can be as large as the object itself.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What happened to one object of a shared informer.
#[derive(Debug)]
pub enum Change<K> {
    /// Created, modified, or (re)listed; the store already holds it.
    Applied(Arc<K>),
    /// Deleted; the last state seen. The store no longer holds it.
    Deleted(Arc<K>),
}

impl<K> Change<K> {
    /// The object the change is about.
    pub fn object(&self) -> &Arc<K> {
        match self {
            Change::Applied(o) | Change::Deleted(o) => o,
        }
    }

    /// The object, consuming the change.
    pub fn into_object(self) -> Arc<K> {
        match self {
            Change::Applied(o) | Change::Deleted(o) => o,
        }
    }
}

/// What a kind must be to have a shared informer.
pub trait Watched:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}
impl<K> Watched for K where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

struct Fanout<K> {
    /// Whether the first list has completed (late subscribers get a snapshot).
    synced: bool,
    subscribers: Vec<UnboundedSender<Change<K>>>,
}

/// One kind's shared store and event fan-out.
pub struct Informer<K: Watched> {
    store: Store<K>,
    fanout: Arc<Mutex<Fanout<K>>>,
    synced: watch::Receiver<bool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Drops the fields no controller reads: `managedFields` and the
/// last-applied annotation.
pub fn strip<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED);
        if a.is_empty() {
            meta.annotations = None;
        }
    }
}

impl<K: Watched> Informer<K> {
    /// Starts watching `api`; the returned handle aborts the watch task.
    fn start(api: Api<K>) -> (Arc<Self>, AbortHandle) {
        let (store, writer) = reflector::store();
        let fanout = Arc::new(Mutex::new(Fanout {
            synced: false,
            subscribers: Vec::new(),
        }));
        let (synced_tx, synced) = watch::channel(false);
        let informer = Arc::new(Informer {
            store: store.clone(),
            fanout: fanout.clone(),
            synced,
        });
        let events = watcher::watcher(api, watcher::Config::default()).default_backoff();
        let task = tokio::spawn(drive(events, writer, store, fanout, synced_tx));
        (informer, task.abort_handle())
    }

    /// The store every controller reads (cheap to clone).
    ///
    /// Wait with [`Informer::ready`], never with `Store::wait_until_ready`:
    /// kube-runtime's readiness wakes only the last of several waiters.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Returns once the first list is in the store (or the watch is gone).
    pub async fn ready(&self) {
        let mut synced = self.synced.clone();
        let _ = synced.wait_for(|s| *s).await;
    }

    /// Every change from now on, preceded by every stored object if the
    /// first list has completed.
    pub fn subscribe(&self) -> impl Stream<Item = Change<K>> + Send + use<K> {
        let (tx, rx) = unbounded_channel();
        let mut fanout = lock(&self.fanout);
        if fanout.synced {
            for obj in self.store.state() {
                let _ = tx.send(Change::Applied(obj));
            }
        }
        fanout.subscribers.push(tx);
        drop(fanout);
        receiver_stream(rx)
    }

    /// Every changed object (applied or deleted), for kube-runtime's
    /// `Controller::for_shared_stream` / `owns_shared_stream`.
    pub fn triggers(&self) -> impl Stream<Item = Arc<K>> + Send + use<K> {
        self.subscribe().map(Change::into_object)
    }
}

fn receiver_stream<T: Send + 'static>(rx: UnboundedReceiver<T>) -> impl Stream<Item = T> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
}

/// Sends `changes` to every live subscriber, forgetting the ones that left.
fn broadcast<K>(fanout: &Mutex<Fanout<K>>, changes: Vec<Change<K>>, synced: bool) {
    let mut f = lock(fanout);
    f.synced |= synced;
    for change in changes {
        f.subscribers.retain(|tx| {
            let copy = match &change {
                Change::Applied(o) => Change::Applied(o.clone()),
                Change::Deleted(o) => Change::Deleted(o.clone()),
            };
            tx.send(copy).is_ok()
        });
    }
}

async fn drive<K: Watched>(
    events: impl Stream<Item = Result<Event<K>, watcher::Error>>,
    mut writer: reflector::store::Writer<K>,
    store: Store<K>,
    fanout: Arc<Mutex<Fanout<K>>>,
    synced: watch::Sender<bool>,
) {
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(e) => e.modify(strip),
            Err(e) => {
                tracing::debug!(kind = %K::kind(&()), error = %e, "informer: watch failed; retrying");
                continue;
            }
        };
        let before: Option<HashMap<ObjectRef<K>, Arc<K>>> = matches!(event, Event::InitDone).then(|| {
            store
                .state()
                .into_iter()
                .map(|o| (ObjectRef::from_obj(o.as_ref()), o))
                .collect()
        });
        writer.apply_watcher_event(&event);
        match event {
            Event::Apply(obj) => {
                let stored = store
                    .get(&ObjectRef::from_obj(&obj))
                    .unwrap_or_else(|| Arc::new(obj));
                broadcast(&fanout, vec![Change::Applied(stored)], false);
            }
            Event::Delete(obj) => broadcast(&fanout, vec![Change::Deleted(Arc::new(obj))], false),
            Event::Init | Event::InitApply(_) => {}
            Event::InitDone => {
                let mut changes: Vec<Change<K>> = before
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(key, _)| store.get(key).is_none())
                    .map(|(_, o)| Change::Deleted(o))
                    .collect();
                changes.extend(store.state().into_iter().map(Change::Applied));
                tracing::debug!(kind = %K::kind(&()), objects = store.len(), "informer: listed");
                broadcast(&fanout, changes, true);
                synced.send_replace(true);
            }
        }
    }
}

/// Started informers by kind and namespace (`None`: cluster-wide).
type Started = HashMap<(TypeId, Option<String>), Arc<dyn Any + Send + Sync>>;

/// The shared informers of one controller manager term: started on first
/// use, one per kind (and namespace), stopped when this is dropped.
pub struct Informers {
    client: kube::Client,
    started: Mutex<Started>,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl Informers {
    /// No informer yet; each starts when a controller first asks for it.
    pub fn new(client: kube::Client) -> Self {
        Informers {
            client,
            started: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// The client the informers watch through (controllers write with it).
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The cluster-wide informer of `K`.
    pub fn all<K: Watched>(&self) -> Arc<Informer<K>> {
        self.get(None, || Api::all(self.client.clone()))
    }

    /// The informer of `K` in one namespace.
    pub fn namespaced<K>(&self, ns: &str) -> Arc<Informer<K>>
    where
        K: Watched + Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    {
        self.get(Some(ns.to_string()), || Api::namespaced(self.client.clone(), ns))
    }

    fn get<K: Watched>(&self, ns: Option<String>, api: impl FnOnce() -> Api<K>) -> Arc<Informer<K>> {
        let mut started = lock(&self.started);
        let key = (TypeId::of::<K>(), ns);
        if let Some(found) = started.get(&key).cloned()
            && let Ok(informer) = found.downcast::<Informer<K>>()
        {
            return informer;
        }
        let (informer, task) = Informer::start(api());
        lock(&self.tasks).push(task);
        started.insert(key, informer.clone());
        informer
    }
}

impl Drop for Informers {
    fn drop(&mut self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}

impl std::fmt::Debug for Informers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Informers")
            .field("started", &lock(&self.started).len())
            .finish()
    }
}

/// The namespace of a changed object ("" for cluster-scoped ones).
pub fn namespace_of<K: Resource>(change: &Change<K>) -> String {
    change.object().namespace().unwrap_or_default()
}

/// A kube-runtime `Controller` of `K` fed by the shared informer of `K`.
pub fn controller<K: Watched>(informers: &Informers) -> kube::runtime::Controller<K> {
    let informer = informers.all::<K>();
    kube::runtime::Controller::for_shared_stream(informer.triggers(), informer.store())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};

    fn cm(name: &str, value: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                managed_fields: Some(vec![ManagedFieldsEntry::default()]),
                annotations: Some([(LAST_APPLIED.to_string(), "{}".to_string())].into()),
                ..ObjectMeta::default()
            },
            data: Some([("k".to_string(), value.to_string())].into()),
            ..ConfigMap::default()
        }
    }

    fn names(changes: &[Change<ConfigMap>]) -> Vec<String> {
        let mut v: Vec<String> = changes
            .iter()
            .map(|c| {
                let kind = if matches!(c, Change::Applied(_)) { "+" } else { "-" };
                format!("{kind}{}", c.object().name_any())
            })
            .collect();
        v.sort();
        v
    }

    /// Runs `events` through an informer with `early` subscribed before
    /// and returns the informer, what `early` saw, and a late subscriber.
    async fn feed(events: Vec<Event<ConfigMap>>) -> (Informer<ConfigMap>, Vec<Change<ConfigMap>>) {
        let (store, writer) = reflector::store();
        let fanout = Arc::new(Mutex::new(Fanout {
            synced: false,
            subscribers: Vec::new(),
        }));
        let (synced_tx, synced) = watch::channel(false);
        let informer = Informer {
            store: store.clone(),
            fanout: fanout.clone(),
            synced,
        };
        let early = informer.subscribe();
        drive(
            futures::stream::iter(events.into_iter().map(Ok)),
            writer,
            store,
            fanout,
            synced_tx,
        )
        .await;
        // The drive task is over: dropping the senders ends `early`.
        lock(&informer.fanout).subscribers.clear();
        let seen: Vec<Change<ConfigMap>> = early.collect().await;
        (informer, seen)
    }

    #[tokio::test]
    async fn objects_are_stored_once_without_managed_fields_and_fanned_out() {
        let (informer, seen) = feed(vec![
            Event::Init,
            Event::InitApply(cm("a", "1")),
            Event::InitDone,
            Event::Apply(cm("b", "1")),
            Event::Apply(cm("a", "2")),
            Event::Delete(cm("b", "1")),
        ])
        .await;
        assert_eq!(names(&seen), ["+a", "+a", "+b", "-b"]);
        let stored = informer.store().state();
        assert_eq!(stored.len(), 1);
        let a = &stored[0];
        assert_eq!(a.data.as_ref().unwrap()["k"], "2");
        assert!(a.metadata.managed_fields.is_none());
        assert!(a.metadata.annotations.is_none());
        // What subscribers get is the stored object itself, not a copy.
        let last_a = seen.iter().rev().find(|c| c.object().name_any() == "a").unwrap();
        assert!(Arc::ptr_eq(last_a.object(), a));
    }

    #[tokio::test]
    async fn a_late_subscriber_first_gets_every_stored_object() {
        let (informer, _) = feed(vec![
            Event::Init,
            Event::InitApply(cm("a", "1")),
            Event::InitApply(cm("b", "1")),
            Event::InitDone,
        ])
        .await;
        informer.ready().await;
        let late = informer.subscribe();
        lock(&informer.fanout).subscribers.clear();
        let seen: Vec<Change<ConfigMap>> = late.collect().await;
        assert_eq!(names(&seen), ["+a", "+b"]);
    }

    #[tokio::test]
    async fn a_relist_reports_objects_deleted_while_the_watch_was_down() {
        let (informer, seen) = feed(vec![
            Event::Init,
            Event::InitApply(cm("a", "1")),
            Event::InitApply(cm("gone", "1")),
            Event::InitDone,
            Event::Init,
            Event::InitApply(cm("a", "1")),
            Event::InitApply(cm("new", "1")),
            Event::InitDone,
        ])
        .await;
        assert_eq!(names(&seen), ["+a", "+a", "+gone", "+new", "-gone"]);
        assert_eq!(informer.store().len(), 2);
    }

    #[test]
    fn strip_keeps_other_annotations() {
        let mut c = cm("a", "1");
        c.metadata
            .annotations
            .get_or_insert_default()
            .insert("keep".into(), "me".into());
        strip(&mut c);
        assert_eq!(
            c.metadata.annotations,
            Some([("keep".to_string(), "me".to_string())].into())
        );
        assert!(c.metadata.managed_fields.is_none());
    }
}
