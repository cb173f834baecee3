//! `skiff agent --token K10...`: TLS bootstrap of a joining node, as kubeadm
//! join / k3s agent do it.
//!
//! 1. Fetch `kube-public/cluster-info` without trusting the server (anonymous,
//!    certificate unchecked), and accept its CA only if its SHA-256 is the
//!    one in the join token.
//! 2. With the bootstrap token, send a CertificateSigningRequest for a client
//!    certificate (signer `kube-apiserver-client-kubelet`, CN
//!    `system:node:NAME`, O `system:nodes`) and wait until it is issued (the
//!    server auto-approves those).
//! 3. Later, as the node itself, get a node-API serving certificate
//!    (signer `kubelet-serving`, the node's IP and name).
//!
//! Keys never leave the machine. Everything lands in `DATA_DIR/agent/pki`
//! (`ca.crt`, `client.{crt,key}`, `serving.{crt,key}`, mode 0600) and is
//! reused on restart while valid for more than a day.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{CertificateSigningRequest, CertificateSigningRequestSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
use skiff_api::certificates::{KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER, NODES_GROUP};
use skiff_apiserver::bootstrap::{CLUSTER_INFO_NAME, CLUSTER_INFO_NAMESPACE, JoinToken, ca_hash};
use skiff_apiserver::kubeconfig::Credentials;
use skiff_apiserver::pki::{CertKey, San, inspect, write_atomic};

/// How long to wait for the client certificate to be issued.
pub const CLIENT_CERT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long to wait for the serving certificate (the Node must show up first).
pub const SERVING_CERT_TIMEOUT: Duration = Duration::from_secs(300);
/// Certificates expiring within this many days are requested anew.
const RENEW_WITHIN_DAYS: i64 = 1;
const POLL: Duration = Duration::from_millis(250);

/// `DATA_DIR/agent/pki`.
pub fn pki_dir(agent_dir: &Path) -> PathBuf {
    agent_dir.join("pki")
}

/// What joining gives: the cluster CA and the node's client certificate.
#[derive(Debug, Clone)]
pub struct Joined {
    pub ca_pem: String,
    pub client: CertKey,
}

/// Joins with `token`: reuses the certificate in `dir` if it is still good,
/// else bootstraps a new one.
pub async fn join(server: &str, token: &JoinToken, node_name: &str, dir: &Path) -> anyhow::Result<Joined> {
    let user = format!("system:node:{node_name}");
    if let Some(joined) = reusable_client(dir, token, &user) {
        tracing::info!(dir = %dir.display(), "reusing the node's client certificate");
        return Ok(joined);
    }
    let ca_pem = fetch_ca(server, token).await?;
    let bootstrap = client_with(server, &ca_pem, &Credentials::Token(&token.token.to_string())).await?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).context("generating the node key")?;
    let csr = request_pem(&key, &user, &[])?;
    let usages = ["digital signature", "client auth"];
    tracing::info!(node = %node_name, "requesting a client certificate");
    let cert_pem = request_certificate(
        &bootstrap,
        &csr,
        KUBELET_CLIENT_SIGNER,
        &usages,
        CLIENT_CERT_TIMEOUT,
    )
    .await
    .context("getting the node's client certificate")?;
    let client = CertKey {
        cert_pem,
        key_pem: key.serialize_pem(),
    };
    write_file(dir, "ca.crt", &ca_pem)?;
    write_file(dir, "client.key", &client.key_pem)?;
    write_file(dir, "client.crt", &client.cert_pem)?;
    Ok(Joined { ca_pem, client })
}

/// An agent connected with its own client certificate.
#[derive(Clone)]
pub struct Connected {
    /// The client, authenticating as `system:node:NAME`.
    pub client: kube::Client,
    /// The cluster CA.
    pub ca_pem: String,
    dir: PathBuf,
}

/// Joins when `token_text` is a join token (`None` for the server's raw
/// token, which keeps working the old way) and returns the agent's client.
pub async fn connect(
    server: &str,
    token_text: &str,
    node_name: &str,
    agent_dir: &Path,
) -> anyhow::Result<Option<Connected>> {
    if !JoinToken::looks_like(token_text) {
        return Ok(None);
    }
    let token = JoinToken::parse(token_text).context("--token")?;
    if !server.starts_with("https://") {
        bail!("--server {server:?}: expected https://HOST:PORT");
    }
    let dir = pki_dir(agent_dir);
    let joined = join(server, &token, node_name, &dir).await?;
    let client = client_with(server, &joined.ca_pem, &Credentials::Certificate(&joined.client)).await?;
    Ok(Some(Connected {
        client,
        ca_pem: joined.ca_pem,
        dir,
    }))
}

impl Connected {
    /// The stored serving certificate for these names, if still good.
    pub fn stored_serving(&self, node_name: &str, ips: &[IpAddr]) -> Option<CertKey> {
        reusable_serving(&self.dir, &serving_sans(node_name, ips))
    }

    /// Requests the serving certificate until it is issued (retrying
    /// every few seconds after a failure).
    pub async fn serving_until_issued(self, node_name: String, ips: Vec<IpAddr>) -> CertKey {
        loop {
            match serving_certificate(&self.client, &node_name, &ips, &self.dir).await {
                Ok(pair) => return pair,
                Err(err) => {
                    tracing::warn!("no node API certificate yet: {err:#}");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    }
}

fn read_pair(dir: &Path, name: &str) -> Option<CertKey> {
    Some(CertKey {
        cert_pem: std::fs::read_to_string(dir.join(format!("{name}.crt"))).ok()?,
        key_pem: std::fs::read_to_string(dir.join(format!("{name}.key"))).ok()?,
    })
}

/// The stored client certificate, if it is for `user`, from the token's CA
/// and valid for more than a day.
fn reusable_client(dir: &Path, token: &JoinToken, user: &str) -> Option<Joined> {
    let ca_pem = std::fs::read_to_string(dir.join("ca.crt")).ok()?;
    if ca_hash(&ca_pem).ok()? != token.ca_hash {
        return None;
    }
    let client = read_pair(dir, "client")?;
    let info = inspect(&dir.join("client.crt"), &client.cert_pem).ok()?;
    let good = info.common_name == user && !info.expires_within(RENEW_WITHIN_DAYS);
    good.then_some(Joined { ca_pem, client })
}

/// The names a node's serving certificate holds: its IPs and its name.
pub fn serving_sans(node_name: &str, ips: &[IpAddr]) -> BTreeSet<San> {
    let mut sans: BTreeSet<San> = ips.iter().map(|ip| San::Ip(*ip)).collect();
    if let Ok(name) = San::parse(node_name) {
        sans.insert(name);
    }
    sans
}

/// The stored serving certificate, if it holds exactly `sans` and is valid
/// for more than a day.
pub fn reusable_serving(dir: &Path, sans: &BTreeSet<San>) -> Option<CertKey> {
    let pair = read_pair(dir, "serving")?;
    let info = inspect(&dir.join("serving.crt"), &pair.cert_pem).ok()?;
    (info.sans == *sans && !info.expires_within(RENEW_WITHIN_DAYS)).then_some(pair)
}

/// Gets (or reuses) the node API's serving certificate, asking as the node.
pub async fn serving_certificate(
    client: &kube::Client,
    node_name: &str,
    ips: &[IpAddr],
    dir: &Path,
) -> anyhow::Result<CertKey> {
    let sans = serving_sans(node_name, ips);
    if let Some(pair) = reusable_serving(dir, &sans) {
        return Ok(pair);
    }
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).context("generating the serving key")?;
    let csr = request_pem(
        &key,
        &format!("system:node:{node_name}"),
        &sans.iter().cloned().collect::<Vec<_>>(),
    )?;
    let usages = ["digital signature", "server auth"];
    tracing::info!(node = %node_name, "requesting a node API serving certificate");
    let cert_pem = request_certificate(
        client,
        &csr,
        KUBELET_SERVING_SIGNER,
        &usages,
        SERVING_CERT_TIMEOUT,
    )
    .await
    .context("getting the node API's serving certificate")?;
    let pair = CertKey {
        cert_pem,
        key_pem: key.serialize_pem(),
    };
    write_file(dir, "serving.key", &pair.key_pem)?;
    write_file(dir, "serving.crt", &pair.cert_pem)?;
    Ok(pair)
}

fn write_file(dir: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(name);
    write_atomic(&path, text.as_bytes(), 0o600).with_context(|| format!("writing {}", path.display()))
}

/// A PEM PKCS#10 request for CN `user`, O `system:nodes` and `sans`.
pub fn request_pem(key: &KeyPair, user: &str, sans: &[San]) -> anyhow::Result<String> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, NODES_GROUP);
    dn.push(DnType::CommonName, user);
    params.distinguished_name = dn;
    for san in sans {
        params.subject_alt_names.push(match san {
            San::Ip(ip) => SanType::IpAddress(*ip),
            San::Dns(name) => SanType::DnsName(name.as_str().try_into().context("a DNS name")?),
        });
    }
    let csr = params
        .serialize_request(key)
        .context("building the certificate request")?;
    csr.pem().context("encoding the certificate request")
}

/// Reads cluster-info without trusting the server and returns its CA if
/// the CA's hash is the token's.
pub async fn fetch_ca(server: &str, token: &JoinToken) -> anyhow::Result<String> {
    let url = server
        .parse()
        .with_context(|| format!("--server {server:?} is not a URL"))?;
    let mut config = kube::Config::new(url);
    // Nothing is trusted yet: the CA is checked against the token below.
    config.accept_invalid_certs = true;
    let client = kube::Client::try_from(config).context("building the discovery client")?;
    let api: Api<ConfigMap> = Api::namespaced(client, CLUSTER_INFO_NAMESPACE);
    let cm = api
        .get(CLUSTER_INFO_NAME)
        .await
        .with_context(|| format!("reading {CLUSTER_INFO_NAMESPACE}/{CLUSTER_INFO_NAME} from {server}"))?;
    let kubeconfig = cm
        .data
        .as_ref()
        .and_then(|d| d.get("kubeconfig"))
        .context("cluster-info has no kubeconfig")?;
    let ca_pem = crate::token::ca_of_cluster_info(kubeconfig)?;
    let got = ca_hash(&ca_pem).context("cluster-info's CA")?;
    if got != token.ca_hash {
        bail!(
            "the server's CA certificate (sha256 {got}) does not match the join token's (sha256 {}): \
             a wrong server, or a token of another cluster",
            token.ca_hash
        );
    }
    Ok(ca_pem)
}

/// A client for `server` trusting `ca_pem` with `creds`.
pub async fn client_with(
    server: &str,
    ca_pem: &str,
    creds: &Credentials<'_>,
) -> anyhow::Result<kube::Client> {
    let yaml = skiff_apiserver::kubeconfig::render(server, ca_pem, creds)?;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).context("the agent's client config")?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await
            .context("the agent's client config")?;
    kube::Client::try_from(config).context("building the API client")
}

/// Sends a CSR and waits until it is issued (or denied, failed, or `timeout`).
pub async fn request_certificate(
    client: &kube::Client,
    csr_pem: &str,
    signer: &str,
    usages: &[&str],
    timeout: Duration,
) -> anyhow::Result<String> {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let mut csr = CertificateSigningRequest {
        spec: CertificateSigningRequestSpec {
            request: ByteString(csr_pem.as_bytes().to_vec()),
            signer_name: signer.to_string(),
            usages: Some(usages.iter().map(|u| u.to_string()).collect()),
            ..CertificateSigningRequestSpec::default()
        },
        ..CertificateSigningRequest::default()
    };
    csr.metadata.generate_name = Some("node-csr-".into());
    let created = api
        .create(&PostParams::default(), &csr)
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) if s.code == 401 => {
                anyhow::anyhow!(
                    "the server refused the join token (401 Unauthorized): it is wrong, expired or deleted"
                )
            }
            other => anyhow::Error::new(other).context("creating the certificate signing request"),
        })?;
    let name = created.metadata.name.clone().unwrap_or_default();
    let deadline = Instant::now() + timeout;
    loop {
        let csr = api
            .get(&name)
            .await
            .with_context(|| format!("reading certificate signing request {name}"))?;
        let status = csr.status.unwrap_or_default();
        if let Some(cert) = status.certificate.filter(|c| !c.0.is_empty()) {
            tracing::info!(csr = %name, "certificate issued");
            return String::from_utf8(cert.0).context("the issued certificate is not PEM");
        }
        for c in status.conditions.unwrap_or_default() {
            if (c.type_ == "Denied" || c.type_ == "Failed") && c.status == "True" {
                bail!(
                    "certificate signing request {name} was {}: {}",
                    c.type_.to_ascii_lowercase(),
                    c.message.unwrap_or_default()
                );
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "certificate signing request {name} was not issued within {}s (kubectl certificate approve {name})",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_the_node_identity_and_names() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let sans: Vec<San> = serving_sans("n1", &["10.0.0.2".parse().unwrap()])
            .into_iter()
            .collect();
        let pem = request_pem(&key, "system:node:n1", &sans).unwrap();
        let info = skiff_api::certificates::parse_request(pem.as_bytes()).unwrap();
        assert_eq!(info.common_name, "system:node:n1");
        assert_eq!(info.organizations, vec!["system:nodes".to_string()]);
        assert_eq!(info.dns_names, vec!["n1".to_string()]);
        assert_eq!(info.ip_addresses, vec!["10.0.0.2".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn nothing_is_reused_from_an_empty_or_foreign_dir() {
        let dir = tempfile::tempdir().unwrap();
        let token = JoinToken::parse(&format!("K10{}::abcdef.0123456789abcdef", "a".repeat(64))).unwrap();
        assert!(reusable_client(dir.path(), &token, "system:node:n1").is_none());
        assert!(reusable_serving(dir.path(), &serving_sans("n1", &[])).is_none());
    }
}
