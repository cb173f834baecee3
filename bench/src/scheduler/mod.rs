//! `skiff-bench scheduler`: scheduling throughput. Starts simulated nodes
//! in-process (skiff-simnodes, over the public API) unless told to use the
//! nodes already there, creates pods as fast as it can, and measures pods
//! bound per second from the first create to the last binding seen on a
//! watch; reports how evenly pods spread and the control plane's RSS.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde::Serialize;
use serde_json::json;

use crate::error::BenchError;

/// Flags of `skiff-bench scheduler`.
#[derive(Debug, clap::Args)]
pub struct SchedulerArgs {
    /// Kubeconfig of the server (its current context); must point at loopback.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,
    /// Simulated nodes to start (0: use the Ready nodes already registered).
    #[arg(long, default_value_t = 1000)]
    pub nodes: usize,
    /// Pods to create and wait to be bound.
    #[arg(long, default_value_t = 10_000)]
    pub pods: usize,
    /// Concurrent create requests.
    #[arg(long, default_value_t = 128)]
    pub concurrency: usize,
    /// PID of the control-plane process, to report its RSS at the end.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Leave the benchmark namespace (and its pods) in place.
    #[arg(long)]
    pub keep: bool,
    /// Run skiff's scheduler in this process (for a server that does not run one yet).
    #[arg(long)]
    pub in_process_scheduler: bool,
    /// Lease renewal period of the simulated nodes, in seconds (the kubelet's is 10 s;
    /// the server's `--node-monitor-grace-period` must be longer).
    #[arg(long, default_value_t = 10)]
    pub lease_period: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What one run measured.
#[derive(Debug, Serialize)]
pub struct SchedulerReport {
    /// Nodes pods could land on.
    pub nodes: usize,
    /// Pods created.
    pub pods: usize,
    /// Seconds from the first create to the last create's response.
    pub create_seconds: f64,
    /// Seconds from the first create to the last binding seen.
    pub bind_seconds: f64,
    /// Pods bound per second over `bind_seconds`.
    pub pods_bound_per_second: f64,
    /// Fewest pods on one node.
    pub min_pods_per_node: usize,
    /// Most pods on one node.
    pub max_pods_per_node: usize,
    /// Control-plane RSS (KiB) at the end, when a PID was given.
    pub server_rss_kib: Option<u64>,
    /// Control-plane peak RSS (KiB), when a PID was given.
    pub server_hwm_kib: Option<u64>,
    /// RSS (KiB) of this process at the end: the simulated nodes plus the client.
    pub bench_rss_kib: Option<u64>,
    /// CPU seconds (user + system) the control plane used from the first
    /// create to the last binding, when a PID was given: on a shared machine
    /// a steadier figure than the rate (CPU per pod does not depend on how
    /// much of the machine others took).
    pub server_cpu_seconds: Option<f64>,
    /// CPU seconds this process (simulated nodes + client) used over the same span.
    pub bench_cpu_seconds: Option<f64>,
}

/// Runs the benchmark.
pub async fn run(args: &SchedulerArgs) -> Result<SchedulerReport, BenchError> {
    let target = crate::client::connect(&args.kubeconfig).await?;
    let client = target.client;
    let sim = if args.nodes > 0 {
        Some(
            start_nodes(
                client.clone(),
                args.nodes,
                Duration::from_secs(args.lease_period.max(1)),
            )
            .await?,
        )
    } else {
        None
    };
    let nodes = ready_nodes(&client).await?;
    let scheduler = args.in_process_scheduler.then(|| {
        let client = client.clone();
        tokio::spawn(async move {
            let config = skiff_scheduler::SchedulerConfig::default();
            if let Err(e) = skiff_scheduler::run(client, config).await {
                tracing::error!(error = %e, "in-process scheduler stopped");
            }
        })
    });
    let ns = format!("bench-sched-{}", jiff::Timestamp::now().as_second());
    let ns_api: Api<Namespace> = Api::all(client.clone());
    crate::client::create_namespace(&client, &ns).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String, Instant)>();
    let watch = tokio::spawn(watch_bindings(pods.clone(), tx));
    // Let the watch establish before the clock starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server_cpu_start = args.server_pid.and_then(|p| crate::cpu::used(p).ok());
    let bench_cpu_start = crate::cpu::used_by_self().ok();
    let start = Instant::now();
    let failed = futures::stream::iter(0..args.pods)
        .map(|i| {
            let pods = pods.clone();
            async move { pods.create(&PostParams::default(), &bench_pod(i)).await }
        })
        .buffer_unordered(args.concurrency.max(1))
        .filter(|r| futures::future::ready(r.is_err()))
        .count()
        .await;
    let create_seconds = start.elapsed().as_secs_f64();
    if failed > 0 {
        tracing::warn!(failed, "some creates failed");
    }
    let mut per_node: HashMap<String, usize> = HashMap::new();
    let mut bound: HashMap<String, ()> = HashMap::new();
    let mut last = start;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
    while bound.len() < args.pods - failed {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((pod, node, at))) => {
                if bound.insert(pod, ()).is_none() {
                    *per_node.entry(node).or_default() += 1;
                    last = last.max(at);
                }
            }
            Ok(None) | Err(_) => {
                watch.abort();
                return Err(BenchError::Timeout(
                    format!("binding ({} of {} bound)", bound.len(), args.pods),
                    args.timeout,
                ));
            }
        }
    }
    watch.abort();
    let server_cpu_seconds = args
        .server_pid
        .and_then(|p| crate::cpu::used(p).ok())
        .zip(server_cpu_start)
        .map(|(end, begin)| end.saturating_sub(begin).as_secs_f64());
    let bench_cpu_seconds = crate::cpu::used_by_self()
        .ok()
        .zip(bench_cpu_start)
        .map(|(end, begin)| end.saturating_sub(begin).as_secs_f64());
    let bind_seconds = last.duration_since(start).as_secs_f64();
    let mem = args.server_pid.map(crate::rss::sample).transpose()?;
    let bench_mem = crate::rss::sample(std::process::id()).ok();
    if !args.keep {
        let _ = ns_api.delete(&ns, &DeleteParams::default()).await;
    }
    for task in [sim, scheduler].into_iter().flatten() {
        task.abort();
    }
    let min = if per_node.len() < nodes {
        0
    } else {
        per_node.values().copied().min().unwrap_or(0)
    };
    Ok(SchedulerReport {
        nodes,
        pods: args.pods,
        create_seconds,
        bind_seconds,
        pods_bound_per_second: bound.len() as f64 / bind_seconds.max(1e-9),
        min_pods_per_node: min,
        max_pods_per_node: per_node.values().copied().max().unwrap_or(0),
        server_rss_kib: mem.as_ref().map(|m| m.rss_kib),
        server_hwm_kib: mem.and_then(|m| m.hwm_kib),
        bench_rss_kib: bench_mem.map(|m| m.rss_kib),
        server_cpu_seconds,
        bench_cpu_seconds,
    })
}

/// Starts `count` simulated nodes in this process and waits until they are registered.
async fn start_nodes(
    client: kube::Client,
    count: usize,
    lease_period: Duration,
) -> Result<tokio::task::JoinHandle<()>, BenchError> {
    let cfg = skiff_simnodes::SimConfig {
        count,
        lease_period,
        name_prefix: "bench-".into(),
        ..Default::default()
    };
    let health = Arc::new(skiff_simnodes::Health::default());
    let handle = tokio::spawn({
        let client = client.clone();
        async move {
            if let Err(e) = skiff_simnodes::run(client, cfg, health).await {
                tracing::error!(error = %e, "simulated nodes stopped");
            }
        }
    });
    let started = Instant::now();
    while ready_nodes(&client).await? < count {
        if started.elapsed() > Duration::from_secs(600) {
            return Err(BenchError::Timeout("registering nodes".into(), 600));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(handle)
}

async fn ready_nodes(client: &kube::Client) -> Result<usize, BenchError> {
    let api: Api<Node> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| BenchError::api("listing nodes", e))?;
    Ok(list
        .items
        .iter()
        .filter(|n| skiff_simnodes::node::is_ready(n))
        .count())
}

/// Sends (pod, node, time seen) for every pod seen with a nodeName. Lists,
/// then watches from the list's resourceVersion; any watch error (a 410
/// Expired when the server dropped a slow watcher, or one whose history no
/// longer reaches back to the list) starts over with a fresh list, so a
/// watch that fell behind never loops on a stale resourceVersion.
async fn watch_bindings(pods: Api<Pod>, tx: tokio::sync::mpsc::UnboundedSender<(String, String, Instant)>) {
    loop {
        let list = match pods.list(&ListParams::default()).await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(error = %e, "pod list");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let now = Instant::now();
        for pod in list.items {
            if !send_bound(&tx, pod, now) {
                return;
            }
        }
        let rv = list.metadata.resource_version.unwrap_or_default();
        let params = kube::api::WatchParams::default().timeout(290);
        let mut stream = match pods.watch(&params, &rv).await {
            Ok(stream) => stream.boxed(),
            Err(e) => {
                tracing::warn!(error = %e, "pod watch start; listing again");
                continue;
            }
        };
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(kube::api::WatchEvent::Added(p) | kube::api::WatchEvent::Modified(p)) => {
                    if !send_bound(&tx, p, Instant::now()) {
                        return;
                    }
                }
                Ok(kube::api::WatchEvent::Error(e)) => {
                    tracing::warn!(error = %e.message, "pod watch; listing again");
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "pod watch; listing again");
                    break;
                }
            }
        }
    }
}

/// Reports `pod` if it is bound; false once the receiver is gone.
fn send_bound(
    tx: &tokio::sync::mpsc::UnboundedSender<(String, String, Instant)>,
    pod: Pod,
    at: Instant,
) -> bool {
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    match (pod.metadata.name, node) {
        (Some(name), Some(node)) => tx.send((name, node, at)).is_ok(),
        _ => true,
    }
}

fn bench_pod(i: usize) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": format!("p-{i}"), "labels": {"app": "sched-bench"}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]},
    }))
    .unwrap_or_default()
}

/// The report as a short table.
pub fn render(r: &SchedulerReport) -> String {
    let mut out = format!(
        "nodes {}  pods {}\ncreate: {:.2} s ({:.0} pods/s)\nbound:  {:.2} s from first create to last binding = {:.0} pods/s\nspread: {}..{} pods per node\n",
        r.nodes,
        r.pods,
        r.create_seconds,
        r.pods as f64 / r.create_seconds.max(1e-9),
        r.bind_seconds,
        r.pods_bound_per_second,
        r.min_pods_per_node,
        r.max_pods_per_node,
    );
    if let Some(rss) = r.server_rss_kib {
        out.push_str(&format!(
            "control-plane RSS: {} MiB (peak {} MiB)\n",
            rss / 1024,
            r.server_hwm_kib.unwrap_or(rss) / 1024
        ));
    }
    if let Some(rss) = r.bench_rss_kib {
        out.push_str(&format!(
            "bench process RSS (simulated nodes + client): {} MiB\n",
            rss / 1024
        ));
    }
    let per_pod = |cpu: f64| cpu * 1000.0 / r.pods.max(1) as f64;
    if let Some(cpu) = r.server_cpu_seconds {
        out.push_str(&format!(
            "control-plane CPU: {cpu:.1} s ({:.2} ms per pod)\n",
            per_pod(cpu)
        ));
    }
    if let Some(cpu) = r.bench_cpu_seconds {
        out.push_str(&format!(
            "bench process CPU: {cpu:.1} s ({:.2} ms per pod)\n",
            per_pod(cpu)
        ));
    }
    out
}
