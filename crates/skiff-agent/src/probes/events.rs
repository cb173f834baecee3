//! The node agent's events (the prober's, and the pod workers' through the
//! same sink), written as kubelet writes them: source component
//! `kubelet` on the node's host, about the pod with the container's field
//! path, and a repeat of the same reason and message on the same object
//! counted on the first event (`count`, `lastTimestamp`) instead of a new
//! object, so `kubectl describe` shows "(x5 over 40s)". Failures to write
//! are logged, never returned: a probe must not stop for its events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};

/// Most distinct (object, reason, message) keys remembered for counting.
const MAX_KEYS: usize = 4096;

/// Writes one node's events; cheap to clone.
#[derive(Clone)]
pub struct EventSink {
    client: kube::Client,
    host: String,
    seen: Arc<Mutex<HashMap<String, Seen>>>,
}

#[derive(Debug, Clone)]
struct Seen {
    namespace: String,
    name: String,
    count: i32,
}

impl EventSink {
    /// Events reported by `kubelet` on host `node_name`.
    pub fn new(client: kube::Client, node_name: &str) -> EventSink {
        EventSink {
            client,
            host: node_name.to_string(),
            seen: Arc::default(),
        }
    }

    /// Records a Warning event, or counts it on the earlier identical one.
    pub async fn warning(&self, about: &ObjectReference, reason: &str, message: &str) {
        self.record(about, "Warning", reason, message).await;
    }

    /// Records a Normal event (Pulled, Created, Started, Killing, ...), or
    /// counts it on the earlier identical one.
    pub async fn normal(&self, about: &ObjectReference, reason: &str, message: &str) {
        self.record(about, "Normal", reason, message).await;
    }

    /// Records an event of `type_` (`Normal` or `Warning`).
    pub async fn record(&self, about: &ObjectReference, type_: &str, reason: &str, message: &str) {
        let key = format!(
            "{}/{}/{}\u{0}{type_}\u{0}{reason}\u{0}{message}",
            about.uid.as_deref().unwrap_or_default(),
            about.field_path.as_deref().unwrap_or_default(),
            about.name.as_deref().unwrap_or_default()
        );
        let now = Time(jiff::Timestamp::now());
        let earlier = self.bump(&key);
        if let Some(seen) = earlier {
            let api: Api<Event> = Api::namespaced(self.client.clone(), &seen.namespace);
            let patch = serde_json::json!({ "count": seen.count, "lastTimestamp": now });
            match api
                .patch(&seen.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return,
                // Gone (expired or deleted): write a new one below.
                Err(e) => tracing::debug!(reason, error = %e, "could not count event"),
            }
        }
        let namespace = about.namespace.clone().unwrap_or_else(|| "default".to_string());
        let name = format!(
            "{}.{:016x}",
            about.name.as_deref().unwrap_or("pod"),
            rand_suffix()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: about.clone(),
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            type_: Some(type_.to_string()),
            count: Some(1),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            reporting_component: Some("kubelet".to_string()),
            reporting_instance: Some(self.host.clone()),
            source: Some(EventSource {
                component: Some("kubelet".to_string()),
                host: Some(self.host.clone()),
            }),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => self.remember(
                key,
                Seen {
                    namespace,
                    name,
                    count: 1,
                },
            ),
            Err(e) => tracing::debug!(reason, error = %e, "could not record event"),
        }
    }

    /// The earlier event for `key` with its count raised, if there is one.
    fn bump(&self, key: &str) -> Option<Seen> {
        let mut seen = self.seen.lock().ok()?;
        let entry = seen.get_mut(key)?;
        entry.count += 1;
        Some(entry.clone())
    }

    fn remember(&self, key: String, value: Seen) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= MAX_KEYS {
                seen.clear();
            }
            seen.insert(key, value);
        }
    }
}

/// A random-enough name suffix without a dependency: time and a counter.
fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    nanos ^ NEXT.fetch_add(1, Ordering::Relaxed).rotate_left(48)
}
