//! Pod create throughput: `count` creates issued by `concurrency` workers that
//! each keep one request in flight, timing every request and the whole batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Client;
use kube::api::{Api, PostParams};
use serde::Serialize;

use super::fixture;
use crate::stats::{self, LatencySummary};

/// What one create batch measured.
#[derive(Debug, Clone, Serialize)]
pub struct CreateResult {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Pods asked for.
    pub requested: usize,
    /// Creates answered with success.
    pub created: usize,
    /// Creates answered with an error (or not answered).
    pub errors: usize,
    /// The first error, as the client reported it.
    pub first_error: Option<String>,
    /// Whether the time bound cut the batch short.
    pub timed_out: bool,
    /// Wall time of the batch, first request to last answer.
    pub wall_ms: f64,
    /// Successful creates per second of wall time.
    pub per_sec: f64,
    /// Latency of successful creates.
    pub latency: Option<LatencySummary>,
}

#[derive(Default)]
struct WorkerLog {
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
    timed_out: bool,
}

/// Opens `connections` connections before a timed batch by issuing that many
/// concurrent GETs, so TLS handshakes are not counted as create latency.
pub async fn warm_up(client: &Client, namespace: &str, connections: usize) {
    let api: Api<Namespace> = Api::all(client.clone());
    join_all((0..connections).map(|_| api.get(namespace))).await;
}

/// Creates pods `<prefix>-0 .. <prefix>-<count-1>` in `namespace` with
/// `concurrency` requests in flight; stops starting requests at `limit`.
pub async fn run(
    client: &Client,
    namespace: &str,
    prefix: &str,
    count: usize,
    concurrency: usize,
    limit: Duration,
) -> CreateResult {
    let concurrency = concurrency.max(1);
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + limit;
    let workers = (0..concurrency).map(|_| {
        let api = api.clone();
        let next = next.clone();
        let prefix = prefix.to_string();
        tokio::spawn(async move {
            let mut log = WorkerLog::default();
            let params = PostParams::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                if Instant::now() >= deadline {
                    log.timed_out = true;
                    break;
                }
                let body = fixture::pod(&format!("{prefix}-{i}"));
                let sent = Instant::now();
                match tokio::time::timeout_at(deadline.into(), api.create(&params, &body)).await {
                    Ok(Ok(_)) => log.latencies.push(sent.elapsed()),
                    Ok(Err(e)) => {
                        log.errors += 1;
                        log.first_error.get_or_insert_with(|| e.to_string());
                    }
                    Err(_) => {
                        log.errors += 1;
                        log.timed_out = true;
                        break;
                    }
                }
            }
            log
        })
    });
    let logs = join_all(workers).await;
    let wall = start.elapsed();
    summarise(
        concurrency,
        count,
        logs.into_iter().map(|r| r.unwrap_or_default()),
        wall,
    )
}

fn summarise(
    concurrency: usize,
    requested: usize,
    logs: impl Iterator<Item = WorkerLog>,
    wall: Duration,
) -> CreateResult {
    let mut latencies = Vec::with_capacity(requested);
    let (mut errors, mut first_error, mut timed_out) = (0, None, false);
    for log in logs {
        latencies.extend(log.latencies);
        errors += log.errors;
        timed_out |= log.timed_out;
        if first_error.is_none() {
            first_error = log.first_error;
        }
    }
    CreateResult {
        concurrency,
        requested,
        created: latencies.len(),
        errors,
        first_error,
        timed_out,
        wall_ms: stats::millis(wall),
        per_sec: stats::per_second(latencies.len(), wall),
        latency: LatencySummary::from_samples(&latencies),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn worker_logs_are_merged_into_one_result() {
        let a = WorkerLog {
            latencies: vec![Duration::from_millis(10); 3],
            errors: 1,
            first_error: Some("409 AlreadyExists".into()),
            timed_out: false,
        };
        let b = WorkerLog {
            latencies: vec![Duration::from_millis(30)],
            ..WorkerLog::default()
        };
        let r = summarise(2, 5, [a, b].into_iter(), Duration::from_millis(20));
        assert_eq!((r.created, r.errors, r.timed_out), (4, 1, false));
        assert_eq!(r.first_error.as_deref(), Some("409 AlreadyExists"));
        assert_eq!(r.per_sec, 200.0);
        assert_eq!(r.latency.unwrap().max_ms, 30.0);
    }
}
