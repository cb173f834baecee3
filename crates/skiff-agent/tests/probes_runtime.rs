//! Probes and lifecycle hooks against real containers (own containerd):
//! readiness by httpGet on a named port follows the app, liveness by exec
//! fails after failureThreshold and asks for a restart, a startup probe
//! gates readiness, tcpSocket and exec time-outs, and hook handlers.

#![allow(clippy::unwrap_used)]

#[path = "probes_fixture/mod.rs"]
mod fixture;

use std::time::Duration;

use fixture::Node;
use k8s_openapi::api::core::v1::{LifecycleHandler, Pod};
use skiff_agent::probes::{HandlerError, ProbeManager, ProbeState, run_handler};

/// Serves /www on 8080; /www/healthz exists at start.
const APP: &str =
    "mkdir -p /www && echo ok > /www/healthz && touch /tmp/alive && exec httpd -f -p 8080 -h /www";

fn pod(uid: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": { "name": "probed", "namespace": "default", "uid": uid },
        "spec": { "containers": [
            {
                "name": "app",
                "image": fixture::BUSYBOX,
                "ports": [{ "name": "http", "containerPort": 8080 }],
                "readinessProbe": {
                    "httpGet": { "path": "/healthz", "port": "http" },
                    "periodSeconds": 1, "failureThreshold": 1
                },
                "livenessProbe": {
                    "exec": { "command": ["cat", "/tmp/alive"] },
                    "periodSeconds": 1, "failureThreshold": 2
                }
            },
            {
                "name": "gated",
                "image": fixture::BUSYBOX,
                "startupProbe": {
                    "exec": { "command": ["test", "-e", "/tmp/up"] },
                    "periodSeconds": 1, "failureThreshold": 100
                },
                "readinessProbe": { "tcpSocket": { "port": 8080 }, "periodSeconds": 1 }
            },
            { "name": "plain", "image": fixture::BUSYBOX }
        ]}
    }))
    .unwrap()
}

/// Waits (on change notifications, with a poll as a fallback) until `want` holds.
async fn wait_for(
    probes: &ProbeManager,
    uid: &str,
    name: &str,
    what: &str,
    want: impl Fn(&ProbeState) -> bool,
) -> ProbeState {
    let mut changes = probes.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let state = probes.state(uid, name);
        if want(&state) {
            return state;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}: never {what}; last {state:?}"
        );
        let _ = tokio::time::timeout(Duration::from_millis(500), changes.recv()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_follow_the_container_and_liveness_failure_asks_for_a_restart() {
    let Some(node) = Node::start("10.199.42.0/24").await else {
        return;
    };
    let sandbox_cfg = node.sandbox_config("probed", &[]);
    let (sandbox, ip) = node.run_sandbox(&sandbox_cfg).await;
    let app = node
        .run_container(&sandbox, &sandbox_cfg, "app", &["sh", "-c", APP])
        .await;
    let gated = node
        .run_container(&sandbox, &sandbox_cfg, "gated", &["sleep", "1000"])
        .await;
    let plain = node
        .run_container(&sandbox, &sandbox_cfg, "plain", &["sleep", "1000"])
        .await;

    let uid = "uid-probed";
    let pod = pod(uid);
    let probes = ProbeManager::new(node.cri.clone());
    assert_eq!(
        probes.state(uid, "app"),
        ProbeState::default(),
        "unknown containers are not ready"
    );
    probes.add(&pod, "app", &app, Some(&ip));
    probes.add(&pod, "gated", &gated, Some(&ip));
    probes.add(&pod, "plain", &plain, Some(&ip));

    // Without probes: started and ready at once.
    let plain_state = probes.state(uid, "plain");
    assert!(plain_state.started && plain_state.ready && !plain_state.liveness_failed);

    // Readiness over httpGet on the named port.
    wait_for(&probes, uid, "app", "ready", |s| s.ready && s.started).await;

    // The startup probe holds the tcp readiness probe back until it passes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = probes.state(uid, "gated");
    assert!(!held.started && !held.ready, "{held:?}");
    node.exec(&gated, &["touch", "/tmp/up"]).await;
    wait_for(&probes, uid, "gated", "started and ready", |s| {
        s.started && s.ready
    })
    .await;

    // The app stops answering /healthz: not ready, yet not restarted.
    node.exec(&app, &["rm", "/www/healthz"]).await;
    let unready = wait_for(&probes, uid, "app", "unready", |s| !s.ready).await;
    assert!(!unready.liveness_failed);

    // Liveness fails twice in a row: the container is to be restarted.
    node.exec(&app, &["rm", "/tmp/alive"]).await;
    let dead = wait_for(&probes, uid, "app", "liveness-failed", |s| s.liveness_failed).await;
    assert_eq!(
        dead.restart_message.as_deref(),
        Some("Container app failed liveness probe, will be restarted")
    );

    // A restarted container (new id) starts from fresh results.
    node.cri
        .runtime
        .clone()
        .stop_container(k8s_cri::v1::StopContainerRequest {
            container_id: app.clone(),
            timeout: 0,
        })
        .await
        .unwrap();
    let again = node
        .run_container(&sandbox, &sandbox_cfg, "app-2", &["sh", "-c", APP])
        .await;
    probes.add(&pod, "app", &again, Some(&ip));
    assert!(!probes.state(uid, "app").liveness_failed);
    wait_for(&probes, uid, "app", "ready again", |s| s.ready).await;

    probes.remove(uid, "app");
    assert_eq!(probes.state(uid, "app"), ProbeState::default());

    // Lifecycle hooks.
    let exec = |cmd: &[&str]| -> LifecycleHandler {
        serde_json::from_value(serde_json::json!({ "exec": { "command": cmd } })).unwrap()
    };
    let t = Duration::from_secs(5);
    run_handler(&node.cri, &plain, Some(&ip), &exec(&["touch", "/tmp/hooked"]), t)
        .await
        .unwrap();
    assert_eq!(
        node.exec(&plain, &["ls", "/tmp/hooked"]).await.0,
        0,
        "the exec hook ran"
    );
    let err = run_handler(
        &node.cri,
        &plain,
        Some(&ip),
        &exec(&["sh", "-c", "echo nope; exit 3"]),
        t,
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        HandlerError::Exec {
            command: "sh -c echo nope; exit 3".into(),
            output: "nope\n".into()
        }
    );
    let get: LifecycleHandler =
        serde_json::from_value(serde_json::json!({ "httpGet": { "path": "/", "port": 8080 } })).unwrap();
    run_handler(&node.cri, &plain, Some(&ip), &get, t).await.unwrap();
    let closed: LifecycleHandler =
        serde_json::from_value(serde_json::json!({ "httpGet": { "path": "/", "port": 9 } })).unwrap();
    let err = run_handler(&node.cri, &plain, Some(&ip), &closed, t)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("connection refused"), "{err}");
    let sleep: LifecycleHandler =
        serde_json::from_value(serde_json::json!({ "sleep": { "seconds": 1 } })).unwrap();
    let started = std::time::Instant::now();
    run_handler(&node.cri, &plain, Some(&ip), &sleep, t)
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_and_tcp_actions_report_like_kubelet() {
    use k8s_openapi::api::core::v1::{ExecAction, TCPSocketAction};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use skiff_agent::probes::action::{self, Outcome, Target};

    let Some(node) = Node::start("10.199.43.0/24").await else {
        return;
    };
    let cfg = node.sandbox_config("actions", &[]);
    let (sandbox, ip) = node.run_sandbox(&cfg).await;
    let c = node.run_container(&sandbox, &cfg, "c", &["sleep", "1000"]).await;
    let target = Target {
        cri: &node.cri,
        container_id: &c,
        pod_ip: Some(&ip),
        ports: &[],
    };
    let exec = |cmd: &[&str]| ExecAction {
        command: Some(cmd.iter().map(|s| s.to_string()).collect()),
    };
    let t = Duration::from_secs(1);
    assert_eq!(
        action::exec(target, &exec(&["echo", "hi"]), t).await,
        Outcome::Success("hi\n".into())
    );
    assert_eq!(
        action::exec(target, &exec(&["sh", "-c", "echo bad >&2; exit 1"]), t).await,
        Outcome::Failure("bad\n".into())
    );
    let started = std::time::Instant::now();
    assert_eq!(
        action::exec(target, &exec(&["sleep", "10"]), t).await,
        Outcome::Failure("command \"sleep 10\" timed out".into())
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the exec timeout was not kept"
    );

    let tcp = |port| TCPSocketAction {
        host: None,
        port: IntOrString::Int(port),
    };
    assert_eq!(
        action::tcp(target, &tcp(8080), t).await,
        Outcome::Failure(format!("dial tcp {ip}:8080: connect: connection refused"))
    );
    node.exec(&c, &["sh", "-c", "nc -l -p 8080 -e cat >/dev/null 2>&1 &"])
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !action::tcp(target, &tcp(8080), t).await.passed() {
        assert!(std::time::Instant::now() < deadline, "tcp probe never passed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
