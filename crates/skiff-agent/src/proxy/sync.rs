//! The sync loop: reflectors over Services and EndpointSlices feed a
//! debounced loop that renders and applies one `nft -f` transaction per
//! sync (full on the first sync and after an error, incremental after).
//! Every watch event wakes the loop, deletions and re-lists included.

use std::time::Instant;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client};
use tokio::sync::Notify;

use super::model::{ServicePort, service_ports};
use super::nft::{NftError, full_script, incremental_script};
use super::render::RenderConfig;
use super::state::Applied;
use super::{ProxyConfig, ProxyError};
use crate::AgentConfig;

/// Applies rendered rulesets, remembering what was applied so later
/// syncs re-render and send only what changed.
#[derive(Debug)]
pub struct Syncer {
    cfg: ProxyConfig,
    applied: Option<Applied>,
}

/// What one sync did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    /// The table was recreated.
    Full,
    /// Only changes were applied.
    Incremental,
    /// Nothing changed.
    Unchanged,
}

impl Syncer {
    /// A syncer whose first sync is full.
    pub fn new(cfg: ProxyConfig) -> Syncer {
        Syncer { cfg, applied: None }
    }

    fn render_config(&self) -> RenderConfig {
        RenderConfig {
            cluster_cidr: self.cfg.cluster_cidr,
        }
    }

    /// Brings the table to `ports` in one transaction: incremental after a
    /// successful sync, full on the first one and after any failure (an
    /// incremental sync that fails is retried once as a full sync).
    pub fn sync(&mut self, ports: &[ServicePort]) -> Result<SyncKind, NftError> {
        let rc = self.render_config();
        if let Some(mut applied) = self.applied.take() {
            let delta = applied.update(ports, &rc);
            if delta.is_empty() {
                self.applied = Some(applied);
                return Ok(SyncKind::Unchanged);
            }
            if let Some(script) = incremental_script(&delta.old, &delta.new) {
                match self.cfg.nft.apply(&script) {
                    Ok(()) => {
                        self.applied = Some(applied);
                        return Ok(SyncKind::Incremental);
                    }
                    Err(e) => tracing::warn!(error = %e, "incremental proxy sync failed; doing a full sync"),
                }
            }
        }
        let applied = Applied::build(ports, &rc);
        self.cfg.nft.apply(&full_script(applied.ruleset()))?;
        self.applied = Some(applied);
        Ok(SyncKind::Full)
    }
}

/// Runs the service proxy for the agent `cfg` until the watches end:
/// watches Services and EndpointSlices and keeps `table ip skiff` in step.
pub async fn run(client: Client, cfg: AgentConfig) -> Result<(), ProxyError> {
    run_with(client, super::ProxyConfig::from_agent(&cfg)).await
}

/// [`run`] with explicit proxy settings.
pub async fn run_with(client: Client, cfg: ProxyConfig) -> Result<(), ProxyError> {
    let notify = std::sync::Arc::new(Notify::new());
    let svc_store = spawn_reflector::<Service>(client.clone(), notify.clone());
    let eps_store = spawn_reflector::<EndpointSlice>(client, notify.clone());
    let node_name = cfg.node_name.clone();
    let debounce = cfg.debounce;
    let mut syncer = Syncer::new(cfg);
    // Wait for both initial lists so the first sync is complete.
    let _ = svc_store.wait_until_ready().await;
    let _ = eps_store.wait_until_ready().await;
    loop {
        tokio::time::sleep(debounce).await;
        let started = Instant::now();
        let services = svc_store.state();
        let slices = eps_store.state();
        let ports = service_ports(
            services.iter().map(|s| s.as_ref()),
            slices.iter().map(|s| s.as_ref()),
            &node_name,
        );
        let count = ports.len();
        let (back, result) = tokio::task::spawn_blocking(move || {
            let r = syncer.sync(&ports);
            (syncer, r)
        })
        .await
        .map_err(|e| ProxyError::Watch {
            what: "sync task",
            message: e.to_string(),
        })?;
        syncer = back;
        match result {
            Ok(kind) => tracing::debug!(?kind, ports = count, took = ?started.elapsed(), "proxy synced"),
            Err(e) => {
                tracing::warn!(error = %e, "proxy sync failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        }
        notify.notified().await;
    }
}

fn spawn_reflector<K>(client: Client, notify: std::sync::Arc<Notify>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store::<K>();
    let api: Api<K> = Api::all(client);
    // Every event wakes the sync, not just applied objects: deletions, and
    // the end of a re-list (`InitDone`, when the store drops objects deleted
    // while the watch was down), change the rules too.
    let stream = reflector::reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            if let Err(e) = ev {
                tracing::debug!(error = %e, "proxy watch error");
            }
            notify.notify_one();
        }
    });
    reader
}
