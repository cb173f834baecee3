//! Several "machines" on one host for multi-node tests: a host bridge with a
//! free `10.201.K.0/24` (`.1` on the bridge), and one network namespace per
//! node joined to it by a veth (`.2`, `.3`, ..., default route via `.1`,
//! IPv4 forwarding on). [`AgentProcess`] runs `skiff agent` inside such a
//! namespace (and a mount namespace of its own), where it starts a
//! containerd of its own.
//!
//! Everything is torn down on drop, pass or fail: every process in each
//! namespace and all their descendants (containerd shims and the containers
//! they reaped) are killed, mounts left under the agents' data dirs are
//! unmounted, and the namespaces, veths and bridge are deleted. If the test
//! process dies first (killed by a timeout), a lifeline does the same.
//!
//! It owns the topology and the agents' processes only; the server and
//! kubectl are [`crate::server`]'s and [`crate::kubectl`]'s.

use std::collections::{BTreeSet, HashMap};
use std::fs::OpenOptions;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use skiff_images::Lifeline;
use tempfile::TempDir;

use crate::node::local_images;

/// The second octet block every topology's subnet comes from: `10.201.K.0/24`.
const SUBNET_BASE: [u8; 2] = [10, 201];
/// How long killed processes may take to disappear.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// Errors from building a topology or running an agent in it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An `ip`/`sysctl` command failed.
    #[error("`{command}` failed: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// What it printed to stderr.
        stderr: String,
    },
    /// A command could not be started, or a file not written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Every `10.201.K.0/24` is in use on this host.
    #[error("no free 10.201.K.0/24 subnet on this host")]
    NoFreeSubnet,
    /// The local images could not be built or found.
    #[error("local images: {0}")]
    Images(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Runs `program args...`, failing with its stderr when it exits non-zero.
fn run(program: &str, args: &[&str]) -> Result<(), Error> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(io(format!("running {program}")))?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Command {
        command: format!("{program} {}", args.join(" ")),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// Runs `program args...` and ignores how it went (teardown).
fn run_quiet(program: &str, args: &[&str]) {
    let _ = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A host bridge and one network namespace per node, deleted on drop.
#[derive(Debug)]
pub struct Topology {
    /// Does the teardown if this process dies without dropping the topology.
    lifeline: Option<Lifeline>,
    subnet: u8,
    bridge: String,
    nodes: Vec<String>,
    /// Directories whose mounts are removed on drop (the agents' data dirs).
    data_dirs: Vec<PathBuf>,
}

impl Topology {
    /// Creates the bridge on a free `10.201.K.0/24` and `nodes` namespaces.
    /// The bridge's name holds K, so creating it claims the subnet even
    /// against test processes starting at the same time.
    pub fn create(nodes: usize) -> Result<Topology, Error> {
        let pid = std::process::id();
        let start = (pid.wrapping_mul(31) % 250) as u8;
        let used = used_addresses();
        for i in 0..250u8 {
            let k = 1 + start.wrapping_add(i) % 250;
            if used.contains(&format!("{}.{}.{k}.", SUBNET_BASE[0], SUBNET_BASE[1])) {
                continue;
            }
            let bridge = format!("skmn{k}");
            if run("ip", &["link", "add", &bridge, "type", "bridge"]).is_err() {
                // Another test process holds this subnet.
                continue;
            }
            let mut topology = Topology {
                lifeline: None,
                subnet: k,
                bridge,
                nodes: Vec::new(),
                data_dirs: Vec::new(),
            };
            let mut args = vec![topology.bridge.clone()];
            args.extend((0..nodes).map(|index| format!("skmn{k}-{index}")));
            topology.lifeline = Some(Lifeline::spawn(TEARDOWN_SCRIPT, &args).map_err(io("lifeline"))?);
            topology.build(nodes)?;
            return Ok(topology);
        }
        Err(Error::NoFreeSubnet)
    }

    fn build(&mut self, nodes: usize) -> Result<(), Error> {
        let gateway = format!("{}/24", self.gateway());
        run("ip", &["addr", "add", &gateway, "dev", &self.bridge])?;
        run("ip", &["link", "set", &self.bridge, "up"])?;
        for index in 0..nodes {
            let ns = format!("skmn{}-{index}", self.subnet);
            run("ip", &["netns", "add", &ns])?;
            self.nodes.push(ns.clone());
            let host_end = self.host_veth(index);
            run(
                "ip",
                &[
                    "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", &ns,
                ],
            )?;
            run("ip", &["link", "set", &host_end, "master", &self.bridge, "up"])?;
            let addr = format!("{}/24", self.node_ip(index));
            let gw = self.gateway().to_string();
            for args in [
                vec!["link", "set", "lo", "up"],
                vec!["addr", "add", &addr, "dev", "eth0"],
                vec!["link", "set", "eth0", "up"],
                vec!["route", "add", "default", "via", &gw],
            ] {
                let mut full = vec!["netns", "exec", &ns, "ip"];
                full.extend(args);
                run("ip", &full)?;
            }
            run(
                "ip",
                &["netns", "exec", &ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
            )?;
        }
        Ok(())
    }

    /// The bridge's address, `10.201.K.1`: where the server is reached from the nodes.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(SUBNET_BASE[0], SUBNET_BASE[1], self.subnet, 1)
    }

    /// Node `index`'s address, `10.201.K.(2 + index)`.
    pub fn node_ip(&self, index: usize) -> Ipv4Addr {
        let last = u8::try_from(index + 2).unwrap_or(u8::MAX);
        Ipv4Addr::new(SUBNET_BASE[0], SUBNET_BASE[1], self.subnet, last)
    }

    /// The name of node `index`'s network namespace.
    pub fn netns(&self, index: usize) -> &str {
        self.nodes.get(index).map(String::as_str).unwrap_or_default()
    }

    /// The host bridge's name.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// How many node namespaces there are.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when there are no node namespaces.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// `ip netns exec NS program` for node `index`, to add arguments to.
    pub fn command(&self, index: usize, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.netns(index)]).arg(program);
        cmd
    }

    /// Starts `skiff agent` in node `index`'s namespace (see [`AgentProcess::start`]);
    /// its data dir's mounts are also removed when the topology is dropped.
    pub fn start_agent(&mut self, index: usize, spec: &AgentSpec) -> Result<AgentProcess, Error> {
        let agent = AgentProcess::start(self, index, spec)?;
        self.data_dirs.push(agent.data_dir().to_path_buf());
        Ok(agent)
    }

    fn host_veth(&self, index: usize) -> String {
        format!("skmn{}h{index}", self.subnet)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in &self.nodes {
            kill_all_in(ns);
        }
        for dir in &self.data_dirs {
            crate::node::unmount_under(dir);
        }
        for (index, ns) in self.nodes.iter().enumerate() {
            run_quiet("ip", &["netns", "del", ns]);
            run_quiet("ip", &["link", "del", &self.host_veth(index)]);
        }
        run_quiet("ip", &["link", "del", &self.bridge]);
        if let Some(mut lifeline) = self.lifeline.take() {
            lifeline.disarm();
        }
    }
}

/// What [`Topology`]'s lifeline does (`$1` the bridge, then the
/// namespaces): what its `Drop` does, in `sh`.
const TEARDOWN_SCRIPT: &str = r#"
bridge=$1; shift
all=""
for ns in "$@"; do all="$all $(ip netns pids "$ns" 2>/dev/null)"; done
todo=$all
while [ -n "$todo" ]; do
    next=""
    for p in $todo; do
        for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do next="$next $c"; done
    done
    all="$all $next"; todo=$next
done
[ -n "${all# }" ] && kill -KILL $all 2>/dev/null
sleep 1
for ns in "$@"; do ip netns del "$ns" 2>/dev/null; done
ip link del "$bridge" 2>/dev/null
"#;

/// Every IPv4 address and route prefix of the host, as text to search.
fn used_addresses() -> String {
    let mut text = String::new();
    for args in [["-4", "route", "show"], ["-4", "addr", "show"]] {
        if let Ok(out) = Command::new("ip").args(args).output() {
            text.push_str(&String::from_utf8_lossy(&out.stdout));
        }
    }
    text
}

/// SIGKILLs every process in network namespace `ns` and all their
/// descendants (a container's processes live in other namespaces but are
/// children of its shim), then waits until they are gone.
pub fn kill_all_in(ns: &str) {
    let Ok(meta) = std::fs::metadata(Path::new("/run/netns").join(ns)) else {
        return;
    };
    let want = format!("net:[{}]", meta.ino());
    let table = process_table();
    let roots: Vec<u32> = table
        .keys()
        .copied()
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|link| link.to_string_lossy() == want)
        })
        .collect();
    kill_and_wait(&with_descendants(&table, &roots));
}

/// SIGKILLs `pids` and waits (bounded) until none of them exists.
pub fn kill_and_wait(pids: &BTreeSet<u32>) {
    if pids.is_empty() {
        return;
    }
    let args: Vec<String> = pids.iter().map(u32::to_string).collect();
    let _ = Command::new("kill")
        .arg("-KILL")
        .args(&args)
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + KILL_WAIT;
    while Instant::now() < deadline && pids.iter().any(|pid| alive(*pid)) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True while `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| parse_stat(&stat).map(|(state, _)| state != 'Z'))
        .unwrap_or(false)
}

/// pid → parent pid of every process.
fn process_table() -> HashMap<u32, u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, parse_stat(&stat)?.1))
        })
        .collect()
}

/// The state and parent pid from `/proc/PID/stat` (the command name may hold spaces).
fn parse_stat(stat: &str) -> Option<(char, u32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// `roots` and every process below them in `table`.
fn with_descendants(table: &HashMap<u32, u32>, roots: &[u32]) -> BTreeSet<u32> {
    let mut found: BTreeSet<u32> = roots.iter().copied().collect();
    loop {
        let before = found.len();
        for (pid, ppid) in table {
            if found.contains(ppid) {
                found.insert(*pid);
            }
        }
        if found.len() == before {
            return found;
        }
    }
}

/// How to start one `skiff agent`.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    /// The `skiff` binary.
    pub binary: PathBuf,
    /// `--server`, e.g. `https://10.201.K.1:PORT`.
    pub server: String,
    /// `--token`.
    pub token: String,
    /// `--ca-file`, if the token does not carry the CA's hash.
    pub ca_file: Option<PathBuf>,
    /// `--node-name`.
    pub node_name: String,
    /// More flags, as they are.
    pub extra_args: Vec<String>,
}

/// A `skiff agent` running in a node's namespace with its own data dir (and
/// so its own containerd, which it starts as its child). Killed with its
/// descendants on drop; its log is printed when the test is panicking.
pub struct AgentProcess {
    child: Option<Child>,
    netns: String,
    node_name: String,
    /// `None` only after `Drop` decided to keep the directory.
    dir: Option<TempDir>,
    data_path: PathBuf,
}

impl AgentProcess {
    /// Starts `skiff agent --data-dir DIR --node-ip IP ...` in the network
    /// namespace of node `index` and a mount namespace of its own
    /// (see below), with the local images in
    /// `DIR/agent/images` for its containerd to import.
    pub fn start(topology: &Topology, index: usize, spec: &AgentSpec) -> Result<AgentProcess, Error> {
        let images = local_images().map_err(|e| Error::Images(e.to_string()))?;
        let dir = tempfile::Builder::new()
            .prefix("skiff-agent-")
            .tempdir()
            .map_err(io("creating the agent's data dir"))?;
        let data_path = dir.path().to_path_buf();
        let image_dir = data_path.join("agent").join("images");
        std::fs::create_dir_all(&image_dir).map_err(io("creating the agent's image dir"))?;
        for tar in ["busybox.tar", "pause.tar"] {
            std::fs::copy(images.join(tar), image_dir.join(tar)).map_err(io(format!("copying {tar}")))?;
        }
        let log_path = data_path.join("agent.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io("opening the agent's log"))?;
        let log_err = log.try_clone().map_err(io("opening the agent's log"))?;
        // Not `ip netns exec`: its fresh sysfs hides the cgroup hierarchies
        // runc needs. A mount namespace of the agent's own (a slave of the
        // host's) keeps what the agent and containerd mount (rootfs, pod
        // netns files, volumes) off the host; it goes with their processes.
        // A tmpfs of its own on /run/netns keeps the pods' netns names off
        // the host too (else they stay behind there as dangling files).
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", topology.netns(index)))
            .args(["unshare", "--mount", "--propagation", "slave"])
            .args([
                "sh",
                "-c",
                r#"mount -t tmpfs skiff-netns /run/netns && exec "$0" "$@""#,
            ])
            .arg(&spec.binary)
            .arg("agent")
            .args(["--server", &spec.server, "--token", &spec.token])
            .arg("--data-dir")
            .arg(&data_path)
            .args(["--node-name", &spec.node_name])
            .args(["--node-ip", &topology.node_ip(index).to_string()]);
        if let Some(ca) = &spec.ca_file {
            cmd.arg("--ca-file").arg(ca);
        }
        cmd.args(&spec.extra_args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let child = cmd.spawn().map_err(io("starting skiff agent"))?;
        Ok(AgentProcess {
            child: Some(child),
            netns: topology.netns(index).to_string(),
            node_name: spec.node_name.clone(),
            dir: Some(dir),
            data_path,
        })
    }

    /// The agent's `--data-dir`.
    pub fn data_dir(&self) -> &Path {
        &self.data_path
    }

    /// The Node's name.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// The network namespace it runs in.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// The agent's combined output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_path.join("agent.log")).unwrap_or_default()
    }

    /// The log of the containerd the agent started.
    pub fn containerd_log(&self) -> String {
        std::fs::read_to_string(self.data_path.join("containerd").join("containerd.log")).unwrap_or_default()
    }

    /// Whether the agent process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILLs the agent and its containerd (its child) as a crash would:
    /// shims and containers keep running, nothing is cleaned up.
    pub fn kill_with_containerd(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let table = process_table();
        kill_and_wait(&with_descendants(&table, &[child.id()]));
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill_with_containerd();
        kill_all_in(&self.netns);
        crate::node::unmount_under(&self.data_path);
        if std::thread::panicking() {
            eprintln!(
                "---- skiff agent {} log ({}) ----\n{}",
                self.node_name,
                self.data_path.display(),
                crate::server::tail(&self.log(), 80)
            );
        }
        if std::env::var_os("SKIFF_E2E_KEEP").is_some()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("kept skiff agent data dir {}", dir.keep().display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_spaces_in_the_name_parse() {
        assert_eq!(parse_stat("42 (a b) c) S 7 42 42 0"), Some(('S', 7)));
        assert_eq!(parse_stat("1 (init) Z 0 1"), Some(('Z', 0)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn descendants_are_found_at_any_depth() {
        let table = HashMap::from([(10, 1), (11, 10), (12, 11), (20, 1), (13, 12)]);
        let found = with_descendants(&table, &[10]);
        assert_eq!(found, BTreeSet::from([10, 11, 12, 13]));
    }

    #[test]
    fn the_lifeline_tears_the_topology_down_if_the_owner_cannot() {
        if let Some(reason) = crate::node::skip_reason() {
            eprintln!("SKIPPED: {reason}");
            return;
        }
        let mut topology = Topology::create(1).unwrap();
        let bridge = topology.bridge().to_string();
        let mut sleeper = topology.command(0, "sleep").arg("600").spawn().unwrap();
        // What happens when this process dies without dropping the topology.
        topology.lifeline.as_mut().unwrap().fire();
        assert!(sleeper.try_wait().unwrap().is_some(), "the sleeper survived");
        let links = Command::new("ip").args(["-br", "link"]).output().unwrap();
        assert!(!String::from_utf8_lossy(&links.stdout).contains(&bridge));
        assert!(!Path::new("/run/netns").join(topology.netns(0)).exists());
    }

    #[test]
    fn a_topology_connects_its_namespaces_and_leaves_nothing_behind() {
        if let Some(reason) = crate::node::skip_reason() {
            eprintln!("SKIPPED: {reason}");
            return;
        }
        let topology = Topology::create(2).unwrap();
        let (bridge, ns0) = (topology.bridge().to_string(), topology.netns(0).to_string());
        let peer = topology.node_ip(1).to_string();
        let gw = topology.gateway().to_string();
        for target in [&peer, &gw] {
            let ping = topology
                .command(0, "busybox")
                .args(["ping", "-c1", "-W2", target])
                .output()
                .unwrap();
            assert!(ping.status.success(), "ping {target}: {ping:?}");
        }
        // A process left in a namespace is killed with the topology.
        let mut sleeper = topology.command(1, "sleep").arg("600").spawn().unwrap();
        drop(topology);
        assert!(sleeper.try_wait().unwrap().is_some(), "the sleeper survived");
        let links = Command::new("ip").args(["-br", "link"]).output().unwrap();
        assert!(!String::from_utf8_lossy(&links.stdout).contains(&bridge));
        let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
        assert!(!String::from_utf8_lossy(&netns.stdout).contains(&ns0));
    }
}
