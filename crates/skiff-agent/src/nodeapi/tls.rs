//! TLS for the node API: a rustls server (ring) that requires a client
//! certificate chaining to the cluster CA, the check of the client's
//! identity (common name allow-list or `system:masters`), and the accept loop
//! serving HTTP/1.1 and HTTP/2 with upgrades.
//!
//! Must not: know the routes.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::{HttpError, NodeApiError, NodeApiTls};

/// The common name of the API server's client certificate for this hop.
pub const APISERVER_CLIENT_NAME: &str = "system:skiff-apiserver";
/// Members of this group (certificate O) may always use the node API.
pub const MASTERS_GROUP: &str = "system:masters";

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The rustls configuration: `tls`'s serving pair, client certificates required.
pub(super) fn server_config(tls: &NodeApiTls) -> Result<Arc<ServerConfig>, NodeApiError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(tls.client_ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| NodeApiError::Tls(format!("client CA: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| NodeApiError::Tls(format!("client CA: {e}")))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| NodeApiError::Tls(format!("client verifier: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(tls.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| NodeApiError::Tls(format!("serving certificate: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(tls.key_pem.as_bytes())
        .map_err(|e| NodeApiError::Tls(format!("serving key: {e}")))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| NodeApiError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| NodeApiError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The client's common name and organisations, from its leaf certificate.
fn identity(cert: &CertificateDer<'_>) -> Option<(String, Vec<String>)> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let subject = parsed.subject();
    let cn = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())?
        .to_string();
    let orgs = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok().map(str::to_string))
        .collect();
    Some((cn, orgs))
}

/// True when a client with this identity may use the node API.
pub(super) fn allowed(cn: &str, orgs: &[String], allowed_clients: &[String]) -> bool {
    allowed_clients.iter().any(|c| c == cn) || orgs.iter().any(|o| o == MASTERS_GROUP)
}

/// Accepts TLS connections on `listener` forever and serves `router` on them.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    config: Arc<ServerConfig>,
    allowed_clients: Arc<Vec<String>>,
) {
    let acceptor = TlsAcceptor::from(config);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(pair) => pair,
            Err(err) => {
                tracing::warn!(%err, "node API: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let builder = builder.clone();
        let router = router.clone();
        let allowed_clients = allowed_clients.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    tracing::debug!(%remote, %err, "node API: TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let who = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(identity);
            let permitted = who
                .as_ref()
                .is_some_and(|(cn, orgs)| allowed(cn, orgs, &allowed_clients));
            if !permitted {
                tracing::info!(%remote, client = ?who.map(|w| w.0), "node API: client not allowed");
            }
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let router = router.clone();
                async move {
                    if permitted {
                        router.oneshot(req).await
                    } else {
                        Ok::<Response<Body>, Infallible>(forbidden())
                    }
                }
            });
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(err) = conn.await {
                tracing::debug!(%remote, %err, "node API: connection ended with an error");
            }
        });
    }
}

fn forbidden() -> Response<Body> {
    HttpError {
        code: StatusCode::FORBIDDEN,
        reason: "Forbidden",
        message: "this client may not use the node API".into(),
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_api_server_or_masters_are_allowed() {
        let list = vec![APISERVER_CLIENT_NAME.to_string()];
        assert!(allowed(APISERVER_CLIENT_NAME, &[], &list));
        assert!(allowed("system:admin", &[MASTERS_GROUP.to_string()], &list));
        assert!(!allowed("system:node:n1", &["system:nodes".to_string()], &list));
    }
}
