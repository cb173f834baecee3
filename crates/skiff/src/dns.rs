//! `skiff server`'s cluster DNS flags and start-up: turns the flags into a
//! [`skiff_dns::Embedded`] and starts it (the `kube-dns` Service at a fixed
//! ClusterIP, DNS listening on the embedded agent's bridge gateway).

use std::net::IpAddr;

use anyhow::Context;

/// Cluster DNS flags of `skiff server` (flatten into its args).
#[derive(Debug, Clone, clap::Args)]
pub struct DnsArgs {
    /// Do not run cluster DNS.
    #[arg(long)]
    pub disable_dns: bool,
    /// ClusterIP of the kube-dns Service; pods' resolv.conf points here.
    #[arg(long, default_value = "10.43.0.10")]
    pub cluster_dns: IpAddr,
    /// Host address DNS listens on and the kube-dns endpoint points at
    /// (default: the first address of the embedded agent node's podCIDR,
    /// i.e. its bridge gateway, which every local pod reaches).
    #[arg(long)]
    pub cluster_dns_endpoint: Option<IpAddr>,
    /// Port DNS listens on at the endpoint address.
    #[arg(long, default_value_t = 53)]
    pub cluster_dns_port: u16,
    /// The cluster domain.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
}

/// The first address of a podCIDR such as `10.42.0.0/24` (the bridge gateway).
pub fn gateway_of(pod_cidr: &str) -> Option<IpAddr> {
    let net: ipnet::IpNet = pod_cidr.parse().ok()?;
    net.hosts().next()
}

/// Starts cluster DNS unless disabled. `pod_cidr` is the embedded agent
/// node's podCIDR, used when no `--cluster-dns-endpoint` is given.
pub async fn start(
    client: kube::Client,
    args: &DnsArgs,
    pod_cidr: Option<&str>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    if args.disable_dns {
        return Ok(None);
    }
    let endpoint_ip = args
        .cluster_dns_endpoint
        .or_else(|| pod_cidr.and_then(gateway_of))
        .context("cluster DNS needs --cluster-dns-endpoint or the embedded agent's podCIDR")?;
    let e = skiff_dns::Embedded {
        cluster_ip: args.cluster_dns,
        endpoint_ip,
        port: args.cluster_dns_port,
        cluster_domain: args.cluster_domain.clone(),
    };
    Ok(Some(
        skiff_dns::start(client, e)
            .await
            .context("starting cluster DNS")?,
    ))
}

/// Aborts a task when dropped (a `JoinHandle` alone only detaches it).
pub struct AbortOnDrop(pub tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_is_the_first_pod_cidr_address() {
        assert_eq!(gateway_of("10.42.3.0/24"), "10.42.3.1".parse().ok());
        assert_eq!(gateway_of("junk"), None);
    }
}
