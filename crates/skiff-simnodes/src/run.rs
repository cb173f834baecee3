//! The long-running loops of a simulated-node process: registering the
//! nodes, renewing their Leases on spread timers, watching the Node objects
//! (podCIDR, Ready recovery) and following the stopped-heartbeat control
//! file. The pod loop lives in [`crate::kubelet`].

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::sync::Notify;

use crate::config::SimConfig;
use crate::node::{self, LEASE_NAMESPACE};

/// Errors that stop a simulated-node process.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A node could not be registered.
    #[error("registering node {node}: {source}")]
    Register {
        /// The node's name.
        node: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// Which nodes have their heartbeats (kubelet) stopped; shared with whoever
/// handles `--fail`, the control file and SIGUSR1.
#[derive(Debug, Default)]
pub struct Health {
    stopped: RwLock<HashSet<String>>,
    /// Wakes the control-file reader (e.g. on SIGUSR1).
    pub reload: Notify,
}

impl Health {
    /// Whether `node`'s kubelet is stopped.
    pub fn is_stopped(&self, node: &str) -> bool {
        self.stopped.read().map(|s| s.contains(node)).unwrap_or(false)
    }

    /// Replaces the stopped set; returns the nodes that came back.
    pub fn set_stopped(&self, now: HashSet<String>) -> Vec<String> {
        let Ok(mut guard) = self.stopped.write() else {
            return Vec::new();
        };
        let recovered = guard.difference(&now).cloned().collect();
        *guard = now;
        recovered
    }
}

/// Per-node state the loops share: address, pod CIDR and IP counter.
#[derive(Debug)]
pub struct SimNode {
    /// Node name.
    pub name: String,
    /// Index (drives the fake addresses).
    pub index: usize,
    /// The node's InternalIP.
    pub host_ip: Ipv4Addr,
    /// Base of the /24 pod IPs come from (spec.podCIDR once known).
    pub pod_base: RwLock<Ipv4Addr>,
    /// Next pod IP slot.
    pub next_ip: AtomicU64,
}

impl SimNode {
    /// Allocates the next pod IP.
    pub fn allocate_ip(&self) -> Ipv4Addr {
        let base = self
            .pod_base
            .read()
            .map(|b| *b)
            .unwrap_or(node::fallback_cidr_base(self.index));
        node::pod_ip(base, self.next_ip.fetch_add(1, Ordering::Relaxed))
    }
}

/// All simulated nodes by name.
pub type Nodes = Arc<HashMap<String, Arc<SimNode>>>;

const CONCURRENCY: usize = 64;

/// Runs the simulated nodes until the task is dropped: registers them, then
/// keeps leases, node status and bound pods up to date.
pub async fn run(client: kube::Client, cfg: SimConfig, health: Arc<Health>) -> Result<(), RunError> {
    let cfg = Arc::new(cfg);
    health.set_stopped(cfg.failed.iter().cloned().collect());
    let uids = register_all(&client, &cfg).await?;
    let nodes: Nodes = Arc::new(
        (0..cfg.count)
            .map(|i| {
                let name = cfg.node_name(i);
                let sim = SimNode {
                    name: name.clone(),
                    index: i,
                    host_ip: node::internal_ip(i),
                    pod_base: RwLock::new(node::fallback_cidr_base(i)),
                    next_ip: AtomicU64::new(0),
                };
                (name, Arc::new(sim))
            })
            .collect(),
    );
    tracing::info!(count = cfg.count, "simulated nodes registered");
    let leases = tokio::spawn(lease_loop(client.clone(), cfg.clone(), health.clone(), uids));
    let watch = tokio::spawn(node_watch(client.clone(), nodes.clone(), health.clone()));
    let control = tokio::spawn(control_loop(client.clone(), cfg.clone(), health.clone()));
    let kubelet = tokio::spawn(crate::kubelet::pod_loop(client, cfg, nodes, health));
    let _ = tokio::join!(leases, watch, control, kubelet);
    Ok(())
}

async fn register_all(client: &kube::Client, cfg: &SimConfig) -> Result<HashMap<String, String>, RunError> {
    let api: Api<Node> = Api::all(client.clone());
    stream::iter(0..cfg.count)
        .map(|i| {
            let api = api.clone();
            async move {
                let name = cfg.node_name(i);
                let uid = register(&api, cfg, i)
                    .await
                    .map_err(|source| RunError::Register {
                        node: name.clone(),
                        source,
                    })?;
                Ok::<_, RunError>((name, uid))
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await
}

/// Creates the node (or takes over an existing one) and publishes a healthy status.
async fn register(api: &Api<Node>, cfg: &SimConfig, index: usize) -> Result<String, kube::Error> {
    let obj = node::node_object(cfg, index);
    let name = cfg.node_name(index);
    let created = match api.create(&PostParams::default(), &obj).await {
        Ok(n) => n,
        Err(kube::Error::Api(e)) if e.code == 409 => api.get(&name).await?,
        Err(e) => return Err(e),
    };
    let status = json!({"status": node::node_status(cfg, index)});
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(created.metadata.uid.unwrap_or_default())
}

/// Renews every healthy node's Lease each period, spreading the nodes over
/// ten slots per period so requests do not arrive in one burst.
async fn lease_loop(
    client: kube::Client,
    cfg: Arc<SimConfig>,
    health: Arc<Health>,
    uids: HashMap<String, String>,
) {
    let api: Api<Lease> = Api::namespaced(client, LEASE_NAMESPACE);
    let names: Vec<String> = (0..cfg.count).map(|i| cfg.node_name(i)).collect();
    const SLOTS: usize = 10;
    let chunk = names.len().div_ceil(SLOTS).max(1);
    let slot = cfg.lease_period / SLOTS as u32;
    let mut ticker = tokio::time::interval(slot);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for batch in names.chunks(chunk).cycle() {
        ticker.tick().await;
        stream::iter(batch.iter().filter(|n| !health.is_stopped(n)))
            .for_each_concurrent(CONCURRENCY, |name| {
                let api = api.clone();
                let uid = uids.get(name).map(String::as_str);
                async move { renew(&api, name, uid).await }
            })
            .await;
    }
}

async fn renew(api: &Api<Lease>, name: &str, uid: Option<&str>) {
    let now = serde_json::to_value(MicroTime(jiff::Timestamp::now())).unwrap_or_default();
    let patch = json!({"spec": {"renewTime": now, "holderIdentity": name}});
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {
            if let Err(e) = api
                .create(&PostParams::default(), &node::lease_object(name, uid))
                .await
            {
                tracing::warn!(node = name, error = %e, "creating lease");
            }
        }
        Err(e) => tracing::warn!(node = name, error = %e, "renewing lease"),
    }
}

/// Follows our Node objects: learns each podCIDR, and (as a restarted
/// kubelet would) reports Ready again on a healthy node marked otherwise.
async fn node_watch(client: kube::Client, nodes: Nodes, health: Arc<Health>) {
    let api: Api<Node> = Api::all(client);
    let mut fixed: HashMap<String, Instant> = HashMap::new();
    let mut events = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    while let Some(ev) = events.next().await {
        let obj = match ev {
            Ok(obj) => obj,
            Err(e) => {
                tracing::warn!(error = %e, "node watch");
                continue;
            }
        };
        let Some(name) = obj.metadata.name.as_deref() else {
            continue;
        };
        let Some(sim) = nodes.get(name) else { continue };
        if let Some(base) = obj
            .spec
            .as_ref()
            .and_then(|s| s.pod_cidr.as_deref())
            .and_then(node::cidr_base)
            && let Ok(mut b) = sim.pod_base.write()
        {
            *b = base;
        }
        let recently = fixed
            .get(name)
            .is_some_and(|t| t.elapsed() < Duration::from_secs(5));
        if !node::is_ready(&obj) && !health.is_stopped(name) && !recently {
            fixed.insert(name.to_string(), Instant::now());
            report_ready(&api, name).await;
        }
    }
}

async fn report_ready(api: &Api<Node>, name: &str) {
    let patch = json!({"status": {"conditions": node::healthy_conditions()}});
    if let Err(e) = api
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
    {
        tracing::warn!(node = name, error = %e, "reporting node ready");
    }
}

/// Reads the stopped-heartbeat control file every second (and on
/// [`Health::reload`]); nodes that leave it report Ready again.
async fn control_loop(client: kube::Client, cfg: Arc<SimConfig>, health: Arc<Health>) {
    let Some(path) = cfg.control_file.clone() else {
        return;
    };
    let api: Api<Node> = Api::all(client);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = health.reload.notified() => {}
        }
        let mut stopped = read_control_file(&path);
        stopped.extend(cfg.failed.iter().cloned());
        for name in health.set_stopped(stopped) {
            tracing::info!(node = %name, "heartbeats resumed");
            report_ready(&api, &name).await;
        }
    }
}

/// The node names listed in a control file (one per line, `#` comments);
/// a missing file lists none.
pub fn read_control_file(path: &Path) -> HashSet<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}
