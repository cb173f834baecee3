//! The API server's proxy to the node API, driven by the real kubectl
//! against `skiff server` with its embedded agent and a containerd of the
//! test's own: `kubectl logs` (--tail, --previous, -f to the container's
//! exit, upstream's BadRequest messages), `kubectl cp` both ways (exec +
//! tar), `kubectl attach` and `kubectl port-forward`, over WebSocket and
//! over kubectl's SPDY fallback. Skips where containers
//! cannot run.

#![allow(clippy::unwrap_used, clippy::panic)] // tests may unwrap

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::Value;
use skiff_testkit::kubectl::Kubectl;
use skiff_testkit::node::skip_reason;
use skiff_testkit::server::{ServerOptions, SkiffServer, free_port};

const T: Duration = Duration::from_secs(90);
const NS: &str = "nodeapi";

fn wait_for<R>(what: &str, mut f: impl FnMut() -> Option<R>) -> R {
    let start = Instant::now();
    loop {
        if let Some(r) = f() {
            return r;
        }
        assert!(start.elapsed() < T, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn pod_json(k: &Kubectl, name: &str) -> Option<Value> {
    let out = k.run(&["get", "pod", name, "-n", NS, "-o", "json"]).ok()?;
    out.success().then(|| serde_json::from_str(&out.stdout).ok())?
}

fn wait_pod(k: &Kubectl, name: &str, what: &str, want: impl Fn(&Value) -> bool) -> Value {
    wait_for(&format!("pod {name} {what}"), || {
        pod_json(k, name).filter(|p| want(p))
    })
}

fn pod(name: &str, restart: &str, script: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: {restart}
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: skiff.local/busybox:1
    command: ["sh", "-c", {script:?}]
"#
    )
}

#[test]
fn kubectl_logs_cp_attach_and_port_forward_through_the_api_server() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let server = SkiffServer::start(ServerOptions::with_agent()).unwrap();
    let k = server.kubectl();
    wait_for("the node to be Ready", || {
        let out = k.run(&["get", "nodes", "--no-headers"]).ok()?;
        out.stdout
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("Ready"))
            .then_some(())
    });
    k.ok(&["create", "namespace", NS]);
    wait_for("the default service account", || {
        k.run(&["get", "sa", "default", "-n", NS])
            .ok()?
            .success()
            .then_some(())
    });
    let apply = |yaml: String| k.ok_stdin(&["apply", "-n", NS, "-f", "-"], Some(&yaml));
    apply(pod(
        "web",
        "Always",
        "mkdir -p /www && echo pf-ok > /www/index.html && httpd -p 8080 -h /www && \
         for i in 1 2 3; do echo line$i; done; i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.5; done",
    ));
    apply(pod("crash", "Always", "echo started; sleep 2; exit 1"));
    apply(pod(
        "counter",
        "Never",
        "for i in 1 2 3; do echo count$i; sleep 1; done",
    ));
    let mut missing = pod("missing", "Never", "true");
    missing = missing.replace("skiff.local/busybox:1", "skiff.local/not-there:1");
    apply(missing);

    wait_pod(&k, "web", "Running", |p| p["status"]["phase"] == "Running");
    wait_for("web's first lines", || {
        let out = k.run(&["logs", "web", "-n", NS]).ok()?;
        out.stdout.contains("line3").then_some(())
    });
    let all = k.ok(&["logs", "web", "-n", NS]);
    assert!(all.starts_with("line1\nline2\nline3\n"), "{all}");
    let tail = k.ok(&["logs", "web", "-n", NS, "--tail=1"]);
    assert_eq!(tail.lines().count(), 1, "{tail}");
    assert!(tail.starts_with("tick"), "{tail}");
    let stamped = k.ok(&["logs", "web", "-n", NS, "--timestamps", "--tail=1"]);
    assert!(
        stamped
            .split(' ')
            .next()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .is_ok(),
        "{stamped}"
    );
    let bad = k.fails(&["logs", "web", "-n", NS, "-c", "nope"]);
    assert!(
        bad.stderr.contains("container nope is not valid for pod web"),
        "{}",
        bad.stderr
    );

    // -f ends with the container; every line arrives.
    let followed = k.ok(&["logs", "-f", "counter", "-n", NS]);
    assert_eq!(followed, "count1\ncount2\ncount3\n");

    // --previous after a restart.
    wait_pod(&k, "crash", "restarted", |p| {
        p["status"]["containerStatuses"][0]["restartCount"].as_u64() >= Some(1)
    });
    let previous = k.ok(&["logs", "crash", "-n", NS, "--previous"]);
    assert_eq!(previous, "started\n");

    // A container that never started.
    wait_pod(&k, "missing", "waiting", |p| {
        p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"].is_string()
    });
    let waiting = k.fails(&["logs", "missing", "-n", NS]);
    assert!(
        waiting
            .stderr
            .contains("container \"main\" in pod \"missing\" is waiting to start"),
        "{}",
        waiting.stderr
    );

    // cp in and out (exec + tar, stdin closed at the end of the archive).
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("in.txt");
    std::fs::write(&local, "copied through exec\n".repeat(2000)).unwrap();
    k.ok(&["cp", local.to_str().unwrap(), &format!("{NS}/web:/tmp/in.txt")]);
    let size = k.ok(&["exec", "web", "-n", NS, "--", "wc", "-c", "/tmp/in.txt"]);
    assert!(size.trim().starts_with("40000"), "{size}");
    let back = dir.path().join("back.txt");
    k.ok(&["cp", &format!("{NS}/web:/tmp/in.txt"), back.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(&back).unwrap(),
        std::fs::read_to_string(&local).unwrap()
    );

    // kubectl's SPDY fallback, passed through to containerd as it is.
    let spdy = std::process::Command::new("kubectl")
        .env("KUBECONFIG", server.kubeconfig())
        .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
        .args([
            "exec",
            "web",
            "-n",
            NS,
            "--",
            "sh",
            "-c",
            "echo over-spdy; exit 4",
        ])
        .output()
        .unwrap();
    assert_eq!(
        spdy.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&spdy.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&spdy.stdout), "over-spdy\n");

    // attach streams what the main process prints.
    let mut attached = k.stream(&["attach", "web", "-n", NS]).unwrap();
    let tick = attached.wait_for(Duration::from_secs(20), |l| l.starts_with("tick"));
    let stderr = attached.stop();
    assert!(tick.is_some(), "attach showed no output; stderr: {stderr}");

    // port-forward to the pod's httpd.
    let port = free_port().unwrap();
    let mut forward = k
        .stream(&["port-forward", "-n", NS, "pod/web", &format!("{port}:8080")])
        .unwrap();
    let ready = forward.wait_for(Duration::from_secs(20), |l| l.contains("Forwarding from"));
    assert!(ready.is_some(), "port-forward did not start");
    let mut body = String::new();
    for _ in 0..2 {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        conn.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
        body.clear();
        conn.read_to_string(&mut body).unwrap();
        assert!(body.contains("pf-ok"), "{body}");
    }
    forward.stop();

    // port-forward over plain SPDY too.
    let port = free_port().unwrap();
    let mut child = std::process::Command::new("kubectl")
        .env("KUBECONFIG", server.kubeconfig())
        .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")
        .args(["port-forward", "-n", NS, "pod/web", &format!("{port}:8080")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let fetched = wait_for("port-forward over SPDY", || {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        conn.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
        let mut body = String::new();
        conn.read_to_string(&mut body).ok()?;
        body.contains("pf-ok").then_some(body)
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(fetched.contains("200 OK"), "{fetched}");
}
