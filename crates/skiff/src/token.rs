//! Join tokens: the server's first one (created at first start, kept in
//! `DATA_DIR/join-token`, mode 0600, reused on restart), the public
//! `kube-public/cluster-info` ConfigMap agents fetch the CA from, and
//! `skiff token create`, which makes another (24 h by default, as kubeadm's).
//!
//! A join token is `K10<sha256 of the CA certificate>::<id>.<secret>`; the
//! bootstrap token part is a Secret `kube-system/bootstrap-token-<id>`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, PostParams};
use skiff_apiserver::bootstrap::{
    BootstrapToken, CLUSTER_INFO_NAME, CLUSTER_INFO_NAMESPACE, JoinToken, ca_hash, token,
};
use skiff_apiserver::kubeconfig::ADMIN_KUBECONFIG;

/// The file of the server's first join token.
pub const JOIN_TOKEN_FILE: &str = "join-token";

/// Flags of `skiff token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// `skiff token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a join token and print it (`skiff agent --token <it>`).
    Create(CreateArgs),
}

/// Flags of `skiff token create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// How long the token is valid (`90s`, `30m`, `24h`, `7d`; `0` never expires).
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub ttl: String,
    /// A human note stored with the token.
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub description: String,
    /// The server's data dir (its admin kubeconfig is used).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/skiff")]
    pub data_dir: PathBuf,
    /// Use this kubeconfig instead of DATA_DIR/admin.kubeconfig.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

/// Parses `--ttl`: a number with `s`, `m`, `h` or `d`; `0` means no expiry (`None`).
pub fn parse_ttl(text: &str) -> Result<Option<Duration>, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(None);
    }
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 24h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => {
            return Err(format!(
                "invalid duration {text:?}: the unit is one of s, m, h, d"
            ));
        }
    };
    if secs == 0 {
        return Ok(None);
    }
    Ok(Some(Duration::from_secs(secs)))
}

/// Runs `skiff token ...`.
pub async fn run(args: TokenArgs) -> anyhow::Result<()> {
    skiff_apiserver::tls::install_ring_provider();
    match args.command {
        TokenCommand::Create(args) => {
            let ttl = parse_ttl(&args.ttl).map_err(|e| anyhow::anyhow!("--ttl: {e}"))?;
            check_ttl(ttl)?;
            let path = args
                .kubeconfig
                .clone()
                .unwrap_or_else(|| args.data_dir.join(ADMIN_KUBECONFIG));
            let (client, ca_pem) = admin_client(&path).await?;
            let join = create(&client, &ca_pem, ttl, &args.description).await?;
            println!("{join}");
            Ok(())
        }
    }
}

async fn admin_client(path: &Path) -> anyhow::Result<(kube::Client, String)> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading {} (--kubeconfig)", path.display()))?;
    let ca_data = kubeconfig
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.certificate_authority_data.clone())
        .with_context(|| format!("{} names no certificate-authority-data", path.display()))?;
    let ca_pem = String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, ca_data.trim())
            .context("certificate-authority-data is not base64")?,
    )
    .context("certificate-authority-data is not PEM")?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await
            .with_context(|| format!("client config from {}", path.display()))?;
    let client = kube::Client::try_from(config).context("building the API client")?;
    Ok((client, ca_pem))
}

/// Creates a bootstrap-token Secret valid for `ttl` (forever when `None`)
/// and returns its join token.
pub async fn create(
    client: &kube::Client,
    ca_pem: &str,
    ttl: Option<Duration>,
    description: &str,
) -> anyhow::Result<JoinToken> {
    let hash = ca_hash(ca_pem).context("the cluster CA")?;
    let bootstrap = BootstrapToken::generate();
    store(client, &bootstrap, ttl, description).await?;
    Ok(JoinToken {
        ca_hash: hash,
        token: bootstrap,
    })
}

async fn store(
    client: &kube::Client,
    bootstrap: &BootstrapToken,
    ttl: Option<Duration>,
    description: &str,
) -> anyhow::Result<()> {
    let expiration = ttl
        .map(|d| jiff::SignedDuration::try_from(d).map(|d| jiff::Timestamp::now() + d))
        .transpose()
        .context("--ttl is too long")?;
    let secret: Secret = serde_json::from_value(bootstrap.secret(expiration, description))
        .context("building the bootstrap-token Secret")?;
    let api: Api<Secret> = Api::namespaced(client.clone(), token::SECRET_NAMESPACE);
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e).context("creating the bootstrap-token Secret"),
    }
}

/// The server's first join token: read from `DATA_DIR/join-token` (its
/// Secret re-created if someone deleted it) or created with no expiry.
pub async fn ensure_server_token(
    client: &kube::Client,
    data_dir: &Path,
    ca_pem: &str,
) -> anyhow::Result<JoinToken> {
    let path = data_dir.join(JOIN_TOKEN_FILE);
    let hash = ca_hash(ca_pem).context("the cluster CA")?;
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => {
            Some(JoinToken::parse(&text).with_context(|| format!("{} holds no join token", path.display()))?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let bootstrap = match existing {
        Some(j) if j.ca_hash == hash => j.token,
        _ => BootstrapToken::generate(),
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), token::SECRET_NAMESPACE);
    if api.get_opt(&bootstrap.secret_name()).await?.is_none() {
        store(client, &bootstrap, None, "skiff server's join token").await?;
    }
    let join = JoinToken {
        ca_hash: hash,
        token: bootstrap,
    };
    skiff_apiserver::pki::write_atomic(&path, format!("{join}\n").as_bytes(), 0o600)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(join)
}

/// Publishes `kube-public/cluster-info` with a kubeconfig holding the CA
/// and `server_url` (no credentials), as kubeadm does.
pub async fn publish_cluster_info(
    client: &kube::Client,
    ca_pem: &str,
    server_url: &str,
) -> anyhow::Result<()> {
    let yaml = cluster_info_kubeconfig(server_url, ca_pem)?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), CLUSTER_INFO_NAMESPACE);
    let data = BTreeMap::from([("kubeconfig".to_string(), yaml)]);
    match api.get_opt(CLUSTER_INFO_NAME).await? {
        Some(cm) if cm.data.as_ref() == Some(&data) => Ok(()),
        Some(mut cm) => {
            cm.data = Some(data);
            api.replace(CLUSTER_INFO_NAME, &PostParams::default(), &cm)
                .await?;
            Ok(())
        }
        None => {
            let mut cm = ConfigMap::default();
            cm.metadata.name = Some(CLUSTER_INFO_NAME.into());
            cm.data = Some(data);
            api.create(&PostParams::default(), &cm).await?;
            Ok(())
        }
    }
}

/// The kubeconfig of cluster-info: one cluster (CA and server), no users.
/// Written as JSON, which is YAML too.
fn cluster_info_kubeconfig(server_url: &str, ca_pem: &str) -> anyhow::Result<String> {
    use base64::Engine;
    let config = kube::config::Kubeconfig {
        clusters: vec![kube::config::NamedCluster {
            name: String::new(),
            cluster: Some(kube::config::Cluster {
                server: Some(server_url.to_string()),
                certificate_authority_data: Some(base64::engine::general_purpose::STANDARD.encode(ca_pem)),
                ..kube::config::Cluster::default()
            }),
            other: Default::default(),
        }],
        api_version: Some("v1".into()),
        kind: Some("Config".into()),
        ..kube::config::Kubeconfig::default()
    };
    serde_json::to_string_pretty(&config).context("rendering cluster-info")
}

/// The CA (PEM) in a cluster-info kubeconfig.
pub fn ca_of_cluster_info(kubeconfig: &str) -> anyhow::Result<String> {
    use base64::Engine;
    let config =
        kube::config::Kubeconfig::from_yaml(kubeconfig).context("cluster-info holds no kubeconfig")?;
    let data = config
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.certificate_authority_data.clone())
        .context("cluster-info names no certificate-authority-data")?;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .context("cluster-info's certificate-authority-data is not base64")?;
    String::from_utf8(pem).context("cluster-info's CA is not PEM")
}

/// Waits for the API server to accept writes, then makes sure the join
/// token and cluster-info exist; retried until it works.
pub async fn bootstrap_server(client: kube::Client, data_dir: PathBuf, ca_pem: String, server_url: String) {
    let mut delay = Duration::from_millis(200);
    loop {
        let done = async {
            publish_cluster_info(&client, &ca_pem, &server_url).await?;
            ensure_server_token(&client, &data_dir, &ca_pem).await
        };
        match done.await {
            Ok(join) => {
                tracing::info!(
                    path = %data_dir.join(JOIN_TOKEN_FILE).display(),
                    token_id = %join.token.id,
                    "join token ready: skiff agent --server URL --token \"$(cat {}/join-token)\"",
                    data_dir.display()
                );
                return;
            }
            Err(err) => {
                tracing::warn!("join token not ready yet: {err:#}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Refuses a TTL that is not representable as a timestamp.
pub fn check_ttl(ttl: Option<Duration>) -> anyhow::Result<()> {
    if ttl.is_some_and(|d| d.as_secs() > 100 * 365 * 86_400) {
        bail!("--ttl is longer than 100 years");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_info_round_trips_the_ca() {
        let text =
            cluster_info_kubeconfig("https://10.0.0.1:6443", "-----BEGIN CERTIFICATE-----\nx\n").unwrap();
        assert_eq!(
            ca_of_cluster_info(&text).unwrap(),
            "-----BEGIN CERTIFICATE-----\nx\n"
        );
        assert!(text.contains("https://10.0.0.1:6443"));
        assert!(ca_of_cluster_info("{}").is_err());
    }

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("24h"), Ok(Some(Duration::from_secs(86_400))));
        assert_eq!(parse_ttl("90s"), Ok(Some(Duration::from_secs(90))));
        assert_eq!(parse_ttl("2d"), Ok(Some(Duration::from_secs(172_800))));
        assert_eq!(parse_ttl("0"), Ok(None));
        assert!(parse_ttl("h").is_err());
        assert!(parse_ttl("5y").is_err());
        assert!(check_ttl(Some(Duration::from_secs(u64::MAX / 2))).is_err());
    }
}
