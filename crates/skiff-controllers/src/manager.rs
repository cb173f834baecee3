//! The controller manager: the shared [`ControllerConfig`], the crate-wide
//! [`Error`], and [`run_all`], which starts every controller loop while this
//! process holds the `kube-system/skiff-controller-manager` Lease and stops
//! them all the moment the lease is lost.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ipnet::Ipv4Net;
use tokio::task::JoinSet;

use crate::informer::Informers;
use crate::leader::{LeaderElector, LeaseSettings};

/// What a controller loop can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A watch stream failed.
    #[error("watch: {0}")]
    Watch(#[from] kube::runtime::watcher::Error),
    /// An object could not be (de)serialised.
    #[error("serialisation: {0}")]
    Json(#[from] serde_json::Error),
    /// The configuration cannot work (e.g. a cluster CIDR smaller than a node CIDR).
    #[error("invalid controller configuration: {0}")]
    Config(String),
}

/// Settings shared by every controller, filled from `skiff server` flags.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// `--node-monitor-grace-period`: a node whose heartbeat is older than
    /// this turns Ready=Unknown and gets the unreachable taints.
    pub node_monitor_grace_period: Duration,
    /// How often the node lifecycle controller looks at heartbeats.
    pub node_monitor_period: Duration,
    /// `--default-not-ready-toleration-seconds` (also the unreachable one):
    /// what the admission plugin puts on every pod's NoExecute tolerations.
    pub default_not_ready_toleration_seconds: i64,
    /// `--cluster-cidr`: the range node podCIDRs are cut from.
    pub cluster_cidr: Ipv4Net,
    /// Prefix length of each node's podCIDR (`--node-cidr-mask-size`).
    pub node_cidr_mask_size: u8,
    /// Address and port of the API server for the `default/kubernetes`
    /// endpoints; `None` leaves that object alone.
    pub apiserver_endpoint: Option<(String, u16)>,
    /// `--terminated-pod-gc-threshold`: terminated pods kept before pod GC
    /// deletes the oldest.
    pub terminated_pod_gc_threshold: usize,
    /// How often the garbage collector rescans the ownership graph.
    pub gc_resync: Duration,
    /// This process's identity in the leader-election Lease.
    pub identity: String,
    /// Lease timing for leader election.
    pub lease: LeaseSettings,
    /// The cluster CA (PEM) the root CA publisher puts in every namespace's
    /// `kube-root-ca.crt` ConfigMap; `None` publishes nothing.
    pub root_ca_pem: Option<String>,
    /// Signs approved node certificate requests with the cluster CA; `None`
    /// turns the CSR approver and signer off.
    pub csr_signer: Option<Arc<dyn crate::csr::CsrSigner>>,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            // 4 s of silence + 1 s monitor period + 2 s toleration leaves the
            // scheduler and a node ~3 s to restart a lost node's pods (< 10 s).
            node_monitor_grace_period: Duration::from_secs(4),
            node_monitor_period: Duration::from_millis(500),
            default_not_ready_toleration_seconds: 2,
            cluster_cidr: Ipv4Net::new(std::net::Ipv4Addr::new(10, 42, 0, 0), 16).unwrap_or_default(),
            node_cidr_mask_size: 24,
            apiserver_endpoint: None,
            root_ca_pem: None,
            csr_signer: None,
            terminated_pod_gc_threshold: 12500,
            gc_resync: Duration::from_secs(2),
            identity: default_identity(),
            lease: LeaseSettings::default(),
        }
    }
}

/// `hostname_randomsuffix`, unique per process like upstream's identities.
pub fn default_identity() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "skiff".to_string());
    format!("{host}_{:08x}", rand::random::<u32>())
}

/// A controller loop's future.
pub type ControllerFuture = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;
/// Starts one controller loop.
pub type ControllerFn = fn(kube::Client, Arc<ControllerConfig>) -> ControllerFuture;

/// Starts one controller loop that reads the manager's shared informers.
pub type InformerControllerFn = fn(Arc<Informers>, Arc<ControllerConfig>) -> ControllerFuture;

/// The controllers [`run_all`] starts that read the shared informers (one
/// watch and one copy of each object per kind for all of them), by name.
pub fn informer_controllers() -> Vec<(&'static str, InformerControllerFn)> {
    vec![
        ("garbage-collector", |i, g| Box::pin(crate::gc::run_with(i, g))),
        ("endpoints", |i, g| Box::pin(crate::endpoints::run_with(i, g))),
        ("endpointslice", |i, g| {
            Box::pin(crate::endpointslice::run_with(i, g))
        }),
        ("resourcequota", |i, g| {
            Box::pin(crate::resourcequota::run_with(i, g))
        }),
        ("disruption", |i, g| Box::pin(crate::disruption::run_with(i, g))),
        ("node-lifecycle", |i, g| {
            Box::pin(crate::node_lifecycle::run_with(i, g))
        }),
        ("podgc", |i, g| Box::pin(crate::podgc::run_with(i, g))),
        ("deployment", |i, g| Box::pin(crate::deployment::run_with(i, g))),
        ("replicaset", |i, g| Box::pin(crate::replicaset::run_with(i, g))),
        ("replicationcontroller", |i, g| {
            Box::pin(crate::replicaset::run_rc(i, g))
        }),
        ("daemonset", |i, g| Box::pin(crate::daemonset::run_with(i, g))),
        ("statefulset", |i, g| Box::pin(crate::statefulset::run_with(i, g))),
        ("job", |i, g| Box::pin(crate::job::run_with(i, g))),
        ("cronjob", |i, g| Box::pin(crate::cronjob::run_with(i, g))),
    ]
}

/// The controllers [`run_all`] starts that open their own watches (small
/// kinds), by name.
pub fn controllers() -> Vec<(&'static str, ControllerFn)> {
    vec![
        ("namespace", |c, g| Box::pin(crate::namespace::run(c, g))),
        ("serviceaccount", |c, g| {
            Box::pin(crate::serviceaccount::run(c, g))
        }),
        ("root-ca-publisher", |c, g| {
            Box::pin(crate::root_ca_publisher::run(c, g))
        }),
        ("node-ipam", |c, g| Box::pin(crate::node_ipam::run(c, g))),
        ("csr-approving-signing", |c, g| Box::pin(crate::csr::run(c, g))),
    ]
}

/// Runs every controller while holding the leader Lease; forever.
///
/// Losing the lease aborts every loop; they start again (from fresh watches)
/// once the lease is won back. A loop that returns an error is restarted
/// after a short pause, so one failing controller never stops the others.
pub async fn run_all(client: kube::Client, cfg: Arc<ControllerConfig>) -> Result<(), Error> {
    let mut elector = LeaderElector::new(
        client.clone(),
        "kube-system",
        "skiff-controller-manager",
        &cfg.identity,
        cfg.lease.clone(),
    );
    loop {
        elector.acquire().await;
        tracing::info!(identity = %cfg.identity, "controller manager became leader");
        let mut loops = JoinSet::new();
        let informers = Arc::new(Informers::new(client.clone()));
        for (name, start) in informer_controllers() {
            let (informers, cfg) = (informers.clone(), cfg.clone());
            loops.spawn(supervise(name, move || start(informers.clone(), cfg.clone())));
        }
        for (name, start) in controllers() {
            let (client, cfg) = (client.clone(), cfg.clone());
            loops.spawn(supervise(name, move || start(client.clone(), cfg.clone())));
        }
        elector.hold().await;
        tracing::warn!(identity = %cfg.identity, "controller manager lost the lease; stopping loops");
        loops.shutdown().await;
        // The last handle: stops every shared watch of this term.
        drop(informers);
    }
}

/// Restarts one controller whenever it returns, logging why.
async fn supervise(name: &'static str, start: impl Fn() -> ControllerFuture) {
    loop {
        match start().await {
            Ok(()) => tracing::info!(controller = name, "controller loop returned; restarting"),
            Err(e) => tracing::warn!(controller = name, error = %e, "controller loop failed; restarting"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
