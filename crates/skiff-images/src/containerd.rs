//! A containerd process that skiff starts and owns: writes its rendered
//! configuration, starts `containerd --config`, waits until its socket
//! answers, and stops it (SIGTERM, then SIGKILL) when asked or dropped. Does
//! not decide whether one is needed: callers check for a running runtime.
//!
//! A [`Lifeline`] stops containerd too when its owner dies without stopping
//! it (SIGKILL, abort): a crashed `skiff server` leaves no containerd behind.
//! What else goes with it is the owner's choice ([`OnOwnerExit`]): a user's
//! server keeps its containers' shims, so that a restart adopts them (a new
//! containerd reconnects to them); a test's instance takes its containers,
//! shims and mounts down with it.

use std::fs::{self, File};
use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::config::{ConfigError, ContainerdConfig};
use crate::lifeline::Lifeline;

/// How long `stop` waits after SIGTERM before it kills.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Why a managed containerd could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration could not be rendered.
    #[error("containerd config: {0}")]
    Config(#[from] ConfigError),
    /// A directory or file of the instance could not be written.
    #[error("preparing {path}: {source}")]
    Prepare {
        /// The path being written.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The `containerd` binary could not be run.
    #[error("running {binary}: {source}")]
    Spawn {
        /// The binary that was run.
        binary: String,
        /// The underlying error.
        source: io::Error,
    },
    /// containerd exited before its socket answered.
    #[error("containerd exited ({status}) before serving; see {log}")]
    Exited {
        /// Its exit status.
        status: String,
        /// Its log file.
        log: PathBuf,
    },
    /// The socket did not answer in time.
    #[error("containerd did not answer on {socket} within {timeout:?}; see {log}")]
    Timeout {
        /// The socket waited for.
        socket: PathBuf,
        /// How long it waited.
        timeout: Duration,
        /// Its log file.
        log: PathBuf,
    },
}

/// What goes away when the process that started containerd dies without
/// stopping it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnOwnerExit {
    /// containerd only (SIGTERM, SIGKILL after a grace period); running
    /// containers and their shims stay for the next containerd to adopt.
    StopContainerd,
    /// containerd, then every shim serving its socket and the shims'
    /// children (the containers), then every mount under the given
    /// directory (deepest first, lazily). For tests.
    StopEverything {
        /// Mounts under this directory are unmounted.
        unmount_under: PathBuf,
    },
}

/// The lifeline's script: `$1` containerd's pid, `$2` its config path (so a
/// reused pid is never signalled), `$3` its socket, `$4` the directory to
/// unmount under ("" for none), `$5` "all" to take shims down too.
const CLEANUP_SCRIPT: &str = r#"
ours() { tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"; }
if ours "$1" "$2"; then
    kill -TERM "$1" 2>/dev/null
    i=0
    while ours "$1" "$2" && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    ours "$1" "$2" && kill -KILL "$1" 2>/dev/null
fi
[ "$5" = all ] || exit 0
for p in /proc/[0-9]*; do
    s=${p#/proc/}
    [ "$s" = "$$" ] && continue
    case "$(tr '\0' ' ' < "$p/cmdline" 2>/dev/null)" in
    *containerd-shim*" -address $3"*)
        for c in $(cat "$p"/task/*/children 2>/dev/null); do kill -KILL "$c" 2>/dev/null; done
        kill -KILL "$s" 2>/dev/null ;;
    esac
done
[ -n "$4" ] || exit 0
sleep 0.2
awk '{ print $5 }' /proc/self/mountinfo | grep -F -- "$4/" | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null
done
"#;

/// A running containerd started by skiff; stopped on [`ManagedContainerd::stop`] or drop.
#[derive(Debug)]
pub struct ManagedContainerd {
    config: ContainerdConfig,
    child: Option<Child>,
    lifeline: Option<Lifeline>,
}

impl ManagedContainerd {
    /// Starts `binary` (normally `containerd`) with `config` rendered to
    /// `config.config_path()`, its output in `dir/containerd.log`, and waits up
    /// to `timeout` for its socket to accept connections. If this process
    /// dies without stopping it, containerd is stopped
    /// ([`OnOwnerExit::StopContainerd`]).
    pub fn start(config: ContainerdConfig, binary: &str, timeout: Duration) -> Result<Self, StartError> {
        Self::start_with(config, binary, timeout, OnOwnerExit::StopContainerd)
    }

    /// [`ManagedContainerd::start`], saying what goes away with this process.
    pub fn start_with(
        config: ContainerdConfig,
        binary: &str,
        timeout: Duration,
        on_owner_exit: OnOwnerExit,
    ) -> Result<Self, StartError> {
        let text = config.render()?;
        for dir in [&config.dir, &config.root(), &config.state(), &config.cni_conf_dir] {
            fs::create_dir_all(dir).map_err(|source| StartError::Prepare {
                path: dir.clone(),
                source,
            })?;
        }
        let config_path = config.config_path();
        fs::write(&config_path, text).map_err(|source| StartError::Prepare {
            path: config_path.clone(),
            source,
        })?;
        let log = config.dir.join("containerd.log");
        let out = File::create(&log).map_err(|source| StartError::Prepare {
            path: log.clone(),
            source,
        })?;
        let err = out.try_clone().map_err(|source| StartError::Prepare {
            path: log.clone(),
            source,
        })?;
        // A socket left by a previous instance would make containerd fail to listen.
        let _ = fs::remove_file(config.socket());
        let child = Command::new(binary)
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| StartError::Spawn {
                binary: binary.to_string(),
                source,
            })?;
        let mut managed = Self {
            config,
            child: Some(child),
            lifeline: None,
        };
        let (unmount_under, scope) = match on_owner_exit {
            OnOwnerExit::StopContainerd => (String::new(), "containerd"),
            OnOwnerExit::StopEverything { unmount_under } => (unmount_under.display().to_string(), "all"),
        };
        let args = [
            managed.pid().unwrap_or_default().to_string(),
            config_path.display().to_string(),
            managed.config.socket().display().to_string(),
            unmount_under,
            scope.to_string(),
        ];
        match Lifeline::spawn(CLEANUP_SCRIPT, &args) {
            Ok(lifeline) => managed.lifeline = Some(lifeline),
            Err(source) => {
                managed.stop();
                return Err(StartError::Spawn {
                    binary: "sh".to_string(),
                    source,
                });
            }
        }
        managed.wait_ready(timeout, &log)?;
        Ok(managed)
    }

    fn wait_ready(&mut self, timeout: Duration, log: &Path) -> Result<(), StartError> {
        let socket = self.config.socket();
        let deadline = Instant::now() + timeout;
        loop {
            if UnixStream::connect(&socket).is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(StartError::Exited {
                    status: status.to_string(),
                    log: log.to_path_buf(),
                });
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(StartError::Timeout {
                    socket,
                    timeout,
                    log: log.to_path_buf(),
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The instance's configuration (paths, sandbox image).
    pub fn config(&self) -> &ContainerdConfig {
        &self.config
    }

    /// The gRPC socket path (CRI endpoint `unix://` + this).
    pub fn socket(&self) -> PathBuf {
        self.config.socket()
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops containerd: SIGTERM, then SIGKILL after a grace period. Running
    /// containers' shims are not containerd's children and keep running; the
    /// caller stops its containers first. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            if let Some(mut lifeline) = self.lifeline.take() {
                lifeline.disarm();
            }
            return;
        };
        Self::stop_child(&mut child);
        if let Some(mut lifeline) = self.lifeline.take() {
            lifeline.disarm();
        }
    }

    /// What [`OnOwnerExit`] promises when the owner dies, done now: used by
    /// tests of that promise (the lifeline's script runs and is waited for).
    pub fn abandon(&mut self) {
        if let Some(mut lifeline) = self.lifeline.take() {
            lifeline.fire();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// SIGTERM, then SIGKILL after [`STOP_GRACE`]; reaps `child`.
    fn stop_child(child: &mut Child) {
        // std only sends SIGKILL; `kill` gives containerd the chance to close cleanly.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for ManagedContainerd {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_is_a_spawn_error() {
        let dir = std::env::temp_dir().join(format!("skiff-img-unit-{}", std::process::id()));
        let err = ManagedContainerd::start(
            ContainerdConfig::new(&dir),
            "/nonexistent/containerd",
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(matches!(err, StartError::Spawn { .. }), "{err}");
        assert!(
            dir.join("config.toml").exists(),
            "config is written before the start"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_process_that_exits_at_once_is_reported() {
        let dir = std::env::temp_dir().join(format!("skiff-img-unit-exit-{}", std::process::id()));
        let err = ManagedContainerd::start(ContainerdConfig::new(&dir), "false", Duration::from_secs(5))
            .unwrap_err();
        assert!(matches!(err, StartError::Exited { .. }), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
