//! Pod volumes and container env against an in-process API server (kube-rs
//! client over the router, SQLite store in a tempdir): configMap/secret/
//! downwardAPI/projected files and their atomic refresh, emptyDir (disk and
//! memory), a local-path PVC provisioned, bound, surviving pod clean-up and
//! reclaimed after the claim is deleted, and env from ConfigMaps/Secrets.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use skiff_agent::AgentConfig;
use skiff_agent::spec::{self, ContainerContext};
use skiff_agent::volumes::{self, VolumeContext, local_path, tmpfs};

struct Fixture {
    client: kube::Client,
    cfg: AgentConfig,
    _server: Arc<skiff_apiserver::server::ApiServer>,
    dir: tempfile::TempDir,
}

impl Drop for Fixture {
    /// A failed test must not leave tmpfs mounts behind in /tmp.
    fn drop(&mut self) {
        for mount in tmpfs::mounts_under(self.dir.path()) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&mount)
                .status();
        }
    }
}

async fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(skiff_store::sqlite::SqliteStore::open(dir.path().join("state.db")).unwrap());
    let server = skiff_apiserver::server::ApiServer::new(store, Default::default()).unwrap();
    assert!(
        server.wait_ready(Duration::from_secs(10)).await,
        "server not ready"
    );
    let client = kube::Client::new(server.router(), "default");
    let cfg = AgentConfig::new("node-1", dir.path().join("agent"));
    Fixture {
        client,
        cfg,
        _server: server,
        dir,
    }
}

async fn create<K>(client: &kube::Client, obj: serde_json::Value) -> K
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    <K as kube::Resource>::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &serde_json::from_value(obj).unwrap())
        .await
        .unwrap()
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn volumes_are_prepared_refreshed_and_cleaned_up() {
    let f = start().await;
    create::<ConfigMap>(
        &f.client,
        serde_json::json!({
            "metadata": {"name": "app-config"}, "data": {"MODE": "fast", "app.conf": "level=1"}
        }),
    )
    .await;
    create::<Secret>(
        &f.client,
        serde_json::json!({
            "metadata": {"name": "db"}, "data": {"password": "aHVudGVyMg=="}
        }),
    )
    .await;
    let pod: Pod = create(&f.client, serde_json::json!({
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "nodeName": "node-1",
            "containers": [{"name": "app", "image": "skiff.local/busybox:1",
                "resources": {"limits": {"memory": "64Mi"}},
                "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}]}],
            "volumes": [
                {"name": "cfg", "configMap": {"name": "app-config"}},
                {"name": "only", "configMap": {"name": "app-config", "items": [{"key": "MODE", "path": "m/mode", "mode": 0o400}]}},
                {"name": "absent", "configMap": {"name": "nope", "optional": true}},
                {"name": "sec", "secret": {"secretName": "db", "defaultMode": 0o440}},
                {"name": "info", "downwardAPI": {"items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "mem", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory", "divisor": "1Mi"}}]}},
                {"name": "all", "projected": {"sources": [
                    {"configMap": {"name": "app-config", "items": [{"key": "MODE", "path": "mode"}]}},
                    {"secret": {"name": "db"}},
                    {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}},
                {"name": "scratch", "emptyDir": {}},
                {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}},
                {"name": "host", "hostPath": {"path": f.dir.path().join("host-data").to_string_lossy(), "type": "DirectoryOrCreate"}}
            ]
        }
    }))
    .await;
    let uid = pod.metadata.uid.clone().unwrap();
    let ctx = VolumeContext {
        client: &f.client,
        cfg: &f.cfg,
        pod: &pod,
    };
    let vols = volumes::prepare(&ctx).await.unwrap();

    let path = |name: &str| vols.get(name).unwrap().host_path.clone();
    assert_eq!(read(&path("cfg").join("MODE")), "fast");
    assert_eq!(read(&path("cfg").join("app.conf")), "level=1");
    assert!(vols.get("cfg").unwrap().read_only);
    assert_eq!(read(&path("only").join("m/mode")), "fast");
    assert!(!path("only").join("MODE").exists());
    assert!(
        std::fs::read_dir(path("absent"))
            .unwrap()
            .all(|e| { e.unwrap().file_name().to_string_lossy().starts_with("..") })
    );
    assert_eq!(read(&path("sec").join("password")), "hunter2");
    assert!(tmpfs::is_mount_point(&path("sec")), "secrets live on tmpfs");
    assert_eq!(read(&path("info").join("labels")), "app=\"web\"");
    assert_eq!(read(&path("info").join("mem")), "64");
    assert_eq!(read(&path("all").join("mode")), "fast");
    assert_eq!(read(&path("all").join("password")), "hunter2");
    assert_eq!(read(&path("all").join("name")), "web");
    assert!(path("scratch").is_dir() && !vols.get("scratch").unwrap().read_only);
    assert!(tmpfs::is_mount_point(&path("mem")));
    assert!(f.dir.path().join("host-data").is_dir());
    assert!(path("cfg").starts_with(f.cfg.pod_dir(&uid).join("volumes/kubernetes.io~configmap")));

    // An update of the ConfigMap reaches the same path on the next sync.
    let cms: Api<ConfigMap> = Api::namespaced(f.client.clone(), "default");
    cms.patch(
        "app-config",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"MODE": "slow"}})),
    )
    .await
    .unwrap();
    let again = volumes::prepare(&ctx).await.unwrap();
    assert_eq!(again, vols, "same volumes, same paths");
    assert_eq!(read(&path("cfg").join("MODE")), "slow");
    assert_eq!(read(&path("all").join("mode")), "slow");

    volumes::cleanup(&f.cfg, &uid).await.unwrap();
    assert!(!f.cfg.pod_dir(&uid).exists());
    assert!(tmpfs::mounts_under(&f.cfg.pod_dir(&uid)).is_empty());
    assert!(
        f.dir.path().join("host-data").is_dir(),
        "hostPath data is not the pod's"
    );
    volumes::cleanup(&f.cfg, &uid).await.unwrap();
}

#[tokio::test]
async fn missing_config_map_is_a_clear_error() {
    let f = start().await;
    let pod: Pod = create(
        &f.client,
        serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "i"}],
                     "volumes": [{"name": "v", "configMap": {"name": "missing"}}]}
        }),
    )
    .await;
    let err = volumes::prepare(&VolumeContext {
        client: &f.client,
        cfg: &f.cfg,
        pod: &pod,
    })
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "configmap \"missing\" not found");
    assert_eq!(err.reason(), "FailedMount");
}

#[tokio::test]
async fn service_account_token_is_requested_or_reported() {
    let f = start().await;
    create::<ConfigMap>(
        &f.client,
        serde_json::json!({"metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": "PEM"}}),
    )
    .await;
    let pod: Pod = create(&f.client, serde_json::json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i"}],
                 "volumes": [{"name": "kube-api-access", "projected": {"sources": [
                     {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                     {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}]}
    }))
    .await;
    let uid = pod.metadata.uid.clone().unwrap();
    let dir = volumes::volume_dir(&f.cfg, &uid, "kubernetes.io~projected", "kube-api-access");
    match volumes::prepare(&VolumeContext {
        client: &f.client,
        cfg: &f.cfg,
        pod: &pod,
    })
    .await
    {
        Ok(_) => assert!(!read(&dir.join("token")).is_empty()),
        Err(e) => {
            assert!(e.to_string().contains("TokenRequest"), "{e}");
            assert_eq!(
                read(&dir.join("ca.crt")),
                "PEM",
                "the other sources are still written"
            );
        }
    }
    volumes::cleanup(&f.cfg, &uid).await.unwrap();
}

#[tokio::test]
async fn local_path_claim_is_provisioned_kept_and_reclaimed() {
    let f = start().await;
    local_path::ensure_storage_class(&f.client).await.unwrap();
    local_path::ensure_storage_class(&f.client).await.unwrap();
    let sc = Api::<StorageClass>::all(f.client.clone())
        .get("local-path")
        .await
        .unwrap();
    assert_eq!(sc.provisioner, "skiff.io/local-path");
    let claim: PersistentVolumeClaim = create(
        &f.client,
        serde_json::json!({
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
        }),
    )
    .await;
    let pod_json = serde_json::json!({
        "metadata": {"name": "db"},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "i"}],
                 "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}
    });
    let pod: Pod = create(&f.client, pod_json.clone()).await;
    let vols = volumes::prepare(&VolumeContext {
        client: &f.client,
        cfg: &f.cfg,
        pod: &pod,
    })
    .await
    .unwrap();
    let data = vols.get("d").unwrap().host_path.clone();
    assert!(data.starts_with(f.cfg.storage_dir()), "{}", data.display());
    std::fs::write(data.join("kept.txt"), "survives").unwrap();

    let claims: Api<PersistentVolumeClaim> = Api::namespaced(f.client.clone(), "default");
    let bound = claims.get("data").await.unwrap();
    let pv_name = bound.spec.as_ref().unwrap().volume_name.clone().unwrap();
    assert_eq!(bound.status.as_ref().unwrap().phase.as_deref(), Some("Bound"));
    assert_eq!(
        bound.metadata.annotations.as_ref().unwrap()["pv.kubernetes.io/bind-completed"],
        "yes"
    );
    let pvs: Api<PersistentVolume> = Api::all(f.client.clone());
    let pv = pvs.get(&pv_name).await.unwrap();
    assert_eq!(pv.status.as_ref().unwrap().phase.as_deref(), Some("Bound"));
    assert_eq!(
        pv.spec.as_ref().unwrap().claim_ref.as_ref().unwrap().uid,
        claim.metadata.uid
    );

    // The pod goes away and comes back: same directory, same data.
    volumes::cleanup(&f.cfg, pod.metadata.uid.as_deref().unwrap())
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(f.client.clone(), "default");
    pods.delete(
        "db",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let pod2: Pod = create(&f.client, pod_json).await;
    let vols2 = volumes::prepare(&VolumeContext {
        client: &f.client,
        cfg: &f.cfg,
        pod: &pod2,
    })
    .await
    .unwrap();
    assert_eq!(vols2.get("d").unwrap().host_path, data);
    assert_eq!(read(&data.join("kept.txt")), "survives");
    assert!(
        local_path::reclaim(&f.client, &f.cfg).await.unwrap().is_empty(),
        "claim still there"
    );

    // Deleting the claim deletes the PV and its directory.
    claims.delete("data", &DeleteParams::default()).await.unwrap();
    for _ in 0..50 {
        if claims.get_opt("data").await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        local_path::reclaim(&f.client, &f.cfg).await.unwrap(),
        vec![pv_name.clone()]
    );
    assert!(pvs.get_opt(&pv_name).await.unwrap().is_none());
    assert!(!data.exists());
}

#[tokio::test]
async fn unbound_claim_of_another_class_waits() {
    let f = start().await;
    create::<PersistentVolumeClaim>(
        &f.client,
        serde_json::json!({
            "metadata": {"name": "other"},
            "spec": {"storageClassName": "fast-ssd", "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}
        }),
    )
    .await;
    let pod: Pod = create(
        &f.client,
        serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "i"}],
                     "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "other"}}]}
        }),
    )
    .await;
    let err = volumes::prepare(&VolumeContext {
        client: &f.client,
        cfg: &f.cfg,
        pod: &pod,
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("is not bound"), "{err}");
}

#[tokio::test]
async fn container_env_reads_config_maps_secrets_and_services() {
    let f = start().await;
    create::<ConfigMap>(
        &f.client,
        serde_json::json!({"metadata": {"name": "cfg"}, "data": {"MODE": "fast"}}),
    )
    .await;
    create::<Secret>(
        &f.client,
        serde_json::json!({"metadata": {"name": "db"}, "data": {"password": "cHc="}}),
    )
    .await;
    let pod: Pod = create(
        &f.client,
        serde_json::json!({
            "metadata": {"name": "web"},
            "spec": {"containers": [{"name": "app", "image": "skiff.local/busybox:1",
                "command": ["sh", "-c", "echo $(MODE)"],
                "envFrom": [{"secretRef": {"name": "db"}, "prefix": "DB_"}],
                "env": [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "MODE"}}},
                        {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]}]}
        }),
    )
    .await;
    let container = pod.spec.as_ref().unwrap().containers[0].clone();
    let vols = volumes::prepare(&VolumeContext {
        client: &f.client,
        cfg: &f.cfg,
        pod: &pod,
    })
    .await
    .unwrap();
    let ctx = ContainerContext {
        client: &f.client,
        cfg: &f.cfg,
        pod: &pod,
        container: &container,
        volumes: &vols,
        restart_count: 0,
        pod_ip: Some("10.42.0.7".into()),
        host_ip: "127.0.0.1".into(),
    };
    let config = spec::container_config(&ctx).await.unwrap();
    let env: std::collections::BTreeMap<_, _> = config
        .envs
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_str()))
        .collect();
    assert_eq!(env["MODE"], "fast");
    assert_eq!(env["DB_password"], "pw");
    assert_eq!(env["MY_IP"], "10.42.0.7");
    assert!(env.contains_key("KUBERNETES_SERVICE_HOST"), "{env:?}");
    assert_eq!(config.command, ["sh", "-c", "echo fast"]);
    let hosts = config
        .mounts
        .iter()
        .find(|m| m.container_path == "/etc/hosts")
        .unwrap();
    assert!(read(std::path::Path::new(&hosts.host_path)).contains("10.42.0.7\tweb\n"));
    assert!(
        config
            .mounts
            .iter()
            .any(|m| m.container_path == "/dev/termination-log")
    );

    // A missing key is the kubelet's CreateContainerConfigError.
    let mut broken = container.clone();
    broken.env = Some(
        serde_json::from_value(serde_json::json!([
            {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "NOPE"}}}
        ]))
        .unwrap(),
    );
    let err = spec::container_config(&ContainerContext {
        container: &broken,
        ..ctx.clone()
    })
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "couldn't find key NOPE in ConfigMap default/cfg");
    assert_eq!(err.reason(), "CreateContainerConfigError");
    volumes::cleanup(&f.cfg, pod.metadata.uid.as_deref().unwrap())
        .await
        .unwrap();
}
