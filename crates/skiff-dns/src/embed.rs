//! Running cluster DNS inside `skiff server`: listen on the address pods
//! reach (retrying until it exists, e.g. until the agent has made its
//! bridge), and keep the `kube-dns` Service pointing at it.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::config::{DnsConfig, DnsError, host_resolvers, without_self};

/// Where and how the server's cluster DNS runs.
#[derive(Debug, Clone)]
pub struct Embedded {
    /// ClusterIP of the `kube-dns` Service (pods' resolv.conf nameserver).
    pub cluster_ip: IpAddr,
    /// Host address the Service's endpoint points at and DNS listens on.
    pub endpoint_ip: IpAddr,
    /// Port DNS listens on at `endpoint_ip` (53 normally).
    pub port: u16,
    /// Cluster domain.
    pub cluster_domain: String,
}

/// Publishes the `kube-dns` Service and serves DNS on
/// `endpoint_ip:port` in the background; binding is retried every 2 s
/// while the address does not exist yet. Returns once the Service is in place.
pub async fn start(client: kube::Client, e: Embedded) -> Result<tokio::task::JoinHandle<()>, DnsError> {
    crate::ensure_kube_dns_service(client.clone(), e.cluster_ip, e.endpoint_ip, e.port).await?;
    let cfg = DnsConfig {
        listen: vec![SocketAddr::new(e.endpoint_ip, e.port)],
        cluster_domain: e.cluster_domain,
        upstreams: without_self(
            &host_resolvers("/etc/resolv.conf"),
            &[],
            &[e.cluster_ip, e.endpoint_ip],
        ),
        ttl: 5,
    };
    Ok(tokio::spawn(async move {
        loop {
            match crate::serve(client.clone(), cfg.clone()).await {
                Err(DnsError::Bind { addr, source }) => {
                    tracing::debug!(%addr, error = %source, "cluster DNS cannot listen yet; retrying");
                }
                Err(err) => tracing::warn!(error = %err, "cluster DNS stopped; restarting"),
                Ok(()) => tracing::warn!("cluster DNS watches ended; restarting"),
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }))
}
