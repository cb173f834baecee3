//! `skiff simulate-nodes`: flags, kubeconfig loading and signal handling
//! around [`skiff_simnodes::run`], which plays the kubelet for N fake nodes.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use skiff_simnodes::config::{parse_duration, parse_label, parse_taint};
use skiff_simnodes::{Health, SimConfig};

/// Flags of `skiff simulate-nodes`.
#[derive(Debug, Args)]
pub struct SimulateNodesArgs {
    /// Kubeconfig of the API server to register the nodes with.
    #[arg(long, value_name = "FILE", env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,
    /// How many nodes to simulate.
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    /// Node names are <prefix><index>.
    #[arg(long, default_value = "sim-")]
    pub name_prefix: String,
    /// CPU capacity of each node.
    #[arg(long, default_value = "8")]
    pub cpu: String,
    /// Memory capacity of each node.
    #[arg(long, default_value = "32Gi")]
    pub memory: String,
    /// Pod capacity of each node.
    #[arg(long, default_value_t = 110)]
    pub pods: u32,
    /// A node label key=value (repeatable).
    #[arg(long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// A node taint key[=value]:Effect (repeatable).
    #[arg(long = "taint", value_name = "K=V:EFFECT")]
    pub taints: Vec<String>,
    /// How long pods with restartPolicy Never/OnFailure run before succeeding.
    #[arg(long, default_value = "2s")]
    pub job_runtime: String,
    /// Start this node with its heartbeats stopped (repeatable).
    #[arg(long = "fail", value_name = "NODE")]
    pub fail: Vec<String>,
    /// A file naming (one per line) the nodes whose heartbeats are stopped;
    /// read every second and on SIGUSR1.
    #[arg(long, value_name = "FILE")]
    pub control_file: Option<PathBuf>,
    /// Lease renewal period.
    #[arg(long, default_value = "2s")]
    pub lease_period: String,
}

impl SimulateNodesArgs {
    fn config(&self) -> anyhow::Result<SimConfig> {
        Ok(SimConfig {
            count: self.count,
            name_prefix: self.name_prefix.clone(),
            cpu: self.cpu.clone(),
            memory: self.memory.clone(),
            pods: self.pods,
            labels: self
                .labels
                .iter()
                .map(|l| parse_label(l))
                .collect::<Result<_, _>>()?,
            taints: self
                .taints
                .iter()
                .map(|t| parse_taint(t))
                .collect::<Result<_, _>>()?,
            job_runtime: parse_duration(&self.job_runtime)?,
            failed: self.fail.clone(),
            lease_period: parse_duration(&self.lease_period)?,
            control_file: self.control_file.clone(),
        })
    }
}

/// Runs the simulated nodes until SIGINT/SIGTERM.
pub async fn run(args: SimulateNodesArgs) -> anyhow::Result<()> {
    let cfg = args.config()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = kube::config::Kubeconfig::read_from(&args.kubeconfig)
        .with_context(|| format!("reading kubeconfig {}", args.kubeconfig.display()))?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await
            .context("loading kubeconfig")?;
    let client = kube::Client::try_from(config).context("building the API client")?;
    let health = Arc::new(Health::default());
    let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
        .context("installing the SIGUSR1 handler")?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let sim = skiff_simnodes::run(client, cfg, health.clone());
    tokio::pin!(sim);
    loop {
        tokio::select! {
            res = &mut sim => return res.context("simulated nodes"),
            _ = usr1.recv() => health.reload.notify_one(),
            _ = term.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimulateNodesArgs,
    }

    #[test]
    fn flags_become_a_node_config() {
        let cli = Cli::try_parse_from([
            "x",
            "--kubeconfig",
            "k",
            "--count",
            "3",
            "--label",
            "zone=a",
            "--taint",
            "gpu=1:NoSchedule",
            "--fail",
            "sim-1",
            "--job-runtime",
            "500ms",
        ])
        .unwrap();
        let cfg = cli.args.config().unwrap();
        assert_eq!(cfg.count, 3);
        assert_eq!(cfg.labels["zone"], "a");
        assert_eq!(cfg.taints[0].effect, "NoSchedule");
        assert_eq!(cfg.failed, vec!["sim-1"]);
        assert_eq!(cfg.job_runtime, std::time::Duration::from_millis(500));
        assert_eq!(
            (cfg.cpu.as_str(), cfg.memory.as_str(), cfg.pods),
            ("8", "32Gi", 110)
        );
    }

    #[test]
    fn bad_taints_are_rejected() {
        let cli = Cli::try_parse_from(["x", "--kubeconfig", "k", "--taint", "oops"]).unwrap();
        assert!(cli.args.config().is_err());
    }
}
