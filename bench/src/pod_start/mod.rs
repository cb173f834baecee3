//! `skiff-bench pod-start`: pod start latency on a node with a real agent.
//! Measures create → Running (as a watch sees it; the image is already
//! present) for pods created one by one and for a burst created at once,
//! the node agent's RSS with the burst running, and beside them the raw
//! containerd floor ([`floor`]): RunPodSandbox + CreateContainer +
//! StartContainer timed directly over CRI on the same machine.

mod floor;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher::{self, Event};
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::error::BenchError;
use crate::stats::LatencySummary;

/// Flags of `skiff-bench pod-start`.
#[derive(Debug, clap::Args)]
pub struct PodStartArgs {
    /// Kubeconfig of the server (its current context); must point at loopback.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,
    /// Pods created one by one (and, without `--burst`, at once).
    #[arg(long, default_value_t = 50)]
    pub pods: usize,
    /// Pods created all at once (default: `--pods`).
    #[arg(long)]
    pub burst: Option<usize>,
    /// Image of the pods; must already be on the node.
    #[arg(long, default_value = "skiff.local/busybox:1")]
    pub image: String,
    /// PID of the node agent (`skiff agent` as its own process) for its RSS.
    #[arg(long)]
    pub agent_pid: Option<u32>,
    /// containerd's socket: also time the raw CRI floor there.
    #[arg(long, value_name = "SOCKET")]
    pub cri_socket: Option<PathBuf>,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What one run measured.
#[derive(Debug, Serialize)]
pub struct PodStartReport {
    /// Pods created one by one.
    pub pods: usize,
    /// Pods created all at once.
    pub burst_pods: usize,
    /// create → Running, pods created one after the other.
    pub one_by_one: Option<LatencySummary>,
    /// create → Running, all pods created at once.
    pub burst: Option<LatencySummary>,
    /// Seconds from the first create of the burst until all were Running.
    pub burst_all_running_seconds: f64,
    /// Agent RSS (KiB) with the burst's pods running.
    pub agent_rss_kib: Option<u64>,
    /// Agent peak RSS (KiB).
    pub agent_hwm_kib: Option<u64>,
    /// RunPodSandbox + CreateContainer + StartContainer over CRI, one by one.
    pub cri_floor: Option<LatencySummary>,
    /// The same over CRI, all pods at once.
    pub cri_floor_burst: Option<LatencySummary>,
    /// Seconds until every pod of the CRI burst was started.
    pub cri_floor_burst_all_seconds: Option<f64>,
    /// The 1-minute load average when the run ended.
    pub load_average: Option<f64>,
}

/// Runs the benchmark.
pub async fn run(args: &PodStartArgs) -> Result<PodStartReport, BenchError> {
    let client = crate::client::connect(&args.kubeconfig).await?.client;
    let ns = format!("bench-start-{}", jiff::Timestamp::now().as_second());
    let ns_api: Api<Namespace> = Api::all(client.clone());
    crate::client::create_namespace(&client, &ns).await?;
    let result = measure(args, &client, &ns).await;
    let _ = ns_api.delete(&ns, &DeleteParams::default()).await;
    result
}

async fn measure(args: &PodStartArgs, client: &kube::Client, ns: &str) -> Result<PodStartReport, BenchError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    wait_service_account(client, ns).await?;
    let (tx, mut running) = unbounded_channel();
    let watch = tokio::spawn(watch_running(pods.clone(), tx));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let timeout = Duration::from_secs(args.timeout);

    let mut one_by_one = Vec::with_capacity(args.pods);
    for i in 0..args.pods {
        let name = format!("seq-{i}");
        let start = Instant::now();
        create(&pods, &bench_pod(&name, &args.image)).await?;
        let seen = wait_running(&mut running, &[name], timeout).await?;
        one_by_one.extend(seen.values().map(|at| at.duration_since(start)));
    }
    // The one-by-one pods go away so the burst starts from the same node state.
    for i in 0..args.pods {
        let _ = pods.delete(&format!("seq-{i}"), &DeleteParams::default()).await;
    }
    wait_gone(&pods, timeout).await?;

    let burst_pods = args.burst.unwrap_or(args.pods);
    let names: Vec<String> = (0..burst_pods).map(|i| format!("burst-{i}")).collect();
    let start = Instant::now();
    let created: Vec<(String, Instant)> = futures::stream::iter(names.iter().cloned())
        .map(|name| {
            let pods = pods.clone();
            let image = args.image.clone();
            async move {
                let at = Instant::now();
                create(&pods, &bench_pod(&name, &image))
                    .await
                    .map(|()| (name, at))
            }
        })
        .buffer_unordered(burst_pods.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let seen = wait_running(&mut running, &names, timeout).await?;
    watch.abort();
    let created: HashMap<String, Instant> = created.into_iter().collect();
    let burst: Vec<Duration> = seen
        .iter()
        .filter_map(|(name, at)| created.get(name).map(|c| at.duration_since(*c)))
        .collect();
    let all_running = seen.values().max().map(|last| last.duration_since(start));
    // Let the agent settle with every pod running before its memory is read.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mem = args.agent_pid.map(crate::rss::sample).transpose()?;
    let floor = match &args.cri_socket {
        Some(socket) => Some(floor::measure(socket, &args.image, args.pods, burst_pods).await?),
        None => None,
    };
    Ok(PodStartReport {
        pods: args.pods,
        burst_pods,
        one_by_one: LatencySummary::from_samples(&one_by_one),
        burst: LatencySummary::from_samples(&burst),
        burst_all_running_seconds: all_running.unwrap_or_default().as_secs_f64(),
        agent_rss_kib: mem.as_ref().map(|m| m.rss_kib),
        agent_hwm_kib: mem.and_then(|m| m.hwm_kib),
        cri_floor: floor
            .as_ref()
            .and_then(|f| LatencySummary::from_samples(&f.one_by_one)),
        cri_floor_burst: floor
            .as_ref()
            .and_then(|f| LatencySummary::from_samples(&f.burst)),
        cri_floor_burst_all_seconds: floor.as_ref().map(|f| f.burst_all.as_secs_f64()),
        load_average: load_average(),
    })
}

async fn create(pods: &Api<Pod>, pod: &Pod) -> Result<(), BenchError> {
    pods.create(&PostParams::default(), pod)
        .await
        .map(|_| ())
        .map_err(|e| BenchError::api("creating a pod", e))
}

/// Pods need the namespace's default ServiceAccount (admission checks it).
async fn wait_service_account(client: &kube::Client, ns: &str) -> Result<(), BenchError> {
    let api: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(client.clone(), ns);
    for _ in 0..200 {
        if api.get_opt("default").await.ok().flatten().is_some() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(BenchError::Timeout("the default service account".into(), 10))
}

/// Waits until every pod of `names` was seen Running; returns when each was.
async fn wait_running(
    rx: &mut UnboundedReceiver<(String, Instant)>,
    names: &[String],
    timeout: Duration,
) -> Result<HashMap<String, Instant>, BenchError> {
    let mut seen = HashMap::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while seen.len() < names.len() {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((name, at))) => {
                if names.contains(&name) {
                    seen.entry(name).or_insert(at);
                }
            }
            Ok(None) | Err(_) => {
                return Err(BenchError::Timeout(
                    format!("pods Running ({} of {})", seen.len(), names.len()),
                    timeout.as_secs(),
                ));
            }
        }
    }
    Ok(seen)
}

async fn wait_gone(pods: &Api<Pod>, timeout: Duration) -> Result<(), BenchError> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        let left = pods
            .list(&Default::default())
            .await
            .map_err(|e| BenchError::api("listing pods", e))?;
        if left.items.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(BenchError::Timeout(
        "deleting the one-by-one pods".into(),
        timeout.as_secs(),
    ))
}

/// Sends (pod, time seen) whenever a pod is seen with phase Running.
async fn watch_running(pods: Api<Pod>, tx: UnboundedSender<(String, Instant)>) {
    let mut events = watcher::watcher(pods, watcher::Config::default()).boxed();
    while let Some(ev) = events.next().await {
        let pod = match ev {
            Ok(Event::Apply(p) | Event::InitApply(p)) => p,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "pod watch");
                continue;
            }
        };
        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        if let (true, Some(name)) = (running, pod.metadata.name)
            && tx.send((name, Instant::now())).is_err()
        {
            return;
        }
    }
}

fn bench_pod(name: &str, image: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "start-bench"}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": image, "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "3600"]}],
        },
    }))
    .unwrap_or_default()
}

fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The report as a short table.
pub fn render(r: &PodStartReport) -> String {
    let line = |what: &str, s: &Option<LatencySummary>| match s {
        Some(s) => format!(
            "{what:<28} p50 {:>7.0} ms  p99 {:>7.0} ms  max {:>7.0} ms  (n={})\n",
            s.p50_ms, s.p99_ms, s.max_ms, s.count
        ),
        None => format!("{what:<28} -\n"),
    };
    let mut out = format!("pods: {} one by one, {} at once\n", r.pods, r.burst_pods);
    out.push_str(&line("create→Running, one by one", &r.one_by_one));
    out.push_str(&line("create→Running, all at once", &r.burst));
    out.push_str(&format!(
        "burst all Running after      {:.2} s\n",
        r.burst_all_running_seconds
    ));
    out.push_str(&line("CRI floor, one by one", &r.cri_floor));
    out.push_str(&line("CRI floor, all at once", &r.cri_floor_burst));
    if let Some(all) = r.cri_floor_burst_all_seconds {
        out.push_str(&format!("CRI burst all started after  {all:.2} s\n"));
    }
    if let Some(rss) = r.agent_rss_kib {
        out.push_str(&format!(
            "agent RSS with {} pods: {:.1} MiB (peak {:.1} MiB)\n",
            r.burst_pods,
            rss as f64 / 1024.0,
            r.agent_hwm_kib.unwrap_or(rss) as f64 / 1024.0
        ));
    }
    if let Some(load) = r.load_average {
        out.push_str(&format!("load average (1 min) at the end: {load:.2}\n"));
    }
    out
}
