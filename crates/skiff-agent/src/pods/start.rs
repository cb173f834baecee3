//! Starting one container instance of a pod: restart decisions with the
//! back-off, the image (pull policy and pull back-off), CreateContainer and
//! StartContainer, the postStart hook and probes; stopping one for a
//! liveness failure; and the waiting reasons (with their Warning events)
//! the pod status shows while a container cannot run.

use std::time::Duration;

use k8s_cri::v1::{CreateContainerRequest, PodSandboxConfig, StartContainerRequest};
use k8s_openapi::api::core::v1::{Container, ObjectReference, Pod};

use super::backoff::go_duration;
use super::runtime::restart_count;
use super::seams::{self, ContainerArgs};
use super::status::Waiting;
use super::worker::{SyncError, Worker, grace_seconds, pod_ref, ts};
use crate::images;

/// The pod as events name it, pointing at one container's spec.
fn container_ref(pod: &Pod, container: &str) -> ObjectReference {
    let init = pod
        .spec
        .as_ref()
        .is_some_and(|s| !s.containers.iter().any(|c| c.name == container));
    let list = if init { "initContainers" } else { "containers" };
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        field_path: Some(format!("spec.{list}{{{container}}}")),
    }
}

impl Worker {
    /// Restarts an exited container unless it is in back-off.
    pub(super) async fn restart(
        &mut self,
        start: &Start<'_>,
        c: &Container,
        last: &k8s_cri::v1::ContainerStatus,
    ) -> Result<(), SyncError> {
        let finished = ts(last.finished_at);
        let ran = finished.duration_since(ts(last.started_at)).unsigned_abs();
        match self
            .restarts
            .try_restart(&c.name, finished, ran, jiff::Timestamp::now())
        {
            Ok(()) => {
                self.waiting.remove(&c.name);
                self.start(start, c, restart_count(last) + 1).await
            }
            Err(wait) => {
                let message = format!(
                    "back-off {} restarting failed container={} pod={}",
                    go_duration(wait.delay),
                    c.name,
                    pod_ref(start.pod)
                );
                self.set_waiting(&c.name, "CrashLoopBackOff", message);
                self.resync = self.resync.min(wait.remaining + Duration::from_millis(50));
                Ok(())
            }
        }
    }

    /// Records why container `name` waits; a new reason or message is also
    /// a Warning event on the pod, as the kubelet writes one.
    pub(super) fn set_waiting(&mut self, name: &str, reason: &str, message: String) {
        let changed = self
            .waiting
            .get(name)
            .is_none_or(|w| w.reason != reason || w.message != message);
        if changed && let (Some(events), Some(pod)) = (self.ctx.events.clone(), self.last_pod.as_ref()) {
            let about = container_ref(pod, name);
            let (event_reason, text) = match reason {
                "CrashLoopBackOff" => (
                    "BackOff",
                    format!(
                        "Back-off restarting failed container {name} in pod {}",
                        pod_ref(pod)
                    ),
                ),
                "ImagePullBackOff" => ("BackOff", message.clone()),
                "ErrImageNeverPull" => ("ErrImageNeverPull", message.clone()),
                "ErrImagePull" => ("Failed", message.clone()),
                _ => ("Failed", format!("Error: {message}")),
            };
            tokio::spawn(async move { events.warning(&about, event_reason, &text).await });
        }
        self.waiting.insert(
            name.to_string(),
            Waiting {
                reason: reason.to_string(),
                message,
            },
        );
    }

    /// Makes sure the image is there, honouring the pull back-off.
    pub(super) async fn image(&mut self, pod: &Pod, c: &Container) -> Option<String> {
        let now = jiff::Timestamp::now();
        if let Some(&failed) = self.pull_failed_at.get(&c.name)
            && let Err(wait) = self.pulls.try_restart(&c.name, failed, Duration::ZERO, now)
        {
            let image = c.image.clone().unwrap_or_default();
            self.set_waiting(
                &c.name,
                "ImagePullBackOff",
                format!("Back-off pulling image \"{image}\""),
            );
            self.resync = self.resync.min(wait.remaining + Duration::from_millis(50));
            return None;
        }
        match images::ensure_image(&self.ctx.cri, &self.ctx.client, pod, c).await {
            Ok(id) => {
                self.pull_failed_at.remove(&c.name);
                self.pulls.reset(&c.name);
                Some(id)
            }
            Err(e) => {
                if e.reason == "ErrImagePull" {
                    self.pull_failed_at.insert(c.name.clone(), now);
                    self.pulls.try_restart(&c.name, now, Duration::ZERO, now).ok();
                }
                self.set_waiting(&c.name, &e.reason, e.message);
                None
            }
        }
    }

    /// Creates and starts instance `restart_count` of container `c`.
    pub(super) async fn start(
        &mut self,
        start: &Start<'_>,
        c: &Container,
        restart_count: u32,
    ) -> Result<(), SyncError> {
        let Some(_image) = self.image(start.pod, c).await else {
            return Ok(());
        };
        let args = ContainerArgs {
            client: &self.ctx.client,
            cfg: &self.ctx.cfg,
            pod: start.pod,
            container: c,
            volumes: start.volumes,
            restart_count,
            pod_ip: start.pod_ip.clone(),
            host_ip: self.ctx.cfg.node_ip.to_string(),
        };
        let config = match seams::container_config(&args).await {
            Ok(config) => config,
            Err(message) => {
                self.set_waiting(&c.name, "CreateContainerConfigError", message);
                return Ok(());
            }
        };
        let created = self
            .ctx
            .cri
            .runtime
            .clone()
            .create_container(CreateContainerRequest {
                pod_sandbox_id: start.sandbox_id.to_string(),
                config: Some(config),
                sandbox_config: Some(start.sandbox_cfg.clone()),
            })
            .await;
        let id = match created {
            Ok(reply) => reply.into_inner().container_id,
            Err(status) => {
                self.set_waiting(&c.name, "CreateContainerError", status.message().to_string());
                return Ok(());
            }
        };
        self.start_created(start, c, &id).await
    }

    /// Starts a created container, then its postStart hook and probes.
    pub(super) async fn start_created(
        &mut self,
        start: &Start<'_>,
        c: &Container,
        id: &str,
    ) -> Result<(), SyncError> {
        self.acted = true;
        let started = self
            .ctx
            .cri
            .runtime
            .clone()
            .start_container(StartContainerRequest {
                container_id: id.to_string(),
            })
            .await;
        if let Err(status) = started {
            self.set_waiting(&c.name, "RunContainerError", status.message().to_string());
            return Ok(());
        }
        self.waiting.remove(&c.name);
        if let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
            let timeout = Duration::from_secs(grace_seconds(start.pod).max(1).unsigned_abs());
            if let Err(e) =
                seams::run_handler(&self.ctx.cri, c, id, start.pod_ip.clone(), hook, timeout).await
            {
                tracing::warn!(pod = %pod_ref(start.pod), container = %c.name, error = %e, "postStart hook failed");
                self.kill(start.pod, c, id).await?;
                return Ok(());
            }
        }
        self.ctx.probes.add(start.pod, &c.name, id, start.pod_ip.clone());
        self.probed.insert(id.to_string());
        Ok(())
    }

    /// Stops one container: preStop hook, then SIGTERM and SIGKILL after the grace period.
    pub(super) async fn kill(&mut self, pod: &Pod, c: &Container, id: &str) -> Result<(), SyncError> {
        self.acted = true;
        let grace = grace_seconds(pod);
        super::terminate::stop_one(&self.ctx, pod, Some(c), id, grace).await?;
        self.ctx.probes.remove(&self.uid, &c.name);
        self.probed.remove(id);
        Ok(())
    }
}

/// What starting a container in the pod's current sandbox needs.
pub struct Start<'a> {
    /// The pod.
    pub pod: &'a Pod,
    /// Its ready sandbox.
    pub sandbox_id: &'a str,
    /// That sandbox's config (CreateContainer wants it).
    pub sandbox_cfg: &'a PodSandboxConfig,
    /// The pod's volumes.
    pub volumes: &'a seams::Volumes,
    /// The pod's IP.
    pub pod_ip: Option<String>,
}
