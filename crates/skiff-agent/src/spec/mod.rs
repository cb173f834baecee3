//! Pod spec → CRI: [`container_config`] turns one container of a pod into
//! the CRI `ContainerConfig` the kubelet would send (command and args with
//! `$(VAR)` expansion, the resolved environment, mounts, resources, security
//! context, labels and annotations, log path), and [`sandbox_linux`] gives
//! the sandbox's Linux settings.
//!
//! Owns the translation only: which container to start when belongs to
//! `pods`, and volume directories to `volumes`. Most of the work is pure
//! (`env`, `expand`, `fieldref`, `resources`, `security`, `mounts`, `hosts`);
//! [`fetch`] reads the ConfigMaps, Secrets and Services env refers to.

pub mod env;
pub mod expand;
pub mod fetch;
pub mod fieldref;
pub mod hosts;
pub mod mounts;
pub mod resources;
pub mod security;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_cri::v1::{ContainerConfig, ContainerMetadata, ImageSpec, KeyValue, LinuxContainerConfig};
use k8s_openapi::api::core::v1::{Container, Pod};

use crate::config::AgentConfig;
use crate::labels;
use crate::volumes::PodVolumes;

pub use fieldref::DownwardInputs;
pub use security::sandbox_linux;

/// Container annotation: where the container writes its termination message.
pub const TERMINATION_MESSAGE_PATH: &str = "io.kubernetes.container.terminationMessagePath";
/// Container annotation: the container's terminationMessagePolicy.
pub const TERMINATION_MESSAGE_POLICY: &str = "io.kubernetes.container.terminationMessagePolicy";

/// Why a container's config could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The pod refers to something missing or invalid (a ConfigMap key, a
    /// volume, a field path): the kubelet's CreateContainerConfigError.
    #[error("{0}")]
    Config(String),
    /// The API server could not be asked.
    #[error("reading {what}: {source}")]
    Api {
        /// What was being read.
        what: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// A managed file or subPath directory could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl SpecError {
    /// The waiting reason the container gets in its status.
    pub fn reason(&self) -> &'static str {
        "CreateContainerConfigError"
    }
}

/// Everything [`container_config`] needs for one container instance.
#[derive(Clone)]
pub struct ContainerContext<'a> {
    /// Client for ConfigMaps, Secrets and Services the env refers to.
    pub client: &'a kube::Client,
    /// The agent's settings (pod dirs, cluster domain).
    pub cfg: &'a AgentConfig,
    /// The pod.
    pub pod: &'a Pod,
    /// The container of `pod` to configure (init or regular).
    pub container: &'a Container,
    /// The pod's prepared volumes.
    pub volumes: &'a PodVolumes,
    /// Restarts so far: the CRI attempt and the log file name.
    pub restart_count: u32,
    /// The sandbox's IP (None for a pod without one yet).
    pub pod_ip: Option<String>,
    /// The node's IP.
    pub host_ip: String,
}

/// The CRI config for one container instance; reads the cluster for env
/// sources and writes the pod's hosts file and the termination message file.
pub async fn container_config(ctx: &ContainerContext<'_>) -> Result<ContainerConfig, SpecError> {
    let downward =
        DownwardInputs::from_machine(ctx.pod_ip.iter().cloned().collect(), vec![ctx.host_ip.clone()]);
    let memory_capacity = downward.node_memory_bytes;
    let sources = fetch::fetch_sources(ctx.client, ctx.pod, ctx.container, downward).await?;
    let env = env::resolve(ctx.pod, ctx.container, &sources)?;
    let uid = ctx.pod.metadata.uid.as_deref().unwrap_or_default();
    let pod_dir = ctx.cfg.pod_dir(uid);
    let pod_ips: Vec<String> = match &ctx.pod_ip {
        Some(ip) => vec![ip.clone()],
        None => vec![ctx.host_ip.clone()],
    };
    let etc_hosts =
        hosts::write_hosts_file(&pod_dir, ctx.pod, &pod_ips, &ctx.cfg.cluster_domain).map_err(|source| {
            SpecError::Io {
                path: pod_dir.join("etc-hosts"),
                source,
            }
        })?;
    let termination_log = termination_log_path(ctx.cfg, uid, &ctx.container.name, ctx.restart_count);
    create_termination_log(&termination_log)?;
    let files = mounts::ManagedFiles {
        etc_hosts: Some(etc_hosts),
        termination_log: Some(termination_log),
    };
    let mounts = mounts::container_mounts(ctx.container, ctx.volumes, &env, &files)?;
    Ok(build(
        ctx.pod,
        ctx.container,
        ctx.restart_count,
        env,
        mounts,
        memory_capacity,
    ))
}

/// The pure part of [`container_config`]: everything but the lookups.
pub fn build(
    pod: &Pod,
    container: &Container,
    restart_count: u32,
    env: env::Env,
    mounts: Vec<k8s_cri::v1::Mount>,
    memory_capacity: i64,
) -> ContainerConfig {
    let lookup = |name: &str| env.get(name).map(str::to_string);
    let command: Vec<String> = container
        .command
        .iter()
        .flatten()
        .map(|c| expand::expand(c, lookup))
        .collect();
    let args: Vec<String> = container
        .args
        .iter()
        .flatten()
        .map(|a| expand::expand(a, lookup))
        .collect();
    let meta = &pod.metadata;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let labels = HashMap::from([
        (labels::POD_NAME.to_string(), text(&meta.name)),
        (labels::POD_NAMESPACE.to_string(), text(&meta.namespace)),
        (labels::POD_UID.to_string(), text(&meta.uid)),
        (labels::CONTAINER_NAME.to_string(), container.name.clone()),
        (labels::MANAGED_BY_SKIFF.to_string(), "true".to_string()),
    ]);
    let grace = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30);
    let annotations = HashMap::from([
        (labels::RESTART_COUNT.to_string(), restart_count.to_string()),
        (labels::CONTAINER_HASH.to_string(), container_hash(container)),
        (labels::TERMINATION_GRACE_PERIOD.to_string(), grace.to_string()),
        (
            TERMINATION_MESSAGE_PATH.to_string(),
            container
                .termination_message_path
                .clone()
                .unwrap_or_else(|| "/dev/termination-log".into()),
        ),
        (
            TERMINATION_MESSAGE_POLICY.to_string(),
            container
                .termination_message_policy
                .clone()
                .unwrap_or_else(|| "File".into()),
        ),
    ]);
    let image = container.image.clone().unwrap_or_default();
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: container.name.clone(),
            attempt: restart_count,
        }),
        image: Some(ImageSpec {
            image: image.clone(),
            user_specified_image: image,
            ..Default::default()
        }),
        command,
        args,
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs: env
            .into_vec()
            .into_iter()
            .map(|(key, value)| KeyValue { key, value })
            .collect(),
        mounts,
        labels,
        annotations,
        log_path: log_path(&container.name, restart_count),
        stdin: container.stdin.unwrap_or(false),
        stdin_once: container.stdin_once.unwrap_or(false),
        tty: container.tty.unwrap_or(false),
        linux: Some(LinuxContainerConfig {
            resources: Some(resources::linux_resources(pod, container, memory_capacity)),
            security_context: Some(security::container_security(pod, container)),
        }),
        ..Default::default()
    }
}

/// `<container>/<restart_count>.log`, relative to the sandbox's log dir.
pub fn log_path(container_name: &str, restart_count: u32) -> String {
    format!("{container_name}/{restart_count}.log")
}

/// Host file a container instance writes its termination message to:
/// `<pod dir>/containers/<name>/<restart_count>.termination-log`.
pub fn termination_log_path(
    cfg: &AgentConfig,
    pod_uid: &str,
    container_name: &str,
    restart_count: u32,
) -> PathBuf {
    cfg.pod_dir(pod_uid)
        .join("containers")
        .join(container_name)
        .join(format!("{restart_count}.termination-log"))
}

/// Most bytes of a termination message the kubelet reports.
pub const MAX_TERMINATION_MESSAGE_BYTES: usize = 4096;

/// The termination message a container instance wrote to its
/// terminationMessagePath (its last 4096 bytes), if any: what goes into
/// `state.terminated.message`.
pub fn read_termination_message(
    cfg: &AgentConfig,
    pod_uid: &str,
    container_name: &str,
    restart_count: u32,
) -> Option<String> {
    let bytes = std::fs::read(termination_log_path(cfg, pod_uid, container_name, restart_count)).ok()?;
    let tail = &bytes[bytes.len().saturating_sub(MAX_TERMINATION_MESSAGE_BYTES)..];
    let text = String::from_utf8_lossy(tail).into_owned();
    (!text.is_empty()).then_some(text)
}

fn create_termination_log(path: &Path) -> Result<(), SpecError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| SpecError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(path, b"").map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(io)
}

/// A stable hash of the container's spec (FNV-1a over its JSON), stored in
/// the container's annotations so a changed spec can be noticed.
pub fn container_hash(container: &Container) -> String {
    let json = serde_json::to_vec(container).unwrap_or_default();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in json {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
