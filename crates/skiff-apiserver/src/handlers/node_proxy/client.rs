//! [`NodeProxy`]: the API server's TLS client identity for the hop to node
//! agents (`system:skiff-apiserver`, signed by the cluster CA), and the
//! HTTP/1.1 connection to one agent's node API with upgrades enabled.
//!
//! Must not: decide which node a request goes to (that is the handler's).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use skiff_api::status::ApiError;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::pki::{CertKey, Pki, PkiError, San};

/// The common name of the API server's client certificate towards agents
/// (what the agent's node API lets in).
pub const NODE_PROXY_CLIENT_NAME: &str = "system:skiff-apiserver";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the node proxy could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NodeProxyError {
    #[error("issuing the node proxy client certificate: {0}")]
    Pki(#[from] PkiError),
    #[error("node proxy TLS: {0}")]
    Tls(String),
}

/// How the API server reaches node agents. Install it on the router as an
/// extension: `api.router().layer(axum::Extension(node_proxy))`; without it
/// pods/log, exec, attach and portforward answer 503.
#[derive(Clone)]
pub struct NodeProxy {
    tls: Arc<ClientConfig>,
}

impl std::fmt::Debug for NodeProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeProxy").finish_non_exhaustive()
    }
}

impl NodeProxy {
    /// A proxy that presents `client` and trusts node serving certificates
    /// signed by `ca_pem`.
    pub fn new(ca_pem: &str, client: &CertKey) -> Result<NodeProxy, NodeProxyError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| NodeProxyError::Tls(format!("CA: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| NodeProxyError::Tls(format!("CA: {e}")))?;
        }
        let chain = CertificateDer::pem_slice_iter(client.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| NodeProxyError::Tls(format!("client certificate: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(client.key_pem.as_bytes())
            .map_err(|e| NodeProxyError::Tls(format!("client key: {e}")))?;
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| NodeProxyError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| NodeProxyError::Tls(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(NodeProxy {
            tls: Arc::new(config),
        })
    }

    /// A proxy with a fresh client certificate for
    /// [`NODE_PROXY_CLIENT_NAME`] issued by the cluster CA.
    pub fn from_pki(pki: &Pki) -> Result<NodeProxy, NodeProxyError> {
        let client = pki.issue_client(NODE_PROXY_CLIENT_NAME, &[])?;
        NodeProxy::new(pki.ca_cert_pem(), &client)
    }

    /// Sends `req` to the node API at `ip:port` over a new connection and
    /// returns its response (upgrades work on the connection).
    pub(crate) async fn send(
        &self,
        ip: IpAddr,
        port: u16,
        req: Request<Body>,
    ) -> Result<Response<Incoming>, ApiError> {
        let addr = SocketAddr::new(ip, port);
        let unreachable = |e: String| ApiError::internal(format!("error dialing backend: {addr}: {e}"));
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| unreachable("timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let tls = TlsConnector::from(self.tls.clone())
            .connect(ServerName::IpAddress(ip.into()), tcp)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(err) = conn.with_upgrades().await {
                tracing::debug!(%err, "node proxy connection ended with an error");
            }
        });
        sender
            .send_request(req)
            .await
            .map_err(|e| unreachable(e.to_string()))
    }
}

/// A serving certificate for a node's API: the node's IPs and name as SANs,
/// signed by the cluster CA. What an embedded agent gets from `skiff server`.
pub fn node_serving_cert(pki: &Pki, node_name: &str, ips: &[IpAddr]) -> Result<CertKey, PkiError> {
    let mut sans: Vec<San> = ips.iter().map(|ip| San::Ip(*ip)).collect();
    if let Ok(name) = San::parse(node_name) {
        sans.push(name);
    }
    pki.issue_serving(&sans)
}
