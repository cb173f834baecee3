//! The container config of `spec` run for real: a containerd of the test's
//! own (skiff-testkit's LocalNode), a host-network sandbox from
//! `spec::sandbox_linux`, and one busybox container from
//! `spec::container_config` whose output proves env (ConfigMap, Secret,
//! fieldRef, `$(VAR)` expansion), volume files, the shared emptyDir, the
//! managed /etc/hosts, the user and the termination message file.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_cri::v1::{
    ContainerState, ContainerStatusRequest, CreateContainerRequest, PodSandboxConfig, PodSandboxMetadata,
    RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest, StopPodSandboxRequest,
};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::Api;
use kube::api::PostParams;
use skiff_agent::spec::{self, ContainerContext};
use skiff_agent::volumes::{self, VolumeContext};
use skiff_agent::{AgentConfig, CriClient};
use skiff_testkit::node::{LocalNode, skip_reason};

const SCRIPT: &str = r#"
echo "mode=$MODE pass=$DB_PASSWORD ip=$MY_IP greeting=$GREETING"
echo "file=$(cat /cfg/app.conf)"
echo "uid=$(id -u) gid=$(id -g)"
echo "hosts=$(head -1 /etc/hosts)"
echo shared > /scratch/out && echo "scratch=$(cat /scratch/out)"
if touch /cfg/new 2>/dev/null; then echo cfg=writable; else echo cfg=readonly; fi
echo "the end" > /dev/termination-log
"#;

#[test]
fn container_config_runs_in_containerd() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipping: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let node = LocalNode::start(dir.path()).unwrap();
    // LocalNode's drop blocks on its own runtime: run the test in one that
    // is gone before the node is dropped (also when the test panics).
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(run(&node, dir.path()));
    drop(rt);
    drop(node);
}

async fn run(node: &LocalNode, dir: &std::path::Path) {
    let cri = CriClient::connect(node.socket()).await.unwrap();

    let store = Arc::new(skiff_store::sqlite::SqliteStore::open(dir.join("state.db")).unwrap());
    let server = skiff_apiserver::server::ApiServer::new(store, Default::default()).unwrap();
    assert!(server.wait_ready(Duration::from_secs(10)).await);
    let client = kube::Client::new(server.router(), "default");
    let cfg = AgentConfig::new(node.node_name(), dir.join("agent"));

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm =
        serde_json::json!({"metadata": {"name": "cfg"}, "data": {"MODE": "fast", "app.conf": "level=1"}});
    cms.create(&PostParams::default(), &serde_json::from_value(cm).unwrap())
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let secret = serde_json::json!({"metadata": {"name": "db"}, "data": {"password": "aHVudGVyMg=="}});
    secrets
        .create(&PostParams::default(), &serde_json::from_value(secret).unwrap())
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = serde_json::json!({
        "metadata": {"name": "spec-test"},
        "spec": {
            "hostNetwork": true,
            "securityContext": {"runAsUser": 1000, "runAsGroup": 3000},
            "containers": [{
                "name": "app", "image": "skiff.local/busybox:1",
                "command": ["sh", "-c", SCRIPT],
                "env": [
                    {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "MODE"}}},
                    {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                    {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "GREETING", "value": "hello-$(MODE)"}
                ],
                "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}},
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}, {"name": "scratch", "mountPath": "/scratch"}]
            }],
            "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "scratch", "emptyDir": {}}]
        }
    });
    let pod = pods
        .create(&PostParams::default(), &serde_json::from_value(pod).unwrap())
        .await
        .unwrap();
    let uid = pod.metadata.uid.clone().unwrap();
    let container = pod.spec.as_ref().unwrap().containers[0].clone();

    let vols = volumes::prepare(&VolumeContext {
        client: &client,
        cfg: &cfg,
        pod: &pod,
    })
    .await
    .unwrap();
    let log_dir = cfg.pod_log_dir("default", "spec-test", &uid);
    std::fs::create_dir_all(&log_dir).unwrap();
    let sandbox_config = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "spec-test".into(),
            uid: uid.clone(),
            namespace: "default".into(),
            attempt: 0,
        }),
        // A host-network sandbox shares the node's UTS namespace: no hostname.
        hostname: String::new(),
        log_directory: log_dir.to_string_lossy().into_owned(),
        linux: Some(spec::sandbox_linux(&pod)),
        ..Default::default()
    };
    let mut runtime = cri.runtime.clone();
    let sandbox_id = runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(sandbox_config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .pod_sandbox_id;

    let ctx = ContainerContext {
        client: &client,
        cfg: &cfg,
        pod: &pod,
        container: &container,
        volumes: &vols,
        restart_count: 0,
        pod_ip: Some("127.0.0.1".into()),
        host_ip: "127.0.0.1".into(),
    };
    let config = spec::container_config(&ctx).await.unwrap();
    let container_id = runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: sandbox_id.clone(),
            config: Some(config),
            sandbox_config: Some(sandbox_config),
        })
        .await
        .unwrap()
        .into_inner()
        .container_id;
    runtime
        .start_container(StartContainerRequest {
            container_id: container_id.clone(),
        })
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = runtime
            .container_status(ContainerStatusRequest {
                container_id: container_id.clone(),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap();
        if status.state == ContainerState::ContainerExited as i32 {
            break status;
        }
        assert!(Instant::now() < deadline, "container did not exit");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let log = std::fs::read_to_string(log_dir.join("app/0.log")).unwrap();
    let out: String = log
        .lines()
        .filter_map(|l| l.splitn(4, ' ').nth(3))
        .collect::<Vec<_>>()
        .join("\n");

    runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: sandbox_id.clone(),
        })
        .await
        .unwrap();
    runtime
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: sandbox_id,
        })
        .await
        .unwrap();

    assert_eq!(status.exit_code, 0, "output:\n{out}");
    assert!(
        out.contains("mode=fast pass=hunter2 ip=127.0.0.1 greeting=hello-fast"),
        "{out}"
    );
    assert!(out.contains("file=level=1"), "{out}");
    assert!(out.contains("uid=1000 gid=3000"), "{out}");
    assert!(
        out.contains("hosts=# Kubernetes-managed hosts file (host network)."),
        "{out}"
    );
    assert!(out.contains("scratch=shared"), "{out}");
    assert!(out.contains("cfg=readonly"), "{out}");
    let message = spec::termination_log_path(&cfg, &uid, "app", 0);
    assert_eq!(std::fs::read_to_string(message).unwrap(), "the end\n");

    volumes::cleanup(&cfg, &uid).await.unwrap();
    assert!(!cfg.pod_dir(&uid).exists());
}
