//! `skiff-bench api-load`: drives any Kubernetes API server (loopback only)
//! through the public API and measures pod create throughput, LIST latency
//! with many pods stored, watch delivery latency and, optionally, the
//! server's memory. Owns the order of the phases and their bounds; the
//! measuring itself lives in one module per phase.

pub mod create;
pub mod fixture;
pub mod list;
pub mod watch;

use std::path::PathBuf;
use std::time::Duration;

use kube::Client;
use serde::Serialize;

use crate::client;
use crate::cpu::{CpuUse, Meter};
use crate::error::BenchError;
use crate::rss::{self, MemSample};
use create::CreateResult;
use list::ListResult;
use watch::WatchResult;

/// Flags of `skiff-bench api-load`.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiLoadArgs {
    /// Kubeconfig of the server to load (its current context); must point at loopback.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,
    /// Concurrency levels of the timed create batches.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 32])]
    pub concurrency: Vec<usize>,
    /// Pods created in each timed create batch.
    #[arg(long, default_value_t = 1000)]
    pub pods: usize,
    /// Pods stored in the benchmark's namespace for the LIST phase (topped up after the batches).
    #[arg(long, default_value_t = 10_000)]
    pub list_pods: usize,
    /// LIST requests per mode.
    #[arg(long, default_value_t = 10)]
    pub list_runs: usize,
    /// Writer counts of the watch runs.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 8])]
    pub watch_writers: Vec<usize>,
    /// Writes (one create, then updates) per watch writer.
    #[arg(long, default_value_t = 200)]
    pub watch_writes: usize,
    /// PID of the server process, to report its resident memory idle and loaded.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Upper bound of each phase, in seconds.
    #[arg(long, default_value_t = 300)]
    pub phase_timeout: u64,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub json_file: Option<PathBuf>,
    /// Leave the benchmark's namespace and pods in place.
    #[arg(long)]
    pub keep_namespace: bool,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// API server URL.
    pub server: String,
    /// `/version` gitVersion, when the server answers it.
    pub server_version: Option<String>,
    /// The namespace the run created.
    pub namespace: String,
    /// The sizes this run was asked for.
    pub settings: Settings,
    /// Timed create batches, one per concurrency level.
    pub create: Vec<CreateResult>,
    /// The untimed-purpose top-up to `list_pods` (reported for completeness).
    pub fill: Option<CreateResult>,
    /// LIST of all pods per mode.
    pub list: Vec<ListResult>,
    /// Watch delivery per writer count.
    pub watch: Vec<WatchResult>,
    /// CPU spent per phase by the server (with `--server-pid`) and the benchmark.
    pub cpu: Vec<CpuUse>,
    /// Server memory, when `--server-pid` was given.
    pub memory: Option<MemoryReport>,
    /// A phase that stopped the run early.
    pub aborted: Option<String>,
}

/// The workload sizes of a run, echoed into the report.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// `--concurrency`.
    pub concurrency: Vec<usize>,
    /// `--pods`.
    pub pods: usize,
    /// `--list-pods`.
    pub list_pods: usize,
    /// `--list-runs`.
    pub list_runs: usize,
    /// `--watch-writers`.
    pub watch_writers: Vec<usize>,
    /// `--watch-writes`.
    pub watch_writes: usize,
}

impl From<&ApiLoadArgs> for Settings {
    fn from(args: &ApiLoadArgs) -> Self {
        Self {
            concurrency: args.concurrency.clone(),
            pods: args.pods,
            list_pods: args.list_pods,
            list_runs: args.list_runs,
            watch_writers: args.watch_writers.clone(),
            watch_writes: args.watch_writes,
        }
    }
}

/// Server memory before any load and with the LIST pods stored.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    /// The process measured.
    pub pid: u32,
    /// Before the first request of the run.
    pub idle: Option<MemSample>,
    /// After the LIST phase, with `list_pods` pods stored.
    pub loaded: Option<MemSample>,
    /// Pods stored at the `loaded` sample.
    pub loaded_pods: usize,
}

/// Runs every phase in order and returns what was measured. Clean-up runs
/// even when a phase fails; the failure is recorded in `aborted`.
pub async fn run(args: &ApiLoadArgs) -> Result<Report, BenchError> {
    let target = client::connect(&args.kubeconfig).await?;
    let server_version = target
        .client
        .apiserver_version()
        .await
        .ok()
        .map(|v| v.git_version);
    let idle = args.server_pid.map(sample_or_warn);
    let namespace = fixture::namespace_name();
    fixture::create_namespace(&target.client, &namespace).await?;
    tracing::info!("benchmarking {} in namespace {namespace}", target.url);
    let mut report = Report {
        server: target.url.clone(),
        server_version,
        namespace: namespace.clone(),
        settings: Settings::from(args),
        create: Vec::new(),
        fill: None,
        list: Vec::new(),
        watch: Vec::new(),
        cpu: Vec::new(),
        memory: args.server_pid.map(|pid| MemoryReport {
            pid,
            idle: idle.flatten(),
            loaded: None,
            loaded_pods: 0,
        }),
        aborted: None,
    };
    if let Err(e) = phases(args, &target.client, &namespace, &mut report).await {
        tracing::error!("{e}");
        report.aborted = Some(e.to_string());
    }
    if !args.keep_namespace {
        tracing::info!("deleting namespace {namespace}");
        if let Err(e) = fixture::cleanup(&target.client, &namespace, limit(args)).await {
            tracing::warn!("clean-up: {e}");
        }
    }
    Ok(report)
}

fn limit(args: &ApiLoadArgs) -> Duration {
    Duration::from_secs(args.phase_timeout.max(1))
}

fn sample_or_warn(pid: u32) -> Option<MemSample> {
    rss::sample(pid)
        .map_err(|e| tracing::warn!("memory of the server: {e}"))
        .ok()
}

async fn phases(
    args: &ApiLoadArgs,
    client: &Client,
    ns: &str,
    report: &mut Report,
) -> Result<(), BenchError> {
    let mut stored = 0;
    for &concurrency in &args.concurrency {
        tracing::info!("create: {} pods at concurrency {concurrency}", args.pods);
        create::warm_up(client, ns, concurrency).await;
        let prefix = format!("c{concurrency}");
        let meter = Meter::start(args.server_pid);
        let result = create::run(client, ns, &prefix, args.pods, concurrency, limit(args)).await;
        report
            .cpu
            .push(meter.finish(format!("create c={concurrency}"), result.created + result.errors));
        stored += result.created;
        report.create.push(result);
    }
    if args.list_pods > stored {
        let concurrency = args.concurrency.iter().copied().max().unwrap_or(32);
        let missing = args.list_pods - stored;
        tracing::info!("fill: {missing} more pods for the LIST phase");
        let meter = Meter::start(args.server_pid);
        let result = create::run(client, ns, "fill", missing, concurrency, limit(args)).await;
        report
            .cpu
            .push(meter.finish(format!("fill c={concurrency}"), result.created + result.errors));
        stored += result.created;
        report.fill = Some(result);
    }
    tracing::info!("list: {} x each mode, interleaved", args.list_runs);
    let meter = Meter::start(args.server_pid);
    report.list = tokio::time::timeout(limit(args), list::run(client, args.list_runs))
        .await
        .map_err(|_| BenchError::Timeout("LIST".to_string(), args.phase_timeout))??;
    report
        .cpu
        .push(meter.finish("LIST (both modes, with warm-up)", 2 * (args.list_runs + 1)));
    if let Some(memory) = report.memory.as_mut() {
        memory.loaded = sample_or_warn(memory.pid);
        memory.loaded_pods = stored;
    }
    for &writers in &args.watch_writers {
        tracing::info!("watch: {writers} writer(s) x {} writes", args.watch_writes);
        let meter = Meter::start(args.server_pid);
        let result = watch::run(client, ns, writers, args.watch_writes, limit(args)).await?;
        report.cpu.push(meter.finish(
            format!("watch {writers} writer(s)"),
            result.writes + result.write_errors,
        ));
        report.watch.push(result);
    }
    Ok(())
}
