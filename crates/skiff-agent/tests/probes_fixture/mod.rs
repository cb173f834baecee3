//! A throw-away node runtime for the probe and pod-network tests: a
//! skiff-managed containerd in its own directory with the local images
//! imported, the agent's CNI config on its own bridge, and helpers to run
//! busybox sandboxes and containers through CRI. Everything it made
//! (sandboxes, containerd, mounts, the bridge, the directory) goes on drop.
//! `start` returns None, with the reason printed, when containerd is missing
//! or the test does not run as root.

#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_cri::v1::*;
use skiff_agent::{AgentConfig, CriClient, cni};
use skiff_images::{ContainerdConfig, ManagedContainerd, import_dir};

pub const BUSYBOX: &str = "skiff.local/busybox:1";

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct Node {
    pub dir: PathBuf,
    pub cfg: AgentConfig,
    pub cri: CriClient,
    containerd: Option<ManagedContainerd>,
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Node {
    /// A node runtime whose pods get addresses from `pod_cidr`.
    pub async fn start(pod_cidr: &str) -> Option<Node> {
        for tool in ["containerd", "ctr", "runc"] {
            if !have(tool) {
                eprintln!("SKIPPED: {tool} is not installed (apt-get install containerd runc)");
                return None;
            }
        }
        let uid = Command::new("id").arg("-u").output().unwrap();
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            eprintln!("SKIPPED: containerd needs root");
            return None;
        }
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // Short: unix socket paths are limited to 107 bytes.
        let dir = PathBuf::from(format!("/tmp/skc-{pid}-{n}"));
        let images = dir.join("images");
        let built = Command::new(repo_root().join("scripts/build-images.sh"))
            .arg(&images)
            .output()
            .unwrap();
        assert!(
            built.status.success(),
            "build-images.sh: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        let mut cfg = AgentConfig::new("probe-node", dir.join("agent"));
        cfg.cni_conf_dir = dir.join("cni");
        cfg.cni_bridge = format!("skc{}x{n}", pid % 100_000);
        let mut ctd = ContainerdConfig::new(dir.join("ctd"));
        ctd.cni_conf_dir = cfg.cni_conf_dir.clone();
        cni::write_config(&cfg, pod_cidr).unwrap();
        let containerd = ManagedContainerd::start(ctd, "containerd", Duration::from_secs(30)).unwrap();
        let socket = containerd.socket();
        import_dir("ctr", &socket, &images).unwrap();
        cfg.container_runtime_endpoint = socket.clone();
        let cri = CriClient::connect(&socket).await.unwrap();
        Some(Node {
            dir,
            cfg,
            cri,
            containerd: Some(containerd),
        })
    }

    /// The sandbox config of a pod `name` (pod network, given host ports).
    pub fn sandbox_config(&self, name: &str, host_ports: &[(i32, i32)]) -> PodSandboxConfig {
        let uid = format!("uid-{name}-{}", std::process::id());
        let log_dir = self.dir.join("logs").join(name);
        std::fs::create_dir_all(&log_dir).unwrap();
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.to_string(),
                uid: uid.clone(),
                namespace: "default".to_string(),
                attempt: 0,
            }),
            hostname: name.to_string(),
            log_directory: log_dir.to_string_lossy().into_owned(),
            port_mappings: host_ports
                .iter()
                .map(|(container, host)| PortMapping {
                    protocol: Protocol::Tcp as i32,
                    container_port: *container,
                    host_port: *host,
                    host_ip: String::new(),
                })
                .collect(),
            linux: Some(LinuxPodSandboxConfig::default()),
            ..PodSandboxConfig::default()
        }
    }

    /// Runs a sandbox; returns its id and pod IP.
    pub async fn run_sandbox(&self, config: &PodSandboxConfig) -> (String, String) {
        let id = self
            .cri
            .runtime
            .clone()
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .pod_sandbox_id;
        let status = self
            .cri
            .runtime
            .clone()
            .pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: id.clone(),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner();
        let ip = status.status.unwrap().network.unwrap().ip;
        (id, ip)
    }

    /// Creates and starts a busybox container running `cmd` in the sandbox.
    pub async fn run_container(
        &self,
        sandbox: &str,
        config: &PodSandboxConfig,
        name: &str,
        cmd: &[&str],
    ) -> String {
        let container = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.to_string(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: BUSYBOX.to_string(),
                ..ImageSpec::default()
            }),
            command: cmd.iter().map(|s| s.to_string()).collect(),
            log_path: format!("{name}.log"),
            linux: Some(LinuxContainerConfig::default()),
            ..ContainerConfig::default()
        };
        let mut rt = self.cri.runtime.clone();
        let id = rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: sandbox.to_string(),
                config: Some(container),
                sandbox_config: Some(config.clone()),
            })
            .await
            .unwrap()
            .into_inner()
            .container_id;
        rt.start_container(StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap();
        id
    }

    /// Runs `cmd` in the container; returns exit code and stdout+stderr.
    pub async fn exec(&self, container: &str, cmd: &[&str]) -> (i32, String) {
        let reply = self
            .cri
            .runtime
            .clone()
            .exec_sync(ExecSyncRequest {
                container_id: container.to_string(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout: 10,
            })
            .await
            .unwrap()
            .into_inner();
        let mut out = String::from_utf8_lossy(&reply.stdout).into_owned();
        out.push_str(&String::from_utf8_lossy(&reply.stderr));
        (reply.exit_code, out)
    }
}

/// Stops and removes every sandbox (CNI DEL runs: IPs, iptables rules go).
async fn remove_sandboxes(socket: PathBuf) {
    let Ok(cri) = CriClient::connect(&socket).await else {
        return;
    };
    let mut rt = cri.runtime.clone();
    let Ok(list) = rt.list_pod_sandbox(ListPodSandboxRequest { filter: None }).await else {
        return;
    };
    for sandbox in list.into_inner().items {
        let _ = rt
            .stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: sandbox.id.clone(),
            })
            .await;
        let _ = rt
            .remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: sandbox.id,
            })
            .await;
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut containerd) = self.containerd.take() {
            let socket = containerd.socket();
            // Drop may run inside the test's runtime: use a thread of our own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(remove_sandboxes(socket));
            })
            .join();
            containerd.stop();
        }
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let prefix = self.dir.to_string_lossy().to_string();
        let mut ours: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        ours.sort_by(|a, b| b.cmp(a));
        for m in ours {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.cfg.cni_bridge])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
