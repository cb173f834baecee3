//! A throw-away etcd server (Debian's `etcd-server`, `/usr/bin/etcd`) on free
//! loopback ports, with its own temporary data dir.
//!
//! Owns: starting etcd, waiting until it answers, and killing it and removing
//! its data on drop (also when the test fails and unwinds).
//! Must not: talk to anything but 127.0.0.1.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long etcd may take to answer its health check.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts at finding free ports (a port probed free can be taken before etcd binds it).
const START_ATTEMPTS: usize = 3;

/// Runs etcd (`$@`) in the background and a watcher of stdin beside it: at
/// end of input the watcher SIGKILLs etcd. The script exits with etcd's status.
const GUARD_SCRIPT: &str = r#"exec 3<&0
"$@" </dev/null &
etcd=$!
(read -r _ <&3; kill -9 "$etcd" 2>/dev/null) &
watcher=$!
wait "$etcd"
status=$?
kill "$watcher" 2>/dev/null
exit "$status""#;

/// How long drop waits for the guard to reap etcd before killing it outright.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an etcd fixture could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot prepare the etcd fixture: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot run {binary}: {source}")]
    Spawn { binary: String, source: std::io::Error },
    #[error("etcd exited before it was ready ({status}); its log ends with:\n{log}")]
    Exited {
        status: std::process::ExitStatus,
        log: String,
    },
    #[error("etcd did not become healthy within {0:?}; its log ends with:\n{1}")]
    Timeout(Duration, String),
}

/// A running single-member etcd cluster, killed when dropped.
pub struct EtcdFixture {
    child: Child,
    client_port: u16,
    // Declared last so it is removed after the process is gone.
    dir: tempfile::TempDir,
}

impl EtcdFixture {
    /// Starts etcd (`$SKIFF_ETCD_BIN` or `/usr/bin/etcd`) and waits until it is healthy.
    pub fn start() -> Result<EtcdFixture, Error> {
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            match Self::try_start() {
                Ok(fixture) => return Ok(fixture),
                // Most likely a port race; try again with new ports.
                Err(err @ Error::Exited { .. }) => last = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last.unwrap_or(Error::Timeout(START_TIMEOUT, String::new())))
    }

    fn try_start() -> Result<EtcdFixture, Error> {
        let binary = std::env::var("SKIFF_ETCD_BIN").unwrap_or_else(|_| "/usr/bin/etcd".into());
        let dir = tempfile::Builder::new().prefix("skiff-etcd-").tempdir()?;
        let client_port = free_port()?;
        let peer_port = free_port()?;
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let log = std::fs::File::create(dir.path().join("etcd.log"))?;
        // etcd runs under a small shell guard that holds a pipe from this
        // process: when the pipe closes (drop, or this process dying even by
        // SIGKILL) the guard kills etcd, so no etcd outlives its test.
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(GUARD_SCRIPT)
            .arg("etcd-guard")
            .arg(&binary)
            .arg("--name=skiff-test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=skiff-test={peer_url}"))
            .arg("--initial-cluster-state=new")
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|source| Error::Spawn {
                binary: binary.clone(),
                source,
            })?;
        let mut fixture = EtcdFixture {
            child,
            client_port,
            dir,
        };
        fixture.wait_healthy()?;
        Ok(fixture)
    }

    /// The client URL, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The file etcd logs to (for diagnosing a failed test).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn wait_healthy(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Err(Error::Exited {
                    status,
                    log: self.log_tail(),
                });
            }
            if health_ok(self.client_port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(Error::Timeout(START_TIMEOUT, self.log_tail()))
    }
}

impl Drop for EtcdFixture {
    fn drop(&mut self) {
        // Closing the pipe makes the guard SIGKILL etcd (nothing in its data
        // dir is worth a clean shutdown) and exit.
        drop(self.child.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free on 127.0.0.1 a moment ago.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// True when etcd's `/health` on the client port reports healthy.
fn health_ok(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut conn) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if conn.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = conn.read_to_string(&mut response);
    response.contains("\"health\":\"true\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_starts_answers_and_is_gone_after_drop() {
        let fixture = EtcdFixture::start().unwrap();
        let port = fixture.client_port;
        assert!(fixture.endpoint().starts_with("http://127.0.0.1:"));
        assert!(health_ok(port));
        let data = fixture.dir.path().to_path_buf();
        drop(fixture);
        assert!(!health_ok(port));
        assert!(!data.exists());
    }

    const CHILD_ENV: &str = "SKIFF_TESTKIT_ETCD_CHILD";

    /// The child half of `etcd_dies_with_a_killed_test_process`.
    #[test]
    fn etcd_fixture_child() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return;
        }
        let fixture = EtcdFixture::start().unwrap();
        println!("PORT {}", fixture.client_port);
        std::thread::sleep(Duration::from_secs(120));
    }

    #[test]
    fn etcd_dies_with_a_killed_test_process() {
        use std::io::BufRead;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "etcd::tests::etcd_fixture_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let port: u16 = stdout
            .lines()
            .map(|line| line.unwrap())
            // libtest may print its own "test ... " in front on the same line.
            .find_map(|line| line.split_once("PORT ").map(|(_, p)| p.trim().parse().unwrap()))
            .expect("the child reports its etcd port");
        assert!(health_ok(port));
        child.kill().unwrap(); // SIGKILL: no destructor runs in the child
        child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while health_ok(port) {
            assert!(Instant::now() < deadline, "etcd outlived its killed test process");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn two_fixtures_run_side_by_side() {
        let a = EtcdFixture::start().unwrap();
        let b = EtcdFixture::start().unwrap();
        assert_ne!(a.endpoint(), b.endpoint());
    }
}
