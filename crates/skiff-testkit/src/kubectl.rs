//! Runs the real kubectl (`/usr/bin/kubectl`, or `$KUBECTL`) against one
//! kubeconfig and captures what a user would see: stdout, stderr and the exit
//! code. Also runs long-lived commands (`kubectl get -w`) whose lines a test
//! reads as they arrive.
//!
//! It owns invoking kubectl only; it never starts servers.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Errors from running kubectl (not kubectl failing: that is an [`Output`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// kubectl could not be started or waited on.
    #[error("running kubectl {args}: {source}")]
    Spawn {
        /// The arguments, space-joined.
        args: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// kubectl ran longer than the timeout and was killed.
    #[error("kubectl {args} timed out after {after:?}; stdout: {stdout}; stderr: {stderr}")]
    Timeout {
        /// The arguments, space-joined.
        args: String,
        /// The timeout.
        after: Duration,
        /// What it printed to stdout before it was killed.
        stdout: String,
        /// What it printed to stderr before it was killed.
        stderr: String,
    },
}

/// What one kubectl run printed and how it exited.
#[derive(Debug, Clone)]
pub struct Output {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
}

impl Output {
    /// Whether kubectl exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// A kubectl bound to one kubeconfig.
#[derive(Debug, Clone)]
pub struct Kubectl {
    binary: PathBuf,
    kubeconfig: PathBuf,
    cache_dir: PathBuf,
    editor: Option<String>,
    timeout: Duration,
}

impl Kubectl {
    /// A kubectl using `kubeconfig` and its own discovery cache in `cache_dir`
    /// (so a server on a reused port never sees a stale cache).
    pub fn new(kubeconfig: impl Into<PathBuf>, cache_dir: impl Into<PathBuf>) -> Kubectl {
        let binary = std::env::var_os("KUBECTL")
            .map(PathBuf::from)
            .unwrap_or_else(|| "/usr/bin/kubectl".into());
        Kubectl {
            binary,
            kubeconfig: kubeconfig.into(),
            cache_dir: cache_dir.into(),
            editor: None,
            timeout: Duration::from_secs(60),
        }
    }

    /// The same kubectl with `KUBE_EDITOR` set (e.g. `sed -i s/a/b/`).
    pub fn with_editor(&self, editor: impl Into<String>) -> Kubectl {
        Kubectl {
            editor: Some(editor.into()),
            ..self.clone()
        }
    }

    /// The same kubectl with a different wall-clock limit per run.
    pub fn with_timeout(&self, timeout: Duration) -> Kubectl {
        Kubectl {
            timeout,
            ..self.clone()
        }
    }

    /// The kubeconfig this kubectl uses.
    pub fn kubeconfig(&self) -> &std::path::Path {
        &self.kubeconfig
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--cache-dir")
            .arg(&self.cache_dir)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("KUBECTL_EXTERNAL_DIFF")
            .env("NO_COLOR", "1");
        match &self.editor {
            Some(editor) => cmd.env("KUBE_EDITOR", editor),
            None => cmd.env_remove("KUBE_EDITOR").env("EDITOR", "false"),
        };
        cmd
    }

    /// Runs kubectl with `args` and no input.
    pub fn run(&self, args: &[&str]) -> Result<Output, Error> {
        self.run_stdin(args, None)
    }

    /// Runs kubectl with `args`, writing `stdin` (if any) to its input.
    pub fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> Result<Output, Error> {
        let joined = args.join(" ");
        let spawn_err = |source| Error::Spawn {
            args: joined.clone(),
            source,
        };
        let mut child = self
            .command(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_err)?;
        let stdout = reader(child.stdout.take());
        let stderr = reader(child.stderr.take());
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A kubectl that exits early closes the pipe; its output says why.
            let _ = pipe.write_all(input.as_bytes());
        }
        let status = wait_deadline(&mut child, self.timeout).map_err(spawn_err)?;
        let (stdout, stderr) = (join(stdout), join(stderr));
        match status {
            Some(status) => Ok(Output {
                stdout,
                stderr,
                code: status.code(),
            }),
            None => Err(Error::Timeout {
                args: joined,
                after: self.timeout,
                stdout,
                stderr,
            }),
        }
    }

    /// Runs kubectl and returns its stdout.
    ///
    /// # Panics
    /// When kubectl cannot run or exits non-zero (a test assertion), showing
    /// both outputs.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_stdin(args, None)
    }

    /// [`Self::ok`] with `stdin` written to kubectl's input.
    ///
    /// # Panics
    /// As [`Self::ok`].
    pub fn ok_stdin(&self, args: &[&str], stdin: Option<&str>) -> String {
        match self.run_stdin(args, stdin) {
            Ok(out) if out.success() => out.stdout,
            Ok(out) => panic!(
                "kubectl {} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
                args.join(" "),
                out.code,
                out.stdout,
                out.stderr
            ),
            Err(e) => panic!("{e}"),
        }
    }

    /// Runs kubectl expecting it to fail; returns what it printed.
    ///
    /// # Panics
    /// When kubectl cannot run or exits 0 (a test assertion).
    pub fn fails(&self, args: &[&str]) -> Output {
        self.fails_stdin(args, None)
    }

    /// [`Self::fails`] with `stdin` written to kubectl's input.
    ///
    /// # Panics
    /// As [`Self::fails`].
    pub fn fails_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        match self.run_stdin(args, stdin) {
            Ok(out) if out.success() => {
                panic!(
                    "kubectl {} succeeded but should fail\nstdout:\n{}",
                    args.join(" "),
                    out.stdout
                )
            }
            Ok(out) => out,
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts a long-running kubectl (e.g. `get -w`) whose stdout lines are
    /// read as they come; killed when the [`Streaming`] is dropped.
    pub fn stream(&self, args: &[&str]) -> Result<Streaming, Error> {
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| Error::Spawn {
                args: args.join(" "),
                source,
            })?;
        let (tx, lines) = channel();
        let stdout = child.stdout.take();
        let pump = std::thread::spawn(move || {
            if let Some(out) = stdout {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        });
        let stderr = reader(child.stderr.take());
        Ok(Streaming {
            child,
            lines,
            seen: Vec::new(),
            pump: Some(pump),
            stderr: Some(stderr),
        })
    }
}

/// A kubectl still running, with its output lines arriving on a channel.
pub struct Streaming {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    pump: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<String>>,
}

impl Streaming {
    /// Waits up to `timeout` for a line matching `want`; returns it, or
    /// `None` on timeout or when kubectl exits first.
    pub fn wait_for(&mut self, timeout: Duration, want: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return Some(line);
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Reads lines until none arrives for `quiet` (or kubectl exits); returns
    /// how many were read.
    pub fn drain(&mut self, quiet: Duration) -> usize {
        let mut read = 0;
        while let Ok(line) = self.lines.recv_timeout(quiet) {
            self.seen.push(line);
            read += 1;
        }
        read
    }

    /// Every line read so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// Kills kubectl and returns what it wrote to stderr.
    pub fn stop(mut self) -> String {
        self.kill()
    }

    fn kill(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(pump) = self.pump.take() {
            let _ = pump.join();
        }
        self.stderr.take().map(join).unwrap_or_default()
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads a pipe to the end on its own thread (so neither pipe can fill up).
fn reader(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn join(handle: JoinHandle<String>) -> String {
    handle.join().unwrap_or_default()
}

/// Waits for `child` up to `timeout`; kills it and returns `None` past that.
fn wait_deadline(child: &mut Child, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() > deadline {
            child.kill()?;
            child.wait()?;
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offline() -> Kubectl {
        let dir = std::env::temp_dir();
        Kubectl::new(
            dir.join("skiff-testkit-no-such-kubeconfig"),
            dir.join("skiff-testkit-kubectl-cache"),
        )
    }

    #[test]
    fn runs_kubectl_and_captures_stdout() {
        let out = offline().ok(&["version", "--client"]);
        assert!(out.contains("Client Version: v1."), "{out}");
    }

    #[test]
    fn writes_stdin_and_reads_the_result() {
        let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n";
        let args = [
            "label",
            "--local",
            "-f",
            "-",
            "tier=web",
            "-o",
            "jsonpath={.metadata.labels.tier}",
        ];
        assert_eq!(offline().ok_stdin(&args, Some(manifest)), "web");
    }

    #[test]
    fn failures_keep_stderr_and_exit_code() {
        let out = offline().fails(&["get", "--raw", "/readyz", "--request-timeout=2s"]);
        assert_ne!(out.code, Some(0));
        assert!(!out.stderr.is_empty());
    }

    #[test]
    fn a_hung_kubectl_is_killed_at_the_timeout() {
        // `apply -f -` with a stdin that stays open waits for input forever.
        let k = offline().with_timeout(Duration::from_millis(300));
        let started = Instant::now();
        let child = k
            .command(&["apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn();
        let mut child = child.unwrap();
        let status = wait_deadline(&mut child, Duration::from_millis(300)).unwrap();
        assert!(status.is_none(), "kubectl reading an open stdin should not exit");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
