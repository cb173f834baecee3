//! The agent core against a real containerd (the test's own, from
//! skiff-testkit's `LocalNode`) and an API-only `skiff server`: the Node
//! registers and heartbeats; pods become real containers reporting Running
//! with a pod IP; exit codes give Completed/Error and the phase; crashing
//! containers restart with back-off; deletion ends within the grace period;
//! a restarted agent adopts what runs and removes orphans.
//!
//! The agent runs in-process against the server's admin kubeconfig. Each
//! test skips (with the reason printed) where containers cannot run.

#![allow(clippy::unwrap_used, clippy::panic)] // tests may unwrap

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;
use skiff_agent::AgentConfig;
use skiff_testkit::node::{LocalNode, skip_reason};
use skiff_testkit::server::{ServerOptions, SkiffServer};

/// A server, a node and a directory for the agent, torn down in that order.
struct Env {
    server: SkiffServer,
    node: LocalNode,
    dir: tempfile::TempDir,
}

fn env() -> Option<Env> {
    if let Some(reason) = skip_reason() {
        eprintln!("skipping: {reason}");
        return None;
    }
    let dir = tempfile::Builder::new().prefix("skiff-agent-").tempdir().unwrap();
    let node = LocalNode::start(dir.path()).unwrap();
    let server = SkiffServer::start(ServerOptions::api_only()).unwrap();
    Some(Env { server, node, dir })
}

impl Env {
    /// Runs the test body on a runtime that is gone before the node is torn down.
    fn run<F: std::future::Future<Output = ()>>(self, body: impl FnOnce(Ctx) -> F) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let ctx = Ctx {
            kubeconfig: self.server.kubeconfig(),
            cfg: self.agent_config(),
        };
        rt.block_on(body(ctx));
        drop(rt);
        drop(self.server);
        drop(self.node);
        drop(self.dir);
    }

    fn agent_config(&self) -> AgentConfig {
        let mut cfg = AgentConfig::new(self.node.node_name(), self.dir.path().join("agent"));
        cfg.container_runtime_endpoint = self.node.socket();
        cfg.cni_conf_dir = self.node.cni_conf_dir();
        cfg.cni_bridge = self.node.bridge().to_string();
        cfg.node_api_port = self.node.node_api_port();
        // Tests run in parallel on the host: no host-wide nftables or routes.
        cfg.service_proxy = false;
        cfg.pod_routes = false;
        cfg
    }
}

struct Ctx {
    kubeconfig: std::path::PathBuf,
    cfg: AgentConfig,
}

impl Ctx {
    async fn client(&self) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
        kube::Client::try_from(cfg).unwrap()
    }

    /// The podCIDR the node gets (the IPAM controller does not run here).
    fn pod_cidr(&self, cluster_cidr: &str) -> String {
        let base = cluster_cidr.split('/').next().unwrap();
        let mut octets: Vec<&str> = base.split('.').collect();
        octets[2] = "7";
        format!("{}/24", octets.join("."))
    }

    /// Creates the Node with its podCIDR and starts the agent.
    async fn start_agent(&self, client: &kube::Client, pod_cidr: &str) -> tokio::task::JoinHandle<()> {
        let nodes: Api<Node> = Api::all(client.clone());
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": self.cfg.node_name},
            "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}
        }))
        .unwrap();
        match nodes.create(&PostParams::default(), &node).await {
            Ok(_) | Err(kube::Error::Api(_)) => {}
            Err(e) => panic!("creating the node: {e}"),
        }
        let (client, cfg) = (client.clone(), self.cfg.clone());
        tokio::spawn(async move {
            if let Err(e) = skiff_agent::run(client, cfg).await {
                panic!("agent stopped: {e}");
            }
        })
    }

    fn pod(&self, name: &str, policy: &str, script: &str, grace: i64) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "nodeName": self.cfg.node_name,
                "restartPolicy": policy,
                "terminationGracePeriodSeconds": grace,
                "containers": [{
                    "name": "c",
                    "image": "skiff.local/busybox:1",
                    "command": ["sh", "-c", script],
                }]
            }
        }))
        .unwrap()
    }
}

/// Polls `f` until it returns Some, for at most `secs` seconds.
async fn eventually<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if start.elapsed() > Duration::from_secs(secs) {
            panic!("timed out after {secs}s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn pod_where(api: &Api<Pod>, name: &str, what: &str, secs: u64, pred: impl Fn(&Pod) -> bool) -> Pod {
    eventually(what, secs, || async {
        let p = api.get_opt(name).await.ok().flatten()?;
        pred(&p).then_some(p)
    })
    .await
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

fn container(p: &Pod) -> k8s_openapi::api::core::v1::ContainerStatus {
    p.status.as_ref().unwrap().container_statuses.as_ref().unwrap()[0].clone()
}

#[test]
fn node_registers_and_pods_run_with_ip_and_exit_codes() {
    let Some(env) = env() else { return };
    let cluster = env.node.cluster_cidr().to_string();
    env.run(|ctx| async move {
        let client = ctx.client().await;
        let cidr = ctx.pod_cidr(&cluster);
        let _agent = ctx.start_agent(&client, &cidr).await;
        let nodes: Api<Node> = Api::all(client.clone());
        let node = eventually("the node to be Ready", 20, || async {
            let n = nodes.get(&ctx.cfg.node_name).await.ok()?;
            let st = n.status.clone()?;
            st.conditions?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
                .then_some(n)
        })
        .await;
        let st = node.status.unwrap();
        let info = st.node_info.unwrap();
        assert!(
            info.container_runtime_version.starts_with("containerd://"),
            "{info:?}"
        );
        assert_eq!(info.kubelet_version, "v1.33.0-skiff");
        assert!(st.capacity.unwrap().contains_key("memory"));
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], ctx.cfg.node_name);
        let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
        eventually("the node's lease", 10, || async {
            leases.get(&ctx.cfg.node_name).await.ok()
        })
        .await;

        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let created = Instant::now();
        pods.create(
            &PostParams::default(),
            &ctx.pod("web", "Always", "echo hello; sleep 3600", 1),
        )
        .await
        .unwrap();
        let web = pod_where(&pods, "web", "web Running", 60, |p| phase(p) == "Running").await;
        eprintln!("web Running after {:?}", created.elapsed());
        let status = web.status.clone().unwrap();
        let ip = status.pod_ip.clone().unwrap();
        let prefix = cidr.rsplit_once('.').unwrap().0;
        assert!(ip.starts_with(prefix), "pod IP {ip} is not in {cidr}");
        assert_eq!(status.host_ip.as_deref(), Some("127.0.0.1"));
        let c = container(&web);
        assert!(c.ready && c.started == Some(true));
        assert!(c.container_id.unwrap().starts_with("containerd://"));
        assert!(!c.image_id.is_empty());
        let ready = status.conditions.unwrap();
        assert!(
            ready.iter().any(|c| c.type_ == "Ready" && c.status == "True"),
            "{ready:?}"
        );

        pods.create(&PostParams::default(), &ctx.pod("ok", "Never", "exit 0", 1))
            .await
            .unwrap();
        pods.create(&PostParams::default(), &ctx.pod("bad", "Never", "exit 3", 1))
            .await
            .unwrap();
        let ok = pod_where(&pods, "ok", "ok Succeeded", 60, |p| phase(p) == "Succeeded").await;
        let t = container(&ok).state.unwrap().terminated.unwrap();
        assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
        let bad = pod_where(&pods, "bad", "bad Failed", 60, |p| phase(p) == "Failed").await;
        let t = container(&bad).state.unwrap().terminated.unwrap();
        assert_eq!((t.exit_code, t.reason.as_deref()), (3, Some("Error")));
    });
}

#[test]
fn crashing_containers_restart_with_back_off_and_deletion_ends_in_grace() {
    let Some(env) = env() else { return };
    let cluster = env.node.cluster_cidr().to_string();
    env.run(|ctx| async move {
        let client = ctx.client().await;
        let _agent = ctx.start_agent(&client, &ctx.pod_cidr(&cluster)).await;
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        pods.create(
            &PostParams::default(),
            &ctx.pod("crash", "Always", "echo boom; exit 1", 1),
        )
        .await
        .unwrap();
        let p = pod_where(&pods, "crash", "CrashLoopBackOff", 60, |p| {
            let c = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|c| c.first().cloned());
            c.is_some_and(|c| {
                c.state.and_then(|s| s.waiting).and_then(|w| w.reason).as_deref() == Some("CrashLoopBackOff")
            })
        })
        .await;
        let c = container(&p);
        assert!(c.restart_count >= 1, "{c:?}");
        let w = c.state.unwrap().waiting.unwrap();
        assert!(
            w.message
                .unwrap()
                .starts_with("back-off 10s restarting failed container=c pod=crash_default("),
        );
        let last = c.last_state.unwrap().terminated.unwrap();
        assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));
        assert_eq!(phase(&p), "Running");
        let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
        eventually("a BackOff event", 10, || async {
            let list = events.list(&Default::default()).await.ok()?;
            list.items.into_iter().find(|e| {
                e.reason.as_deref() == Some("BackOff") && e.involved_object.name.as_deref() == Some("crash")
            })
        })
        .await;
        // After the 10 s back-off it runs again: restartCount goes up.
        let before = c.restart_count;
        pod_where(&pods, "crash", "another restart", 40, |p| {
            container(p).restart_count > before
        })
        .await;

        // A container ignoring SIGTERM is killed when its grace period ends.
        let script = "trap '' TERM; while true; do sleep 1; done";
        pods.create(&PostParams::default(), &ctx.pod("stubborn", "Always", script, 2))
            .await
            .unwrap();
        pod_where(&pods, "stubborn", "stubborn Running", 60, |p| {
            phase(p) == "Running"
        })
        .await;
        let asked = Instant::now();
        pods.delete("stubborn", &DeleteParams::default()).await.unwrap();
        eventually("stubborn to be gone", 20, || async {
            pods.get_opt("stubborn")
                .await
                .ok()
                .and_then(|p| p.is_none().then_some(()))
        })
        .await;
        let took = asked.elapsed();
        assert!(
            took >= Duration::from_millis(1500),
            "ended before its grace period: {took:?}"
        );
        assert!(
            took < Duration::from_secs(8),
            "took {took:?} for a 2 s grace period"
        );
    });
}

#[test]
fn a_restarted_agent_adopts_running_pods_and_removes_orphans() {
    let Some(env) = env() else { return };
    let cluster = env.node.cluster_cidr().to_string();
    let socket = env.node.socket();
    env.run(|ctx| async move {
        let client = ctx.client().await;
        let cidr = ctx.pod_cidr(&cluster);
        let agent = ctx.start_agent(&client, &cidr).await;
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        for name in ["keep", "orphan"] {
            pods.create(&PostParams::default(), &ctx.pod(name, "Always", "sleep 3600", 1))
                .await
                .unwrap();
        }
        let keep = pod_where(&pods, "keep", "keep Running", 60, |p| phase(p) == "Running").await;
        let orphan = pod_where(&pods, "orphan", "orphan Running", 60, |p| phase(p) == "Running").await;
        let keep_id = container(&keep).container_id.unwrap();
        agent.abort();
        let _ = agent.await;
        // Gone from the API while no agent watches.
        pods.delete(
            "orphan",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
        )
        .await
        .unwrap();
        let orphan_uid = orphan.metadata.uid.unwrap();
        let _agent = ctx.start_agent(&client, &cidr).await;
        let cri = skiff_agent::CriClient::connect(&socket).await.unwrap();
        let sandboxes_of = |uid: String| {
            let cri = cri.clone();
            async move {
                let req = k8s_cri::v1::ListPodSandboxRequest { filter: None };
                let items = cri
                    .runtime
                    .clone()
                    .list_pod_sandbox(req)
                    .await
                    .unwrap()
                    .into_inner()
                    .items;
                items
                    .into_iter()
                    .filter(|s| s.labels.get(skiff_agent::labels::POD_UID) == Some(&uid))
                    .count()
            }
        };
        eventually("the orphan's sandbox to be removed", 20, || async {
            (sandboxes_of(orphan_uid.clone()).await == 0).then_some(())
        })
        .await;
        // Give the adopted pod a few syncs; nothing of it is started again.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let keep = pods.get("keep").await.unwrap();
        let c = container(&keep);
        assert_eq!(c.container_id.unwrap(), keep_id);
        assert_eq!(c.restart_count, 0);
        assert_eq!(sandboxes_of(keep.metadata.uid.clone().unwrap()).await, 1);
        let req = k8s_cri::v1::ListContainersRequest { filter: None };
        let all = cri
            .runtime
            .clone()
            .list_containers(req)
            .await
            .unwrap()
            .into_inner()
            .containers;
        let of_keep = all
            .iter()
            .filter(|c| c.labels.get(skiff_agent::labels::POD_UID) == keep.metadata.uid.as_ref())
            .count();
        assert_eq!(of_keep, 1, "one container for the adopted pod");
    });
}

#[test]
fn init_containers_run_first_and_probes_drive_ready_and_restarts() {
    let Some(env) = env() else { return };
    let cluster = env.node.cluster_cidr().to_string();
    env.run(|ctx| async move {
        let client = ctx.client().await;
        let _agent = ctx.start_agent(&client, &ctx.pod_cidr(&cluster)).await;
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let image = "skiff.local/busybox:1";
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "probed"},
            "spec": {
                "nodeName": ctx.cfg.node_name,
                "terminationGracePeriodSeconds": 1,
                "volumes": [{"name": "shared", "emptyDir": {}}],
                "initContainers": [{"name": "init", "image": image,
                    "command": ["sh", "-c", "echo from-init > /shared/marker"],
                    "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]}],
                "containers": [
                    {"name": "unready", "image": image,
                     "command": ["sh", "-c", "test -f /shared/marker && sleep 3600"],
                     "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
                     "readinessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1}},
                    {"name": "dies", "image": image, "command": ["sleep", "3600"],
                     "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1,
                                       "failureThreshold": 1}}
                ]
            }
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
        let named = |p: &Pod, name: &str| {
            p.status
                .as_ref()?
                .container_statuses
                .as_ref()?
                .iter()
                .find(|c| c.name == name)
                .cloned()
        };
        let p = pod_where(&pods, "probed", "a liveness restart", 60, |p| {
            named(p, "dies").is_some_and(|c| c.restart_count >= 1)
        })
        .await;
        let init = p.status.clone().unwrap().init_container_statuses.unwrap()[0].clone();
        let done = init.state.unwrap().terminated.unwrap();
        assert_eq!((done.exit_code, done.reason.as_deref()), (0, Some("Completed")));
        let unready = named(&p, "unready").unwrap();
        assert!(
            unready.state.unwrap().running.is_some(),
            "the init container's file was there"
        );
        assert!(!unready.ready);
        assert_eq!(phase(&p), "Running");
        let conds = p.status.unwrap().conditions.unwrap();
        let ready = conds.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "False");
        assert!(ready.message.as_deref().unwrap().contains("unready"), "{ready:?}");
        let initialized = conds.iter().find(|c| c.type_ == "Initialized").unwrap();
        assert_eq!(initialized.status, "True");
    });
}
