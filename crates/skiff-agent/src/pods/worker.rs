//! One pod's worker: each sync reconciles the pod spec against what the
//! runtime holds — sandbox, image pulls, init containers in order, then the
//! containers, restarts with back-off, liveness kills — removes instances
//! older than the previous one, and writes the pod status when it changed.
//! Syncs of one pod are serial (the worker owns its state); termination
//! lives in [`super::terminate`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_cri::v1::{PodSandboxState, PodSandboxStatusRequest, RunPodSandboxRequest};
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::Api;
use kube::api::{Patch, PatchParams};

use super::backoff::Backoff;
use super::runtime::{self, PodRuntime, is_exited, is_running};
use super::sandbox::sandbox_config;
use super::seams::{self, Probes};
use super::start::Start;
use super::status::{StatusInput, Waiting, pod_status};
use crate::config::AgentConfig;
use crate::cri::{CriClient, CriError};
use crate::probes::EventSink;

/// How long a worker idles before it looks again when nothing happens.
const IDLE_RESYNC: Duration = Duration::from_secs(10);

/// What every worker shares.
pub struct Ctx {
    /// The cluster client.
    pub client: kube::Client,
    /// The agent config.
    pub cfg: AgentConfig,
    /// The runtime.
    pub cri: CriClient,
    /// The node's probes.
    pub probes: Probes,
    /// Where Warning events about pods go (none in some tests).
    pub events: Option<EventSink>,
}

/// Why a sync failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A runtime call failed.
    #[error(transparent)]
    Cri(#[from] CriError),
    /// An API call failed.
    #[error("pod API: {0}")]
    Api(#[from] kube::Error),
    /// The pod's volumes could not be prepared or removed.
    #[error("volumes: {0}")]
    Volumes(String),
}

/// What the worker does after a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The pod is gone and cleaned up: the worker ends.
    Done,
    /// Sync again after this long unless something happens first.
    After(Duration),
}

/// The state one pod's worker keeps between syncs.
pub struct Worker {
    pub(super) ctx: Arc<Ctx>,
    pub(super) uid: String,
    pub(super) last_pod: Option<Pod>,
    pub(super) restarts: Backoff,
    pub(super) pulls: Backoff,
    pub(super) pull_failed_at: HashMap<String, jiff::Timestamp>,
    pub(super) waiting: HashMap<String, Waiting>,
    pub(super) written: Option<serde_json::Value>,
    /// The resourceVersion of this worker's last status write, when the
    /// write changed nothing but the status of the pod the sync acted on.
    pub(super) own_version: Option<String>,
    /// Whether the current sync changed anything in the runtime (the
    /// runtime is then read again before the status is written).
    pub(super) acted: bool,
    pub(super) probed: HashSet<String>,
    pub(super) sandbox_ip: Option<(String, Option<String>)>,
    pub(super) resync: Duration,
}

pub(super) fn pod_ref(pod: &Pod) -> String {
    let m = &pod.metadata;
    format!(
        "{}_{}({})",
        m.name.as_deref().unwrap_or_default(),
        m.namespace.as_deref().unwrap_or("default"),
        m.uid.as_deref().unwrap_or_default()
    )
}

fn should_restart(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

pub(super) fn ts(nanos: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_nanosecond(i128::from(nanos)).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

impl Worker {
    /// A worker for the pod with `uid`.
    pub fn new(ctx: Arc<Ctx>, uid: String) -> Worker {
        Worker {
            ctx,
            uid,
            last_pod: None,
            restarts: Backoff::default(),
            pulls: Backoff::default(),
            pull_failed_at: HashMap::new(),
            waiting: HashMap::new(),
            written: None,
            own_version: None,
            acted: false,
            probed: HashSet::new(),
            sandbox_ip: None,
            resync: IDLE_RESYNC,
        }
    }

    /// Whether `pod` is the object this worker's own last status write
    /// produced, i.e. holds nothing the worker has not acted on yet.
    pub fn wrote(&self, pod: &Pod) -> bool {
        self.own_version.is_some() && pod.metadata.resource_version == self.own_version
    }

    /// Reconciles once. `pod` is the newest object, `None` once it is gone from the API.
    pub async fn sync(&mut self, pod: Option<Pod>) -> Result<Next, SyncError> {
        let gone = pod.is_none();
        if let Some(p) = pod {
            self.last_pod = Some(p);
        }
        let Some(pod) = self.last_pod.clone() else {
            return Ok(Next::Done);
        };
        if gone || pod.metadata.deletion_timestamp.is_some() {
            self.terminate(&pod, gone).await?;
            return Ok(Next::Done);
        }
        let rt = PodRuntime::read(&self.ctx.cri, &self.uid).await?;
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        if phase == "Succeeded" || phase == "Failed" {
            self.stop_everything(&pod, &rt).await?;
            return Ok(Next::After(Duration::from_secs(60)));
        }
        self.resync = IDLE_RESYNC;
        self.acted = false;
        let volumes = seams::prepare_volumes(&self.ctx.client, &self.ctx.cfg, &pod)
            .await
            .map_err(SyncError::Volumes)?;
        let spec = pod.spec.clone().unwrap_or_default();
        let policy = spec.restart_policy.clone().unwrap_or_else(|| "Always".into());
        let finished_for_good = policy == "Never"
            && !rt.sandboxes.is_empty()
            && spec
                .containers
                .iter()
                .all(|c| rt.latest(&c.name).is_some_and(is_exited));
        let mut rt = rt;
        let sandbox = match rt.ready_sandbox() {
            Some(s) => Some((s.id.clone(), s.metadata.as_ref().map(|m| m.attempt).unwrap_or(0))),
            None if finished_for_good => None,
            None => {
                let created = self.new_sandbox(&pod, &rt).await?;
                // Containers of the old sandbox were stopped: see them exited
                // (a pod's first sandbox has none, nothing to read again).
                if !rt.containers.is_empty() {
                    rt = PodRuntime::read(&self.ctx.cri, &self.uid).await?;
                }
                Some(created)
            }
        };
        if let Some((sandbox_id, attempt)) = sandbox {
            let host_network = spec.host_network.unwrap_or(false);
            let pod_ip = self.pod_ip(&sandbox_id, host_network).await?;
            let sandbox_cfg = sandbox_config(&self.ctx.cfg, &pod, attempt);
            let start = Start {
                pod: &pod,
                sandbox_id: &sandbox_id,
                sandbox_cfg: &sandbox_cfg,
                volumes: &volumes,
                pod_ip: pod_ip.clone(),
            };
            self.containers(&start, &rt, &policy).await?;
        }
        self.collect_garbage(&rt).await;
        if self.acted {
            rt = PodRuntime::read(&self.ctx.cri, &self.uid).await?;
        }
        let phase = self.write_status(&pod, &rt).await?;
        if phase == "Succeeded" || phase == "Failed" {
            self.stop_everything(&pod, &rt).await?;
        }
        Ok(Next::After(self.resync))
    }

    /// Runs a new sandbox after stopping whatever is left of older ones.
    async fn new_sandbox(&mut self, pod: &Pod, rt: &PodRuntime) -> Result<(String, u32), SyncError> {
        self.acted = true;
        let cri = &self.ctx.cri;
        for c in rt.containers.iter().filter(|c| is_running(c)) {
            runtime::stop_container(cri, &c.id, 0).await?;
        }
        for s in &rt.sandboxes {
            runtime::stop_sandbox(cri, &s.id).await?;
        }
        let attempt = rt
            .sandboxes
            .iter()
            .filter_map(|s| s.metadata.as_ref().map(|m| m.attempt + 1))
            .max()
            .unwrap_or(0);
        let config = sandbox_config(&self.ctx.cfg, pod, attempt);
        let _ = tokio::fs::create_dir_all(&config.log_directory).await;
        let reply = cri
            .runtime
            .clone()
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            })
            .await
            .map_err(CriError::from)?;
        let id = reply.into_inner().pod_sandbox_id;
        tracing::debug!(pod = %pod_ref(pod), sandbox = %id, "sandbox started");
        Ok((id, attempt))
    }

    /// The IP of sandbox `id` (asked once per sandbox).
    async fn pod_ip(&mut self, id: &str, host_network: bool) -> Result<Option<String>, SyncError> {
        if let Some((known, ip)) = &self.sandbox_ip
            && known == id
        {
            return Ok(ip.clone());
        }
        if host_network {
            let ip = Some(self.ctx.cfg.node_ip.to_string());
            self.sandbox_ip = Some((id.to_string(), ip.clone()));
            return Ok(ip);
        }
        let status = self
            .ctx
            .cri
            .runtime
            .clone()
            .pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: id.to_string(),
                verbose: false,
            })
            .await
            .map_err(CriError::from)?
            .into_inner()
            .status;
        let ip = status
            .and_then(|s| s.network)
            .map(|n| n.ip)
            .filter(|ip| !ip.is_empty());
        self.sandbox_ip = Some((id.to_string(), ip.clone()));
        Ok(ip)
    }

    /// Init containers one by one to completion, then every container.
    async fn containers(
        &mut self,
        start: &Start<'_>,
        rt: &PodRuntime,
        policy: &str,
    ) -> Result<(), SyncError> {
        let spec = start.pod.spec.clone().unwrap_or_default();
        for c in spec.init_containers.iter().flatten() {
            match rt.latest(&c.name) {
                Some(i) if is_exited(i) && i.exit_code == 0 => {
                    self.waiting.remove(&c.name);
                }
                Some(i) if is_exited(i) => {
                    if policy != "Never" {
                        self.restart(start, c, i).await?;
                    }
                    return Ok(());
                }
                Some(i) if is_running(i) => return Ok(()),
                Some(i) => return self.start_created(start, c, &i.id).await,
                None => return self.start(start, c, 0).await,
            }
        }
        for c in &spec.containers {
            match rt.latest(&c.name) {
                None => self.start(start, c, 0).await?,
                Some(i) if is_running(i) => {
                    let state = self.ctx.probes.state(&self.uid, &c.name);
                    if c.liveness_probe.is_some() && state.liveness_failed {
                        tracing::info!(pod = %pod_ref(start.pod), container = %c.name, "liveness probe failed, restarting");
                        self.kill(start.pod, c, &i.id).await?;
                        if let Some(now) = runtime::container_status(&self.ctx.cri, &i.id).await?
                            && should_restart(policy, now.exit_code)
                        {
                            self.restart(start, c, &now).await?;
                        }
                    } else if !self.probed.contains(&i.id) {
                        self.ctx
                            .probes
                            .add(start.pod, &c.name, &i.id, start.pod_ip.clone());
                        self.probed.insert(i.id.clone());
                    }
                }
                Some(i) if is_exited(i) => {
                    if should_restart(policy, i.exit_code) {
                        self.restart(start, c, i).await?;
                    } else {
                        self.waiting.remove(&c.name);
                    }
                }
                Some(i) => self.start_created(start, c, &i.id).await?,
            }
        }
        Ok(())
    }

    /// Keeps per container name the newest instance and the newest exited
    /// one before it (for `logs --previous`); removes older exited ones.
    async fn collect_garbage(&mut self, rt: &PodRuntime) {
        let names: HashSet<&str> = rt.containers.iter().map(runtime::container_name).collect();
        for name in names {
            for old in rt.instances(name).skip(2).filter(|c| is_exited(c)) {
                self.acted = true;
                if let Err(e) = runtime::remove_container(&self.ctx.cri, &old.id).await {
                    tracing::warn!(container = %old.id, error = %e, "removing an old container");
                }
                self.probed.remove(&old.id);
            }
        }
    }

    /// Computes the status and writes it when it differs from the last write.
    /// Returns the phase written.
    pub(super) async fn write_status(&mut self, pod: &Pod, rt: &PodRuntime) -> Result<String, SyncError> {
        let sandbox_ready = rt.ready_sandbox().is_some();
        let pod_ip = match (&self.sandbox_ip, rt.ready_sandbox()) {
            (Some((id, ip)), Some(s)) if *id == s.id => ip.clone(),
            _ => None,
        };
        let probes = &self.ctx.probes;
        let uid = self.uid.clone();
        let probe = move |name: &str| probes.state(&uid, name);
        let input = StatusInput {
            pod,
            runtime: rt,
            pod_ip,
            sandbox_ready,
            host_ip: self.ctx.cfg.node_ip.to_string(),
            waiting: &self.waiting,
            probes: &probe,
            now: jiff::Timestamp::now(),
        };
        let status = pod_status(&input);
        let phase = status.phase.clone().unwrap_or_default();
        let value = serde_json::to_value(&status).unwrap_or_default();
        if self.written.as_ref() == Some(&value) {
            return Ok(phase);
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
        let patch = serde_json::json!({ "status": value });
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(updated) => {
                self.own_version = only_status_changed(pod, &updated)
                    .then(|| updated.metadata.resource_version.clone())
                    .flatten();
                self.last_pod = Some(updated);
                self.written = Some(value);
                Ok(phase)
            }
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(phase),
            Err(e) => Err(e.into()),
        }
    }

    /// A pod that reached Succeeded/Failed: nothing of it keeps running.
    async fn stop_everything(&mut self, pod: &Pod, rt: &PodRuntime) -> Result<(), SyncError> {
        let spec = pod.spec.clone().unwrap_or_default();
        let all: Vec<&Container> = spec
            .init_containers
            .iter()
            .flatten()
            .chain(&spec.containers)
            .collect();
        for i in rt.containers.iter().filter(|c| is_running(c)) {
            let c = all.iter().find(|c| c.name == runtime::container_name(i)).copied();
            super::terminate::stop_one(&self.ctx, pod, c, &i.id, grace_seconds(pod)).await?;
        }
        for s in rt
            .sandboxes
            .iter()
            .filter(|s| s.state == PodSandboxState::SandboxReady as i32)
        {
            runtime::stop_sandbox(&self.ctx.cri, &s.id).await?;
        }
        Ok(())
    }
}

/// Whether `after` (the reply to a status write) differs from `before` (the
/// pod the sync acted on) in nothing but its status and write bookkeeping.
fn only_status_changed(before: &Pod, after: &Pod) -> bool {
    let plain = |pod: &Pod| {
        let mut meta = pod.metadata.clone();
        meta.resource_version = None;
        meta.managed_fields = None;
        meta
    };
    before.spec == after.spec && plain(before) == plain(after)
}

/// The pod's termination grace period in seconds (deletion's, else the spec's, else 30).
pub fn grace_seconds(pod: &Pod) -> i64 {
    pod.metadata
        .deletion_grace_period_seconds
        .or(pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds))
        .unwrap_or(30)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};

    fn pod(rv: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some("web".into());
        p.metadata.resource_version = Some(rv.into());
        p.spec = Some(PodSpec::default());
        p
    }

    #[test]
    fn a_status_write_alone_is_recognised_but_not_a_foreign_change() {
        let before = pod("1");
        let mut after = pod("2");
        after.status = Some(PodStatus {
            phase: Some("Running".into()),
            ..PodStatus::default()
        });
        assert!(only_status_changed(&before, &after));
        after.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::UNIX_EPOCH,
        ));
        assert!(!only_status_changed(&before, &after));
        let mut respec = pod("3");
        respec.spec = Some(PodSpec {
            active_deadline_seconds: Some(5),
            ..PodSpec::default()
        });
        assert!(!only_status_changed(&before, &respec));
    }
}
