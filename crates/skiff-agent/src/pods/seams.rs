//! The pod worker's calls into the modules other engineers own (volumes,
//! spec, probes, lifecycle hooks), gathered in one place so the worker reads
//! the same whichever version of them is in the tree.
//!
//! Until `spec`/`volumes`/`probes` land this holds minimal stand-ins: a
//! container config with command, args, literal env, working dir, labels and
//! log path; no volumes; no probes (containers are started and ready when
//! running); hooks not run.

use std::collections::HashMap;
use std::time::Duration;

use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ImageSpec, KeyValue, LinuxContainerConfig, LinuxPodSandboxConfig,
    LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption,
};
use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod};

use crate::config::AgentConfig;
use crate::cri::CriClient;
use crate::labels;

/// A pod's prepared volumes.
#[derive(Debug, Clone, Default)]
pub struct Volumes;

/// Creates or refreshes the pod's volumes.
pub async fn prepare_volumes(
    _client: &kube::Client,
    _cfg: &AgentConfig,
    _pod: &Pod,
) -> Result<Volumes, String> {
    Ok(Volumes)
}

/// Removes the pod's directory and volumes.
pub async fn cleanup_volumes(cfg: &AgentConfig, pod_uid: &str) -> Result<(), String> {
    match tokio::fs::remove_dir_all(cfg.pod_dir(pod_uid)).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
        _ => Ok(()),
    }
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

/// The CRI config of a new container instance.
pub async fn container_config(a: &ContainerArgs<'_>) -> Result<ContainerConfig, String> {
    let c = a.container;
    let mut container_labels = super::sandbox::pod_labels(a.pod);
    container_labels.insert(labels::CONTAINER_NAME.to_string(), c.name.clone());
    let grace = a
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30);
    let annotations = HashMap::from([
        (labels::RESTART_COUNT.to_string(), a.restart_count.to_string()),
        (labels::TERMINATION_GRACE_PERIOD.to_string(), grace.to_string()),
    ]);
    let envs = c
        .env
        .iter()
        .flatten()
        .map(|e| KeyValue {
            key: e.name.clone(),
            value: e.value.clone().unwrap_or_default(),
        })
        .collect();
    Ok(ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: c.name.clone(),
            attempt: a.restart_count,
        }),
        image: Some(ImageSpec {
            image: c.image.clone().unwrap_or_default(),
            ..ImageSpec::default()
        }),
        command: c.command.clone().unwrap_or_default(),
        args: c.args.clone().unwrap_or_default(),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        envs,
        labels: container_labels,
        annotations,
        log_path: format!("{}/{}.log", c.name, a.restart_count),
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        linux: Some(LinuxContainerConfig::default()),
        ..ContainerConfig::default()
    })
}

/// The Linux part of the sandbox config (namespaces).
pub fn sandbox_linux(pod: &Pod) -> LinuxPodSandboxConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let mode = |host: Option<bool>, other: NamespaceMode| {
        if host.unwrap_or(false) {
            NamespaceMode::Node as i32
        } else {
            other as i32
        }
    };
    LinuxPodSandboxConfig {
        security_context: Some(LinuxSandboxSecurityContext {
            namespace_options: Some(NamespaceOption {
                network: mode(spec.host_network, NamespaceMode::Pod),
                pid: mode(spec.host_pid, NamespaceMode::Container),
                ipc: mode(spec.host_ipc, NamespaceMode::Pod),
                ..NamespaceOption::default()
            }),
            ..LinuxSandboxSecurityContext::default()
        }),
        ..LinuxPodSandboxConfig::default()
    }
}

/// A container's probe results as the worker needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeResult {
    /// The startup probe passed (or there is none).
    pub started: bool,
    /// The readiness probe passes (or there is none).
    pub ready: bool,
    /// The liveness probe failed: restart the container.
    pub liveness_failed: bool,
}

/// The probes of every container on the node.
#[derive(Clone)]
pub struct Probes {
    changed: tokio::sync::broadcast::Sender<String>,
}

impl Probes {
    /// Probes run through `cri`.
    pub fn new(_cri: CriClient) -> Probes {
        Probes {
            changed: tokio::sync::broadcast::channel(64).0,
        }
    }

    /// Starts the probes of a just-started container.
    pub fn add(&self, _pod: &Pod, _container: &str, _container_id: &str, _pod_ip: Option<String>) {}

    /// Stops the probes of a container.
    pub fn remove(&self, _pod_uid: &str, _container: &str) {}

    /// The current results for a container.
    pub fn state(&self, _pod_uid: &str, _container: &str) -> ProbeResult {
        ProbeResult {
            started: true,
            ready: true,
            liveness_failed: false,
        }
    }

    /// Pod UIDs whose probe results changed.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.changed.subscribe()
    }
}

/// Runs a postStart/preStop handler in the container.
pub async fn run_handler(
    _cri: &CriClient,
    _container_id: &str,
    _pod_ip: Option<String>,
    _handler: &LifecycleHandler,
    _timeout: Duration,
) -> Result<(), String> {
    Ok(())
}
