//! Container probes and lifecycle hooks (kubelet's prober and hook runner).
//!
//! [`ProbeManager`] keeps one task per probed container running its
//! startup, liveness and readiness probes ([`worker`]), and answers the
//! agent core's question "is this container started, ready, or to be
//! restarted?" ([`ProbeState`]); [`ProbeManager::subscribe`] tells it when
//! an answer changed. [`run_handler`] runs a postStart/preStop hook.
//! Must not: restart or kill containers, or write pod status: the agent
//! core does that from the state here.

pub mod action;
pub mod events;
pub mod grpc;
pub mod handler;
pub mod http;
pub mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Container, ObjectReference, Pod};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

pub use events::EventSink;
pub use handler::{HandlerError, run_handler, run_handler_with_ports};
use worker::{Results, Shared, Worker};

use crate::CriClient;

/// How many unread result changes a subscriber may fall behind by.
const NOTIFY_CAPACITY: usize = 1024;

/// What the probes say about one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeState {
    /// The startup probe passed, or the container has none (`started` in
    /// its containerStatus).
    pub started: bool,
    /// Started and the readiness probe passes, or there is none (`ready`).
    pub ready: bool,
    /// The startup or liveness probe failed `failureThreshold` times in a
    /// row: the container must be restarted.
    pub liveness_failed: bool,
    /// With `liveness_failed`: kubelet's message for the Killing event,
    /// "Container app failed liveness probe, will be restarted".
    pub restart_message: Option<String>,
}

/// Runs every probed container's probes; clones share one manager.
#[derive(Clone)]
pub struct ProbeManager {
    inner: Arc<Inner>,
}

struct Inner {
    cri: CriClient,
    events: Option<EventSink>,
    notify: broadcast::Sender<String>,
    containers: Mutex<HashMap<(String, String), Entry>>,
}

/// One added container: its id, results and probe task.
struct Entry {
    container_id: String,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl ProbeManager {
    /// A manager probing through `cri`, writing no events.
    pub fn new(cri: CriClient) -> ProbeManager {
        ProbeManager::build(cri, None)
    }

    /// A manager that also records kubelet's probe events (`Unhealthy`,
    /// `ProbeWarning`) through `events`.
    pub fn with_events(cri: CriClient, events: EventSink) -> ProbeManager {
        ProbeManager::build(cri, Some(events))
    }

    fn build(cri: CriClient, events: Option<EventSink>) -> ProbeManager {
        let (notify, _) = broadcast::channel(NOTIFY_CAPACITY);
        ProbeManager {
            inner: Arc::new(Inner {
                cri,
                events,
                notify,
                containers: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Starts probing the running container `container_id` of `pod`'s
    /// container `container_name`. Call it for every running container,
    /// probed or not: a container never added reads as not started and not
    /// ready. Adding the same container id again does nothing; a new id
    /// (a restarted container) starts over from fresh results.
    pub fn add(&self, pod: &Pod, container_name: &str, container_id: &str, pod_ip: Option<&str>) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let key = (uid.clone(), container_name.to_string());
        let Ok(mut containers) = self.inner.containers.lock() else {
            return;
        };
        if containers
            .get(&key)
            .is_some_and(|e| e.container_id == container_id)
        {
            return;
        }
        let container = find_container(pod, container_name);
        let probe =
            |f: fn(&Container) -> Option<&k8s_openapi::api::core::v1::Probe>| container.and_then(f).cloned();
        let (startup, liveness, readiness) = (
            probe(|c| c.startup_probe.as_ref()),
            probe(|c| c.liveness_probe.as_ref()),
            probe(|c| c.readiness_probe.as_ref()),
        );
        let shared = Arc::new(Shared::new(Results {
            started: startup.is_none(),
            ready: readiness.is_none(),
            liveness_failed: false,
            restart_message: None,
        }));
        let task = (startup.is_some() || liveness.is_some() || readiness.is_some()).then(|| {
            let worker = Worker {
                cri: self.inner.cri.clone(),
                pod_uid: uid.clone(),
                container_name: container_name.to_string(),
                container_id: container_id.to_string(),
                pod_ip: pod_ip.map(str::to_string),
                ports: container.and_then(|c| c.ports.clone()).unwrap_or_default(),
                startup,
                liveness,
                readiness,
                shared: shared.clone(),
                notify: self.inner.notify.clone(),
                events: self
                    .inner
                    .events
                    .clone()
                    .map(|sink| (sink, object_ref(pod, container_name))),
            };
            tokio::spawn(worker.run())
        });
        containers.insert(
            key,
            Entry {
                container_id: container_id.to_string(),
                shared,
                task,
            },
        );
        drop(containers);
        let _ = self.inner.notify.send(uid);
    }

    /// Stops the container's probes and forgets its results.
    pub fn remove(&self, pod_uid: &str, container_name: &str) {
        if let Ok(mut containers) = self.inner.containers.lock() {
            containers.remove(&(pod_uid.to_string(), container_name.to_string()));
        }
    }

    /// Stops and forgets every container of a pod.
    pub fn remove_pod(&self, pod_uid: &str) {
        if let Ok(mut containers) = self.inner.containers.lock() {
            containers.retain(|(uid, _), _| uid != pod_uid);
        }
    }

    /// The container's current state; the default (nothing started or
    /// ready) for a container not added.
    pub fn state(&self, pod_uid: &str, container_name: &str) -> ProbeState {
        let Ok(containers) = self.inner.containers.lock() else {
            return ProbeState::default();
        };
        let key = (pod_uid.to_string(), container_name.to_string());
        let Some(results) = containers
            .get(&key)
            .and_then(|e| e.shared.results.lock().ok().map(|r| r.clone()))
        else {
            return ProbeState::default();
        };
        ProbeState {
            started: results.started,
            ready: results.started && results.ready && !results.liveness_failed,
            liveness_failed: results.liveness_failed,
            restart_message: results.restart_message,
        }
    }

    /// The id of the container being probed under that name, if any.
    pub fn container_id(&self, pod_uid: &str, container_name: &str) -> Option<String> {
        let containers = self.inner.containers.lock().ok()?;
        let key = (pod_uid.to_string(), container_name.to_string());
        containers.get(&key).map(|e| e.container_id.clone())
    }

    /// A receiver of pod uids whose probe results changed (or whose
    /// container was added). A lagging receiver should resync every pod.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.inner.notify.subscribe()
    }
}

/// The container of that name: a regular one, or a restartable (sidecar) init container.
fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers.iter().find(|c| c.name == name).or_else(|| {
        spec.init_containers
            .iter()
            .flatten()
            .find(|c| c.name == name && c.restart_policy.as_deref() == Some("Always"))
    })
}

/// The pod as events name it, pointing at the container's spec.
fn object_ref(pod: &Pod, container_name: &str) -> ObjectReference {
    let is_init = pod
        .spec
        .as_ref()
        .is_some_and(|s| !s.containers.iter().any(|c| c.name == container_name));
    let list = if is_init { "initContainers" } else { "containers" };
    ObjectReference {
        api_version: Some("v1".to_string()),
        kind: Some("Pod".to_string()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        field_path: Some(format!("spec.{list}{{{container_name}}}")),
    }
}
