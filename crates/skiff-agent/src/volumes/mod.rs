//! Pod volumes on the node: [`prepare`] makes every volume of a pod exist
//! (under `<pod dir>/volumes/<plugin>/<name>`, or as a host path) and is
//! called again on every sync to refresh configMap, secret, downwardAPI and
//! projected content; [`cleanup`] unmounts and removes a pod's directory.
//!
//! Owns the volume plugins (emptyDir, hostPath, configMap, secret,
//! downwardAPI, projected, persistentVolumeClaim) and the local-path
//! provisioner ([`local_path`]). Must not: talk to the runtime; the mounts
//! into containers are built by `spec::mounts` from [`PodVolumes`].

pub mod atomic;
pub mod host_path;
pub mod local_path;
pub mod payload;
pub mod tmpfs;
pub mod token;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{
    ConfigMap, EmptyDirVolumeSource, Pod, ProjectedVolumeSource, Secret, Volume,
};
use kube::Api;

use crate::config::AgentConfig;
use crate::spec::fieldref::DownwardInputs;
use atomic::Payload;
use skiff_api::validation::quantity::Quantity;

/// Why a pod's volumes could not be prepared (the kubelet's FailedMount).
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A file or directory operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The API server could not be asked.
    #[error("reading {what}: {source}")]
    Api {
        /// What was being read or written.
        what: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// A referenced object does not exist (and is not optional).
    #[error("{0}")]
    NotFound(String),
    /// The volume's definition cannot be honoured.
    #[error("{0}")]
    Invalid(String),
    /// A hostPath's type check failed.
    #[error("{0}")]
    HostPathType(String),
    /// A PersistentVolumeClaim is not bound (yet).
    #[error("{0}")]
    Unbound(String),
    /// mount/umount failed.
    #[error("{0}")]
    Mount(String),
    /// The TokenRequest API refused or is not served.
    #[error(
        "requesting a token for service account {account} (POST serviceaccounts/{{name}}/token, \
         the TokenRequest API) failed: {source}"
    )]
    TokenRequest {
        /// `namespace/name` of the service account.
        account: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// A volume file could not be written.
    #[error(transparent)]
    Write(#[from] atomic::WriteError),
}

impl VolumeError {
    /// The event reason upstream uses for this failure.
    pub fn reason(&self) -> &'static str {
        "FailedMount"
    }
}

/// What [`prepare`] needs.
#[derive(Clone, Copy)]
pub struct VolumeContext<'a> {
    /// Client for ConfigMaps, Secrets, PVCs, PVs and tokens.
    pub client: &'a kube::Client,
    /// The agent's settings (pod dirs, storage dir, node name).
    pub cfg: &'a AgentConfig,
    /// The pod.
    pub pod: &'a Pod,
}

/// One prepared volume: where it is on the host and whether containers
/// must see it read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountedVolume {
    /// The directory (or file) to bind into containers.
    pub host_path: PathBuf,
    /// Mounted read-only whatever the volumeMount says (configMap, secret,
    /// downwardAPI, projected, and read-only claims).
    pub read_only: bool,
}

/// The pod's prepared volumes by volume name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodVolumes {
    volumes: BTreeMap<String, MountedVolume>,
}

impl PodVolumes {
    /// The volume named `name`.
    pub fn get(&self, name: &str) -> Option<&MountedVolume> {
        self.volumes.get(name)
    }

    /// Adds (or replaces) a volume.
    pub fn insert(&mut self, name: impl Into<String>, volume: MountedVolume) {
        self.volumes.insert(name.into(), volume);
    }

    /// All volumes by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &MountedVolume)> {
        self.volumes.iter()
    }
}

/// `<pod dir>/volumes/<plugin>/<name>`, the kubelet's layout.
pub fn volume_dir(cfg: &AgentConfig, pod_uid: &str, plugin: &str, name: &str) -> PathBuf {
    cfg.pod_dir(pod_uid).join("volumes").join(plugin).join(name)
}

/// Makes every volume of the pod ready; idempotent, and refreshes
/// configMap/secret/downwardAPI/projected content when it changed.
pub async fn prepare(ctx: &VolumeContext<'_>) -> Result<PodVolumes, VolumeError> {
    let uid = ctx.pod.metadata.uid.as_deref().unwrap_or_default();
    check_uid(uid)?;
    let mut out = PodVolumes::default();
    for volume in ctx.pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let mounted = prepare_one(ctx, uid, volume).await?;
        out.insert(volume.name.clone(), mounted);
    }
    Ok(out)
}

async fn prepare_one(ctx: &VolumeContext<'_>, uid: &str, v: &Volume) -> Result<MountedVolume, VolumeError> {
    let dir = |plugin: &str| volume_dir(ctx.cfg, uid, plugin, &v.name);
    let gid = fs_group(ctx.pod);
    let writable = |host_path: PathBuf| MountedVolume {
        host_path,
        read_only: false,
    };
    let read_only = |host_path: PathBuf| MountedVolume {
        host_path,
        read_only: true,
    };
    if let Some(src) = &v.empty_dir {
        let path = dir("kubernetes.io~empty-dir");
        empty_dir(&path, src, gid).await?;
        Ok(writable(path))
    } else if let Some(src) = &v.host_path {
        Ok(writable(host_path::prepare(src)?))
    } else if let Some(src) = &v.config_map {
        let name = &src.name;
        let cm = get::<ConfigMap>(ctx, name, "configmap").await?;
        let files = payload::config_map(
            name,
            cm.as_ref(),
            src.items.as_deref(),
            src.default_mode.unwrap_or(payload::DEFAULT_MODE),
            src.optional.unwrap_or(false),
        )?;
        let path = dir("kubernetes.io~configmap");
        atomic::write(&path, &files, gid)?;
        Ok(read_only(path))
    } else if let Some(src) = &v.secret {
        let name = src.secret_name.clone().unwrap_or_default();
        let secret = get::<Secret>(ctx, &name, "secret").await?;
        let files = payload::secret(
            &name,
            secret.as_ref(),
            src.items.as_deref(),
            src.default_mode.unwrap_or(payload::DEFAULT_MODE),
            src.optional.unwrap_or(false),
        )?;
        let path = dir("kubernetes.io~secret");
        tmpfs::ensure_tmpfs(&path, None).await?;
        atomic::write(&path, &files, gid)?;
        Ok(read_only(path))
    } else if let Some(src) = &v.downward_api {
        let files = payload::downward(
            ctx.pod,
            src.items.as_deref().unwrap_or_default(),
            src.default_mode.unwrap_or(payload::DEFAULT_MODE),
            &downward_inputs(ctx),
        )?;
        let path = dir("kubernetes.io~downward-api");
        atomic::write(&path, &files, gid)?;
        Ok(read_only(path))
    } else if let Some(src) = &v.projected {
        let path = dir("kubernetes.io~projected");
        tmpfs::ensure_tmpfs(&path, None).await?;
        projected(ctx, src, &path, gid).await?;
        Ok(read_only(path))
    } else if let Some(src) = &v.persistent_volume_claim {
        let host_path = local_path::claim_path(ctx, &src.claim_name).await?;
        Ok(MountedVolume {
            host_path,
            read_only: src.read_only.unwrap_or(false),
        })
    } else {
        Err(VolumeError::Invalid(format!(
            "volume {:?}: this volume type is not supported by skiff",
            v.name
        )))
    }
}

/// An emptyDir: a 0777 directory, or a tmpfs capped at sizeLimit for
/// `medium: Memory`.
async fn empty_dir(path: &Path, src: &EmptyDirVolumeSource, gid: Option<u32>) -> Result<(), VolumeError> {
    let io = |source| VolumeError::Io {
        path: path.to_path_buf(),
        source,
    };
    if src.medium.as_deref() == Some("Memory") {
        let size = src
            .size_limit
            .as_ref()
            .and_then(|q| Quantity::parse(&q.0).ok())
            .map(|q| u64::try_from(q.milli().div_euclid(1000)).unwrap_or(0));
        tmpfs::ensure_tmpfs(path, size).await?;
    } else {
        std::fs::create_dir_all(path).map_err(io)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).map_err(io)?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(io)?;
    }
    Ok(())
}

/// All sources of a projected volume merged into one atomic payload. A
/// failing token request still writes the other sources, then fails.
async fn projected(
    ctx: &VolumeContext<'_>,
    src: &ProjectedVolumeSource,
    path: &Path,
    gid: Option<u32>,
) -> Result<(), VolumeError> {
    let default_mode = src.default_mode.unwrap_or(payload::DEFAULT_MODE);
    let mut files = Payload::new();
    let mut token_error = None;
    for source in src.sources.iter().flatten() {
        if let Some(cm) = &source.config_map {
            let found = get::<ConfigMap>(ctx, &cm.name, "configmap").await?;
            let part = payload::config_map(
                &cm.name,
                found.as_ref(),
                cm.items.as_deref(),
                default_mode,
                cm.optional.unwrap_or(false),
            )?;
            files.extend(part);
        }
        if let Some(s) = &source.secret {
            let found = get::<Secret>(ctx, &s.name, "secret").await?;
            let part = payload::secret(
                &s.name,
                found.as_ref(),
                s.items.as_deref(),
                default_mode,
                s.optional.unwrap_or(false),
            )?;
            files.extend(part);
        }
        if let Some(d) = &source.downward_api {
            let items = d.items.as_deref().unwrap_or_default();
            files.extend(payload::downward(
                ctx.pod,
                items,
                default_mode,
                &downward_inputs(ctx),
            )?);
        }
        if let Some(t) = &source.service_account_token {
            match token::token(ctx.client, ctx.pod, t, path).await {
                Ok(data) => {
                    files.insert(
                        t.path.clone(),
                        atomic::FileContent {
                            data,
                            mode: default_mode_bits(default_mode),
                        },
                    );
                }
                Err(e) => token_error = Some(e),
            }
        }
    }
    atomic::write(path, &files, gid)?;
    match token_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn default_mode_bits(mode: i32) -> u32 {
    u32::try_from(mode).unwrap_or(0o644) & 0o7777
}

/// The pod's fsGroup as a gid, when set.
fn fs_group(pod: &Pod) -> Option<u32> {
    let group = pod.spec.as_ref()?.security_context.as_ref()?.fs_group?;
    u32::try_from(group).ok()
}

/// Pod and host IPs from the pod's status (the sandbox may not exist yet;
/// a later sync refreshes the files).
fn downward_inputs(ctx: &VolumeContext<'_>) -> DownwardInputs {
    let status = ctx.pod.status.as_ref();
    let pod_ips: Vec<String> = status
        .and_then(|s| s.pod_ips.as_ref())
        .map(|ips| ips.iter().map(|i| i.ip.clone()).collect())
        .or_else(|| status.and_then(|s| s.pod_ip.clone()).map(|ip| vec![ip]))
        .unwrap_or_default();
    let host_ips = status
        .and_then(|s| s.host_ip.clone())
        .map_or_else(|| vec![ctx.cfg.node_ip.to_string()], |ip| vec![ip]);
    DownwardInputs::from_machine(pod_ips, host_ips)
}

async fn get<K>(ctx: &VolumeContext<'_>, name: &str, what: &str) -> Result<Option<K>, VolumeError>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    <K as kube::Resource>::DynamicType: Default,
{
    let namespace = ctx.pod.metadata.namespace.as_deref().unwrap_or("default");
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    api.get_opt(name).await.map_err(|source| VolumeError::Api {
        what: format!("{what} {namespace}/{name}"),
        source,
    })
}

/// A pod UID must be a plain, non-empty path component.
fn check_uid(uid: &str) -> Result<(), VolumeError> {
    if uid.is_empty() || uid.contains('/') || uid == "." || uid == ".." {
        return Err(VolumeError::Invalid(format!("invalid pod uid {uid:?}")));
    }
    Ok(())
}

/// Unmounts everything under the pod's directory and removes it. Volume
/// data outside it (hostPath, persistent volumes) is left alone.
pub async fn cleanup(cfg: &AgentConfig, pod_uid: &str) -> Result<(), VolumeError> {
    check_uid(pod_uid)?;
    let dir = cfg.pod_dir(pod_uid);
    for mount in tmpfs::mounts_under(&dir) {
        tmpfs::unmount(&mount).await?;
    }
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(VolumeError::Io { path: dir, source }),
    }
}
