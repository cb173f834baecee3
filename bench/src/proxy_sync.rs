//! `skiff-bench proxy-sync`: the service proxy's sync cost. Renders N
//! services × 2 endpoints and applies them with `nft -f` inside a
//! throw-away network namespace (never the host's ruleset): a full sync,
//! then single added services (incremental), each timed render + apply,
//! with the CPU time the `nft` processes used.

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use skiff_agent::proxy::model::{Endpoint, Protocol, ServicePort};
use skiff_agent::proxy::sync::SyncKind;
use skiff_agent::proxy::{DEFAULT_CLUSTER_CIDR, Nft, ProxyConfig, Syncer};

/// Flags of `skiff-bench proxy-sync`.
#[derive(Debug, clap::Args)]
pub struct ProxySyncArgs {
    /// Service counts to measure, e.g. `1000,10000`.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    pub services: Vec<u32>,
}

/// How many single services are added one after another (median reported).
const ADDED_SAMPLES: u32 = 9;

/// User + system CPU time of finished child processes (the `nft` runs),
/// from /proc/self/stat (clock ticks, 10 ms on most kernels).
fn children_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the ")" closing the command name; cutime and cstime are
    // fields 16 and 17 of the whole line (13 and 14 after the name).
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    let ticks = f.get(12).copied().unwrap_or(0) + f.get(13).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Removes the bench netns when dropped.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn port(i: u32) -> ServicePort {
    let ep = |k: u32| {
        let n = i * 2 + k;
        Endpoint {
            ip: Ipv4Addr::new(10, 42, (n >> 8) as u8, (n & 0xff) as u8),
            port: 8080,
            ready: true,
            serving: true,
            terminating: false,
            local: k == 0,
        }
    };
    ServicePort {
        namespace: "bench".into(),
        name: format!("svc-{i}"),
        port_name: "http".into(),
        protocol: Protocol::Tcp,
        cluster_ip: Ipv4Addr::new(10, 43, (i >> 8) as u8, (i & 0xff) as u8),
        port: 80,
        node_port: None,
        external_ips: Vec::new(),
        internal_local: false,
        external_local: false,
        affinity_timeout: None,
        endpoints: vec![ep(0), ep(1)],
    }
}

/// Runs the benchmark and prints one line per service count.
pub fn run(args: &ProxySyncArgs) -> anyhow::Result<()> {
    for &n in &args.services {
        let name = format!("skiff-bench-proxy-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()?
            .success();
        anyhow::ensure!(ok, "ip netns add {name} failed (needs root)");
        let ns = Netns(name);
        let mut syncer = Syncer::new(ProxyConfig {
            node_name: "bench-node".into(),
            cluster_cidr: DEFAULT_CLUSTER_CIDR,
            nft: Nft {
                netns: Some(ns.0.clone()),
            },
            debounce: Duration::ZERO,
        });
        let mut ports: Vec<ServicePort> = (0..n).map(port).collect();
        let cpu = children_cpu();
        let started = Instant::now();
        syncer.sync(&ports).context("full sync")?;
        let full = started.elapsed();
        let full_cpu = children_cpu() - cpu;
        let mut one = Vec::new();
        let mut one_cpu = Vec::new();
        let mut kind = SyncKind::Unchanged;
        for k in 0..ADDED_SAMPLES {
            ports.push(port(n + k));
            let cpu = children_cpu();
            let started = Instant::now();
            kind = syncer.sync(&ports).context("incremental sync")?;
            one.push(started.elapsed());
            one_cpu.push(children_cpu() - cpu);
        }
        one.sort();
        one_cpu.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "services={n} endpoints={} full_sync_ms={:.1} (nft cpu {:.1}) one_added_ms median={:.1} min={:.1} \
             (nft cpu median {:.1}) [{ADDED_SAMPLES} samples, {kind:?}]",
            n * 2,
            ms(full),
            ms(full_cpu),
            ms(one[one.len() / 2]),
            ms(one[0]),
            ms(one_cpu[one_cpu.len() / 2]),
        );
    }
    Ok(())
}
