//! The local-path provisioner (like k3s's): a default StorageClass
//! `local-path` (provisioner `skiff.io/local-path`, WaitForFirstConsumer,
//! reclaimPolicy Delete). When a pod on this node uses a Pending claim of
//! that class, [`claim_path`] provisions a hostPath PersistentVolume under
//! `storage_dir()/pvc-<uid>_<ns>_<name>` with node affinity to this node and
//! binds the claim; [`run`] creates the class and deletes the PV and its
//! directory once its claim is gone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, ObjectReference,
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec, VolumeNodeAffinity,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as Q;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};

use super::{VolumeContext, VolumeError};
use crate::config::AgentConfig;

/// The StorageClass name.
pub const CLASS_NAME: &str = "local-path";
/// The provisioner name on the class and on provisioned PVs.
pub const PROVISIONER: &str = "skiff.io/local-path";
/// Label on provisioned PVs: the node holding the data.
pub const NODE_LABEL: &str = "skiff.io/local-path-node";
const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
const RECLAIM_PERIOD: Duration = Duration::from_secs(3);

fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> VolumeError {
    let what = what.into();
    move |source| VolumeError::Api { what, source }
}

/// The `local-path` StorageClass object.
pub fn storage_class() -> StorageClass {
    StorageClass {
        metadata: ObjectMeta {
            name: Some(CLASS_NAME.into()),
            annotations: Some(BTreeMap::from([(DEFAULT_CLASS_ANNOTATION.into(), "true".into())])),
            ..Default::default()
        },
        provisioner: PROVISIONER.into(),
        reclaim_policy: Some("Delete".into()),
        volume_binding_mode: Some("WaitForFirstConsumer".into()),
        ..Default::default()
    }
}

/// Creates the StorageClass unless it exists.
pub async fn ensure_storage_class(client: &kube::Client) -> Result<(), VolumeError> {
    let api: Api<StorageClass> = Api::all(client.clone());
    match api.create(&PostParams::default(), &storage_class()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(api_err("storageclass local-path")(e)),
    }
}

/// The host directory of the claim `name` of the pod's namespace,
/// provisioning and binding it first when it is a Pending local-path claim.
pub async fn claim_path(ctx: &VolumeContext<'_>, name: &str) -> Result<PathBuf, VolumeError> {
    let namespace = ctx.pod.metadata.namespace.as_deref().unwrap_or("default");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), namespace);
    let claim = claims
        .get_opt(name)
        .await
        .map_err(api_err(format!("persistentvolumeclaim {namespace}/{name}")))?
        .ok_or_else(|| VolumeError::NotFound(format!("persistentvolumeclaim \"{name}\" not found")))?;
    let mut volume_name = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .unwrap_or_default();
    if volume_name.is_empty() {
        if !is_local_path_claim(ctx.client, &claim).await? {
            return Err(VolumeError::Unbound(format!(
                "pod has unbound immediate PersistentVolumeClaims: persistentvolumeclaim \"{name}\" is not bound"
            )));
        }
        volume_name = provision(ctx.client, ctx.cfg, &claim).await?;
    }
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let pv = pvs
        .get_opt(&volume_name)
        .await
        .map_err(api_err(format!("persistentvolume {volume_name}")))?
        .ok_or_else(|| VolumeError::Unbound(format!("persistentvolume \"{volume_name}\" not found")))?;
    let spec = pv.spec.as_ref();
    let path = spec
        .and_then(|s| {
            s.host_path
                .as_ref()
                .map(|h| h.path.clone())
                .or_else(|| s.local.as_ref().map(|l| l.path.clone()))
        })
        .ok_or_else(|| {
            VolumeError::Invalid(format!(
                "persistentvolume {volume_name:?} has no hostPath or local path"
            ))
        })?;
    let path = PathBuf::from(path);
    if is_ours(&pv) && !path.exists() {
        create_volume_dir(&path)?;
    }
    Ok(path)
}

/// A claim this provisioner serves: class `local-path`, or no class while
/// `local-path` is the default (or no class exists at all).
async fn is_local_path_claim(
    client: &kube::Client,
    claim: &PersistentVolumeClaim,
) -> Result<bool, VolumeError> {
    match claim.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()) {
        Some(CLASS_NAME) => Ok(true),
        Some(_) => Ok(false),
        None => {
            let api: Api<StorageClass> = Api::all(client.clone());
            let classes = api
                .list(&ListParams::default())
                .await
                .map_err(api_err("storageclasses"))?;
            let default = classes.items.iter().find(|c| {
                c.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                    .map(String::as_str)
                    == Some("true")
            });
            Ok(match default {
                Some(c) => c.provisioner == PROVISIONER,
                None => classes.items.is_empty(),
            })
        }
    }
}

fn is_ours(pv: &PersistentVolume) -> bool {
    pv.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PROVISIONED_BY))
        .map(String::as_str)
        == Some(PROVISIONER)
}

/// `<storage dir>/pvc-<uid>_<ns>_<name>`.
pub fn volume_path(cfg: &AgentConfig, claim: &PersistentVolumeClaim) -> PathBuf {
    let m = &claim.metadata;
    cfg.storage_dir().join(format!(
        "pvc-{}_{}_{}",
        m.uid.as_deref().unwrap_or_default(),
        m.namespace.as_deref().unwrap_or("default"),
        m.name.as_deref().unwrap_or_default()
    ))
}

fn create_volume_dir(path: &Path) -> Result<(), VolumeError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| VolumeError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).map_err(io)
}

/// The PersistentVolume provisioned for `claim` on this node.
pub fn persistent_volume(cfg: &AgentConfig, claim: &PersistentVolumeClaim) -> PersistentVolume {
    let m = &claim.metadata;
    let spec = claim.spec.clone().unwrap_or_default();
    let storage = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage").cloned())
        .unwrap_or_else(|| Q("1Gi".into()));
    let node_term = NodeSelectorTerm {
        match_expressions: Some(vec![NodeSelectorRequirement {
            key: "kubernetes.io/hostname".into(),
            operator: "In".into(),
            values: Some(vec![cfg.node_name.clone()]),
        }]),
        ..Default::default()
    };
    PersistentVolume {
        metadata: ObjectMeta {
            name: Some(format!("pvc-{}", m.uid.as_deref().unwrap_or_default())),
            annotations: Some(BTreeMap::from([(PROVISIONED_BY.into(), PROVISIONER.into())])),
            labels: Some(BTreeMap::from([(NODE_LABEL.into(), cfg.node_name.clone())])),
            ..Default::default()
        },
        spec: Some(PersistentVolumeSpec {
            access_modes: spec
                .access_modes
                .clone()
                .or_else(|| Some(vec!["ReadWriteOnce".into()])),
            capacity: Some(BTreeMap::from([("storage".into(), storage)])),
            claim_ref: Some(ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("PersistentVolumeClaim".into()),
                namespace: m.namespace.clone(),
                name: m.name.clone(),
                uid: m.uid.clone(),
                resource_version: m.resource_version.clone(),
                ..Default::default()
            }),
            host_path: Some(HostPathVolumeSource {
                path: volume_path(cfg, claim).to_string_lossy().into_owned(),
                type_: Some("DirectoryOrCreate".into()),
            }),
            node_affinity: Some(VolumeNodeAffinity {
                required: Some(NodeSelector {
                    node_selector_terms: vec![node_term],
                }),
            }),
            persistent_volume_reclaim_policy: Some("Delete".into()),
            storage_class_name: Some(CLASS_NAME.into()),
            volume_mode: Some("Filesystem".into()),
            ..Default::default()
        }),
        status: None,
    }
}

/// Creates the directory and the PV for `claim` and binds both; returns
/// the PV's name. Safe to repeat: an existing PV of the same name is reused.
pub async fn provision(
    client: &kube::Client,
    cfg: &AgentConfig,
    claim: &PersistentVolumeClaim,
) -> Result<String, VolumeError> {
    let pv = persistent_volume(cfg, claim);
    let pv_name = pv.metadata.name.clone().unwrap_or_default();
    create_volume_dir(&volume_path(cfg, claim))?;
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    match pvs.create(&PostParams::default(), &pv).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(api_err(format!("creating persistentvolume {pv_name}"))(e)),
    }
    let patch = PatchParams::default();
    pvs.patch_status(
        &pv_name,
        &patch,
        &Patch::Merge(serde_json::json!({"status": {"phase": "Bound"}})),
    )
    .await
    .map_err(api_err(format!("persistentvolume {pv_name} status")))?;

    let namespace = claim.metadata.namespace.as_deref().unwrap_or("default");
    let name = claim.metadata.name.as_deref().unwrap_or_default();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let bind = serde_json::json!({
        "metadata": {"annotations": {
            "pv.kubernetes.io/bind-completed": "yes",
            "pv.kubernetes.io/bound-by-controller": "yes",
            "volume.kubernetes.io/selected-node": cfg.node_name,
            "volume.kubernetes.io/storage-provisioner": PROVISIONER,
            "volume.beta.kubernetes.io/storage-provisioner": PROVISIONER,
        }},
        "spec": {"volumeName": pv_name},
    });
    claims
        .patch(name, &patch, &Patch::Merge(bind))
        .await
        .map_err(api_err(format!(
            "binding persistentvolumeclaim {namespace}/{name}"
        )))?;
    let spec = pv.spec.unwrap_or_default();
    let status = serde_json::json!({"status": {
        "phase": "Bound",
        "accessModes": spec.access_modes,
        "capacity": spec.capacity,
    }});
    claims
        .patch_status(name, &patch, &Patch::Merge(status))
        .await
        .map_err(api_err(format!(
            "persistentvolumeclaim {namespace}/{name} status"
        )))?;
    tracing::info!(claim = %format!("{namespace}/{name}"), pv = %pv_name, "provisioned local-path volume");
    Ok(pv_name)
}

/// Creates the StorageClass, then forever deletes this node's local-path
/// PVs (and their directories) whose claim is gone, every few seconds.
pub async fn run(client: kube::Client, cfg: AgentConfig) -> Result<(), VolumeError> {
    loop {
        match ensure_storage_class(&client).await {
            Ok(()) => break,
            Err(e) => tracing::warn!(error = %e, "creating the local-path StorageClass"),
        }
        tokio::time::sleep(RECLAIM_PERIOD).await;
    }
    loop {
        if let Err(e) = reclaim(&client, &cfg).await {
            tracing::warn!(error = %e, "reclaiming local-path volumes");
        }
        tokio::time::sleep(RECLAIM_PERIOD).await;
    }
}

/// One pass: every local-path PV of this node whose claim no longer
/// exists is deleted with its directory (reclaimPolicy Delete) or marked
/// Released (Retain). Returns the names of the PVs deleted.
pub async fn reclaim(client: &kube::Client, cfg: &AgentConfig) -> Result<Vec<String>, VolumeError> {
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let selector = format!("{NODE_LABEL}={}", cfg.node_name);
    let list = pvs
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(api_err("persistentvolumes"))?;
    let mut deleted = Vec::new();
    for pv in list.items.iter().filter(|pv| is_ours(pv)) {
        let name = pv.metadata.name.clone().unwrap_or_default();
        let Some(spec) = &pv.spec else { continue };
        let Some(claim_ref) = &spec.claim_ref else {
            continue;
        };
        let ns = claim_ref.namespace.as_deref().unwrap_or("default");
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
        let claim_name = claim_ref.name.as_deref().unwrap_or_default();
        let current = claims
            .get_opt(claim_name)
            .await
            .map_err(api_err(format!("persistentvolumeclaim {ns}/{claim_name}")))?;
        if current.is_some_and(|c| c.metadata.uid == claim_ref.uid) {
            continue;
        }
        if spec.persistent_volume_reclaim_policy.as_deref() == Some("Delete") {
            if let Some(host) = &spec.host_path {
                remove_volume_dir(cfg, Path::new(&host.path))?;
            }
            match pvs.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(api_err(format!("deleting persistentvolume {name}"))(e)),
            }
            tracing::info!(pv = %name, "deleted local-path volume of a deleted claim");
            deleted.push(name);
        } else if pv.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Released") {
            let released = serde_json::json!({"status": {"phase": "Released"}});
            pvs.patch_status(&name, &PatchParams::default(), &Patch::Merge(released))
                .await
                .map_err(api_err(format!("persistentvolume {name} status")))?;
        }
    }
    Ok(deleted)
}

/// Removes a provisioned directory, only if it lies under the storage dir.
fn remove_volume_dir(cfg: &AgentConfig, path: &Path) -> Result<(), VolumeError> {
    let storage = cfg.storage_dir();
    let inside = path.parent() == Some(storage.as_path())
        && path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("pvc-"));
    if !inside {
        tracing::warn!(path = %path.display(), "not removing a volume directory outside the storage dir");
        return Ok(());
    }
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(VolumeError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provisioned_volume_is_bound_to_the_claim_and_this_node() {
        let cfg = AgentConfig::new("node-a", "/var/lib/skiff/agent");
        let claim: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "data", "namespace": "prod", "uid": "u-9", "resourceVersion": "5"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}
        }))
        .unwrap();
        let pv = persistent_volume(&cfg, &claim);
        let v = serde_json::to_value(&pv).unwrap();
        assert_eq!(v["metadata"]["name"], "pvc-u-9");
        assert_eq!(
            v["spec"]["hostPath"]["path"],
            "/var/lib/skiff/agent/storage/pvc-u-9_prod_data"
        );
        assert_eq!(v["spec"]["claimRef"]["uid"], "u-9");
        assert_eq!(v["spec"]["capacity"]["storage"], "2Gi");
        assert_eq!(v["spec"]["persistentVolumeReclaimPolicy"], "Delete");
        assert_eq!(v["spec"]["storageClassName"], "local-path");
        let term = &v["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0];
        assert_eq!(term["values"][0], "node-a");
        let sc = serde_json::to_value(storage_class()).unwrap();
        assert_eq!(sc["metadata"]["annotations"][DEFAULT_CLASS_ANNOTATION], "true");
        assert_eq!(sc["volumeBindingMode"], "WaitForFirstConsumer");
        assert_eq!(sc["provisioner"], PROVISIONER);
    }

    #[test]
    fn only_directories_under_the_storage_dir_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = AgentConfig::new("n", dir.path());
        let outside = dir.path().join("pvc-elsewhere");
        std::fs::create_dir_all(&outside).unwrap();
        remove_volume_dir(&cfg, &outside).unwrap();
        assert!(outside.exists());
        let inside = cfg.storage_dir().join("pvc-1_ns_x");
        std::fs::create_dir_all(inside.join("deep")).unwrap();
        remove_volume_dir(&cfg, &inside).unwrap();
        assert!(!inside.exists());
    }
}
