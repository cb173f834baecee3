//! A real node for end-to-end tests of the agent: a containerd of the test's
//! own (skiff-images' `ManagedContainerd` in the server's data dir, own
//! socket, root, state and CNI conf dir), the local images imported, and a
//! bridge name, cluster CIDR and node-API port no other test uses. The
//! `skiff server` under test is pointed at it with flags.
//!
//! On drop everything is torn down, pass or fail: every pod sandbox is
//! stopped and removed through CRI (so CNI releases addresses and veths),
//! containerd is stopped, stray shims are killed, the bridge is deleted and
//! mounts left under the data dir are unmounted. If the test process dies
//! without dropping it (killed by a timeout), lifelines do the same: the
//! containerd, its shims and containers, the mounts and the bridge go.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use skiff_images::{ContainerdConfig, Lifeline, ManagedContainerd, OnOwnerExit};

use crate::server::{Error, free_port, workspace_root};

/// How long containerd may take to answer.
const CONTAINERD_TIMEOUT: Duration = Duration::from_secs(30);
/// Nodes started by this process (part of the bridge name).
static NODES: AtomicU32 = AtomicU32::new(0);

/// Why tests that need containers cannot run here, if they cannot:
/// containerd, ctr or runc missing, or not root. Tests print it and skip.
pub fn skip_reason() -> Option<String> {
    for tool in ["containerd", "ctr", "runc"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!(
                "{tool} is not installed (apt-get install containerd runc)"
            ));
        }
    }
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_string));
    if uid.as_deref() != Some("0") {
        return Some("containers need root".to_string());
    }
    None
}

/// The directory holding `busybox.tar` and `pause.tar`, built once per
/// machine by `scripts/build-images.sh` into `target/skiff-e2e-images-<hash of the script>`
/// (under a file lock: test processes run at the same time).
pub fn local_images() -> Result<PathBuf, Error> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(build_images).clone().map_err(Error::Binary)
}

/// FNV-1a, 64 bits: a stable cache key (std's hasher may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn build_images() -> Result<PathBuf, String> {
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let target = if target.is_relative() {
        root.join(target)
    } else {
        target
    };
    let script = root.join("scripts/build-images.sh");
    let script_text = std::fs::read(&script).map_err(|e| format!("reading {}: {e}", script.display()))?;
    // Keyed by the script's content, so a changed image build is rebuilt
    // rather than served stale from an earlier run's cache.
    let dir = target.join(format!("skiff-e2e-images-{:016x}", fnv1a(&script_text)));
    if dir.join("busybox.tar").is_file() && dir.join("pause.tar").is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&target).map_err(|e| format!("creating {}: {e}", target.display()))?;
    let out = Command::new("flock")
        .arg(target.join("skiff-e2e-images.lock"))
        .arg("sh")
        .arg("-c")
        .arg(r#"[ -f "$2/busybox.tar" ] && [ -f "$2/pause.tar" ] || "$1" "$2""#)
        .arg("build-images")
        .arg(&script)
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed:\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(dir)
}

/// A containerd owned by one test server, with what the agent needs.
pub struct LocalNode {
    containerd: Option<ManagedContainerd>,
    /// Deletes the bridge if this process dies without dropping the node.
    bridge_lifeline: Option<Lifeline>,
    data_dir: PathBuf,
    bridge: String,
    cluster_cidr: String,
    node_name: String,
    node_api_port: u16,
}

impl LocalNode {
    /// Starts containerd under `data_dir/containerd` and imports the local images.
    pub fn start(data_dir: &Path) -> Result<LocalNode, Error> {
        let images = local_images()?;
        let seq = NODES.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let mut config = ContainerdConfig::new(data_dir.join("containerd"));
        config.cni_conf_dir = data_dir.join("agent").join("cni").join("net.d");
        let on_exit = OnOwnerExit::StopEverything {
            unmount_under: data_dir.to_path_buf(),
        };
        let containerd = ManagedContainerd::start_with(config, "containerd", CONTAINERD_TIMEOUT, on_exit)
            .map_err(|e| Error::Binary(format!("containerd: {e}")))?;
        skiff_images::import_dir("ctr", &containerd.socket(), &images)
            .map_err(|e| Error::Binary(format!("importing {}: {e}", images.display())))?;
        // At most 15 bytes (IFNAMSIZ - 1).
        let bridge = format!("sk{}x{}", pid % 1_000_000, seq % 100);
        let bridge_lifeline =
            Lifeline::spawn(r#"ip link del "$1" 2>/dev/null"#, std::slice::from_ref(&bridge))
                .map_err(Error::Setup)?;
        Ok(LocalNode {
            containerd: Some(containerd),
            bridge_lifeline: Some(bridge_lifeline),
            data_dir: data_dir.to_path_buf(),
            bridge,
            cluster_cidr: free_cluster_cidr(pid, seq),
            node_name: "e2e-node".to_string(),
            node_api_port: free_port().map_err(Error::Setup)?,
        })
    }

    /// The flags that point `skiff server` (or `skiff agent`) at this node.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--node-name".into(),
            self.node_name.clone(),
            "--container-runtime-endpoint".into(),
            self.socket().display().to_string(),
            "--cni-conf-dir".into(),
            self.cni_conf_dir().display().to_string(),
            "--cni-bridge".into(),
            self.bridge.clone(),
            "--node-api-port".into(),
            self.node_api_port.to_string(),
            "--cluster-cidr".into(),
            self.cluster_cidr.clone(),
        ]
    }

    /// containerd's socket.
    pub fn socket(&self) -> PathBuf {
        self.data_dir.join("containerd").join("containerd.sock")
    }

    /// The CNI conf dir containerd reads and the agent writes.
    pub fn cni_conf_dir(&self) -> PathBuf {
        self.data_dir.join("agent").join("cni").join("net.d")
    }

    /// The Node's name.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// The pod bridge's name.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The node-API port.
    pub fn node_api_port(&self) -> u16 {
        self.node_api_port
    }

    /// The cluster CIDR this node's podCIDR is cut from.
    pub fn cluster_cidr(&self) -> &str {
        &self.cluster_cidr
    }

    /// Runs `ctr --address SOCKET -n k8s.io ARGS...`.
    pub fn ctr(&self, args: &[&str]) -> std::io::Result<Output> {
        Command::new("ctr")
            .arg("--address")
            .arg(self.socket())
            .args(["-n", "k8s.io"])
            .args(args)
            .stdin(Stdio::null())
            .output()
    }

    /// Ids of the containers whose task is RUNNING, pause containers
    /// (sandboxes) excluded when `without_sandboxes`: what the runtime runs.
    pub fn running_containers(&self, without_sandboxes: bool) -> Vec<String> {
        let Ok(tasks) = self.ctr(&["tasks", "ls"]) else {
            return Vec::new();
        };
        let sandboxes = if without_sandboxes {
            self.ctr(&["containers", "ls"])
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .filter(|l| l.contains("pause"))
                        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        String::from_utf8_lossy(&tasks.stdout)
            .lines()
            .skip(1)
            .filter(|l| l.contains("RUNNING"))
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .filter(|id| !sandboxes.contains(id))
            .collect()
    }

    fn teardown(&mut self) {
        if let Some(containerd) = self.containerd.as_mut() {
            remove_all_sandboxes(&containerd.socket());
            containerd.stop();
        }
        self.containerd = None;
        kill_shims(&self.socket());
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
        self.bridge_lifeline = None;
        unmount_under(&self.data_dir);
    }
}

impl Drop for LocalNode {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// A `10.X.0.0/16` no route of this machine uses yet (X from 64 to 191,
/// starting at a place picked from the process id and node number).
fn free_cluster_cidr(pid: u32, seq: u32) -> String {
    let routes = Command::new("ip")
        .args(["-4", "route", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let start = (pid.wrapping_mul(7).wrapping_add(seq.wrapping_mul(13))) % 128;
    (0..128)
        .map(|i| 64 + (start + i) % 128)
        .find(|x| !routes.contains(&format!("10.{x}.")))
        .map(|x| format!("10.{x}.0.0/16"))
        .unwrap_or_else(|| "10.200.0.0/16".to_string())
}

/// Stops and removes every pod sandbox through CRI (containers with them).
fn remove_all_sandboxes(socket: &Path) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return;
    };
    let socket = socket.to_path_buf();
    rt.block_on(async move {
        let work = async {
            let Ok(client) = skiff_cri::CriClient::connect(&socket).await else {
                return;
            };
            let mut runtime = client.runtime;
            let Ok(list) = runtime
                .list_pod_sandbox(k8s_cri::v1::ListPodSandboxRequest { filter: None })
                .await
            else {
                return;
            };
            for sandbox in list.into_inner().items {
                let id = sandbox.id;
                let _ = runtime
                    .stop_pod_sandbox(k8s_cri::v1::StopPodSandboxRequest {
                        pod_sandbox_id: id.clone(),
                    })
                    .await;
                let _ = runtime
                    .remove_pod_sandbox(k8s_cri::v1::RemovePodSandboxRequest { pod_sandbox_id: id })
                    .await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(60), work).await;
    });
}

/// SIGKILLs shims still serving this containerd (their command line names its socket).
fn kill_shims(socket: &Path) {
    let needle = socket.display().to_string();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in procs.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("containerd-shim") && cmdline.contains(&needle) {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
}

/// Lazily unmounts everything mounted under `dir`, deepest first.
pub(crate) fn unmount_under(dir: &Path) {
    let prefix = dir.display().to_string();
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(unescape_mount_path))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = Command::new("umount")
            .args(["-l", &point])
            .stderr(Stdio::null())
            .status();
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount_path(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_cidrs_are_private_slash_16s() {
        let cidr = free_cluster_cidr(12345, 0);
        assert!(cidr.starts_with("10.") && cidr.ends_with(".0.0/16"), "{cidr}");
        let x: u32 = cidr.split('.').nth(1).unwrap().parse().unwrap();
        assert!((64..192).contains(&x), "{cidr}");
    }

    #[test]
    fn a_local_node_has_the_images_and_leaves_nothing_behind() {
        if let Some(reason) = skip_reason() {
            eprintln!("SKIPPED: {reason}");
            return;
        }
        let dir = tempfile::Builder::new().prefix("skiff-node-").tempdir().unwrap();
        let node = LocalNode::start(dir.path()).unwrap();
        let images = node.ctr(&["images", "ls", "-q"]).unwrap();
        let images = String::from_utf8_lossy(&images.stdout).into_owned();
        for image in ["skiff.local/busybox:1", "skiff.local/pause:3.9"] {
            assert!(images.contains(image), "{image} not imported: {images}");
        }
        assert!(node.server_args().contains(&node.bridge().to_string()));
        assert!(node.running_containers(false).is_empty());
        let socket = node.socket();
        drop(node);
        assert!(
            std::os::unix::net::UnixStream::connect(&socket).is_err(),
            "containerd still answers"
        );
    }

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(unescape_mount_path("/a\\040b"), "/a b");
    }
}
