//! DNS server configuration and its error type.

use std::net::SocketAddr;

/// How the cluster DNS server runs.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Addresses to listen on, UDP and TCP each (default `0.0.0.0:53`).
    pub listen: Vec<SocketAddr>,
    /// The cluster domain, without a trailing dot (default `cluster.local`).
    pub cluster_domain: String,
    /// Resolvers that names outside the cluster domain are forwarded to.
    pub upstreams: Vec<SocketAddr>,
    /// TTL of cluster answers in seconds (CoreDNS's default is 5).
    pub ttl: u32,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 53))],
            cluster_domain: "cluster.local".into(),
            upstreams: host_resolvers("/etc/resolv.conf"),
            ttl: 5,
        }
    }
}

/// The `nameserver` lines of a resolv.conf, on port 53. Loopback resolvers
/// (systemd-resolved's stub) are kept: the server runs on the host.
pub fn host_resolvers(path: &str) -> Vec<SocketAddr> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    parse_resolv_conf(&text)
}

/// Parses `nameserver` lines out of resolv.conf text.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            (it.next() == Some("nameserver")).then(|| it.next()).flatten()
        })
        .filter_map(|a| a.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// Errors from running the DNS server.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// A listen address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The cluster domain is not a valid DNS name.
    #[error("invalid cluster domain {0:?}")]
    Domain(String),
    /// A socket failed while serving.
    #[error("serving DNS: {0}")]
    Io(#[from] std::io::Error),
    /// An API call failed (kube-dns Service upkeep).
    #[error("API: {0}")]
    Api(#[from] kube::Error),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn resolv_conf_nameservers() {
        let t = "# c\nsearch x\nnameserver 10.0.0.1\nnameserver ::1\nnameserver junk\noptions ndots:5\n";
        let got = parse_resolv_conf(t);
        assert_eq!(
            got,
            vec!["10.0.0.1:53".parse().unwrap(), "[::1]:53".parse().unwrap()]
        );
    }
}
