//! A `skiff server` process on a free loopback port with its own temporary
//! data dir: started from the built binary, waited on until `/readyz` says
//! ok, killed with SIGKILL and restarted on the same data dir for crash
//! tests, and torn down (whole process group) on drop, or by a lifeline
//! when the test process dies first.
//!
//! It owns process lifecycle only; talking to the server is [`crate::kubectl`]'s job.

use std::fs::OpenOptions;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use skiff_images::Lifeline;
use skiff_images::lifeline::KILL_GROUP_SCRIPT;
use tempfile::TempDir;

use crate::kubectl::Kubectl;
use crate::node::LocalNode;

/// Errors from starting or stopping a server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data dir, log file or a port could not be set up.
    #[error("setting up the server: {0}")]
    Setup(#[source] std::io::Error),
    /// `cargo build -p skiff` failed or the binary is missing.
    #[error("no skiff binary: {0}")]
    Binary(String),
    /// The process could not be spawned or signalled.
    #[error("running {what}: {source}")]
    Process {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The server exited before it became ready.
    #[error("skiff server exited with {status} before it was ready; log:\n{log}")]
    Exited {
        /// The exit status.
        status: String,
        /// The tail of the server's log.
        log: String,
    },
    /// The server did not become ready in time.
    #[error("skiff server not ready after {waited:?}; log:\n{log}")]
    NotReady {
        /// How long we waited.
        waited: Duration,
        /// The tail of the server's log.
        log: String,
    },
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// `--datastore-endpoint` (etcd); `None` means embedded SQLite.
    pub datastore_endpoint: Option<String>,
    /// Extra flags passed to `skiff server` as they are.
    pub extra_args: Vec<String>,
    /// How long to wait for `/readyz`.
    pub ready_timeout: Duration,
    /// The binary to run instead of [`skiff_binary`]'s.
    pub binary: Option<PathBuf>,
    /// Run the embedded node agent against a containerd of the test's own
    /// ([`crate::node::LocalNode`]); without it `extra_args` normally holds
    /// `--disable-agent` and pods run on simulated nodes only.
    pub agent: bool,
}

/// The flags that keep a test server's networking off the host: service
/// proxy, pod routes and cluster DNS.
pub const HOST_ISOLATION_FLAGS: [&str; 3] = ["--disable-kube-proxy", "--disable-pod-routes", "--disable-dns"];

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            datastore_endpoint: None,
            extra_args: vec!["--disable-agent".into()],
            ready_timeout: Duration::from_secs(30),
            binary: None,
            agent: false,
        }
    }
}

impl ServerOptions {
    /// Options for a server that runs only the API server: no in-process
    /// scheduler or controller manager, for tests that run their own loops.
    pub fn api_only() -> Self {
        ServerOptions {
            extra_args: vec![
                "--disable-agent".into(),
                "--disable-scheduler".into(),
                "--disable-controllers".into(),
            ],
            ..ServerOptions::default()
        }
    }

    /// Options for a whole one-machine cluster: scheduler, controllers and
    /// the embedded agent running real containers in a containerd of the
    /// test's own (see [`crate::node::skip_reason`] for when that cannot work).
    /// Such servers run side by side on the host, so nothing host-wide runs:
    /// no service proxy (nftables), no pod routes, no cluster DNS; pods get
    /// the host's resolv.conf.
    pub fn with_agent() -> Self {
        ServerOptions {
            extra_args: HOST_ISOLATION_FLAGS.map(String::from).to_vec(),
            ready_timeout: Duration::from_secs(60),
            agent: true,
            ..ServerOptions::default()
        }
    }

    /// Options for a server backed by the etcd at `endpoint`.
    pub fn etcd(endpoint: impl Into<String>) -> Self {
        ServerOptions {
            datastore_endpoint: Some(endpoint.into()),
            ..ServerOptions::default()
        }
    }
}

/// A running (or killed, awaiting restart) `skiff server`.
pub struct SkiffServer {
    child: Option<Child>,
    /// SIGKILLs the server's process group if the test process dies first.
    lifeline: Option<Lifeline>,
    /// Dropped after the server is killed and before the data dir is removed.
    node: Option<LocalNode>,
    /// `None` only after `Drop` decided to keep the directory.
    data_dir: Option<TempDir>,
    data_path: PathBuf,
    port: u16,
    opts: ServerOptions,
    binary: PathBuf,
    /// Time the last start took to pass `/readyz`.
    ready_in: Duration,
}

impl SkiffServer {
    /// Starts `skiff server` on a fresh data dir and a free 127.0.0.1 port and
    /// waits until `/readyz` answers `ok`.
    pub fn start(opts: ServerOptions) -> Result<SkiffServer, Error> {
        let binary = match &opts.binary {
            Some(binary) => binary.clone(),
            None => skiff_binary()?,
        };
        let data_dir = tempfile::Builder::new()
            .prefix("skiff-e2e-")
            .tempdir()
            .map_err(Error::Setup)?;
        let port = free_port().map_err(Error::Setup)?;
        let data_path = data_dir.path().to_path_buf();
        let node = if opts.agent {
            Some(LocalNode::start(&data_path)?)
        } else {
            None
        };
        let mut server = SkiffServer {
            child: None,
            lifeline: None,
            node,
            data_dir: Some(data_dir),
            data_path,
            port,
            opts,
            binary,
            ready_in: Duration::ZERO,
        };
        server.spawn_and_wait()?;
        Ok(server)
    }

    /// The data dir (`--data-dir`).
    pub fn data_dir(&self) -> &Path {
        &self.data_path
    }

    /// The node of a server started [`ServerOptions::with_agent`].
    pub fn node(&self) -> Option<&LocalNode> {
        self.node.as_ref()
    }

    /// The HTTPS port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `DATA_DIR/admin.kubeconfig`, written by the server.
    pub fn kubeconfig(&self) -> PathBuf {
        self.data_path.join("admin.kubeconfig")
    }

    /// A kubectl that talks to this server as admin.
    pub fn kubectl(&self) -> Kubectl {
        Kubectl::new(self.kubeconfig(), self.data_path.join("kubectl-cache"))
    }

    /// How long the last (re)start took until `/readyz` said ok.
    pub fn ready_in(&self) -> Duration {
        self.ready_in
    }

    /// The OS process id, while the server runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's combined stdout and stderr so far (all starts).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Sends SIGKILL to the server's process group and reaps it: no shutdown
    /// code runs, as in a crash.
    pub fn kill9(&mut self) -> Result<(), Error> {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child)?;
        }
        self.lifeline = None;
        Ok(())
    }

    /// Starts the server again on the same data dir and port (after [`Self::kill9`];
    /// kills a running one first) and waits for `/readyz`.
    pub fn restart(&mut self) -> Result<(), Error> {
        self.kill9()?;
        self.spawn_and_wait()
    }

    fn log_path(&self) -> PathBuf {
        self.data_path.join("server.log")
    }

    fn spawn_and_wait(&mut self) -> Result<(), Error> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(Error::Setup)?;
        let log_err = log.try_clone().map_err(Error::Setup)?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("server")
            .arg("--data-dir")
            .arg(&self.data_path)
            .arg("--https-port")
            .arg(self.port.to_string());
        if !self.opts.extra_args.iter().any(|a| a == "--bind-address") {
            cmd.arg("--bind-address").arg("127.0.0.1");
        }
        if let Some(endpoint) = &self.opts.datastore_endpoint {
            cmd.arg("--datastore-endpoint").arg(endpoint);
        }
        if let Some(node) = &self.node {
            cmd.args(node.server_args());
        }
        cmd.args(&self.opts.extra_args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0);
        let started = Instant::now();
        let child = cmd.spawn().map_err(|source| Error::Process {
            what: "skiff server".into(),
            source,
        })?;
        let group = child.id().to_string();
        self.child = Some(child);
        self.lifeline = Some(Lifeline::spawn(KILL_GROUP_SCRIPT, &[group]).map_err(Error::Setup)?);
        self.wait_ready(started)?;
        self.ready_in = started.elapsed();
        Ok(())
    }

    fn wait_ready(&mut self, started: Instant) -> Result<(), Error> {
        let kubectl = self.kubectl();
        loop {
            if let Some(child) = self.child.as_mut() {
                let exited = child.try_wait().map_err(|source| Error::Process {
                    what: "wait".into(),
                    source,
                })?;
                if let Some(status) = exited {
                    self.child = None;
                    return Err(Error::Exited {
                        status: status.to_string(),
                        log: tail(&self.log(), 40),
                    });
                }
            }
            if self.kubeconfig().exists() {
                let readyz = kubectl.run(&["get", "--raw", "/readyz", "--request-timeout=2s"]);
                if readyz.is_ok_and(|out| out.success() && out.stdout.trim() == "ok") {
                    return Ok(());
                }
            }
            if started.elapsed() > self.opts.ready_timeout {
                return Err(Error::NotReady {
                    waited: started.elapsed(),
                    log: tail(&self.log(), 40),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SkiffServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill_group(&mut child);
        }
        self.lifeline = None;
        if std::thread::panicking() {
            eprintln!(
                "---- skiff server log ({}) ----\n{}",
                self.data_path.display(),
                tail(&self.log(), 60)
            );
        }
        if std::env::var_os("SKIFF_E2E_KEEP").is_some()
            && let Some(dir) = self.data_dir.take()
        {
            eprintln!("kept skiff data dir {}", dir.keep().display());
        }
    }
}

/// SIGKILLs the process group led by `child` (the server and anything it
/// spawned), then reaps the child.
fn kill_group(child: &mut Child) -> Result<(), Error> {
    let group = format!("-{}", child.id());
    let status = Command::new("kill")
        .args(["-KILL", "--", &group])
        .stderr(Stdio::null())
        .status()
        .map_err(|source| Error::Process {
            what: "kill".into(),
            source,
        })?;
    if !status.success() {
        // The group may already be gone; make sure the leader is.
        let _ = child.kill();
    }
    child.wait().map_err(|source| Error::Process {
        what: "wait".into(),
        source,
    })?;
    Ok(())
}

/// A port on 127.0.0.1 nothing listens on right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

/// The `skiff` binary to test: `$SKIFF_BIN` if set, else
/// `$CARGO_TARGET_DIR|<workspace>/target` + `/debug/skiff`, built once per
/// test process with `cargo build -p skiff` so it is never stale (set
/// `SKIFF_E2E_NO_BUILD=1` to skip that).
pub fn skiff_binary() -> Result<PathBuf, Error> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY.get_or_init(locate_or_build).clone().map_err(Error::Binary)
}

fn locate_or_build() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("SKIFF_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let target = if target.is_relative() {
        root.join(target)
    } else {
        target
    };
    let binary = target.join("debug").join("skiff");
    if std::env::var_os("SKIFF_E2E_NO_BUILD").is_none() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--quiet", "-p", "skiff", "--bin", "skiff"])
            .current_dir(&root)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running cargo build -p skiff: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cargo build -p skiff failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    if !binary.exists() {
        return Err(format!(
            "{} does not exist; run `cargo build -p skiff`",
            binary.display()
        ));
    }
    Ok(binary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_that_exits_is_reported_with_its_log() {
        let opts = ServerOptions {
            binary: Some("/bin/sh".into()),
            ..ServerOptions::default()
        };
        // `sh server ...` fails at once: "server: No such file or directory".
        let err = SkiffServer::start(opts).err().unwrap();
        match err {
            Error::Exited { log, .. } => assert!(log.contains("server"), "log: {log}"),
            other => panic!("expected Exited, got {other}"),
        }
    }

    #[test]
    fn a_server_that_never_gets_ready_times_out_and_is_killed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("fake-skiff");
        std::fs::write(&script, "#!/bin/sh\necho starting\nexec sleep 600\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let opts = ServerOptions {
            binary: Some(script),
            ready_timeout: Duration::from_millis(300),
            ..ServerOptions::default()
        };
        let started = Instant::now();
        match SkiffServer::start(opts) {
            Err(Error::NotReady { log, .. }) => assert!(log.contains("starting"), "log: {log}"),
            Err(other) => panic!("expected NotReady, got {other}"),
            Ok(_) => panic!("a server that never writes a kubeconfig cannot be ready"),
        }
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }

    #[test]
    fn free_ports_are_loopback_bindable() {
        let port = free_port().unwrap();
        assert!(TcpListener::bind(("127.0.0.1", port)).is_ok());
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }
}
