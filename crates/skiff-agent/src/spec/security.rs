//! Linux security settings: the pod sandbox's [`sandbox_linux`] (namespaces,
//! sysctls, pod security context) and a container's effective security
//! context (pod-level settings unless the container overrides them),
//! converted to CRI as the kubelet does.
//!
//! Pure.

use k8s_cri::v1::security_profile::ProfileType;
use k8s_cri::v1::{
    Capability, Int64Value, LinuxContainerSecurityContext, LinuxPodSandboxConfig,
    LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption, SecurityProfile,
};
use k8s_openapi::api::core::v1::{Container, Pod, PodSecurityContext, SeccompProfile};

/// /proc and /sys paths masked in unprivileged containers (procMount Default).
const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
/// /proc paths mounted read-only in unprivileged containers.
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Network, PID and IPC namespace modes of a pod (hostNetwork, hostPID,
/// hostIPC, shareProcessNamespace).
pub fn namespace_options(pod: &Pod) -> NamespaceOption {
    let spec = pod.spec.as_ref();
    let flag =
        |f: fn(&k8s_openapi::api::core::v1::PodSpec) -> Option<bool>| spec.and_then(f).unwrap_or(false);
    let node_or = |host: bool, other: NamespaceMode| if host { NamespaceMode::Node } else { other };
    let pid_default = if flag(|s| s.share_process_namespace) {
        NamespaceMode::Pod
    } else {
        NamespaceMode::Container
    };
    NamespaceOption {
        network: node_or(flag(|s| s.host_network), NamespaceMode::Pod) as i32,
        pid: node_or(flag(|s| s.host_pid), pid_default) as i32,
        ipc: node_or(flag(|s| s.host_ipc), NamespaceMode::Pod) as i32,
        ..Default::default()
    }
}

fn pod_sc(pod: &Pod) -> Option<&PodSecurityContext> {
    pod.spec.as_ref()?.security_context.as_ref()
}

/// True when some container of the pod is privileged.
fn has_privileged_container(pod: &Pod) -> bool {
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()))
        .any(|c| {
            c.security_context
                .as_ref()
                .and_then(|sc| sc.privileged)
                .unwrap_or(false)
        })
}

/// Supplemental groups: the pod's list plus its fsGroup.
fn supplemental_groups(pod: &Pod) -> Vec<i64> {
    let sc = pod_sc(pod);
    let mut groups: Vec<i64> = sc.and_then(|s| s.supplemental_groups.clone()).unwrap_or_default();
    if let Some(fs_group) = sc.and_then(|s| s.fs_group)
        && !groups.contains(&fs_group)
    {
        groups.push(fs_group);
    }
    groups
}

fn seccomp(profile: Option<&SeccompProfile>) -> SecurityProfile {
    match profile.map(|p| p.type_.as_str()) {
        Some("RuntimeDefault") => SecurityProfile {
            profile_type: ProfileType::RuntimeDefault as i32,
            ..Default::default()
        },
        Some("Localhost") => SecurityProfile {
            profile_type: ProfileType::Localhost as i32,
            localhost_ref: profile
                .and_then(|p| p.localhost_profile.clone())
                .unwrap_or_default(),
        },
        _ => SecurityProfile {
            profile_type: ProfileType::Unconfined as i32,
            ..Default::default()
        },
    }
}

fn apparmor(kind: Option<&str>, localhost: Option<String>) -> SecurityProfile {
    match kind {
        Some("RuntimeDefault") => SecurityProfile {
            profile_type: ProfileType::RuntimeDefault as i32,
            ..Default::default()
        },
        Some("Localhost") => SecurityProfile {
            profile_type: ProfileType::Localhost as i32,
            localhost_ref: localhost.unwrap_or_default(),
        },
        _ => SecurityProfile {
            profile_type: ProfileType::Unconfined as i32,
            ..Default::default()
        },
    }
}

/// The deprecated string forms containerd 1.6 still reads.
fn legacy_profile(p: &SecurityProfile) -> String {
    match ProfileType::try_from(p.profile_type) {
        Ok(ProfileType::RuntimeDefault) => "runtime/default".to_string(),
        Ok(ProfileType::Localhost) => format!("localhost/{}", p.localhost_ref),
        _ => "unconfined".to_string(),
    }
}

/// The sandbox's Linux config: namespaces, sysctls and the pod security
/// context (run as user/group, supplemental groups, seccomp).
pub fn sandbox_linux(pod: &Pod) -> LinuxPodSandboxConfig {
    let sc = pod_sc(pod);
    let seccomp = seccomp(sc.and_then(|s| s.seccomp_profile.as_ref()));
    #[allow(deprecated)]
    let security_context = LinuxSandboxSecurityContext {
        namespace_options: Some(namespace_options(pod)),
        run_as_user: sc.and_then(|s| s.run_as_user).map(|value| Int64Value { value }),
        run_as_group: sc.and_then(|s| s.run_as_group).map(|value| Int64Value { value }),
        supplemental_groups: supplemental_groups(pod),
        privileged: has_privileged_container(pod),
        seccomp_profile_path: legacy_profile(&seccomp),
        seccomp: Some(seccomp),
        ..Default::default()
    };
    LinuxPodSandboxConfig {
        security_context: Some(security_context),
        sysctls: sc
            .and_then(|s| s.sysctls.as_ref())
            .into_iter()
            .flatten()
            .map(|s| (s.name.clone(), s.value.clone()))
            .collect(),
        ..Default::default()
    }
}

/// The container's effective security context in CRI form.
pub fn container_security(pod: &Pod, container: &Container) -> LinuxContainerSecurityContext {
    let psc = pod_sc(pod);
    let csc = container.security_context.as_ref();
    let privileged = csc.and_then(|s| s.privileged).unwrap_or(false);
    let run_as_user = csc
        .and_then(|s| s.run_as_user)
        .or_else(|| psc.and_then(|s| s.run_as_user));
    let run_as_group = csc
        .and_then(|s| s.run_as_group)
        .or_else(|| psc.and_then(|s| s.run_as_group));
    let seccomp = seccomp(
        csc.and_then(|s| s.seccomp_profile.as_ref())
            .or_else(|| psc.and_then(|s| s.seccomp_profile.as_ref())),
    );
    let apparmor_src = csc
        .and_then(|s| s.app_armor_profile.as_ref())
        .or_else(|| psc.and_then(|s| s.app_armor_profile.as_ref()));
    let apparmor = apparmor(
        apparmor_src.map(|p| p.type_.as_str()),
        apparmor_src.and_then(|p| p.localhost_profile.clone()),
    );
    let capabilities = csc.and_then(|s| s.capabilities.as_ref()).map(|caps| Capability {
        add_capabilities: caps.add.clone().unwrap_or_default(),
        drop_capabilities: caps.drop.clone().unwrap_or_default(),
        ..Default::default()
    });
    let unmasked = privileged || csc.and_then(|s| s.proc_mount.as_deref()) == Some("Unmasked");
    let owned = |paths: &[&str]| {
        if unmasked {
            Vec::new()
        } else {
            paths.iter().map(|p| p.to_string()).collect()
        }
    };
    #[allow(deprecated)]
    LinuxContainerSecurityContext {
        capabilities,
        privileged,
        namespace_options: Some(namespace_options(pod)),
        run_as_user: run_as_user.map(|value| Int64Value { value }),
        run_as_group: run_as_group.map(|value| Int64Value { value }),
        readonly_rootfs: csc.and_then(|s| s.read_only_root_filesystem).unwrap_or(false),
        supplemental_groups: supplemental_groups(pod),
        no_new_privs: csc
            .and_then(|s| s.allow_privilege_escalation)
            .is_some_and(|allow| !allow),
        masked_paths: owned(MASKED_PATHS),
        readonly_paths: owned(READONLY_PATHS),
        seccomp_profile_path: legacy_profile(&seccomp),
        apparmor_profile: match ProfileType::try_from(apparmor.profile_type) {
            Ok(ProfileType::Unconfined) => String::new(),
            _ => legacy_profile(&apparmor),
        },
        seccomp: Some(seccomp),
        apparmor: Some(apparmor),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    #[test]
    fn host_namespaces_and_sysctls_reach_the_sandbox() {
        let p = pod(serde_json::json!({
            "hostNetwork": true, "hostPID": true,
            "securityContext": {"runAsUser": 1000, "fsGroup": 2000, "supplementalGroups": [3000],
                                "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]},
            "containers": [{"name": "c", "image": "i"}]
        }));
        let cfg = sandbox_linux(&p);
        let sc = cfg.security_context.unwrap();
        let ns = sc.namespace_options.unwrap();
        assert_eq!(ns.network, NamespaceMode::Node as i32);
        assert_eq!(ns.pid, NamespaceMode::Node as i32);
        assert_eq!(ns.ipc, NamespaceMode::Pod as i32);
        assert_eq!(sc.run_as_user.unwrap().value, 1000);
        assert_eq!(sc.supplemental_groups, vec![3000, 2000]);
        assert_eq!(sc.seccomp.unwrap().profile_type, ProfileType::Unconfined as i32);
        assert_eq!(
            cfg.sysctls.get("net.core.somaxconn").map(String::as_str),
            Some("1024")
        );
    }

    #[test]
    fn container_overrides_pod_and_maps_caps_and_privilege_escalation() {
        let p = pod(serde_json::json!({
            "shareProcessNamespace": true,
            "securityContext": {"runAsUser": 1000, "runAsGroup": 10},
            "containers": [{"name": "c", "image": "i", "securityContext": {
                "runAsUser": 0, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
                "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"}}}]
        }));
        let c = p.spec.as_ref().unwrap().containers[0].clone();
        let sc = container_security(&p, &c);
        assert_eq!(sc.run_as_user.unwrap().value, 0);
        assert_eq!(sc.run_as_group.unwrap().value, 10);
        assert!(sc.readonly_rootfs && sc.no_new_privs && !sc.privileged);
        let caps = sc.capabilities.unwrap();
        assert_eq!(
            (caps.add_capabilities, caps.drop_capabilities),
            (vec!["NET_ADMIN".into()], vec!["ALL".into()])
        );
        assert_eq!(
            sc.seccomp.unwrap().profile_type,
            ProfileType::RuntimeDefault as i32
        );
        assert_eq!(sc.apparmor.unwrap().profile_type, ProfileType::Unconfined as i32);
        assert_eq!(sc.namespace_options.unwrap().pid, NamespaceMode::Pod as i32);
        assert!(sc.masked_paths.contains(&"/proc/kcore".to_string()));
    }

    #[test]
    fn privileged_container_is_unmasked_and_makes_the_sandbox_privileged() {
        let p = pod(serde_json::json!({
            "containers": [{"name": "c", "image": "i", "securityContext": {"privileged": true}}]
        }));
        let c = p.spec.as_ref().unwrap().containers[0].clone();
        let sc = container_security(&p, &c);
        assert!(sc.privileged && sc.masked_paths.is_empty() && sc.readonly_paths.is_empty());
        assert!(!sc.no_new_privs);
        assert!(sandbox_linux(&p).security_context.unwrap().privileged);
    }
}
