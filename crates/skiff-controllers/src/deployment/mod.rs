//! The Deployment controller: one ReplicaSet per pod template (named
//! `<deployment>-<pod-template-hash>`), rolled over by RollingUpdate
//! (maxSurge/maxUnavailable) or Recreate, revision annotations so
//! `kubectl rollout history|undo` work, pause, revisionHistoryLimit cleanup,
//! and status with Progressing/Available conditions.
//!
//! Must not: manage pods directly; ReplicaSets do that.

pub mod rollout;
pub mod status;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use crate::events::{EventType, Recorder};
use crate::informer::{self, Informers};
use crate::manager::ControllerConfig;
use crate::workload_util::{self as wu, Claim, Matcher, UtilError};

/// The ReplicaSet/Deployment revision annotation.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The label that tells a Deployment's ReplicaSets apart.
pub const HASH_LABEL: &str = "pod-template-hash";

/// What one reconcile can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A helper failed (selector, adoption).
    #[error(transparent)]
    Util(#[from] UtilError),
    /// The Deployment has no namespace or spec.
    #[error("malformed deployment: {0}")]
    Malformed(&'static str),
}

/// State shared by reconciles.
pub struct Ctx {
    /// The API client.
    pub client: kube::Client,
    /// Event recorder (`deployment-controller`).
    pub recorder: Recorder,
}

/// The revision number of a ReplicaSet (0 when absent or malformed).
pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.annotations()
        .get(REVISION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0)
}

/// Whether a ReplicaSet's template equals the Deployment's, ignoring the
/// pod-template-hash label.
pub fn same_template(rs: &ReplicaSet, template: &PodTemplateSpec) -> bool {
    let Some(mut t) = rs.spec.as_ref().and_then(|s| s.template.clone()) else {
        return false;
    };
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(HASH_LABEL);
    }
    serde_json::to_value(&t).ok() == serde_json::to_value(template).ok()
}

/// Annotations a Deployment passes on to its ReplicaSets (not kubectl's
/// last-applied copy, not the revision bookkeeping).
fn copied_annotations(d: &Deployment) -> BTreeMap<String, String> {
    d.annotations()
        .iter()
        .filter(|(k, _)| {
            k.as_str() != REVISION
                && k.as_str() != "kubectl.kubernetes.io/last-applied-configuration"
                && !k.starts_with("deployment.kubernetes.io/")
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The ReplicaSet a Deployment would create for its current template.
pub fn new_replica_set(d: &Deployment, hash: &str, replicas: i32, revision: i64) -> Option<ReplicaSet> {
    let spec = d.spec.as_ref()?;
    let mut template = spec.template.clone();
    let meta = template.metadata.get_or_insert_with(ObjectMeta::default);
    let mut labels = meta.labels.clone().unwrap_or_default();
    labels.insert(HASH_LABEL.into(), hash.into());
    meta.labels = Some(labels.clone());
    let mut selector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(HASH_LABEL.into(), hash.into());
    let mut annotations = copied_annotations(d);
    annotations.insert(REVISION.into(), revision.to_string());
    Some(ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{}-{hash}", d.name_any())),
            namespace: d.namespace(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![wu::controller_ref(d)]),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: spec.min_ready_seconds,
            selector: LabelSelector { ..selector },
            template: Some(template),
        }),
        status: None,
    })
}

/// Lists the ReplicaSets this Deployment controls, adopting orphans that
/// match and releasing ones that stopped matching.
async fn claim_replica_sets(api: &Api<ReplicaSet>, d: &Deployment) -> Result<Vec<ReplicaSet>, Error> {
    let uid = d.uid().unwrap_or_default();
    let matcher = Matcher::new(d.spec.as_ref().map(|s| &s.selector))?;
    let mut owned = Vec::new();
    for rs in api.list(&ListParams::default()).await?.items {
        match wu::claim(&rs.metadata, &uid, &matcher) {
            Claim::Owned => owned.push(rs),
            Claim::Adopt => {
                let rs_uid = rs.uid().unwrap_or_default();
                if wu::adopt(api, &rs.name_any(), &rs_uid, wu::controller_ref(d))
                    .await
                    .is_ok()
                {
                    owned.push(rs);
                }
            }
            Claim::Release => wu::release(api, &rs, &uid).await?,
            Claim::Ignore => {}
        }
    }
    owned.retain(|rs| rs.metadata.deletion_timestamp.is_none());
    Ok(owned)
}

/// Sets a ReplicaSet's spec.replicas, recording a ScalingReplicaSet event.
async fn scale(
    ctx: &Ctx,
    api: &Api<ReplicaSet>,
    d: &Deployment,
    rs: &mut ReplicaSet,
    to: i32,
) -> Result<(), Error> {
    let from = rs_replicas(rs);
    if from == to {
        return Ok(());
    }
    let patch = serde_json::json!({ "spec": { "replicas": to } });
    *rs = api
        .patch(&rs.name_any(), &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    let dir = if to > from { "up" } else { "down" };
    let msg = format!("Scaled {dir} replica set {} from {from} to {to}", rs.name_any());
    ctx.recorder
        .record(&d.object_ref(&()), EventType::Normal, "ScalingReplicaSet", &msg)
        .await;
    Ok(())
}

/// Finds or creates the new ReplicaSet; returns it and whether it was created.
async fn ensure_new_rs(
    ctx: &Ctx,
    api: &Api<ReplicaSet>,
    d: &Deployment,
    all: &mut Vec<ReplicaSet>,
    initial: i32,
) -> Result<(usize, bool), Error> {
    let spec = d.spec.as_ref().ok_or(Error::Malformed("no spec"))?;
    let max_rev = all.iter().map(revision).max().unwrap_or(0);
    if let Some(i) = all.iter().position(|rs| same_template(rs, &spec.template)) {
        let is_latest = all
            .iter()
            .enumerate()
            .all(|(j, o)| j == i || revision(o) < revision(&all[i]));
        if !is_latest || revision(&all[i]) == 0 {
            let next = (max_rev + 1).to_string();
            let mut ann = copied_annotations(d);
            ann.insert(REVISION.into(), next);
            let patch = serde_json::json!({ "metadata": { "annotations": ann } });
            all[i] = api
                .patch(&all[i].name_any(), &PatchParams::default(), &Patch::Merge(patch))
                .await?;
        }
        return Ok((i, false));
    }
    let collision = d.status.as_ref().and_then(|s| s.collision_count);
    let hash = wu::template_hash(&spec.template, collision);
    let rs = new_replica_set(d, &hash, initial, max_rev + 1).ok_or(Error::Malformed("no spec"))?;
    match api.create(&PostParams::default(), &rs).await {
        Ok(created) => {
            let msg = format!("Scaled up replica set {} from 0 to {initial}", created.name_any());
            ctx.recorder
                .record(&d.object_ref(&()), EventType::Normal, "ScalingReplicaSet", &msg)
                .await;
            all.push(created);
            Ok((all.len() - 1, true))
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            // A ReplicaSet with that name but another template: bump collisionCount.
            let ns = d.namespace().ok_or(Error::Malformed("no namespace"))?;
            let dapi: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
            let patch = serde_json::json!({ "status": { "collisionCount": collision.unwrap_or(0) + 1 } });
            dapi.patch_status(&d.name_any(), &PatchParams::default(), &Patch::Merge(patch))
                .await?;
            Err(Error::Malformed("pod-template-hash collision"))
        }
        Err(e) => Err(e.into()),
    }
}

/// One reconcile of a Deployment.
pub async fn reconcile(d: Arc<Deployment>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if d.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = d.namespace().ok_or(Error::Malformed("no namespace"))?;
    let spec = d.spec.as_ref().ok_or(Error::Malformed("no spec"))?;
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
    let mut all = claim_replica_sets(&api, &d).await?;
    let replicas = spec.replicas.unwrap_or(1);
    let paused = spec.paused.unwrap_or(false);
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    let ru = spec.strategy.as_ref().and_then(|s| s.rolling_update.as_ref());
    let (surge, unavailable) = if recreate {
        (0, 0)
    } else {
        rollout::surge_and_unavailable(
            ru.and_then(|r| r.max_surge.as_ref()),
            ru.and_then(|r| r.max_unavailable.as_ref()),
            replicas,
        )
    };

    let existing_new = all.iter().position(|rs| same_template(rs, &spec.template));
    let mut created_new = false;
    let mut new_idx = existing_new;
    if !paused {
        let old_active: i32 = all
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != existing_new)
            .map(|(_, r)| rs_replicas(r))
            .sum();
        let initial = if recreate {
            if old_active > 0 { 0 } else { replicas }
        } else {
            let total: i32 = all.iter().map(rs_replicas).sum();
            rollout::new_rs_replicas(replicas, surge, total, 0)
        };
        let (i, c) = ensure_new_rs(&ctx, &api, &d, &mut all, initial).await?;
        new_idx = Some(i);
        created_new = c;
        roll(
            &ctx,
            &api,
            &d,
            &mut all,
            i,
            replicas,
            surge,
            unavailable,
            recreate,
        )
        .await?;
    } else if let [only] = all
        .iter()
        .filter(|r| rs_replicas(r) > 0)
        .collect::<Vec<_>>()
        .as_slice()
    {
        // Paused: only a plain scale of the single active ReplicaSet.
        let name = only.name_any();
        if let Some(i) = all.iter().position(|r| r.name_any() == name) {
            let mut rs = all[i].clone();
            scale(&ctx, &api, &d, &mut rs, replicas).await?;
            all[i] = rs;
        }
    }

    if let Some(i) = new_idx {
        let rev = revision(&all[i]).to_string();
        if d.annotations().get(REVISION) != Some(&rev) {
            let dapi: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
            let patch = serde_json::json!({ "metadata": { "annotations": { REVISION: rev } } });
            dapi.patch(&d.name_any(), &PatchParams::default(), &Patch::Merge(patch))
                .await?;
        }
    }
    cleanup_history(&api, &all, new_idx, spec.revision_history_limit.unwrap_or(10)).await?;

    let st = status::compute(&status::Inputs {
        replicas,
        max_unavailable: unavailable,
        generation: d.metadata.generation,
        paused,
        progress_deadline: Some(spec.progress_deadline_seconds.unwrap_or(600)),
        new_rs: new_idx.map(|i| &all[i]),
        all: &all,
        created_new,
        old: d.status.as_ref(),
        now: jiff::Timestamp::now(),
    });
    if d.status.as_ref() != Some(&st) {
        let dapi: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = serde_json::json!({ "status": st });
        dapi.patch_status(&d.name_any(), &PatchParams::default(), &Patch::Merge(patch))
            .await?;
    }
    if status::complete(&st, replicas) || paused {
        Ok(Action::requeue(Duration::from_secs(300)))
    } else {
        Ok(Action::requeue(Duration::from_secs(5)))
    }
}

/// One step of the rollout: grow the new ReplicaSet and shrink old ones.
#[allow(clippy::too_many_arguments)]
async fn roll(
    ctx: &Ctx,
    api: &Api<ReplicaSet>,
    d: &Deployment,
    all: &mut [ReplicaSet],
    new_i: usize,
    replicas: i32,
    surge: i32,
    unavailable: i32,
    recreate: bool,
) -> Result<(), Error> {
    let mut old_idx: Vec<usize> = (0..all.len()).filter(|i| *i != new_i).collect();
    old_idx.sort_by_key(|i| revision(&all[*i]));
    if recreate {
        for &i in &old_idx {
            let mut rs = all[i].clone();
            scale(ctx, api, d, &mut rs, 0).await?;
            all[i] = rs;
        }
        let old_pods: i32 = old_idx
            .iter()
            .map(|i| all[*i].status.as_ref().map_or(0, |s| s.replicas))
            .sum();
        if old_pods == 0 {
            let mut rs = all[new_i].clone();
            scale(ctx, api, d, &mut rs, replicas).await?;
            all[new_i] = rs;
        }
        return Ok(());
    }
    let total: i32 = all.iter().map(rs_replicas).sum();
    let target = rollout::new_rs_replicas(replicas, surge, total, rs_replicas(&all[new_i]));
    let mut rs = all[new_i].clone();
    scale(ctx, api, d, &mut rs, target).await?;
    all[new_i] = rs;
    let old: Vec<rollout::OldRs> = old_idx
        .iter()
        .map(|i| rollout::OldRs {
            replicas: rs_replicas(&all[*i]),
            available: rs_available(&all[*i]),
        })
        .collect();
    let new_spec = rs_replicas(&all[new_i]);
    let new_avail = rs_available(&all[new_i]);
    let targets = rollout::scale_down_old(&old, replicas, unavailable, new_spec, new_avail);
    for (&i, to) in old_idx.iter().zip(targets) {
        let mut rs = all[i].clone();
        scale(ctx, api, d, &mut rs, to).await?;
        all[i] = rs;
    }
    Ok(())
}

/// Deletes the oldest fully scaled-down ReplicaSets beyond `limit`.
async fn cleanup_history(
    api: &Api<ReplicaSet>,
    all: &[ReplicaSet],
    new_idx: Option<usize>,
    limit: i32,
) -> Result<(), Error> {
    let mut dead: Vec<&ReplicaSet> = all
        .iter()
        .enumerate()
        .filter(|(i, rs)| {
            Some(*i) != new_idx && rs_replicas(rs) == 0 && rs.status.as_ref().is_none_or(|s| s.replicas == 0)
        })
        .map(|(_, rs)| rs)
        .collect();
    let limit = limit.max(0) as usize;
    if dead.len() <= limit {
        return Ok(());
    }
    dead.sort_by_key(|rs| revision(rs));
    let n = dead.len() - limit;
    for rs in dead.into_iter().take(n) {
        match api.delete(&rs.name_any(), &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Retries a failed reconcile after a short pause.
pub fn error_policy(d: Arc<Deployment>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::debug!(name = %d.name_any(), error = %err, "deployment reconcile failed");
    Action::requeue(Duration::from_secs(2))
}

/// Runs the Deployment controller (with its own informers) until its watches end.
pub async fn run(client: kube::Client, cfg: Arc<ControllerConfig>) -> Result<(), crate::manager::Error> {
    run_with(Arc::new(Informers::new(client)), cfg).await
}

/// Runs the Deployment controller on the manager's shared informers.
pub async fn run_with(
    informers: Arc<Informers>,
    _cfg: Arc<ControllerConfig>,
) -> Result<(), crate::manager::Error> {
    let client = informers.client().clone();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        recorder: Recorder::new(client, "deployment-controller"),
    });
    informer::controller::<Deployment>(&informers)
        .owns_shared_stream(informers.all::<ReplicaSet>().triggers())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DeploymentSpec;

    fn deployment() -> Deployment {
        let labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("d1".into()),
                annotations: Some(
                    [
                        ("kubernetes.io/change-cause".to_string(), "v2".to_string()),
                        (REVISION.to_string(), "1".into()),
                    ]
                    .into(),
                ),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                selector: LabelSelector {
                    match_labels: Some(labels.clone()),
                    ..Default::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels),
                        ..Default::default()
                    }),
                    spec: None,
                },
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn new_replica_set_carries_hash_revision_and_change_cause() {
        let d = deployment();
        let rs = new_replica_set(&d, "abc", 3, 2).unwrap();
        assert_eq!(rs.name_any(), "web-abc");
        assert_eq!(revision(&rs), 2);
        assert_eq!(
            rs.annotations()
                .get("kubernetes.io/change-cause")
                .map(String::as_str),
            Some("v2")
        );
        let spec = rs.spec.as_ref().unwrap();
        assert_eq!(
            spec.selector
                .match_labels
                .as_ref()
                .unwrap()
                .get(HASH_LABEL)
                .map(String::as_str),
            Some("abc")
        );
        assert!(same_template(&rs, &d.spec.as_ref().unwrap().template));
        let owner = wu::controller_of(&rs.metadata).unwrap();
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("Deployment", "d1"));
    }
}
