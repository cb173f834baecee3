//! The `skiff` binary: parses flags, sets up logging and runs a subcommand.
//! Each subcommand lives in its own module and only wires libraries together.

mod agent;
mod api_endpoints;
mod cleanup;
mod control_plane;
mod dns;
mod image;
mod join;
mod server;
mod signer;
mod simulate_nodes;
mod token;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};

/// A Kubernetes-compatible container orchestrator.
#[derive(Debug, Parser)]
#[command(name = "skiff", version, about)]
struct Cli {
    /// Log verbosity: error, warn, info, debug, trace, or a tracing filter
    /// (`RUST_LOG` overrides it).
    #[arg(long, global = true, default_value = "info", value_name = "LEVEL")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control plane: API server and datastore.
    Server(server::ServerArgs),
    /// Run a node agent that joins a remote API server (`--server URL --token T`).
    Agent(agent::AgentArgs),
    /// Simulate kubelets: register N nodes, renew their Leases, run their pods.
    SimulateNodes(simulate_nodes::SimulateNodesArgs),
    /// Load image tarballs into containerd (air-gapped machines) and list images.
    Image(image::ImageArgs),
    /// Manage join tokens (`skiff token create`).
    Token(token::TokenArgs),
    /// Remove skiff's nftables tables, routes and pod bridge from this host.
    Cleanup(cleanup::CleanupArgs),
}

fn main() -> ExitCode {
    let started = Instant::now();
    let cli = Cli::parse();
    match run(cli, started) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, started: Instant) -> anyhow::Result<()> {
    init_tracing(&cli.log_level)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = match cli.command {
        Command::Server(args) => runtime.block_on(server::run(args, started)),
        Command::Agent(args) => runtime.block_on(agent::run(args)),
        Command::SimulateNodes(args) => runtime.block_on(simulate_nodes::run(args)),
        Command::Image(args) => runtime.block_on(image::run(args)),
        Command::Token(args) => runtime.block_on(token::run(args)),
        Command::Cleanup(args) => cleanup::run(&args),
    };
    // Tasks still running (e.g. cut-off watches) must not hold up the exit.
    runtime.shutdown_timeout(Duration::from_millis(500));
    result
}

const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];

/// The tracing filter of `--log-level`: a level name, or a filter directive
/// list (`info,skiff_apiserver=debug`). A bare word that is no level is an error,
/// not a silent filter on a target of that name.
fn log_filter(level: &str) -> anyhow::Result<tracing_subscriber::EnvFilter> {
    let is_directive = level.contains(['=', ',', ':']);
    if !is_directive && !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
        anyhow::bail!(
            "invalid log level {level:?}: expected one of {}",
            LEVELS.join(", ")
        );
    }
    tracing_subscriber::EnvFilter::try_new(level).with_context(|| format!("invalid log level {level:?}"))
}

/// Logs to stderr, with colours only on a terminal.
fn init_tracing(level: &str) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(filter) if !filter.is_empty() => tracing_subscriber::EnvFilter::try_new(&filter)
            .with_context(|| format!("invalid RUST_LOG {filter:?}"))?,
        _ => log_filter(level)?,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn server_flags_have_upstream_like_defaults() {
        let cli = Cli::try_parse_from(["skiff", "server"]).unwrap();
        let Command::Server(args) = cli.command else {
            panic!("not server")
        };
        assert_eq!(args.data_dir, std::path::PathBuf::from("/var/lib/skiff"));
        assert_eq!(args.https_port, 6443);
        assert_eq!(args.bind_address.to_string(), "0.0.0.0");
        assert_eq!(args.service_cidr.to_string(), "10.43.0.0/16");
        assert!(args.tls_san.is_empty() && args.datastore_endpoint.is_none());
        assert_eq!(cli.log_level, "info");
    }

    #[test]
    fn tls_san_repeats_and_log_level_follows_the_subcommand() {
        let cli = Cli::try_parse_from([
            "skiff",
            "server",
            "--tls-san",
            "a.example",
            "--tls-san",
            "10.1.1.1",
            "--log-level",
            "debug",
        ])
        .unwrap();
        let Command::Server(args) = cli.command else {
            panic!("not server")
        };
        assert_eq!(args.tls_san, vec!["a.example", "10.1.1.1"]);
        assert_eq!(cli.log_level, "debug");
    }

    #[test]
    fn networking_is_on_by_default_and_each_part_can_be_turned_off() {
        let cli = Cli::try_parse_from(["skiff", "server"]).unwrap();
        let Command::Server(args) = cli.command else {
            panic!("not server")
        };
        assert!(!args.dns.disable_dns && !args.node.disable_kube_proxy && !args.node.disable_pod_routes);
        assert_eq!(args.dns.cluster_dns.to_string(), "10.43.0.10");
        assert!(args.advertise_address.is_none());
        let cli = Cli::try_parse_from([
            "skiff",
            "server",
            "--disable-dns",
            "--disable-kube-proxy",
            "--disable-pod-routes",
            "--advertise-address",
            "192.168.5.5",
        ])
        .unwrap();
        let Command::Server(args) = cli.command else {
            panic!("not server")
        };
        assert!(args.dns.disable_dns && args.node.disable_kube_proxy && args.node.disable_pod_routes);
        assert_eq!(args.advertise_address, "192.168.5.5".parse().ok());
        let cli = Cli::try_parse_from(["skiff", "cleanup"]).unwrap();
        let Command::Cleanup(args) = cli.command else {
            panic!("not cleanup")
        };
        assert_eq!(args.cni_bridge, "skiff0");
    }

    #[test]
    fn log_levels_are_names_or_directives() {
        for ok in [
            "info",
            "DEBUG",
            "trace",
            "off",
            "info,skiff_apiserver=debug",
            "skiff=trace",
        ] {
            assert!(log_filter(ok).is_ok(), "{ok}");
        }
        let err = log_filter("verbose").unwrap_err().to_string();
        assert!(err.contains("expected one of error, warn, info"), "{err}");
    }
}
