//! Issue 5 item 4, joining machines: `skiff server` writes a join token,
//! `skiff agent --token` bootstraps its own client certificate through a
//! CertificateSigningRequest that the server auto-approves and signs
//! (`kubectl get csr` shows it Approved,Issued), wrong CA hashes and bad or
//! expired tokens are refused with clear errors, and a bootstrap token can
//! request certificates but not read Secrets.
//!
//! The agents here are pointed at a container runtime that does not exist:
//! joining happens before the runtime is used, so the test needs no
//! containerd and leaves nothing behind but files in the server's data dir.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use skiff_testkit::kubectl::Kubectl;
use skiff_testkit::server::{ServerOptions, SkiffServer, skiff_binary};

const T: Duration = Duration::from_secs(30);

fn wait_for<V>(what: &str, mut f: impl FnMut() -> Option<V>) -> V {
    let deadline = Instant::now() + T;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `skiff agent` joining `server` as `node` with `token`; its runtime
/// socket does not exist, so it stops right after joining.
fn agent(server: &SkiffServer, token: &str, node: &str) -> (Output, PathBuf) {
    let dir = server.data_dir().join(format!("agent-{node}"));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(skiff_binary().unwrap())
        .args([
            "agent",
            "--server",
            &format!("https://127.0.0.1:{}", server.port()),
        ])
        .args(["--token", token, "--node-name", node, "--node-ip", "127.0.0.1"])
        .arg("--data-dir")
        .arg(&dir)
        .arg("--container-runtime-endpoint")
        .arg(dir.join("no-runtime.sock"))
        .args(["--disable-kube-proxy", "--disable-pod-routes"])
        .output()
        .unwrap();
    (out, dir)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A kubectl authenticating with a bearer `token` only.
fn token_kubectl(server: &SkiffServer, token: &str) -> Kubectl {
    let ca = server.data_dir().join("tls").join("ca.crt");
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{}\n    \
         certificate-authority: {}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n\
         - name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n",
        server.port(),
        ca.display()
    );
    let path = server.data_dir().join("bootstrap.kubeconfig");
    std::fs::write(&path, yaml).unwrap();
    Kubectl::new(path, server.data_dir().join("bootstrap-kubectl-cache"))
}

#[test]
fn a_join_token_gets_a_node_client_certificate_through_an_approved_csr() {
    let server = SkiffServer::start(ServerOptions::default()).unwrap();
    let k = server.kubectl();
    let token_file = server.data_dir().join("join-token");
    let join = wait_for("DATA_DIR/join-token", || {
        std::fs::read_to_string(&token_file)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    });
    assert_eq!(mode(&token_file), 0o600);
    let (hash_part, bootstrap) = join.split_once("::").unwrap();
    assert!(hash_part.starts_with("K10") && hash_part.len() == 67, "{join}");
    let id = bootstrap.split('.').next().unwrap();
    assert_eq!(id.len(), 6);
    let secret = k.ok(&[
        "get",
        "secret",
        &format!("bootstrap-token-{id}"),
        "-n",
        "kube-system",
        "-o",
        "name",
    ]);
    assert_eq!(secret.trim(), format!("secret/bootstrap-token-{id}"));
    let cluster_info = k.ok(&[
        "get",
        "configmap",
        "cluster-info",
        "-n",
        "kube-public",
        "-o",
        "jsonpath={.data.kubeconfig}",
    ]);
    assert!(
        cluster_info.contains("certificate-authority-data"),
        "{cluster_info}"
    );

    // A token whose CA hash is not the server's CA: refused before anything is sent.
    let (out, _) = agent(
        &server,
        &format!("K10{}::{bootstrap}", "0".repeat(64)),
        "wrong-ca",
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("does not match the join token's"),
        "{}",
        stderr(&out)
    );

    // A token the server does not know, and one that expired.
    let (out, _) = agent(
        &server,
        &format!("{hash_part}::{id}.0000000000000000"),
        "bad-token",
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("refused the join token"),
        "{}",
        stderr(&out)
    );
    let created = Command::new(skiff_binary().unwrap())
        .args(["token", "create", "--ttl", "1s", "--description", "short"])
        .arg("--data-dir")
        .arg(server.data_dir())
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", stderr(&created));
    let short = String::from_utf8_lossy(&created.stdout).trim().to_string();
    assert!(short.starts_with(hash_part), "{short} vs {hash_part}");
    std::thread::sleep(Duration::from_millis(2500));
    let (out, _) = agent(&server, &short, "expired");
    assert!(
        stderr(&out).contains("refused the join token"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        k.ok(&["get", "csr", "-o", "name"]).trim(),
        "",
        "nothing was requested yet"
    );

    // The real join: a client certificate through a CSR, then the missing runtime stops it.
    let (out, dir) = agent(&server, &join, "join-n1");
    let err = stderr(&out);
    assert!(err.contains("no container runtime answers"), "{err}");
    let pki = dir.join("agent").join("pki");
    for f in ["ca.crt", "client.crt", "client.key"] {
        assert_eq!(mode(&pki.join(f)), 0o600, "{f}");
    }
    let table = k.ok(&["get", "csr"]);
    let header = table.lines().next().unwrap();
    for col in [
        "NAME",
        "AGE",
        "SIGNERNAME",
        "REQUESTOR",
        "REQUESTEDDURATION",
        "CONDITION",
    ] {
        assert!(header.contains(col), "{table}");
    }
    let row = table.lines().nth(1).unwrap();
    assert!(
        row.contains("kubernetes.io/kube-apiserver-client-kubelet"),
        "{table}"
    );
    assert!(row.contains(&format!("system:bootstrap:{id}")), "{table}");
    assert!(row.trim_end().ends_with("Approved,Issued"), "{table}");
    assert_eq!(table.lines().count(), 2, "{table}");

    // A restart reuses the certificate: no second request.
    let (out, _) = agent(&server, &join, "join-n1");
    assert!(
        stderr(&out).contains("reusing the node's client certificate"),
        "{}",
        stderr(&out)
    );
    assert_eq!(k.ok(&["get", "csr", "-o", "name"]).lines().count(), 1);

    // The bootstrap token may request certificates and nothing else.
    let boot = token_kubectl(&server, bootstrap);
    assert!(
        boot.ok(&["get", "csr", "-o", "name"])
            .contains("certificatesigningrequest")
    );
    let denied = boot.fails(&["get", "secrets", "-n", "kube-system"]);
    assert!(
        denied.stderr.contains(&format!(
            "User \"system:bootstrap:{id}\" cannot list resource \"secrets\" in API group \"\" in the namespace \"kube-system\""
        )),
        "{}",
        denied.stderr
    );
    let denied = boot.fails(&["get", "nodes"]);
    assert!(
        denied.stderr.contains("Forbidden") || denied.stderr.contains("forbidden"),
        "{}",
        denied.stderr
    );
}
