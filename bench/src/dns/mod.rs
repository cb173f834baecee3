//! `skiff-bench dns`: cluster DNS queries per second and latency *from a
//! pod*. Creates a namespace with N ClusterIP Services and one busybox pod,
//! then runs the load generator ([`load`]) inside that pod's network
//! namespace (`nsenter --net=/proc/PID/ns/net` of this same binary with the
//! hidden `--load` flag) against, in turn:
//!   1. the `kube-dns` ClusterIP (what pods use: service proxy DNAT, then DNS),
//!   2. the `kube-dns` endpoint itself (no DNAT),
//!   3. a UDP echo this process runs on the endpoint's address: the same
//!      network path with no DNS work, the baseline the figures are divided by.
//!
//! Needs root (nsenter, /proc/PID/environ). Every target is an address of
//! the cluster under test (its service network and DNS endpoint).

pub mod load;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde::Serialize;
use serde_json::json;

use crate::error::BenchError;
use load::{LoadResult, LoadSpec, Target};

/// Flags of `skiff-bench dns`.
#[derive(Debug, clap::Args)]
pub struct DnsArgs {
    /// Kubeconfig of the server (its current context); must point at loopback.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Services created (queried in turn by name).
    #[arg(long, default_value_t = 100)]
    pub services: usize,
    /// Concurrent clients, each waiting for its answer before the next query.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Seconds per target.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// The cluster domain.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Image of the pod the queries come from; must already be on the node.
    #[arg(long, default_value = "skiff.local/busybox:1")]
    pub image: String,
    /// Give up waiting for the pod after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Internal: run the load generator described by this JSON here and
    /// print its results (what the pod's netns runs).
    #[arg(long, hide = true, value_name = "JSON")]
    pub load: Option<String>,
}

/// What one run measured.
#[derive(Debug, Serialize)]
pub struct DnsReport {
    /// Services in the namespace.
    pub services: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Seconds per target.
    pub seconds: u64,
    /// One entry per target.
    pub results: Vec<LoadResult>,
    /// The 1-minute load average when the run ended.
    pub load_average: Option<f64>,
}

/// Runs the benchmark, or with `--load` only the load generator.
pub async fn main(args: &DnsArgs) -> Result<(), BenchError> {
    if let Some(spec) = &args.load {
        let spec: LoadSpec = serde_json::from_str(spec).map_err(|e| response("--load", e))?;
        let out = serde_json::to_string(&load::run(&spec).await).map_err(|e| response("results", e))?;
        println!("{out}");
        return Ok(());
    }
    let report = run(args).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| response("report", e))?
        );
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

fn response(what: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Response {
        what: what.into(),
        detail: e.to_string(),
    }
}

async fn run(args: &DnsArgs) -> Result<DnsReport, BenchError> {
    let kubeconfig = args
        .kubeconfig
        .as_ref()
        .ok_or_else(|| response("flags", "--kubeconfig (or KUBECONFIG) is required"))?;
    let client = crate::client::connect(kubeconfig).await?.client;
    let ns = format!("bench-dns-{}", jiff::Timestamp::now().as_second());
    let ns_api: Api<Namespace> = Api::all(client.clone());
    crate::client::create_namespace(&client, &ns).await?;
    let result = measure(args, &client, &ns).await;
    let _ = ns_api.delete(&ns, &DeleteParams::default()).await;
    result
}

async fn measure(args: &DnsArgs, client: &kube::Client, ns: &str) -> Result<DnsReport, BenchError> {
    let (cluster_ip, endpoint) = kube_dns(client).await?;
    let svcs: Api<Service> = Api::namespaced(client.clone(), ns);
    for i in 0..args.services {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": format!("svc-{i}")},
            "spec": {"ports": [{"name": "http", "port": 80}]}}))
        .map_err(|e| response("service", e))?;
        svcs.create(&PostParams::default(), &svc)
            .await
            .map_err(|e| BenchError::api("creating a service", e))?;
    }
    let pid = start_pod(args, client, ns).await?;
    let (echo_addr, echo_task) = load::echo(SocketAddr::new(endpoint.ip(), 0))
        .await
        .map_err(|e| response(&format!("binding the echo baseline on {}", endpoint.ip()), e))?;
    let spec = LoadSpec {
        targets: vec![
            Target {
                label: "cluster DNS via the kube-dns ClusterIP".into(),
                addr: SocketAddr::new(cluster_ip, 53),
                dns: true,
            },
            Target {
                label: "cluster DNS at its endpoint (no DNAT)".into(),
                addr: endpoint,
                dns: true,
            },
            Target {
                label: "UDP echo at the endpoint address (baseline)".into(),
                addr: echo_addr,
                dns: false,
            },
        ],
        names: (0..args.services.max(1))
            .map(|i| {
                format!(
                    "svc-{}.{ns}.svc.{}.",
                    i % args.services.max(1),
                    args.cluster_domain
                )
            })
            .collect(),
        clients: args.clients,
        seconds: args.seconds,
    };
    let results = in_netns(pid, &spec).await;
    echo_task.abort();
    Ok(DnsReport {
        services: args.services,
        clients: args.clients,
        seconds: args.seconds,
        results: results?,
        load_average: std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next()?.parse().ok()),
    })
}

/// The `kube-dns` ClusterIP and the address its EndpointSlice points at.
async fn kube_dns(client: &kube::Client) -> Result<(IpAddr, SocketAddr), BenchError> {
    let svc = Api::<Service>::namespaced(client.clone(), "kube-system")
        .get("kube-dns")
        .await
        .map_err(|e| BenchError::api("reading kube-system/kube-dns (is cluster DNS on?)", e))?;
    let ip: IpAddr = svc
        .spec
        .and_then(|s| s.cluster_ip)
        .and_then(|ip| ip.parse().ok())
        .ok_or_else(|| response("kube-dns", "no ClusterIP"))?;
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), "kube-system")
        .list(&ListParams::default().labels("kubernetes.io/service-name=kube-dns"))
        .await
        .map_err(|e| BenchError::api("listing kube-dns EndpointSlices", e))?;
    let endpoint = slices
        .items
        .iter()
        .find_map(|s| {
            let port = s
                .ports
                .iter()
                .flatten()
                .find(|p| p.protocol.as_deref() == Some("UDP"))?
                .port?;
            let addr: IpAddr = s.endpoints.first()?.addresses.first()?.parse().ok()?;
            Some(SocketAddr::new(addr, u16::try_from(port).ok()?))
        })
        .ok_or_else(|| response("kube-dns", "no UDP endpoint"))?;
    Ok((ip, endpoint))
}

/// Creates the client pod, waits until it runs, and returns the PID of its
/// container (found by a marker in its environment).
async fn start_pod(args: &DnsArgs, client: &kube::Client, ns: &str) -> Result<u32, BenchError> {
    let marker = format!("SKIFF_BENCH_DNS={ns}");
    let pod: Pod = serde_json::from_value(json!({
    "metadata": {"name": "dns-client"},
    "spec": {
        "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "c", "image": args.image, "imagePullPolicy": "IfNotPresent",
            "command": ["sleep", "3600"], "env": [{"name": "SKIFF_BENCH_DNS", "value": ns}]}],
    }}))
    .map_err(|e| response("pod", e))?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let start = std::time::Instant::now();
    // Pods need the namespace's default ServiceAccount (admission checks it).
    loop {
        match pods.create(&PostParams::default(), &pod).await {
            Ok(_) => break,
            Err(e) if start.elapsed() > Duration::from_secs(10) => {
                return Err(BenchError::api("creating the client pod", e));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    while start.elapsed() < Duration::from_secs(args.timeout) {
        let running = pods
            .get_opt("dns-client")
            .await
            .ok()
            .flatten()
            .and_then(|p| p.status?.phase)
            .is_some_and(|p| p == "Running");
        if running && let Some(pid) = pid_with_env(&marker) {
            return Ok(pid);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Err(BenchError::Timeout("the client pod".into(), args.timeout))
}

/// A process whose environment holds `entry` (`NAME=value`).
fn pid_with_env(entry: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|d| {
        let pid: u32 = d.file_name().to_str()?.parse().ok()?;
        let env = std::fs::read(d.path().join("environ")).ok()?;
        env.split(|b| *b == 0)
            .any(|e| e == entry.as_bytes())
            .then_some(pid)
    })
}

/// Runs this binary's `dns --load` inside the network namespace of `pid`.
async fn in_netns(pid: u32, spec: &LoadSpec) -> Result<Vec<LoadResult>, BenchError> {
    let exe = std::env::current_exe().map_err(|e| response("finding this binary", e))?;
    let spec_json = serde_json::to_string(spec).map_err(|e| response("load spec", e))?;
    let out = tokio::process::Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .arg("--")
        .arg(exe)
        .args(["dns", "--load", &spec_json])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| response("running nsenter", e))?;
    if !out.status.success() {
        return Err(response(
            "the load generator in the pod's netns",
            String::from_utf8_lossy(&out.stderr),
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| response("load generator output", e))
}

/// The report as a table, with each target's figures relative to the baseline.
pub fn render(r: &DnsReport) -> String {
    let base = r
        .results
        .iter()
        .find(|x| !x.target.dns && x.skipped.is_none())
        .map(|x| x.qps);
    let mut s = format!(
        "DNS from a pod: {} services, {} clients, {} s per target\n\n\
         | target | address | queries/s | vs echo | p50 ms | p99 ms | errors |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: |\n",
        r.services, r.clients, r.seconds
    );
    for x in &r.results {
        if let Some(why) = &x.skipped {
            s.push_str(&format!(
                "| {} | {} | skipped: {why} | | | | |\n",
                x.target.label, x.target.addr
            ));
            continue;
        }
        let ratio = base
            .filter(|b| *b > 0.0)
            .map_or("-".into(), |b| format!("{:.2}x", x.qps / b));
        let (p50, p99) = x.latency.as_ref().map_or((0.0, 0.0), |l| (l.p50_ms, l.p99_ms));
        s.push_str(&format!(
            "| {} | {} | {:.0} | {ratio} | {p50:.2} | {p99:.2} | {} |\n",
            x.target.label, x.target.addr, x.qps, x.errors
        ));
    }
    if let Some(l) = r.load_average {
        s.push_str(&format!("\nload average at the end: {l:.2}\n"));
    }
    s
}
