//! The control loops `skiff server` runs beside its API server: the
//! scheduler and the controller manager, both talking to the API server
//! in-process (a kube-rs client over the router as a tower `Service`, no
//! TCP or TLS), exactly as they would talk to a remote one.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use ipnet::Ipv4Net;
use skiff_apiserver::server::ApiServer;
use skiff_controllers::manager::ControllerConfig;
use skiff_scheduler::config::SchedulerConfig;
use tokio::task::JoinSet;

/// Flags of the control loops.
#[derive(Debug, Clone, Args)]
pub struct ControlPlaneArgs {
    /// Do not run the scheduler in this process.
    #[arg(long)]
    pub disable_scheduler: bool,
    /// Do not run the controller manager in this process.
    #[arg(long)]
    pub disable_controllers: bool,
    /// The range every node's podCIDR is cut from.
    #[arg(long, value_name = "CIDR", default_value = "10.42.0.0/16")]
    pub cluster_cidr: Ipv4Net,
    /// Seconds without a heartbeat after which a node turns Ready=Unknown.
    #[arg(long, value_name = "SECONDS", default_value_t = 4)]
    pub node_monitor_grace_period: u64,
    /// tolerationSeconds of the not-ready/unreachable NoExecute tolerations
    /// added to every pod: how long a pod stays on a lost node.
    #[arg(long, value_name = "SECONDS", default_value_t = 2)]
    pub default_not_ready_toleration_seconds: i64,
    /// Terminated pods kept before the pod garbage collector deletes the
    /// oldest (0 disables that collection).
    #[arg(long, value_name = "N", default_value_t = 12500)]
    pub terminated_pod_gc_threshold: usize,
}

/// Starts the enabled loops on the API server's in-process client. They run
/// until the returned set is dropped. `root_ca_pem` is the cluster CA the
/// controllers publish as `kube-root-ca.crt` in every namespace;
/// `csr_signer` signs the node certificates the CSR controllers approve.
pub fn start(
    api: &Arc<ApiServer>,
    args: &ControlPlaneArgs,
    https_port: u16,
    root_ca_pem: &str,
    csr_signer: Arc<dyn skiff_controllers::csr::CsrSigner>,
) -> JoinSet<()> {
    let client = kube::Client::new(api.router(), "default");
    let mut loops = JoinSet::new();
    if !args.disable_scheduler {
        let client = client.clone();
        loops.spawn(async move {
            if let Err(err) = skiff_scheduler::run(client, SchedulerConfig::default()).await {
                tracing::error!(%err, "the scheduler stopped");
            }
        });
    }
    if !args.disable_controllers {
        let config = Arc::new(ControllerConfig {
            cluster_cidr: args.cluster_cidr,
            node_monitor_grace_period: Duration::from_secs(args.node_monitor_grace_period),
            default_not_ready_toleration_seconds: args.default_not_ready_toleration_seconds,
            apiserver_endpoint: Some(("127.0.0.1".to_string(), https_port)),
            terminated_pod_gc_threshold: args.terminated_pod_gc_threshold,
            root_ca_pem: Some(root_ca_pem.to_string()),
            csr_signer: Some(csr_signer),
            ..ControllerConfig::default()
        });
        loops.spawn(async move {
            if let Err(err) = skiff_controllers::manager::run_all(client, config).await {
                tracing::error!(%err, "the controller manager stopped");
            }
        });
    }
    loops
}
