//! Builds a kube-rs client from any kubeconfig, refusing targets that are not
//! on this machine's loopback interface. Client-side retries are turned off so
//! every 429/503 the server answers is counted, not hidden.

use std::net::IpAddr;
use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::error::BenchError;

/// A connected client and the URL it talks to.
pub struct Target {
    /// The client; cheap to clone, shares one connection pool.
    pub client: Client,
    /// The API server URL from the kubeconfig.
    pub url: String,
}

/// Loads `path` (current context) and builds a client for it.
pub async fn connect(path: &Path) -> Result<Target, BenchError> {
    let kubeconfig_error = |source| BenchError::Kubeconfig {
        path: path.to_path_buf(),
        source,
    };
    let kubeconfig = Kubeconfig::read_from(path).map_err(kubeconfig_error)?;
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(kubeconfig_error)?;
    let url = config.cluster_url.to_string();
    if !is_loopback_host(config.cluster_url.host().unwrap_or_default()) {
        return Err(BenchError::NotLoopback(url));
    }
    config.default_retry = false;
    let client = Client::try_from(config).map_err(|e| BenchError::api("building the client", e))?;
    Ok(Target { client, url })
}

/// Creates the namespace `name` for one bench run (the caller deletes it).
pub async fn create_namespace(client: &Client, name: &str) -> Result<(), BenchError> {
    let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client.clone());
    let namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).map_err(|e| {
        BenchError::Response {
            what: "namespace".into(),
            detail: e.to_string(),
        }
    })?;
    api.create(&kube::api::PostParams::default(), &namespace)
        .await
        .map_err(|e| BenchError::api("creating namespace", e))?;
    Ok(())
}

/// True for `localhost`, 127.0.0.0/8 and `::1` (with or without brackets).
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_accepted() {
        for host in ["127.0.0.1", "127.3.2.1", "localhost", "LOCALHOST", "::1", "[::1]"] {
            assert!(is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn other_hosts_are_refused() {
        for host in [
            "10.0.0.1",
            "192.168.1.5",
            "example.com",
            "",
            "0.0.0.0",
            "[2001:db8::1]",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[tokio::test]
    async fn a_kubeconfig_for_a_remote_server_is_refused() {
        let dir = std::env::temp_dir().join(format!("skiff-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("remote.kubeconfig");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    \
             server: https://10.1.2.3:6443\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  \
             context:\n    cluster: k\n    user: u\nusers:\n- name: u\n  user:\n    token: t\n",
        )
        .unwrap();
        let result = connect(&path).await;
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(result, Err(BenchError::NotLoopback(url)) if url.contains("10.1.2.3")));
    }
}
