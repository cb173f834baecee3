//! `skiff-bench`: benchmark programs for skiff that use only the public
//! Kubernetes API, so they run against any Kubernetes API server on loopback.
//! The binary parses flags, runs one benchmark and prints its report.

mod api_load;
mod client;
mod cpu;
mod dns;
mod error;
mod pod_start;
mod proxy_sync;
mod report;
mod rss;
mod scheduler;
mod stats;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Benchmarks for Kubernetes API servers (loopback targets only).
#[derive(Debug, Parser)]
#[command(name = "skiff-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Pod create throughput, LIST latency with many pods, watch delivery latency, server RSS.
    ApiLoad(api_load::ApiLoadArgs),
    /// Scheduling throughput: pods bound per second on simulated nodes, control-plane RSS.
    Scheduler(scheduler::SchedulerArgs),
    /// Pod start latency on a real node (create → Running), the CRI floor and the agent's RSS.
    PodStart(pod_start::PodStartArgs),
    /// Service proxy sync time (render + nft -f) for N services in a throw-away netns.
    ProxySync(proxy_sync::ProxySyncArgs),
    /// Cluster DNS queries per second and p99 from inside a pod, against a UDP echo baseline.
    Dns(dns::DnsArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Cli::parse().command {
        Command::ApiLoad(args) => {
            let report = api_load::run(&args).await?;
            let json = serde_json::to_string_pretty(&report).context("encoding the report")?;
            if let Some(path) = &args.json_file {
                std::fs::write(path, format!("{json}\n"))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if args.json {
                println!("{json}");
            } else {
                print!("{}", report::render(&report));
            }
            if let Some(reason) = &report.aborted {
                anyhow::bail!("run stopped early: {reason}");
            }
        }
        Command::ProxySync(args) => proxy_sync::run(&args)?,
        Command::Dns(args) => dns::main(&args).await?,
        Command::PodStart(args) => {
            let report = pod_start::run(&args).await?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).context("encoding the report")?
                );
            } else {
                print!("{}", pod_start::render(&report));
            }
        }
        Command::Scheduler(args) => {
            let report = scheduler::run(&args).await?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).context("encoding the report")?
                );
            } else {
                print!("{}", scheduler::render(&report));
            }
        }
    }
    Ok(())
}
