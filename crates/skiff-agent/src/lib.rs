//! skiff-agent: the node agent (the kubelet's role). It registers its Node,
//! keeps its Lease fresh, and makes every pod bound to it real containers
//! through CRI v1 (containerd), reporting pod status back through the API.
//!
//! Owns: the CRI connection ([`cri`]), runtime labels ([`labels`]), and the
//! node/pod/volume/probe/node-API modules. Must not: reach the store; all
//! cluster access goes through a `kube::Client`.

pub mod cni;
pub mod config;
pub mod cri;
pub mod images;
pub mod labels;
pub mod node;
pub mod nodeapi;
pub mod pods;
pub mod probes;
pub mod proxy;
pub mod routes;
pub mod spec;
pub mod supervise;
pub mod volumes;

pub use config::AgentConfig;
pub use cri::{CriClient, CriError};

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The container runtime could not be reached.
    #[error(transparent)]
    Cri(#[from] CriError),
    /// The Node could not be registered.
    #[error(transparent)]
    Node(#[from] node::NodeError),
    /// The pod network configuration could not be written.
    #[error(transparent)]
    Cni(#[from] cni::CniError),
}

/// Runs the node agent: connects to the runtime, imports the air-gap images
/// of `cfg.images_dir()`, registers the Node, keeps its Lease and status
/// fresh, runs the service proxy and pod routes (when `cfg` enables them;
/// restarted with back-off on failure), writes the pod network config once
/// the node has a podCIDR, and runs the node's pods. Returns only on a
/// start-up error.
pub async fn run(client: kube::Client, cfg: AgentConfig) -> Result<(), AgentError> {
    let cri = CriClient::connect(&cfg.container_runtime_endpoint).await?;
    let (runtime_name, runtime_version) = cri.version().await?;
    let import_cfg = cfg.clone();
    match tokio::task::spawn_blocking(move || images::import_images_dir(&import_cfg)).await {
        Ok(Ok(names)) if !names.is_empty() => tracing::info!(?names, "imported air-gap images"),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "importing air-gap images"),
        Err(e) => tracing::warn!(error = %e, "importing air-gap images"),
    }
    let report = node::NodeReport {
        facts: node::MachineFacts::read(&cfg.data_dir),
        runtime_version: format!("{runtime_name}://{runtime_version}"),
        since: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
    };
    let node_uid = node::register(&client, &cfg, &report).await?;
    tracing::info!(node = %cfg.node_name, runtime = %report.runtime_version, "node registered");
    tokio::spawn(node::lease_loop(client.clone(), cfg.node_name.clone(), node_uid));
    tokio::spawn(node::status_loop(client.clone(), cfg.clone(), report));
    tokio::spawn(volumes::local_path::run(client.clone(), cfg.clone()));
    start_network(&client, &cfg);
    let cidr = node::wait_pod_cidr(&client, &cfg.node_name).await;
    let conf = cni::write_config(&cfg, &cidr)?;
    tracing::info!(pod_cidr = %cidr, conf = %conf.display(), "pod network configured");
    let events = probes::EventSink::new(client.clone(), &cfg.node_name);
    let manager = probes::ProbeManager::with_events(cri.clone(), events.clone());
    let probes = pods::seams::Probes::new(manager);
    pods::run(client, cfg, cri, probes, Some(events)).await;
    Ok(())
}

/// Starts the service proxy and the pod routes as supervised tasks when
/// `cfg` enables them.
fn start_network(client: &kube::Client, cfg: &AgentConfig) {
    if cfg.service_proxy {
        let (client, mut proxy_cfg) = (client.clone(), proxy::ProxyConfig::from_agent(cfg));
        proxy_cfg.cluster_cidr = cfg.cluster_cidr;
        tokio::spawn(supervise::supervise("service proxy", move || {
            proxy::sync::run_with(client.clone(), proxy_cfg.clone())
        }));
        tracing::info!(cluster_cidr = %cfg.cluster_cidr, "service proxy started");
    }
    if cfg.pod_routes {
        let (client, cfg) = (client.clone(), cfg.clone());
        tracing::info!(cluster_cidr = %cfg.cluster_cidr, "pod routes started");
        tokio::spawn(supervise::supervise("pod routes", move || {
            routes::run(client.clone(), cfg.clone())
        }));
    }
}
