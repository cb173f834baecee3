//! The node API: the agent's HTTPS server (the kubelet's port 10250) that the
//! API server proxies `pods/log`, `pods/exec`, `pods/attach` and
//! `pods/portforward` to.
//!
//! Routes (kubelet's paths):
//! - `GET /containerLogs/{ns}/{pod}/{container}` with `follow`, `previous`,
//!   `tailLines`, `sinceSeconds`, `sinceTime`, `timestamps`, `limitBytes`;
//! - `GET|POST /exec/{ns}/{pod}/{container}?command=..&stdin&stdout&stderr&tty`
//!   and `/attach/{ns}/{pod}/{container}`: WebSocket (`v5.channel.k8s.io`,
//!   `v4.channel.k8s.io`) translated to containerd's SPDY streaming server, or
//!   SPDY passed through as it is;
//! - `GET|POST /portForward/{ns}/{pod}`: SPDY, or SPDY tunnelled in a
//!   WebSocket (`SPDY/3.1+portforward.k8s.io`), passed through to containerd.
//!
//! Security: every client must present a certificate signed by the cluster CA
//! ([`NodeApiTls::client_ca_pem`]) whose common name is one of
//! [`NodeApiTls::allowed_clients`] (by default only the API server's
//! `system:skiff-apiserver`) or which is in the `system:masters` group.
//!
//! Must not: talk to the cluster API; everything comes from CRI and the files
//! containerd writes.

mod bridge;
mod logfmt;
mod logs;
mod lookup;
mod spdy;
mod stream;
mod tls;
mod upgrade;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use tokio::net::TcpListener;

use crate::config::AgentConfig;
use crate::cri::{CriClient, CriError};

pub use tls::{APISERVER_CLIENT_NAME, MASTERS_GROUP};

/// The node API's TLS material: its serving certificate, and the CA that
/// client certificates must be signed by.
#[derive(Clone)]
pub struct NodeApiTls {
    /// PEM serving certificate (chain) for the node's IP and host name.
    pub cert_pem: String,
    /// PEM private key of `cert_pem`.
    pub key_pem: String,
    /// PEM CA certificate(s) that client certificates must chain to.
    pub client_ca_pem: String,
    /// Common names of client certificates allowed in (besides members of
    /// `system:masters`).
    pub allowed_clients: Vec<String>,
}

impl std::fmt::Debug for NodeApiTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeApiTls")
            .field("allowed_clients", &self.allowed_clients)
            .finish_non_exhaustive()
    }
}

impl NodeApiTls {
    /// Serving certificate and key, client CA; only the API server
    /// ([`APISERVER_CLIENT_NAME`]) and `system:masters` may connect.
    pub fn new(
        cert_pem: impl Into<String>,
        key_pem: impl Into<String>,
        client_ca_pem: impl Into<String>,
    ) -> Self {
        NodeApiTls {
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
            client_ca_pem: client_ca_pem.into(),
            allowed_clients: vec![APISERVER_CLIENT_NAME.to_string()],
        }
    }
}

/// Why the node API could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeApiError {
    /// The listening socket could not be bound.
    #[error("node API: listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS material is unusable.
    #[error("node API TLS: {0}")]
    Tls(String),
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct NodeApi {
    pub cri: CriClient,
}

/// Serves the node API on `cfg.node_ip:cfg.node_api_port` forever.
pub async fn serve(cri: CriClient, cfg: &AgentConfig, tls: NodeApiTls) -> Result<(), NodeApiError> {
    let addr = SocketAddr::new(cfg.node_ip, cfg.node_api_port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| NodeApiError::Bind { addr, source })?;
    serve_on(listener, cri, tls).await
}

/// Serves the node API on an already bound listener forever (tests bind port 0).
pub async fn serve_on(listener: TcpListener, cri: CriClient, tls: NodeApiTls) -> Result<(), NodeApiError> {
    let state = NodeApi { cri };
    let config = tls::server_config(&tls)?;
    tls::serve(listener, router(state), config, Arc::new(tls.allowed_clients)).await;
    Ok(())
}

fn router(state: NodeApi) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/containerLogs/{ns}/{pod}/{container}", get(logs::container_logs))
        .route(
            "/exec/{ns}/{pod}/{container}",
            get(stream::exec).post(stream::exec),
        )
        .route(
            "/attach/{ns}/{pod}/{container}",
            get(stream::attach).post(stream::attach),
        )
        .route(
            "/portForward/{ns}/{pod}",
            get(stream::port_forward).post(stream::port_forward),
        )
        .with_state(state)
}

/// An error answered to the client as a `metav1.Status`.
#[derive(Debug)]
pub(crate) struct HttpError {
    pub code: StatusCode,
    pub reason: &'static str,
    pub message: String,
}

impl HttpError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        HttpError {
            code: StatusCode::BAD_REQUEST,
            reason: "BadRequest",
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        HttpError {
            code: StatusCode::NOT_FOUND,
            reason: "NotFound",
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        HttpError {
            code: StatusCode::INTERNAL_SERVER_ERROR,
            reason: "InternalError",
            message: message.into(),
        }
    }
}

impl From<CriError> for HttpError {
    fn from(e: CriError) -> Self {
        if e.is_not_found() {
            HttpError::not_found(e.to_string())
        } else {
            HttpError::internal(e.to_string())
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        let mut resp = Response::new(Body::from(status.to_string()));
        *resp.status_mut() = self.code;
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        resp
    }
}
