//! `skiff server`: the control plane in one process. Loads or creates the
//! PKI and the server token, opens the datastore (embedded SQLite or etcd),
//! starts the API server behind TLS, writes the admin kubeconfig, logs one
//! line when ready, runs the embedded node agent (unless `--disable-agent`),
//! and shuts down gracefully on SIGTERM/SIGINT.

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use ipnet::Ipv4Net;
use skiff_agent::nodeapi::NodeApiTls;
use skiff_apiserver::authn::{Authenticator, agent_user, load_or_create_server_token};
use skiff_apiserver::bootstrap::BootstrapTokenAuthenticator;
use skiff_apiserver::handlers::node_proxy::{NodeProxy, node_serving_cert};
use skiff_apiserver::kubeconfig::{self, ADMIN_KUBECONFIG, Credentials};
use skiff_apiserver::pki::{Pki, host_addresses, serving_sans};
use skiff_apiserver::server::{ApiServer, ApiServerConfig};
use skiff_apiserver::serviceaccount_token::{ServiceAccountTokens, SigningKey, TokenAuthenticator};
use skiff_apiserver::tls;
use skiff_store::Store;

use tokio::task::JoinSet;

use crate::agent::{ClusterNetwork, NodeArgs, RunningAgent};
use crate::api_endpoints;
use crate::control_plane::{self, ControlPlaneArgs};
use crate::dns::DnsArgs;
use tokio::net::TcpListener;

/// How long connecting to etcd may take before start-up fails.
const ETCD_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How often to say that the server is still not ready.
const READY_NAG_INTERVAL: Duration = Duration::from_secs(10);

/// Flags of `skiff server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// State, certificates and admin.kubeconfig.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/skiff")]
    pub data_dir: PathBuf,
    /// The Kubernetes API (HTTPS) port.
    #[arg(long, value_name = "PORT", default_value_t = 6443)]
    pub https_port: u16,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// Extra name or IP for the serving certificate (repeatable).
    #[arg(long = "tls-san", value_name = "NAME")]
    pub tls_san: Vec<String>,
    /// etcd v3 endpoints, `http://HOST:PORT[,http://HOST:PORT...]`; absent:
    /// embedded SQLite at DIR/db/state.db.
    #[arg(long, value_name = "URL")]
    pub datastore_endpoint: Option<String>,
    /// ClusterIP range of Services.
    #[arg(long, value_name = "CIDR", default_value = "10.43.0.0/16")]
    pub service_cidr: Ipv4Net,
    #[command(flatten)]
    pub control_plane: ControlPlaneArgs,
    /// The address pods (and other nodes) reach the API server at: the
    /// endpoint of the `default/kubernetes` Service. Default: the bind
    /// address or node IP when routable, else this host's first IPv4 address
    /// outside the pod and service networks.
    #[arg(long, value_name = "IP")]
    pub advertise_address: Option<IpAddr>,
    /// Do not run a node agent in this process (no containers run here).
    #[arg(long)]
    pub disable_agent: bool,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub dns: DnsArgs,
}

/// Where the cluster state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datastore {
    Sqlite(PathBuf),
    Etcd(Vec<String>),
}

impl Datastore {
    /// Reads `--datastore-endpoint`: absent means SQLite in the data dir.
    pub fn from_flag(endpoint: Option<&str>, data_dir: &std::path::Path) -> anyhow::Result<Datastore> {
        let Some(endpoint) = endpoint.map(str::trim).filter(|e| !e.is_empty()) else {
            return Ok(Datastore::Sqlite(data_dir.join("db").join("state.db")));
        };
        let mut urls = Vec::new();
        for url in endpoint.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let Some(host_port) = url.strip_prefix("http://") else {
                bail!("unsupported datastore endpoint {url:?}: expected http://HOST:PORT (etcd v3)");
            };
            if host_port
                .trim_end_matches('/')
                .rsplit_once(':')
                .is_none_or(|(_, p)| p.parse::<u16>().is_err())
            {
                bail!("datastore endpoint {url:?} has no port: expected http://HOST:PORT");
            }
            urls.push(url.trim_end_matches('/').to_string());
        }
        Ok(Datastore::Etcd(urls))
    }

    async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(match self {
            Datastore::Sqlite(path) => {
                if let Some(dir) = path.parent() {
                    // The database holds Secrets: only root may read it.
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                }
                let store = skiff_store::sqlite::SqliteStore::open(path)
                    .with_context(|| format!("opening SQLite datastore {}", path.display()))?;
                Arc::new(store)
            }
            Datastore::Etcd(urls) => {
                let connect = skiff_store::etcd::EtcdStore::connect(urls);
                let store = tokio::time::timeout(ETCD_CONNECT_TIMEOUT, connect)
                    .await
                    .with_context(|| format!("connecting to etcd at {} timed out", urls.join(",")))?
                    .with_context(|| format!("connecting to etcd at {}", urls.join(",")))?;
                Arc::new(store)
            }
        })
    }
}

/// The first address of `cidr`: the `kubernetes` Service's ClusterIP.
pub fn first_service_ip(cidr: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(cidr.network()).wrapping_add(1))
}

/// Runs the server until SIGTERM or SIGINT. `started` is when the process began.
pub async fn run(args: ServerArgs, started: Instant) -> anyhow::Result<()> {
    tls::install_ring_provider();
    let data_dir = &args.data_dir;
    let datastore = Datastore::from_flag(args.datastore_endpoint.as_deref(), data_dir)?;
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;

    // The kubeconfig names the bind address when it is a single one, so the
    // certificate must hold it even if it is not one of the host's own.
    let mut addrs = host_addresses();
    if !args.bind_address.is_unspecified() {
        addrs.push(args.bind_address);
    }
    addrs.extend(args.advertise_address);
    let sans = serving_sans(first_service_ip(args.service_cidr).into(), &addrs, &args.tls_san)
        .context("--tls-san")?;
    let pki = Arc::new(Pki::load_or_create(data_dir, &sans).context("loading the cluster PKI")?);
    let token = load_or_create_server_token(data_dir).context("loading the server token")?;
    let authn = Authenticator::new().with_token(token, agent_user());

    let store = datastore.open().await?;
    let config = ApiServerConfig {
        service_cidr: args.service_cidr,
        https_port: args.https_port,
        default_not_ready_toleration_seconds: args.control_plane.default_not_ready_toleration_seconds,
        ..Default::default()
    };
    let api = ApiServer::new(store, config).context("starting the API server")?;
    // Service-account tokens (TokenRequest) are signed with a key beside the cluster CA.
    let sa_key = Arc::new(SigningKey::load_or_create(pki.dir()).context("loading the service-account key")?);
    let sa_tokens = ServiceAccountTokens::new(sa_key.clone());
    let authn = authn.with_service_accounts(TokenAuthenticator::new(sa_key, api.clone()));
    let authn = Arc::new(authn.with_bootstrap_tokens(BootstrapTokenAuthenticator::new(api.clone())));

    let listener = TcpListener::bind((args.bind_address, args.https_port))
        .await
        .with_context(|| format!("listening on {}:{}", args.bind_address, args.https_port))?;
    let tls_config = tls::server_config(pki.ca_cert_pem(), pki.serving()).context("TLS configuration")?;
    let kubeconfig_path = data_dir.join(ADMIN_KUBECONFIG);
    let server_url = kubeconfig::local_server_url(args.bind_address, args.https_port);
    kubeconfig::write(
        &kubeconfig_path,
        &server_url,
        pki.ca_cert_pem(),
        &Credentials::Certificate(pki.admin()),
    )
    .context("writing the admin kubeconfig")?;

    // pods/log, exec, attach and portforward reach node agents with this identity.
    let node_proxy = NodeProxy::from_pki(&pki).context("the node proxy's client certificate")?;
    let router = api
        .router()
        .layer(axum::Extension(node_proxy))
        .layer(axum::Extension(sa_tokens.clone()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(tls::serve(listener, router, tls_config, authn, async {
        let _ = stopped.await;
    }));
    tracing::info!(listen = %format!("{}:{}", args.bind_address, args.https_port), ?datastore, "serving");

    let mut signal = std::pin::pin!(shutdown_signal());
    let ready = tokio::select! {
        ready = wait_ready(&api) => ready,
        () = &mut signal => false,
    };
    let mut agent = None;
    if ready {
        // Held until shutdown: dropping the set stops the loops.
        let signer = Arc::new(crate::signer::PkiSigner(pki.clone()));
        let _control_loops = control_plane::start(
            &api,
            &args.control_plane,
            args.https_port,
            pki.ca_cert_pem(),
            signer,
        );
        // Join token (DATA_DIR/join-token) and kube-public/cluster-info for `skiff agent --token`.
        let join_client = kube::Client::new(api.router(), "default");
        let ca_pem = pki.ca_cert_pem().to_string();
        tokio::spawn(crate::token::bootstrap_server(
            join_client,
            data_dir.clone(),
            ca_pem,
            server_url.clone(),
        ));
        if !args.disable_agent {
            agent = Some(start_embedded_agent(&args, &api, &pki, sa_tokens).await?);
        }
        let in_process = kube::Client::new(api.router(), "default");
        let _networking = start_cluster_services(&args, in_process, &addrs, agent.as_ref());
        tracing::info!(
            "skiff is ready: kubeconfig at {} (ready in {} ms)",
            kubeconfig_path.display(),
            started.elapsed().as_millis()
        );
        print_usage(&kubeconfig_path, agent.is_some());
        signal.await;
    }
    tracing::info!("shutting down");
    if let Some(agent) = agent {
        agent.stop().await;
    }
    let _ = stop.send(());
    serving.await.context("the HTTPS server task failed")?;
    Ok(())
}

/// Starts the node agent in this process: it talks to the API server
/// in-process as `system:skiff-agent`, and its node API serves a certificate
/// from the cluster CA that only the API server's proxy identity may use.
async fn start_embedded_agent(
    args: &ServerArgs,
    api: &Arc<ApiServer>,
    pki: &Pki,
    sa_tokens: ServiceAccountTokens,
) -> anyhow::Result<RunningAgent> {
    let router = api
        .router()
        .layer(axum::Extension(agent_user()))
        .layer(axum::Extension(sa_tokens));
    let client = kube::Client::new(router, "default");
    let net = ClusterNetwork {
        cluster_dns: (!args.dns.disable_dns).then_some(args.dns.cluster_dns),
        cluster_domain: args.dns.cluster_domain.clone(),
        cluster_cidr: args.control_plane.cluster_cidr,
    };
    let agent = RunningAgent::start(&args.node, &net, &args.data_dir, client, |cfg| {
        let pair = node_serving_cert(pki, &cfg.node_name, &[cfg.node_ip])
            .context("the node API's serving certificate")?;
        Ok(Some(NodeApiTls::new(
            pair.cert_pem,
            pair.key_pem,
            pki.ca_cert_pem(),
        )))
    })
    .await
    .context("starting the node agent (--disable-agent runs the control plane alone)")?;
    tracing::info!(
        node = %agent.config.node_name,
        runtime = %agent.config.container_runtime_endpoint.display(),
        skiff_owned_containerd = agent.runtime_is_managed(),
        "node agent started"
    );
    Ok(agent)
}

/// Starts, in the background, what makes the cluster's built-in Services
/// work: the `default/kubernetes` endpoints at the advertise address, and
/// cluster DNS (unless `--disable-dns`) once its listen address is known
/// (`--cluster-dns-endpoint`, or the embedded agent node's bridge gateway).
/// The tasks stop when the returned set is dropped.
fn start_cluster_services(
    args: &ServerArgs,
    client: kube::Client,
    host_addrs: &[IpAddr],
    agent: Option<&RunningAgent>,
) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    let skip = [args.control_plane.cluster_cidr, args.service_cidr];
    let node_ip = agent.map(|a| a.config.node_ip);
    match api_endpoints::advertise_address(
        args.advertise_address,
        args.bind_address,
        node_ip,
        host_addrs,
        &skip,
    ) {
        Some(ip) => {
            let (client, port) = (client.clone(), args.https_port);
            tasks.spawn(async move {
                while let Err(err) = api_endpoints::ensure(client.clone(), ip, port).await {
                    tracing::warn!(%err, "writing the kubernetes Service's endpoints; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                tracing::info!(advertise = %ip, port, "kubernetes Service endpoints set");
            });
        }
        None => tracing::warn!(
            "no address pods can reach the API server at: pass --advertise-address; the kubernetes \
             Service has no endpoints"
        ),
    }
    if args.dns.disable_dns {
        return tasks;
    }
    let node_name = agent.map(|a| a.config.node_name.clone());
    if args.dns.cluster_dns_endpoint.is_none() && node_name.is_none() {
        tracing::warn!(
            "cluster DNS is off: with --disable-agent it needs --cluster-dns-endpoint IP (an address \
             of this host the nodes route to)"
        );
        return tasks;
    }
    let dns_args = args.dns.clone();
    tasks.spawn(async move {
        let pod_cidr = match (&dns_args.cluster_dns_endpoint, node_name) {
            (None, Some(node)) => Some(skiff_agent::node::wait_pod_cidr(&client, &node).await),
            _ => None,
        };
        loop {
            match crate::dns::start(client.clone(), &dns_args, pod_cidr.as_deref()).await {
                Ok(Some(serving)) => {
                    let _abort = crate::dns::AbortOnDrop(serving.abort_handle());
                    let _ = serving.await;
                    return;
                }
                Ok(None) => return,
                Err(err) => tracing::warn!("{err:#}; retrying"),
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    tasks
}

/// Tells the person who started the server how to use it.
fn print_usage(kubeconfig: &std::path::Path, with_agent: bool) {
    let mut text = format!(
        "\nskiff is ready. Use it with kubectl:\n  export KUBECONFIG={}\n  kubectl get nodes\n",
        kubeconfig.display()
    );
    if with_agent {
        text.push_str(
            "  kubectl run hello --image=skiff.local/busybox:1 --restart=Never -- echo hello\n  \
             kubectl logs hello\n",
        );
    }
    eprintln!("{text}");
}

/// Waits until the API server is ready, saying so now and then while it is not.
async fn wait_ready(api: &ApiServer) -> bool {
    let since = Instant::now();
    while !api.wait_ready(READY_NAG_INTERVAL).await {
        tracing::warn!(waited_s = since.elapsed().as_secs(), "API server not ready yet");
    }
    true
}

/// Completes on SIGTERM or SIGINT.
pub(crate) async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(err) => {
                tracing::warn!(%err, "cannot watch SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = term => tracing::info!("received SIGTERM"),
        res = tokio::signal::ctrl_c() => match res {
            Ok(()) => tracing::info!("received SIGINT"),
            Err(err) => {
                tracing::warn!(%err, "cannot watch SIGINT");
                std::future::pending::<()>().await;
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_endpoint_means_sqlite_in_the_data_dir() {
        let ds = Datastore::from_flag(None, std::path::Path::new("/d")).unwrap();
        assert_eq!(ds, Datastore::Sqlite("/d/db/state.db".into()));
    }

    #[test]
    fn http_endpoints_mean_etcd() {
        let ds = Datastore::from_flag(
            Some("http://127.0.0.1:2379, http://127.0.0.1:22379/"),
            "/d".as_ref(),
        );
        let want = vec![
            "http://127.0.0.1:2379".to_string(),
            "http://127.0.0.1:22379".to_string(),
        ];
        assert_eq!(ds.unwrap(), Datastore::Etcd(want));
    }

    #[test]
    fn other_endpoints_are_refused_with_a_reason() {
        for bad in [
            "https://127.0.0.1:2379",
            "127.0.0.1:2379",
            "http://127.0.0.1",
            "mysql://x",
        ] {
            let err = Datastore::from_flag(Some(bad), "/d".as_ref()).unwrap_err();
            assert!(err.to_string().contains("http://HOST:PORT"), "{bad}: {err}");
        }
    }

    #[test]
    fn first_service_ip_is_network_plus_one() {
        assert_eq!(
            first_service_ip("10.43.0.0/16".parse().unwrap()),
            Ipv4Addr::new(10, 43, 0, 1)
        );
        assert_eq!(
            first_service_ip("10.96.0.0/12".parse().unwrap()),
            Ipv4Addr::new(10, 96, 0, 1)
        );
    }
}
