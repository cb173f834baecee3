//! `skiff server` as a process: first start creates the PKI and admin
//! kubeconfig and logs the ready line, the real kubectl works with that
//! kubeconfig as is, a restart reuses the certificates, SIGTERM exits cleanly.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the server and waits for its ready line, which it returns.
fn start(data_dir: &Path, port: u16) -> (Server, String) {
    start_on(data_dir, "127.0.0.1", port)
}

fn start_on(data_dir: &Path, bind: &str, port: u16) -> (Server, String) {
    let port = port.to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args(["server", "--bind-address", bind, "--https-port", &port])
        // Tests run side by side: nothing host-wide (nftables, routes, DNS).
        .args(["--disable-kube-proxy", "--disable-pod-routes", "--disable-dns"])
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut server = Server { child, lines };
    let ready = wait_for(&mut server, "skiff is ready");
    (server, ready)
}

fn wait_for(server: &mut Server, needle: &str) -> String {
    let mut seen = Vec::new();
    loop {
        match server.lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.contains(needle) => return line,
            Ok(line) => seen.push(line),
            Err(_) => panic!("no {needle:?} in the server log:\n{}", seen.join("\n")),
        }
    }
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Option<String> {
    if !Path::new("/usr/bin/kubectl").exists() {
        eprintln!("kubectl not installed; skipping the kubectl check");
        return None;
    }
    let out = Command::new("/usr/bin/kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn server_starts_serves_kubectl_restarts_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let (mut server, ready) = start(&data, port);
    let kubeconfig = data.join("admin.kubeconfig");
    assert!(
        ready.contains(&format!("kubeconfig at {}", kubeconfig.display())),
        "{ready}"
    );
    assert!(ready.contains(" ms)"), "{ready}");

    let config = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(
        config.contains(&format!("server: https://127.0.0.1:{port}")),
        "{config}"
    );
    if let Some(namespaces) = kubectl(&kubeconfig, &["get", "ns", "-o", "name"]) {
        assert!(namespaces.contains("namespace/default"), "{namespaces}");
        assert!(namespaces.contains("namespace/kube-system"), "{namespaces}");
    }
    use std::os::unix::fs::PermissionsExt;
    for private in ["db", "tls", "tls/ca.key", "admin.kubeconfig", "token"] {
        let mode = std::fs::metadata(data.join(private))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{private} is readable by others: {mode:o}");
    }
    let ca = std::fs::read(data.join("tls/ca.crt")).unwrap();
    let admin = std::fs::read(data.join("tls/admin.crt")).unwrap();
    let token = std::fs::read(data.join("token")).unwrap();

    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for(&mut server, "shutting down");
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "exit after SIGTERM: {exit:?}");

    let (_server, _) = start(&data, port);
    assert_eq!(std::fs::read(data.join("tls/ca.crt")).unwrap(), ca);
    assert_eq!(std::fs::read(data.join("tls/admin.crt")).unwrap(), admin);
    assert_eq!(std::fs::read(data.join("token")).unwrap(), token);
    if let Some(out) = kubectl(&kubeconfig, &["get", "--raw", "/readyz"]) {
        assert_eq!(out, "ok");
    }
}

#[test]
fn a_single_bind_address_is_in_the_kubeconfig_and_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_server, _) = start_on(&data, "127.0.0.2", free_port());
    let kubeconfig = data.join("admin.kubeconfig");
    assert!(
        std::fs::read_to_string(&kubeconfig)
            .unwrap()
            .contains("server: https://127.0.0.2:")
    );
    if let Some(out) = kubectl(&kubeconfig, &["get", "--raw", "/api"]) {
        assert!(out.contains("APIVersions"), "{out}");
    }
}
