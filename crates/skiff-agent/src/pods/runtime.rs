//! What the runtime holds for one pod: its sandboxes and every container
//! instance (with exit codes and times), found by the kubelet labels; and
//! the stop/remove calls the pod worker and the orphan sweep share.

use std::collections::HashMap;

use k8s_cri::v1::{
    ContainerFilter, ContainerState, ContainerStatus, ContainerStatusRequest, ListContainersRequest,
    ListPodSandboxRequest, PodSandbox, PodSandboxFilter, PodSandboxState, RemoveContainerRequest,
    RemovePodSandboxRequest, StopContainerRequest, StopPodSandboxRequest,
};

use crate::cri::{CriClient, CriError};
use crate::labels;

/// The runtime objects of one pod.
#[derive(Debug, Clone, Default)]
pub struct PodRuntime {
    /// Sandboxes, newest first.
    pub sandboxes: Vec<PodSandbox>,
    /// Container instances, newest first (by attempt, then creation).
    pub containers: Vec<ContainerStatus>,
}

/// Container name of a CRI container status.
pub fn container_name(c: &ContainerStatus) -> &str {
    c.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or_default()
}

/// The restartCount a container instance was created with.
pub fn restart_count(c: &ContainerStatus) -> u32 {
    c.annotations
        .get(labels::RESTART_COUNT)
        .and_then(|v| v.parse().ok())
        .or_else(|| c.metadata.as_ref().map(|m| m.attempt))
        .unwrap_or(0)
}

/// Whether the instance is running.
pub fn is_running(c: &ContainerStatus) -> bool {
    c.state == ContainerState::ContainerRunning as i32
}

/// Whether the instance has exited.
pub fn is_exited(c: &ContainerStatus) -> bool {
    c.state == ContainerState::ContainerExited as i32
}

impl PodRuntime {
    /// Reads the sandboxes and containers labelled with `pod_uid`.
    pub async fn read(cri: &CriClient, pod_uid: &str) -> Result<PodRuntime, CriError> {
        let selector = HashMap::from([(labels::POD_UID.to_string(), pod_uid.to_string())]);
        let mut sandboxes = cri
            .runtime
            .clone()
            .list_pod_sandbox(ListPodSandboxRequest {
                filter: Some(PodSandboxFilter {
                    label_selector: selector.clone(),
                    ..PodSandboxFilter::default()
                }),
            })
            .await?
            .into_inner()
            .items;
        sandboxes.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        let listed = cri
            .runtime
            .clone()
            .list_containers(ListContainersRequest {
                filter: Some(ContainerFilter {
                    label_selector: selector,
                    ..ContainerFilter::default()
                }),
            })
            .await?
            .into_inner()
            .containers;
        let mut containers = Vec::with_capacity(listed.len());
        for c in listed {
            match container_status(cri, &c.id).await {
                Ok(Some(s)) => containers.push(s),
                Ok(None) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        containers.sort_by_key(|c| std::cmp::Reverse((restart_count(c), c.created_at)));
        Ok(PodRuntime {
            sandboxes,
            containers,
        })
    }

    /// The newest ready sandbox.
    pub fn ready_sandbox(&self) -> Option<&PodSandbox> {
        self.sandboxes
            .iter()
            .find(|s| s.state == PodSandboxState::SandboxReady as i32)
    }

    /// Instances of container `name`, newest first.
    pub fn instances<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a ContainerStatus> + 'a {
        self.containers.iter().filter(move |c| container_name(c) == name)
    }

    /// The newest instance of container `name`.
    pub fn latest(&self, name: &str) -> Option<&ContainerStatus> {
        self.containers.iter().find(|c| container_name(c) == name)
    }
}

/// The status of one container, `None` if the runtime no longer has it.
pub async fn container_status(cri: &CriClient, id: &str) -> Result<Option<ContainerStatus>, CriError> {
    let reply = cri
        .runtime
        .clone()
        .container_status(ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: false,
        })
        .await?
        .into_inner();
    Ok(reply.status)
}

/// Stops a container, giving it `timeout_secs` after SIGTERM before SIGKILL.
pub async fn stop_container(cri: &CriClient, id: &str, timeout_secs: i64) -> Result<(), CriError> {
    let done = cri
        .runtime
        .clone()
        .stop_container(StopContainerRequest {
            container_id: id.to_string(),
            timeout: timeout_secs.max(0),
        })
        .await;
    ignore_not_found(done.map(drop).map_err(CriError::from))
}

/// Removes a container (stopping it first if needed).
pub async fn remove_container(cri: &CriClient, id: &str) -> Result<(), CriError> {
    let done = cri
        .runtime
        .clone()
        .remove_container(RemoveContainerRequest {
            container_id: id.to_string(),
        })
        .await;
    ignore_not_found(done.map(drop).map_err(CriError::from))
}

/// Stops a sandbox: its remaining containers are killed, its network torn down.
pub async fn stop_sandbox(cri: &CriClient, id: &str) -> Result<(), CriError> {
    let done = cri
        .runtime
        .clone()
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        })
        .await;
    ignore_not_found(done.map(drop).map_err(CriError::from))
}

/// Stops and removes a sandbox with all its containers.
pub async fn remove_sandbox(cri: &CriClient, id: &str) -> Result<(), CriError> {
    stop_sandbox(cri, id).await?;
    let done = cri
        .runtime
        .clone()
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        })
        .await;
    ignore_not_found(done.map(drop).map_err(CriError::from))
}

fn ignore_not_found(r: Result<(), CriError>) -> Result<(), CriError> {
    match r {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}
