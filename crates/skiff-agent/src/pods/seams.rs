//! The pod worker's calls into the modules it drives — `volumes`, `spec`
//! and `probes` — gathered in one place, with their errors turned into the
//! waiting reasons and messages the worker reports.

use std::time::Duration;

use k8s_cri::v1::{ContainerConfig, LinuxPodSandboxConfig};
use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod};

use crate::config::AgentConfig;
use crate::cri::CriClient;
use crate::probes::ProbeManager;
use crate::{probes, spec, volumes};

/// A pod's prepared volumes.
pub type Volumes = volumes::PodVolumes;

/// Creates or refreshes the pod's volumes.
pub async fn prepare_volumes(client: &kube::Client, cfg: &AgentConfig, pod: &Pod) -> Result<Volumes, String> {
    volumes::prepare(&volumes::VolumeContext { client, cfg, pod })
        .await
        .map_err(|e| format!("{}: {e}", e.reason()))
}

/// Removes the pod's directory and volumes.
pub async fn cleanup_volumes(cfg: &AgentConfig, pod_uid: &str) -> Result<(), String> {
    volumes::cleanup(cfg, pod_uid).await.map_err(|e| e.to_string())
}

/// What a container is started with.
pub struct ContainerArgs<'a> {
    /// The cluster client (env from ConfigMaps and Secrets).
    pub client: &'a kube::Client,
    /// The agent config.
    pub cfg: &'a AgentConfig,
    /// The pod.
    pub pod: &'a Pod,
    /// The container of the pod spec.
    pub container: &'a Container,
    /// The pod's volumes.
    pub volumes: &'a Volumes,
    /// The restartCount of the new instance.
    pub restart_count: u32,
    /// The pod's IP.
    pub pod_ip: Option<String>,
    /// The node's IP.
    pub host_ip: String,
}

/// The CRI config of a new container instance; the error is the message of
/// a `CreateContainerConfigError`.
pub async fn container_config(a: &ContainerArgs<'_>) -> Result<ContainerConfig, String> {
    let ctx = spec::ContainerContext {
        client: a.client,
        cfg: a.cfg,
        pod: a.pod,
        container: a.container,
        volumes: a.volumes,
        restart_count: a.restart_count,
        pod_ip: a.pod_ip.clone(),
        host_ip: a.host_ip.clone(),
    };
    spec::container_config(&ctx).await.map_err(|e| e.to_string())
}

/// The Linux part of the sandbox config (namespaces, sysctls, security).
pub fn sandbox_linux(pod: &Pod) -> LinuxPodSandboxConfig {
    spec::sandbox_linux(pod)
}

/// A container's probe results as the worker needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeResult {
    /// The startup probe passed (or there is none).
    pub started: bool,
    /// The readiness probe passes (or there is none).
    pub ready: bool,
    /// The liveness (or startup) probe failed: restart the container.
    pub liveness_failed: bool,
}

/// The probes of every container on the node.
#[derive(Clone)]
pub struct Probes {
    manager: ProbeManager,
}

impl Probes {
    /// Probes run by `manager`.
    pub fn new(manager: ProbeManager) -> Probes {
        Probes { manager }
    }

    /// Starts the probes of a running container (again after adoption: a
    /// known container id is left alone).
    pub fn add(&self, pod: &Pod, container: &str, container_id: &str, pod_ip: Option<String>) {
        self.manager.add(pod, container, container_id, pod_ip.as_deref());
    }

    /// Stops the probes of a container.
    pub fn remove(&self, pod_uid: &str, container: &str) {
        self.manager.remove(pod_uid, container);
    }

    /// Stops the probes of every container of a pod.
    pub fn remove_pod(&self, pod_uid: &str) {
        self.manager.remove_pod(pod_uid);
    }

    /// The current results for a container.
    pub fn state(&self, pod_uid: &str, container: &str) -> ProbeResult {
        let s = self.manager.state(pod_uid, container);
        ProbeResult {
            started: s.started,
            ready: s.ready,
            liveness_failed: s.liveness_failed,
        }
    }

    /// Pod UIDs whose probe results changed.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.manager.subscribe()
    }
}

/// Runs a postStart/preStop handler of `container` in instance `container_id`.
pub async fn run_handler(
    cri: &CriClient,
    container: &Container,
    container_id: &str,
    pod_ip: Option<String>,
    handler: &LifecycleHandler,
    timeout: Duration,
) -> Result<(), String> {
    let ports = container.ports.clone().unwrap_or_default();
    probes::run_handler_with_ports(cri, container_id, pod_ip.as_deref(), handler, timeout, &ports)
        .await
        .map_err(|e| e.to_string())
}
