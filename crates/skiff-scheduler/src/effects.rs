//! API writes that are not on the scheduling hot path: `Scheduled` and
//! `FailedScheduling` events (core/v1, reportingComponent
//! default-scheduler), the PodScheduled=False condition, the
//! nominatedNodeName of a preemptor, and the deletion of preemption victims.
//! The scheduling loop sends [`Effect`]s down a channel; a worker performs
//! them with bounded concurrency, logging failures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::mpsc;

use crate::pod_info::PodInfo;

/// One API write.
#[derive(Debug)]
pub enum Effect {
    /// A core/v1 Event about a pod.
    Event {
        /// The pod.
        pod: Arc<PodInfo>,
        /// Normal or Warning.
        kind: &'static str,
        /// Scheduled, FailedScheduling, Preempted.
        reason: &'static str,
        /// Human text.
        message: String,
    },
    /// Set PodScheduled=False/Unschedulable with `message`.
    Unschedulable {
        /// The pod.
        pod: Arc<PodInfo>,
        /// The FitError message.
        message: String,
    },
    /// Set `status.nominatedNodeName`.
    Nominate {
        /// The preemptor.
        pod: Arc<PodInfo>,
        /// Its nominated node.
        node: String,
    },
    /// Delete a preemption victim.
    Evict {
        /// The victim.
        victim: Arc<PodInfo>,
    },
}

/// The condition message is already what we would write.
pub fn has_condition(pod: &Pod, message: &str) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
                    && c.message.as_deref() == Some(message)
            })
        })
}

fn event(pod: &PodInfo, kind: &str, reason: &str, message: String, seq: u64, component: &str) -> Event {
    let now = jiff::Timestamp::now();
    Event {
        metadata: ObjectMeta {
            name: Some(format!(
                "{}.{:x}{:04x}",
                pod.name,
                now.as_nanosecond() as u64,
                seq & 0xffff
            )),
            namespace: Some(pod.namespace.clone()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(pod.name.clone()),
            namespace: Some(pod.namespace.clone()),
            uid: Some(pod.uid.clone()),
            resource_version: pod.pod.metadata.resource_version.clone(),
            ..Default::default()
        },
        reason: Some(reason.into()),
        message: Some(message),
        type_: Some(kind.into()),
        source: Some(EventSource {
            component: Some(component.into()),
            host: None,
        }),
        reporting_component: Some(component.into()),
        reporting_instance: Some(component.into()),
        action: Some(
            if reason == "Scheduled" {
                "Binding"
            } else {
                "Scheduling"
            }
            .into(),
        ),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        ..Default::default()
    }
}

async fn perform(client: kube::Client, effect: Effect, seq: u64, component: &str) {
    let result = match &effect {
        Effect::Event {
            pod,
            kind,
            reason,
            message,
        } => {
            let api: Api<Event> = Api::namespaced(client, &pod.namespace);
            api.create(
                &PostParams::default(),
                &event(pod, kind, reason, message.clone(), seq, component),
            )
            .await
            .map(|_| ())
        }
        Effect::Unschedulable { pod, message } => {
            let api: Api<Pod> = Api::namespaced(client, &pod.namespace);
            let patch = json!({"status": {"conditions": [{
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": null,
                "lastTransitionTime": jiff::Timestamp::now().to_string(),
            }]}});
            api.patch_status(&pod.name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
                .map(|_| ())
        }
        Effect::Nominate { pod, node } => {
            let api: Api<Pod> = Api::namespaced(client, &pod.namespace);
            let patch = json!({"status": {"nominatedNodeName": node}});
            api.patch_status(&pod.name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .map(|_| ())
        }
        Effect::Evict { victim } => {
            let api: Api<Pod> = Api::namespaced(client, &victim.namespace);
            let dp = DeleteParams {
                preconditions: None,
                ..DeleteParams::default()
            };
            api.delete(&victim.name, &dp).await.map(|_| ())
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, ?effect, "scheduler side effect failed");
    }
}

/// Performs effects from `rx` until the channel closes; events name
/// `component` (the scheduler's name) as their source.
pub async fn run_worker(
    client: kube::Client,
    rx: mpsc::UnboundedReceiver<Effect>,
    concurrency: usize,
    component: String,
) {
    let seq = AtomicU64::new(0);
    tokio_stream_from(rx)
        .for_each_concurrent(concurrency.max(1), |effect| {
            let n = seq.fetch_add(1, Ordering::Relaxed);
            let client = client.clone();
            let component = component.as_str();
            async move { perform(client, effect, n, component).await }
        })
        .await;
}

fn tokio_stream_from(mut rx: mpsc::UnboundedReceiver<Effect>) -> impl futures::Stream<Item = Effect> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
