//! A container's CRI mounts: its volumeMounts resolved through the pod's
//! prepared volumes (subPath / subPathExpr, readOnly, mountPropagation),
//! plus the managed `/etc/hosts` and the termination message file.

use std::path::{Component, Path, PathBuf};

use k8s_cri::v1::{Mount, MountPropagation};
use k8s_openapi::api::core::v1::{Container, VolumeMount};

use super::SpecError;
use super::env::Env;
use super::expand::expand;
use crate::volumes::PodVolumes;

/// Files the agent manages per container and mounts beside the volumes.
#[derive(Debug, Clone, Default)]
pub struct ManagedFiles {
    /// The pod's hosts file, mounted at /etc/hosts unless a volume is.
    pub etc_hosts: Option<PathBuf>,
    /// This container instance's termination message file.
    pub termination_log: Option<PathBuf>,
}

/// The container's mounts, creating missing subPath directories.
pub fn container_mounts(
    container: &Container,
    volumes: &PodVolumes,
    env: &Env,
    files: &ManagedFiles,
) -> Result<Vec<Mount>, SpecError> {
    let mut mounts = Vec::new();
    for vm in container.volume_mounts.iter().flatten() {
        mounts.push(volume_mount(vm, volumes, env)?);
    }
    let mounted = |mounts: &[Mount], path: &str| mounts.iter().any(|m| m.container_path == path);
    if let Some(hosts) = &files.etc_hosts
        && !mounted(&mounts, "/etc/hosts")
    {
        mounts.push(Mount {
            container_path: "/etc/hosts".to_string(),
            host_path: hosts.to_string_lossy().into_owned(),
            ..Default::default()
        });
    }
    let message_path = container
        .termination_message_path
        .as_deref()
        .unwrap_or("/dev/termination-log");
    if let Some(log) = &files.termination_log
        && !message_path.is_empty()
        && !mounted(&mounts, message_path)
    {
        mounts.push(Mount {
            container_path: message_path.to_string(),
            host_path: log.to_string_lossy().into_owned(),
            ..Default::default()
        });
    }
    Ok(mounts)
}

fn volume_mount(vm: &VolumeMount, volumes: &PodVolumes, env: &Env) -> Result<Mount, SpecError> {
    let volume = volumes.get(&vm.name).ok_or_else(|| {
        SpecError::Config(format!(
            "cannot find volume {:?} to mount into container",
            vm.name
        ))
    })?;
    let sub_path = match (vm.sub_path.as_deref(), vm.sub_path_expr.as_deref()) {
        (Some(p), _) if !p.is_empty() => Some(p.to_string()),
        (_, Some(expr)) if !expr.is_empty() => Some(expand(expr, |name| env.get(name).map(str::to_string))),
        _ => None,
    };
    let mut host_path = volume.host_path.clone();
    if let Some(sub) = sub_path {
        check_sub_path(&sub)?;
        host_path = host_path.join(&sub);
        if std::fs::symlink_metadata(&host_path).is_err() {
            std::fs::create_dir_all(&host_path).map_err(|source| SpecError::Io {
                path: host_path.clone(),
                source,
            })?;
        }
    }
    let propagation = match vm.mount_propagation.as_deref() {
        Some("HostToContainer") => MountPropagation::PropagationHostToContainer,
        Some("Bidirectional") => MountPropagation::PropagationBidirectional,
        _ => MountPropagation::PropagationPrivate,
    };
    Ok(Mount {
        container_path: vm.mount_path.clone(),
        host_path: host_path.to_string_lossy().into_owned(),
        readonly: vm.read_only.unwrap_or(false) || volume.read_only,
        propagation: propagation as i32,
        recursive_read_only: vm.recursive_read_only.as_deref() == Some("Enabled"),
        ..Default::default()
    })
}

/// A subPath must be relative and must not leave the volume.
fn check_sub_path(sub: &str) -> Result<(), SpecError> {
    let path = Path::new(sub);
    if path.is_absolute() || path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(SpecError::Config(format!(
            "subPath {sub:?} must be a relative path not containing '..'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volumes::MountedVolume;

    #[test]
    fn mounts_resolve_sub_paths_read_only_and_managed_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut volumes = PodVolumes::default();
        volumes.insert(
            "data",
            MountedVolume {
                host_path: dir.path().join("data"),
                read_only: false,
            },
        );
        volumes.insert(
            "cfg",
            MountedVolume {
                host_path: dir.path().join("cfg"),
                read_only: true,
            },
        );
        let container: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "image": "i",
            "volumeMounts": [
                {"name": "data", "mountPath": "/data", "subPathExpr": "$(POD)/logs",
                 "mountPropagation": "HostToContainer"},
                {"name": "cfg", "mountPath": "/etc/cfg"}
            ]
        }))
        .unwrap();
        let mut env = Env::default();
        env.set("POD".into(), "web-1".into());
        let files = ManagedFiles {
            etc_hosts: Some(dir.path().join("etc-hosts")),
            termination_log: Some(dir.path().join("term")),
        };
        let mounts = container_mounts(&container, &volumes, &env, &files).unwrap();
        assert_eq!(mounts.len(), 4);
        assert_eq!(
            mounts[0].host_path,
            dir.path().join("data/web-1/logs").to_string_lossy()
        );
        assert!(dir.path().join("data/web-1/logs").is_dir());
        assert_eq!(
            mounts[0].propagation,
            MountPropagation::PropagationHostToContainer as i32
        );
        assert!(!mounts[0].readonly && mounts[1].readonly);
        assert_eq!(mounts[2].container_path, "/etc/hosts");
        assert_eq!(mounts[3].container_path, "/dev/termination-log");
    }

    #[test]
    fn escaping_sub_paths_and_unknown_volumes_are_config_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut volumes = PodVolumes::default();
        volumes.insert(
            "data",
            MountedVolume {
                host_path: dir.path().to_path_buf(),
                read_only: false,
            },
        );
        let bad: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "volumeMounts": [{"name": "data", "mountPath": "/d", "subPath": "../etc"}]
        }))
        .unwrap();
        let err = container_mounts(&bad, &volumes, &Env::default(), &ManagedFiles::default()).unwrap_err();
        assert!(err.to_string().contains("'..'"), "{err}");
        let missing: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "volumeMounts": [{"name": "nope", "mountPath": "/d"}]
        }))
        .unwrap();
        assert!(container_mounts(&missing, &volumes, &Env::default(), &ManagedFiles::default()).is_err());
    }
}
