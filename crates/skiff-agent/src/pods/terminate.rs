//! Ending a pod: preStop hooks, then StopContainer with the grace period
//! (SIGTERM, SIGKILL when it runs out), StopPodSandbox and RemovePodSandbox,
//! volume clean-up, and finally the API object's deletion with grace 0 and
//! the pod's UID as precondition (what lets `kubectl delete` return).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::Api;
use kube::api::{DeleteParams, Preconditions};

use super::runtime::{self, PodRuntime, is_running};
use super::seams;
use super::worker::{Ctx, SyncError, Worker, grace_seconds};

/// Runs the preStop hook of `container` (if any) and stops instance `id`,
/// all within `grace` seconds.
pub async fn stop_one(
    ctx: &Ctx,
    pod: &Pod,
    container: Option<&Container>,
    id: &str,
    grace: i64,
) -> Result<(), SyncError> {
    let started = Instant::now();
    let budget = Duration::from_secs(grace.max(0).unsigned_abs());
    if let Some(c) = container
        && let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref())
        && grace > 0
    {
        let pod_ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone());
        if let Err(e) = seams::run_handler(&ctx.cri, c, id, pod_ip, hook, budget).await {
            tracing::warn!(container = id, error = %e, "preStop hook failed");
        }
    }
    // The kubelet never gives a container less than 2 s (minimumGracePeriodInSeconds).
    let left = budget.saturating_sub(started.elapsed()).as_secs();
    let left = if grace > 0 { left.max(2) } else { 0 };
    runtime::stop_container(&ctx.cri, id, i64::try_from(left).unwrap_or(i64::MAX)).await?;
    Ok(())
}

impl Worker {
    /// Stops and removes everything of the pod, cleans its volumes and, when
    /// the API object still exists, deletes it for good.
    pub(super) async fn terminate(&mut self, pod: &Pod, gone: bool) -> Result<(), SyncError> {
        let ctx = self.ctx.clone();
        let rt = PodRuntime::read(&ctx.cri, &self.uid).await?;
        let spec = pod.spec.clone().unwrap_or_default();
        let all: Vec<&Container> = spec
            .init_containers
            .iter()
            .flatten()
            .chain(&spec.containers)
            .collect();
        let grace = grace_seconds(pod);
        let stops = rt.containers.iter().filter(|c| is_running(c)).map(|i| {
            let name = runtime::container_name(i);
            let c = all.iter().find(|c| c.name == name).copied();
            stop_one(&ctx, pod, c, &i.id, grace)
        });
        for r in futures::future::join_all(stops).await {
            r?;
        }
        ctx.probes.remove_pod(&self.uid);
        for s in &rt.sandboxes {
            runtime::remove_sandbox(&ctx.cri, &s.id).await?;
        }
        seams::cleanup_volumes(&ctx.cfg, &self.uid)
            .await
            .map_err(SyncError::Volumes)?;
        if gone {
            return Ok(());
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
