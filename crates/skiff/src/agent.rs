//! The node agent's wiring: the flags every agent takes (shared by `skiff
//! agent` and the agent embedded in `skiff server`), which container runtime
//! it drives (a containerd the user names, or one skiff starts and owns),
//! and `skiff agent --server URL --token T`, which joins a remote API server.
//!
//! Only wiring: pods, volumes, probes and the node API live in `skiff-agent`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use ipnet::Ipv4Net;
use skiff_agent::nodeapi::NodeApiTls;
use skiff_agent::{AgentConfig, CriClient};
use skiff_images::{ContainerdConfig, ManagedContainerd};
use tokio::task::JoinSet;

/// How long a skiff-owned containerd may take to answer on its socket.
const CONTAINERD_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Where CNI configs live for a containerd skiff does not own (its default).
const SYSTEM_CNI_CONF_DIR: &str = "/etc/cni/net.d";

/// Flags of one node agent.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// The Node's name (default: this machine's host name).
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// CRI socket of a running containerd to use. Absent: skiff starts a
    /// containerd of its own under DATA_DIR/containerd (own socket, root and
    /// state, sandbox image skiff.local/pause:3.9) and stops it on exit.
    #[arg(long, value_name = "SOCKET")]
    pub container_runtime_endpoint: Option<PathBuf>,
    /// The node's InternalIP: where the API server reaches the node API.
    #[arg(long, value_name = "IP", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub node_ip: IpAddr,
    /// Port of the node API (logs, exec, attach, port-forward).
    #[arg(long, value_name = "PORT", default_value_t = 10250)]
    pub node_api_port: u16,
    /// Name of the node's pod network bridge.
    #[arg(long, value_name = "NAME", default_value = "skiff0")]
    pub cni_bridge: String,
    /// Directory the agent writes its CNI config to; it must be the one the
    /// containerd reads. Default: DATA_DIR/agent/cni/net.d with a skiff-owned
    /// containerd, /etc/cni/net.d with `--container-runtime-endpoint`.
    #[arg(long, value_name = "DIR")]
    pub cni_conf_dir: Option<PathBuf>,
    /// Where the CNI plugin binaries are.
    #[arg(long, value_name = "DIR", default_value = "/usr/lib/cni")]
    pub cni_bin_dir: PathBuf,
    /// Extra label on the Node, `key=value` (repeatable).
    #[arg(long = "node-label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub node_labels: Vec<(String, String)>,
    /// Most pods this node runs.
    #[arg(long, value_name = "N", default_value_t = 110)]
    pub max_pods: u32,
    /// Do not run the service proxy (nftables `table ip skiff`) on this node.
    #[arg(long)]
    pub disable_kube_proxy: bool,
    /// Do not route other nodes' podCIDRs nor masquerade pod traffic
    /// (proto-250 routes, nftables `table ip skiff-masq`) on this node.
    #[arg(long)]
    pub disable_pod_routes: bool,
}

/// The cluster-wide network settings an agent needs: where pods find
/// cluster DNS and which range is the pod network. `skiff server` fills
/// them from its own flags; `skiff agent` from [`ClusterNetArgs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNetwork {
    /// The kube-dns ClusterIP for pods' resolv.conf (None: the host's resolv.conf).
    pub cluster_dns: Option<IpAddr>,
    /// The cluster domain.
    pub cluster_domain: String,
    /// All nodes' podCIDRs (traffic leaving it is masqueraded).
    pub cluster_cidr: Ipv4Net,
}

/// Cluster network flags of `skiff agent` (the server has its own).
#[derive(Debug, Clone, Args)]
pub struct ClusterNetArgs {
    /// ClusterIP of the kube-dns Service, written into pods' resolv.conf.
    #[arg(long, value_name = "IP", default_value = "10.43.0.10")]
    pub cluster_dns: IpAddr,
    /// The cluster domain.
    #[arg(long, value_name = "DOMAIN", default_value = "cluster.local")]
    pub cluster_domain: String,
    /// The cluster's pod network (the server's --cluster-cidr).
    #[arg(long, value_name = "CIDR", default_value = "10.42.0.0/16")]
    pub cluster_cidr: Ipv4Net,
}

impl ClusterNetArgs {
    /// The settings these flags name.
    pub fn network(&self) -> ClusterNetwork {
        ClusterNetwork {
            cluster_dns: Some(self.cluster_dns),
            cluster_domain: self.cluster_domain.clone(),
            cluster_cidr: self.cluster_cidr,
        }
    }
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// The container runtime an agent drives; a skiff-owned one stops on drop.
#[derive(Debug)]
pub struct Runtime {
    /// The CRI socket.
    pub socket: PathBuf,
    /// containerd's CNI conf dir (where the agent writes the pod network).
    pub cni_conf_dir: PathBuf,
    managed: Option<ManagedContainerd>,
}

impl Runtime {
    /// True when skiff started this containerd.
    pub fn is_managed(&self) -> bool {
        self.managed.is_some()
    }

    /// Stops a skiff-owned containerd (running containers keep running:
    /// their shims are not containerd's children). Nothing for a user's one.
    pub fn stop(&mut self) {
        if let Some(mut containerd) = self.managed.take() {
            containerd.stop();
        }
    }
}

impl NodeArgs {
    /// The runtime to use: the one at `--container-runtime-endpoint`, which
    /// must answer, or a skiff-owned containerd under `data_dir/containerd`.
    pub async fn runtime(&self, data_dir: &Path) -> anyhow::Result<Runtime> {
        if let Some(socket) = &self.container_runtime_endpoint {
            let socket = strip_unix(socket);
            if tokio::net::UnixStream::connect(&socket).await.is_err() {
                bail!(
                    "no container runtime answers at {} (--container-runtime-endpoint); start it, or \
                     leave the flag out and skiff runs a containerd of its own",
                    socket.display()
                );
            }
            let cni_conf_dir = self
                .cni_conf_dir
                .clone()
                .unwrap_or_else(|| SYSTEM_CNI_CONF_DIR.into());
            return Ok(Runtime {
                socket,
                cni_conf_dir,
                managed: None,
            });
        }
        let dir = data_dir.join("containerd");
        let mut config = ContainerdConfig::new(&dir);
        config.cni_conf_dir = self
            .cni_conf_dir
            .clone()
            .unwrap_or_else(|| agent_dir(data_dir).join("cni").join("net.d"));
        let cni_conf_dir = config.cni_conf_dir.clone();
        let socket = config.socket();
        let managed = tokio::task::spawn_blocking(move || {
            ManagedContainerd::start(config, "containerd", CONTAINERD_START_TIMEOUT)
        })
        .await
        .context("starting containerd")?
        .with_context(|| format!("starting a skiff-owned containerd in {}", dir.display()))?;
        tracing::info!(socket = %socket.display(), pid = ?managed.pid(), "started containerd");
        Ok(Runtime {
            socket,
            cni_conf_dir,
            managed: Some(managed),
        })
    }

    /// The agent's configuration for this runtime and cluster network, with
    /// its files under `data_dir/agent`.
    pub fn agent_config(
        &self,
        data_dir: &Path,
        runtime: &Runtime,
        net: &ClusterNetwork,
    ) -> anyhow::Result<AgentConfig> {
        let node_name = match &self.node_name {
            Some(name) => name.clone(),
            None => host_name()?,
        };
        let mut cfg = AgentConfig::new(node_name, agent_dir(data_dir));
        cfg.container_runtime_endpoint = runtime.socket.clone();
        cfg.node_ip = self.node_ip;
        cfg.node_api_port = self.node_api_port;
        cfg.cni_conf_dir = runtime.cni_conf_dir.clone();
        cfg.cni_bin_dir = self.cni_bin_dir.clone();
        cfg.cni_bridge = self.cni_bridge.clone();
        cfg.node_labels = self.node_labels.iter().cloned().collect::<BTreeMap<_, _>>();
        cfg.max_pods = self.max_pods;
        cfg.cluster_dns = net.cluster_dns;
        cfg.cluster_domain = net.cluster_domain.clone();
        cfg.cluster_cidr = net.cluster_cidr;
        cfg.service_proxy = !self.disable_kube_proxy;
        cfg.pod_routes = !self.disable_pod_routes;
        Ok(cfg)
    }
}

/// Flags of `skiff agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The API server to join, `https://HOST:PORT`.
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// The cluster's token (the server's DATA_DIR/token).
    #[arg(long, value_name = "TOKEN")]
    pub token: String,
    /// The cluster CA certificate (the server's DATA_DIR/tls/ca.crt).
    /// Default: DATA_DIR/tls/ca.crt, there when the server runs on this machine.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// The agent's state (DATA_DIR/agent) and, unless a runtime is named,
    /// its containerd (DATA_DIR/containerd).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/skiff")]
    pub data_dir: PathBuf,
    /// PEM serving certificate of the node API, signed by the cluster CA.
    /// Without it (and its key) the node API is off: no kubectl logs/exec here.
    #[arg(long, value_name = "FILE", requires = "node_api_key_file")]
    pub node_api_cert_file: Option<PathBuf>,
    /// PEM private key of `--node-api-cert-file`.
    #[arg(long, value_name = "FILE", requires = "node_api_cert_file")]
    pub node_api_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub net: ClusterNetArgs,
}

/// Runs `skiff agent` until SIGTERM or SIGINT.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    skiff_apiserver::tls::install_ring_provider();
    // A join token (K10...) bootstraps the node's own certificates (join.rs).
    let node_name = args.node.node_name.clone().map_or_else(host_name, Ok)?;
    let joined =
        crate::join::connect(&args.server, &args.token, &node_name, &agent_dir(&args.data_dir)).await?;
    let (client, ca_pem) = match &joined {
        Some(j) => (j.client.clone(), j.ca_pem.clone()),
        None => {
            let ca_file = args
                .ca_file
                .clone()
                .unwrap_or_else(|| args.data_dir.join("tls").join("ca.crt"));
            let ca_pem = std::fs::read_to_string(&ca_file)
                .with_context(|| format!("reading the cluster CA {} (--ca-file)", ca_file.display()))?;
            (remote_client(&args.server, &ca_pem, &args.token).await?, ca_pem)
        }
    };
    let node_ips = vec![args.node.node_ip];
    let stored = joined
        .as_ref()
        .and_then(|j| j.stored_serving(&node_name, &node_ips));
    let tls = match (&args.node_api_cert_file, &args.node_api_key_file, stored) {
        (Some(cert), Some(key), _) => Some(NodeApiTls::new(
            read(cert, "--node-api-cert-file")?,
            read(key, "--node-api-key-file")?,
            ca_pem.clone(),
        )),
        (_, _, Some(pair)) => Some(NodeApiTls::new(pair.cert_pem, pair.key_pem, ca_pem.clone())),
        _ => None,
    };
    let issue_serving = tls.is_none().then_some(joined).flatten();
    let net = args.net.network();
    let mut agent = RunningAgent::start(&args.node, &net, &args.data_dir, client, |_| Ok(tls)).await?;
    tracing::info!(
        node = %agent.config.node_name,
        server = %args.server,
        runtime = %agent.config.container_runtime_endpoint.display(),
        "node agent started"
    );
    if let Some(joined) = issue_serving {
        let issued = joined.serving_until_issued(node_name, node_ips);
        agent.serve_node_api_when(async move {
            let pair = issued.await;
            Ok(NodeApiTls::new(pair.cert_pem, pair.key_pem, ca_pem))
        });
    }
    tokio::select! {
        () = crate::server::shutdown_signal() => {}
        () = agent.wait() => tracing::error!("the node agent ended"),
    }
    agent.stop().await;
    Ok(())
}

fn read(path: &Path, flag: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {} ({flag})", path.display()))
}

/// A client for `server` trusting `ca_pem` and sending `token`.
async fn remote_client(server: &str, ca_pem: &str, token: &str) -> anyhow::Result<kube::Client> {
    if !server.starts_with("https://") {
        bail!("--server {server:?}: expected https://HOST:PORT");
    }
    let creds = skiff_apiserver::kubeconfig::Credentials::Token(token);
    let yaml = skiff_apiserver::kubeconfig::render(server, ca_pem, &creds)?;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).context("the agent's client config")?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await
            .context("the agent's client config")?;
    kube::Client::try_from(config).context("building the API client")
}

/// A running agent (embedded in `skiff server` or run by `skiff agent`):
/// its tasks and the runtime it drives. Dropping it aborts the tasks; a
/// skiff-owned containerd stops with [`RunningAgent::stop`] or on drop.
pub struct RunningAgent {
    tasks: JoinSet<()>,
    runtime: Runtime,
    /// The agent's configuration.
    pub config: AgentConfig,
}

impl RunningAgent {
    /// Starts the runtime (unless one is named), the agent on `client`, and
    /// the node API when `tls` is given.
    pub async fn start(
        args: &NodeArgs,
        net: &ClusterNetwork,
        data_dir: &Path,
        client: kube::Client,
        tls: impl FnOnce(&AgentConfig) -> anyhow::Result<Option<NodeApiTls>>,
    ) -> anyhow::Result<RunningAgent> {
        let runtime = args.runtime(data_dir).await?;
        let config = args.agent_config(data_dir, &runtime, net)?;
        let tls = tls(&config)?;
        let mut tasks = JoinSet::new();
        let cfg = config.clone();
        tasks.spawn(async move {
            match skiff_agent::run(client, cfg).await {
                Ok(()) => tracing::info!("the node agent stopped"),
                Err(err) => tracing::error!(%err, "the node agent stopped"),
            }
        });
        match tls {
            Some(tls) => {
                let cfg = config.clone();
                tasks.spawn(async move {
                    let served = async {
                        let cri = CriClient::connect(&cfg.container_runtime_endpoint).await?;
                        anyhow::Ok(skiff_agent::nodeapi::serve(cri, &cfg, tls).await?)
                    };
                    if let Err(err) = served.await {
                        tracing::error!("the node API stopped: {err:#}");
                    }
                });
            }
            None => tracing::warn!(
                "no node API certificate: kubectl logs/exec/port-forward will not reach this node"
            ),
        }
        Ok(RunningAgent {
            tasks,
            runtime,
            config,
        })
    }

    /// Starts the node API once `tls` resolves (e.g. a certificate being issued).
    pub fn serve_node_api_when(
        &mut self,
        tls: impl std::future::Future<Output = anyhow::Result<NodeApiTls>> + Send + 'static,
    ) {
        let cfg = self.config.clone();
        self.tasks.spawn(async move {
            let served = async {
                let tls = tls.await?;
                let cri = CriClient::connect(&cfg.container_runtime_endpoint).await?;
                anyhow::Ok(skiff_agent::nodeapi::serve(cri, &cfg, tls).await?)
            };
            if let Err(err) = served.await {
                tracing::error!("the node API stopped: {err:#}");
            }
        });
    }

    /// True when the agent drives a containerd skiff started.
    pub fn runtime_is_managed(&self) -> bool {
        self.runtime.is_managed()
    }

    /// Waits until a task of the agent ends (it should not).
    pub async fn wait(&mut self) {
        let _ = self.tasks.join_next().await;
    }

    /// Stops the agent's tasks, then a skiff-owned containerd. Containers
    /// keep running; the next start adopts them.
    pub async fn stop(mut self) {
        self.tasks.shutdown().await;
        let mut runtime = self.runtime;
        let _ = tokio::task::spawn_blocking(move || runtime.stop()).await;
    }
}

/// `DATA_DIR/agent`: the agent's own files.
pub fn agent_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("agent")
}

fn strip_unix(socket: &Path) -> PathBuf {
    let raw = socket.to_string_lossy();
    PathBuf::from(raw.strip_prefix("unix://").unwrap_or(&raw))
}

/// This machine's host name in lower case, as a Node name must be.
fn host_name() -> anyhow::Result<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .context("reading the host name (pass --node-name)")?;
    let name = name.trim().to_ascii_lowercase();
    if name.is_empty() {
        bail!("this machine has no host name: pass --node-name");
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_key_value() {
        assert_eq!(parse_label("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(parse_label("zone=").unwrap(), ("zone".into(), String::new()));
        assert!(parse_label("novalue").is_err());
        assert!(parse_label("=x").is_err());
    }

    #[test]
    fn unix_prefix_is_optional() {
        assert_eq!(
            strip_unix(Path::new("unix:///run/c.sock")),
            PathBuf::from("/run/c.sock")
        );
        assert_eq!(strip_unix(Path::new("/run/c.sock")), PathBuf::from("/run/c.sock"));
    }

    #[tokio::test]
    async fn the_server_must_be_https() {
        let Err(err) = remote_client("http://127.0.0.1:6443", "", "t").await else {
            panic!("an http:// server was accepted");
        };
        assert!(err.to_string().contains("expected https://HOST:PORT"), "{err}");
    }

    #[test]
    fn agent_flags_need_server_and_token_and_both_halves_of_the_node_api_pair() {
        use clap::Parser;
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: AgentArgs,
        }
        let ok =
            Cli::try_parse_from(["agent", "--server", "https://127.0.0.1:6443", "--token", "t"]).unwrap();
        assert_eq!(ok.args.data_dir, PathBuf::from("/var/lib/skiff"));
        assert_eq!(ok.args.node.cni_bridge, "skiff0");
        assert!(!ok.args.node.disable_kube_proxy && !ok.args.node.disable_pod_routes);
        let net = ok.args.net.network();
        assert_eq!(net.cluster_dns, "10.43.0.10".parse().ok());
        assert_eq!(net.cluster_cidr.to_string(), "10.42.0.0/16");
        assert_eq!(net.cluster_domain, "cluster.local");
        assert!(ok.args.node.container_runtime_endpoint.is_none());
        assert!(Cli::try_parse_from(["agent", "--token", "t"]).is_err());
        let half = [
            "agent",
            "--server",
            "https://h:1",
            "--token",
            "t",
            "--node-api-cert-file",
            "c.pem",
        ];
        assert!(Cli::try_parse_from(half).is_err());
    }

    #[tokio::test]
    async fn a_named_runtime_that_does_not_answer_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let args = NodeArgs {
            node_name: Some("n1".into()),
            container_runtime_endpoint: Some(dir.path().join("none.sock")),
            node_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            node_api_port: 10250,
            cni_bridge: "skiff0".into(),
            cni_conf_dir: None,
            cni_bin_dir: "/usr/lib/cni".into(),
            node_labels: vec![],
            max_pods: 110,
            disable_kube_proxy: false,
            disable_pod_routes: false,
        };
        let err = args.runtime(dir.path()).await.unwrap_err().to_string();
        assert!(err.contains("no container runtime answers"), "{err}");
    }

    #[tokio::test]
    async fn a_named_runtime_that_answers_is_used_with_the_system_cni_dir() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("cri.sock");
        let _listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let args = NodeArgs {
            node_name: Some("n1".into()),
            container_runtime_endpoint: Some(format!("unix://{}", socket.display()).into()),
            node_ip: "10.0.0.5".parse().unwrap(),
            node_api_port: 10251,
            cni_bridge: "skiff0".into(),
            cni_conf_dir: None,
            cni_bin_dir: "/usr/lib/cni".into(),
            node_labels: vec![("zone".into(), "a".into())],
            max_pods: 20,
            disable_kube_proxy: true,
            disable_pod_routes: false,
        };
        let runtime = args.runtime(dir.path()).await.unwrap();
        assert!(!runtime.is_managed());
        let net = ClusterNetwork {
            cluster_dns: Some("10.96.0.10".parse().unwrap()),
            cluster_domain: "corp.local".into(),
            cluster_cidr: "10.244.0.0/16".parse().unwrap(),
        };
        let cfg = args.agent_config(dir.path(), &runtime, &net).unwrap();
        assert_eq!(cfg.cluster_dns, net.cluster_dns);
        assert_eq!(
            (cfg.cluster_domain.as_str(), cfg.cluster_cidr),
            ("corp.local", net.cluster_cidr)
        );
        assert!(!cfg.service_proxy && cfg.pod_routes);
        assert_eq!(cfg.container_runtime_endpoint, socket);
        assert_eq!(cfg.cni_conf_dir, PathBuf::from(SYSTEM_CNI_CONF_DIR));
        assert_eq!(cfg.data_dir, dir.path().join("agent"));
        assert_eq!(
            (cfg.node_name.as_str(), cfg.node_api_port, cfg.max_pods),
            ("n1", 10251, 20)
        );
        assert_eq!(cfg.node_labels.get("zone").map(String::as_str), Some("a"));
    }
}
