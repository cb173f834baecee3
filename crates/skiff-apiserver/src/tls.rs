//! HTTPS serving: the rustls server configuration (ring provider, ALPN h2 and
//! http/1.1, optional client certificates verified against the cluster CA),
//! the accept loop with hyper-util's auto (HTTP/1.1 + HTTP/2) connection
//! builder, per-request authentication, and graceful shutdown.
//!
//! Each request reaches the router with its [`UserInfo`] and the peer's
//! [`axum::extract::ConnectInfo`]`<SocketAddr>` as extensions; requests that
//! fail authentication get the 401 Status here and never reach the router.
//! Connections keep HTTP upgrades working (exec/attach/port-forward).
//!
//! Must not: know about API resources; routing is the router's job.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::authn::{self, Authenticator, UserInfo};
use crate::pki::CertKey;

/// A TLS handshake that takes longer than this is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// On shutdown, open connections get this long to finish their requests.
/// Watches never finish by themselves, so this bounds how long a server with
/// watchers takes to stop.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// HTTP/2 streams per connection, as kube-apiserver's default.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 1000;

/// Errors building the TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {what}: {detail}")]
    Pem { what: &'static str, detail: String },
    #[error("CA certificate rejected: {0}")]
    Ca(#[source] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    #[error("TLS configuration: {0}")]
    Config(#[source] rustls::Error),
}

/// Installs ring as the process-wide rustls crypto provider. Idempotent:
/// later calls (or a provider installed by someone else) are fine.
pub fn install_ring_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The server configuration: `serving` as the certificate chain, client
/// certificates optional but, when sent, verified against `ca_pem`.
pub fn server_config(ca_pem: &str, serving: &CertKey) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| TlsError::Pem {
            what: "CA certificate",
            detail: e.to_string(),
        })?;
        roots.add(cert).map_err(TlsError::Ca)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(TlsError::Verifier)?;
    let chain = CertificateDer::pem_slice_iter(serving.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what: "serving certificate",
            detail: e.to_string(),
        })?;
    let key = PrivateKeyDer::from_pem_slice(serving.key_pem.as_bytes()).map_err(|e| TlsError::Pem {
        what: "serving key",
        detail: e.to_string(),
    })?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `router` over TLS on `listener` until `shutdown` completes, then
/// stops accepting and waits up to [`DRAIN_TIMEOUT`] for open connections.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Arc<ServerConfig>,
    authn: Arc<Authenticator>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION);
    tokio::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let builder = builder.clone();
        let router = router.clone();
        let authn = authn.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    tracing::debug!(%remote, %err, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, "TLS handshake timed out");
                    return;
                }
            };
            let peer = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(UserInfo::from_certificate);
            let service = hyper::service::service_fn(move |req| {
                handle(req, router.clone(), authn.clone(), peer.clone(), remote)
            });
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(err) = watcher.watch(conn).await {
                tracing::debug!(%remote, %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::info!("closing connections still open after drain timeout"),
    }
}

async fn handle(
    mut req: Request<Incoming>,
    router: Router,
    authn: Arc<Authenticator>,
    peer: Option<UserInfo>,
    remote: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    match authn.authenticate(req.headers(), req.uri().path(), peer.as_ref()) {
        Ok(user) => {
            if let Err(err) = crate::bootstrap::authz::authorize(&user, req.method(), req.uri()) {
                return Ok(authn::error_response(&err));
            }
            authn::strip_websocket_token(req.headers_mut());
            req.extensions_mut().insert(user);
            req.extensions_mut().insert(ConnectInfo(remote));
            router.oneshot(req).await
        }
        Err(err) => {
            tracing::debug!(%remote, %err, path = req.uri().path(), "unauthenticated request");
            Ok(authn::error_response(&err.to_api_error()))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "tls_tests.rs"]
mod tests;
