//! Writes kubeconfig files: the admin kubeconfig (`DATA_DIR/admin.kubeconfig`)
//! that the real kubectl uses with no flags, and any other client config with
//! inline CA, certificate and key. Cluster, user, context and current-context
//! are all named `default`, as k3s names them.
//!
//! Must not: create credentials; it only writes what it is given.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::pki::{CertKey, write_atomic};

/// The name of the admin kubeconfig in the data dir.
pub const ADMIN_KUBECONFIG: &str = "admin.kubeconfig";

/// Errors writing a kubeconfig.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rendering kubeconfig: {0}")]
    Render(String),
}

/// The client credentials a kubeconfig carries.
#[derive(Debug, Clone)]
pub enum Credentials<'a> {
    /// A client certificate and key (PEM).
    Certificate(&'a CertKey),
    /// A bearer token.
    Token(&'a str),
}

/// The kubeconfig YAML for `server` (e.g. `https://127.0.0.1:6443`), trusting
/// `ca_pem` and authenticating with `creds`.
pub fn render(server: &str, ca_pem: &str, creds: &Credentials<'_>) -> Result<String, KubeconfigError> {
    let user = match creds {
        Credentials::Certificate(pair) => json!({
            "client-certificate-data": STANDARD.encode(&pair.cert_pem),
            "client-key-data": STANDARD.encode(&pair.key_pem),
        }),
        Credentials::Token(token) => json!({ "token": token }),
    };
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "default",
            "cluster": {
                "certificate-authority-data": STANDARD.encode(ca_pem),
                "server": server,
            },
        }],
        "contexts": [{
            "name": "default",
            "context": { "cluster": "default", "user": "default" },
        }],
        "current-context": "default",
        "preferences": {},
        "users": [{ "name": "default", "user": user }],
    });
    serde_saphyr::to_string(&config).map_err(|e| KubeconfigError::Render(e.to_string()))
}

/// Writes a kubeconfig to `path` with mode 0600 (atomically).
pub fn write(
    path: &Path,
    server: &str,
    ca_pem: &str,
    creds: &Credentials<'_>,
) -> Result<(), KubeconfigError> {
    let text = render(server, ca_pem, creds)?;
    write_atomic(path, text.as_bytes(), 0o600).map_err(|source| KubeconfigError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The `https://HOST:PORT` URL clients on this machine use for a server bound
/// to `bind`: 127.0.0.1 when bound to all addresses, else `bind` itself.
pub fn local_server_url(bind: std::net::IpAddr, port: u16) -> String {
    if bind.is_unspecified() {
        format!("https://127.0.0.1:{port}")
    } else {
        format!("https://{}", std::net::SocketAddr::new(bind, port))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "kubeconfig_tests.rs"]
mod tests;
