//! Interim etcd fixture for the e2e tests, used until
//! `skiff_testkit::etcd::EtcdFixture` (owned by the store engineer) lands;
//! then this file goes away. Debian's `/usr/bin/etcd` on free loopback ports
//! with a temp data dir, killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running etcd.
pub struct EtcdFixture {
    child: Child,
    _dir: tempfile::TempDir,
    port: u16,
}

impl EtcdFixture {
    /// Starts etcd and waits until its client port accepts connections.
    pub fn start() -> Result<EtcdFixture, std::io::Error> {
        let dir = tempfile::tempdir()?;
        let port = skiff_testkit::server::free_port()?;
        let peer = skiff_testkit::server::free_port()?;
        let mut child = Command::new("/usr/bin/etcd")
            .arg("--data-dir")
            .arg(dir.path().join("etcd"))
            .arg(format!("--listen-client-urls=http://127.0.0.1:{port}"))
            .arg(format!("--advertise-client-urls=http://127.0.0.1:{port}"))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
            .arg(format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"))
            .arg(format!("--initial-cluster=default=http://127.0.0.1:{peer}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                // The port opens just before the member is elected leader.
                std::thread::sleep(Duration::from_millis(300));
                return Ok(EtcdFixture { child, _dir: dir, port });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(std::io::Error::other("etcd did not open its client port in 10 s"))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for EtcdFixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
