//! Watch delivery latency: one watch on the benchmark's namespace, `writers`
//! tasks each creating a ConfigMap and then updating it back to back. For
//! every write, latency is the time from the write's response arriving to the
//! matching watch event (same name and resourceVersion) arriving; the time
//! from sending the write to the event is reported beside it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::future::join_all;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::core::ObjectMeta;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::error::BenchError;
use crate::stats::LatencySummary;

/// How long the watcher keeps waiting for events after the last write.
const DRAIN: Duration = Duration::from_secs(10);

/// What one watch run measured.
#[derive(Debug, Clone, Serialize)]
pub struct WatchResult {
    /// Concurrent writers.
    pub writers: usize,
    /// Writes answered with success.
    pub writes: usize,
    /// Writes that failed.
    pub write_errors: usize,
    /// Successful writes whose event arrived.
    pub delivered: usize,
    /// Successful writes whose event never arrived within the bound.
    pub missing: usize,
    /// Response-to-event latency of delivered writes.
    pub latency: Option<LatencySummary>,
    /// Request-sent-to-event latency of delivered writes.
    pub latency_from_send: Option<LatencySummary>,
}

/// When a successful write was sent and when its response had been read.
#[derive(Debug, Clone, Copy)]
struct Ack {
    sent: Instant,
    answered: Instant,
}

/// (object name, resourceVersion) → its acknowledgement.
type Acked = HashMap<(String, String), Ack>;

/// (object name, resourceVersion) → when it was seen.
type Seen = HashMap<(String, String), Instant>;

/// Runs `writers` writers doing `writes_each` writes each in `namespace`
/// while one watch observes them; bounded by `limit`.
pub async fn run(
    client: &Client,
    namespace: &str,
    writers: usize,
    writes_each: usize,
    limit: Duration,
) -> Result<WatchResult, BenchError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let prefix = format!("watch-w{writers}-");
    let start_rv = api
        .list_metadata(&ListParams::default().limit(1))
        .await
        .map_err(|e| BenchError::api("listing configmaps for a watch start", e))?
        .metadata
        .resource_version
        .unwrap_or_default();
    let timeout_secs = u32::try_from(limit.as_secs()).unwrap_or(u32::MAX).max(1);
    let stream = api
        .watch(&WatchParams::default().timeout(timeout_secs), &start_rv)
        .await
        .map_err(|e| BenchError::api("opening the watch", e))?;
    let expected = writers * writes_each;
    let (stop_tx, stop_rx) = oneshot::channel();
    let watcher = tokio::spawn(observe(stream.boxed(), prefix.clone(), expected, stop_rx));

    let deadline = Instant::now() + limit;
    let logs = join_all((0..writers).map(|w| {
        let api = api.clone();
        let name = format!("{prefix}{w}");
        tokio::spawn(async move { write(api, name, writes_each, deadline).await })
    }))
    .await;
    let mut acked = Acked::new();
    let mut write_errors = 0;
    for log in logs {
        match log {
            Ok((seen, errors)) => {
                acked.extend(seen);
                write_errors += errors;
            }
            Err(_) => write_errors += 1,
        }
    }
    let mut watcher = watcher;
    let drain_until = tokio::time::Instant::now() + DRAIN;
    let arrived = tokio::select! {
        arrived = &mut watcher => arrived.unwrap_or_default(),
        _ = tokio::time::sleep_until(drain_until) => {
            let _ = stop_tx.send(());
            watcher.await.unwrap_or_default()
        }
    };
    Ok(join(writers, &acked, &arrived, write_errors))
}

/// One writer: creates `name`, then updates it until `writes` writes are done.
async fn write(api: Api<ConfigMap>, name: String, writes: usize, deadline: Instant) -> (Acked, usize) {
    let mut acked = Acked::new();
    let params = PostParams::default();
    let mut current = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..ObjectMeta::default()
        },
        data: Some([("seq".to_string(), "0".to_string())].into()),
        ..ConfigMap::default()
    };
    for seq in 0..writes {
        if Instant::now() >= deadline {
            return (acked, writes - seq);
        }
        let sent = Instant::now();
        let result = if seq == 0 {
            api.create(&params, &current).await
        } else {
            current.data = Some([("seq".to_string(), seq.to_string())].into());
            api.replace(&name, &params, &current).await
        };
        let answered = Instant::now();
        match result {
            Ok(obj) => {
                if let Some(rv) = obj.metadata.resource_version.clone() {
                    acked.insert((name.clone(), rv), Ack { sent, answered });
                }
                current = obj;
            }
            Err(e) => {
                tracing::warn!("watch writer {name}: {e}");
                return (acked, writes - seq);
            }
        }
    }
    (acked, 0)
}

/// Records when each Added/Modified event for an object named `prefix*`
/// arrives, until `expected` have arrived, the stream ends or `stop` fires.
async fn observe(
    mut stream: futures::stream::BoxStream<'static, kube::Result<WatchEvent<ConfigMap>>>,
    prefix: String,
    expected: usize,
    mut stop: oneshot::Receiver<()>,
) -> Seen {
    let mut arrived = Seen::new();
    while arrived.len() < expected {
        let event = tokio::select! {
            event = stream.try_next() => event,
            _ = &mut stop => break,
        };
        let now = Instant::now();
        let obj = match event {
            Ok(Some(WatchEvent::Added(obj) | WatchEvent::Modified(obj))) => obj,
            Ok(Some(WatchEvent::Error(status))) => {
                tracing::warn!("watch error event: {}", status.message);
                break;
            }
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!("watch stream failed: {e}");
                break;
            }
        };
        let (Some(name), Some(rv)) = (obj.metadata.name, obj.metadata.resource_version) else {
            continue;
        };
        if name.starts_with(&prefix) {
            arrived.entry((name, rv)).or_insert(now);
        }
    }
    arrived
}

/// Matches acknowledged writes with arrived events. An event that arrived
/// before the client finished reading the write's response counts as 0.
fn join(writers: usize, acked: &Acked, arrived: &Seen, write_errors: usize) -> WatchResult {
    let (latencies, from_send): (Vec<Duration>, Vec<Duration>) = acked
        .iter()
        .filter_map(|(key, ack)| {
            let seen = arrived.get(key)?;
            Some((
                seen.saturating_duration_since(ack.answered),
                seen.saturating_duration_since(ack.sent),
            ))
        })
        .unzip();
    WatchResult {
        writers,
        writes: acked.len(),
        write_errors,
        delivered: latencies.len(),
        missing: acked.len() - latencies.len(),
        latency: LatencySummary::from_samples(&latencies),
        latency_from_send: LatencySummary::from_samples(&from_send),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(name: &str, rv: u32) -> (String, String) {
        (name.to_string(), rv.to_string())
    }

    #[test]
    fn latency_is_from_response_to_event_and_lost_events_are_counted() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let ack = |sent: u64, answered: u64| Ack {
            sent: t0 + ms(sent),
            answered: t0 + ms(answered),
        };
        let acked: Acked = [
            (key("a", 1), ack(0, 1)),
            (key("a", 2), ack(5, 10)),
            (key("b", 3), ack(19, 20)),
        ]
        .into();
        // rv 2's event came before its response was read; rv 3 never came.
        let arrived: Seen = [
            (key("a", 1), t0 + ms(4)),
            (key("a", 2), t0 + ms(9)),
            (key("x", 9), t0),
        ]
        .into();
        let r = join(2, &acked, &arrived, 1);
        assert_eq!((r.writes, r.delivered, r.missing, r.write_errors), (3, 2, 1, 1));
        let l = r.latency.unwrap();
        assert_eq!(l.max_ms, 3.0);
        assert_eq!(l.p50_ms, 0.0);
        let from_send = r.latency_from_send.unwrap();
        assert_eq!((from_send.p50_ms, from_send.max_ms), (4.0, 4.0));
    }

    #[tokio::test]
    async fn observer_keeps_only_matching_objects_and_stops_at_expected() {
        let cm = |name: &str, rv: &str| ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                resource_version: Some(rv.into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        };
        let events: Vec<kube::Result<WatchEvent<ConfigMap>>> = vec![
            Ok(WatchEvent::Added(cm("watch-w1-0", "5"))),
            Ok(WatchEvent::Added(cm("other", "6"))),
            Ok(WatchEvent::Deleted(cm("watch-w1-0", "7"))),
            Ok(WatchEvent::Modified(cm("watch-w1-0", "8"))),
            Ok(WatchEvent::Modified(cm("watch-w1-0", "9"))),
        ];
        let (_tx, rx) = oneshot::channel();
        let seen = observe(futures::stream::iter(events).boxed(), "watch-w1-".into(), 2, rx).await;
        let mut keys: Vec<_> = seen.into_keys().collect();
        keys.sort();
        assert_eq!(keys, vec![key("watch-w1-0", 5), key("watch-w1-0", 8)]);
    }
}
