//! The raw containerd floor of pod start: RunPodSandbox + CreateContainer +
//! StartContainer timed directly over CRI, pods one after the other and then
//! all at once, with the same image and the same CNI network the agent's pods
//! get. Everything it starts is stopped and removed.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

use crate::error::BenchError;

fn cri_error(what: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Response {
        what: format!("CRI {what}"),
        detail: e.to_string(),
    }
}

async fn connect(socket: &Path) -> Result<RuntimeServiceClient<Channel>, BenchError> {
    let client = skiff_agent::CriClient::connect(socket)
        .await
        .map_err(|e| cri_error("connect", e))?;
    Ok(client.runtime)
}

/// What the floor measured.
pub struct Floor {
    /// Each pod's start, pods started one after the other.
    pub one_by_one: Vec<Duration>,
    /// Each pod's start, all pods started at once.
    pub burst: Vec<Duration>,
    /// From the first start of the burst until all were started.
    pub burst_all: Duration,
}

/// Times `count` sandbox + container starts of `image` one by one, then
/// `burst` more all at once.
pub async fn measure(socket: &Path, image: &str, count: usize, burst: usize) -> Result<Floor, BenchError> {
    let mut runtime = connect(socket).await?;
    let logs = std::env::temp_dir().join(format!("skiff-bench-floor-{}", std::process::id()));
    std::fs::create_dir_all(&logs).map_err(|e| cri_error("log dir", e))?;
    let stamp = jiff::Timestamp::now().as_second();
    let mut sandboxes = Vec::new();
    let mut one_by_one = Vec::new();
    for i in 0..count {
        let started = start_pod(runtime.clone(), image, &format!("floor-{stamp}-s{i}"), &logs).await;
        match started {
            Ok((id, took)) => {
                sandboxes.push(id);
                one_by_one.push(took);
            }
            Err(e) => {
                remove_all(&mut runtime, sandboxes).await;
                return Err(e);
            }
        }
    }
    remove_all(&mut runtime, std::mem::take(&mut sandboxes)).await;
    let start = Instant::now();
    let results = futures::future::join_all((0..burst).map(|i| {
        let name = format!("floor-{stamp}-b{i}");
        let runtime = runtime.clone();
        let logs = logs.clone();
        async move { start_pod(runtime, image, &name, &logs).await }
    }))
    .await;
    let burst_all = start.elapsed();
    let mut burst = Vec::new();
    let mut failed = None;
    for result in results {
        match result {
            Ok((id, took)) => {
                sandboxes.push(id);
                burst.push(took);
            }
            Err(e) => failed = Some(e),
        }
    }
    remove_all(&mut runtime, sandboxes).await;
    let _ = std::fs::remove_dir_all(&logs);
    match failed {
        Some(e) => Err(e),
        None => Ok(Floor {
            one_by_one,
            burst,
            burst_all,
        }),
    }
}

/// RunPodSandbox + CreateContainer + StartContainer; the sandbox id and the time it took.
async fn start_pod(
    mut runtime: RuntimeServiceClient<Channel>,
    image: &str,
    name: &str,
    logs: &Path,
) -> Result<(String, Duration), BenchError> {
    let config = sandbox_config(name, logs);
    let start = Instant::now();
    let sandbox = runtime
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .map_err(|e| cri_error("RunPodSandbox", e))?
        .into_inner()
        .pod_sandbox_id;
    let container = runtime
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: sandbox.clone(),
            config: Some(container_config(image)),
            sandbox_config: Some(config),
        })
        .await
        .map_err(|e| cri_error("CreateContainer", e))?
        .into_inner()
        .container_id;
    runtime
        .start_container(cri::StartContainerRequest {
            container_id: container,
        })
        .await
        .map_err(|e| cri_error("StartContainer", e))?;
    Ok((sandbox, start.elapsed()))
}

/// Stops and removes `sandboxes` (with their containers).
async fn remove_all(runtime: &mut RuntimeServiceClient<Channel>, sandboxes: Vec<String>) {
    for id in sandboxes {
        let _ = runtime
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            })
            .await;
        let _ = runtime
            .remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id })
            .await;
    }
}

fn sandbox_config(name: &str, logs: &Path) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.to_string(),
            uid: name.to_string(),
            namespace: "skiff-bench-floor".to_string(),
            attempt: 0,
        }),
        hostname: name.to_string(),
        log_directory: logs.join(name).display().to_string(),
        linux: Some(cri::LinuxPodSandboxConfig::default()),
        ..Default::default()
    }
}

fn container_config(image: &str) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: "c".to_string(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: image.to_string(),
            ..Default::default()
        }),
        command: vec!["sleep".to_string(), "3600".to_string()],
        log_path: "c.log".to_string(),
        linux: Some(cri::LinuxContainerConfig::default()),
        ..Default::default()
    }
}
