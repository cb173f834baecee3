//! A small event recorder shared by the controllers: writes core/v1 Events
//! about an object, as upstream's recorder does (source component, first and
//! last timestamps, count 1). Failures are logged, never returned: an event
//! that cannot be written must not stop a controller.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, PostParams};

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Informational.
    Normal,
    /// Something went wrong or needs attention.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Writes events under one component name.
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    component: String,
}

impl Recorder {
    /// A recorder reporting as `component` (e.g. `node-controller`).
    pub fn new(client: kube::Client, component: &str) -> Self {
        Recorder {
            client,
            component: component.to_string(),
        }
    }

    /// Records one event about `about`; its namespace is the object's, or
    /// `default` for cluster-scoped objects as upstream does.
    pub async fn record(&self, about: &ObjectReference, kind: EventType, reason: &str, message: &str) {
        let ns = about.namespace.clone().unwrap_or_else(|| "default".to_string());
        let now = jiff::Timestamp::now();
        let base = about.name.as_deref().unwrap_or("object");
        let ev = Event {
            metadata: ObjectMeta {
                name: Some(format!("{base}.{:016x}", rand::random::<u64>())),
                namespace: Some(ns.clone()),
                ..ObjectMeta::default()
            },
            involved_object: about.clone(),
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            type_: Some(kind.as_str().to_string()),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: None,
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.component.clone()),
            action: Some(reason.to_string()),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        if let Err(e) = api.create(&PostParams::default(), &ev).await {
            tracing::debug!(reason, error = %e, "could not record event");
        }
    }
}
