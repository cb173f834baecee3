//! The CRI v1 connection: gRPC over containerd's unix socket, as one
//! cheaply clonable [`CriClient`] holding the runtime and image services.
//! The node agent, the test kit (tear-down of a test's node) and the
//! benchmarks (the raw CRI floor) all connect with it.
//!
//! Owns only the transport; what is asked of the runtime lives with the
//! code that asks it (the agent's pods, probes and node API).

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint};

/// Why the runtime could not be reached or answered with an error.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    /// The socket could not be connected.
    #[error("connecting to the container runtime at {path}: {source}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The transport error.
        source: tonic::transport::Error,
    },
    /// The runtime answered a call with an error status.
    #[error("container runtime: {0}")]
    Status(#[from] tonic::Status),
}

impl CriError {
    /// True when the runtime said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, CriError::Status(s) if s.code() == tonic::Code::NotFound)
    }
}

/// Both CRI services on one channel. Cloning shares the connection.
#[derive(Debug, Clone)]
pub struct CriClient {
    /// `runtime.v1.RuntimeService`: sandboxes, containers, exec, stats.
    pub runtime: RuntimeServiceClient<Channel>,
    /// `runtime.v1.ImageService`: pull, list, status, remove.
    pub image: ImageServiceClient<Channel>,
}

/// Largest gRPC message accepted (ListContainers on a busy node is large).
const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

impl CriClient {
    /// Connects to a CRI runtime listening on the unix socket `path`
    /// (a `unix://` prefix is accepted, as kubelet's flag takes it).
    pub async fn connect(path: impl AsRef<Path>) -> Result<CriClient, CriError> {
        let raw = path.as_ref().to_string_lossy();
        let socket = PathBuf::from(raw.strip_prefix("unix://").unwrap_or(&raw));
        // The URI is required by tonic but never dialled: the connector
        // below opens the unix socket instead.
        let endpoint = Endpoint::from_static("http://cri.invalid")
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120));
        let target = socket.clone();
        let channel = endpoint
            .connect_with_connector(tower::service_fn(move |_| {
                let target = target.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(target).await?))
                }
            }))
            .await
            .map_err(|source| CriError::Connect { path: socket, source })?;
        Ok(CriClient {
            runtime: RuntimeServiceClient::new(channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES),
            image: ImageServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES),
        })
    }

    /// The runtime's name and version (`containerd`, `1.6.x`): a liveness check.
    pub async fn version(&self) -> Result<(String, String), CriError> {
        let reply = self
            .runtime
            .clone()
            .version(k8s_cri::v1::VersionRequest { version: "v1".into() })
            .await?
            .into_inner();
        Ok((reply.runtime_name, reply.runtime_version))
    }
}
