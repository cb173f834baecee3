//! DNS server configuration and its error type.

use std::net::{IpAddr, SocketAddr};

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

/// systemd-resolved's list of the servers its stub forwards to.
pub const SYSTEMD_RESOLV_CONF: &str = "/run/systemd/resolve/resolv.conf";

/// The resolvers of this host that other names are forwarded to: the
/// `nameserver` lines of `path` (normally /etc/resolv.conf), on port 53.
///
/// Cluster DNS runs in the host's network namespace, so loopback resolvers
/// work and are kept, with one exception taken from kubelet and k3s: when
/// `path` lists only systemd-resolved's stub (127.0.0.53 or 127.0.0.54) and
/// [`SYSTEMD_RESOLV_CONF`] lists real servers, those are used instead (one
/// hop less, and the same servers pods would get with `dnsPolicy: Default`).
pub fn host_resolvers(path: &str) -> Vec<SocketAddr> {
    upstreams_from(path, SYSTEMD_RESOLV_CONF)
}

/// [`host_resolvers`] with systemd-resolved's file given (tests).
pub fn upstreams_from(path: &str, systemd_path: &str) -> Vec<SocketAddr> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let servers = parse_resolv_conf(&text);
    let stub = |a: &SocketAddr| matches!(a.ip(), IpAddr::V4(v4) if v4.octets()[..3] == [127, 0, 0] && matches!(v4.octets()[3], 53 | 54));
    if !servers.is_empty() && servers.iter().all(stub) {
        let real: Vec<SocketAddr> = std::fs::read_to_string(systemd_path)
            .map(|t| parse_resolv_conf(&t))
            .unwrap_or_default()
            .into_iter()
            .filter(|a| !stub(a))
            .collect();
        if !real.is_empty() {
            return real;
        }
    }
    servers
}

/// `upstreams` without the addresses cluster DNS itself answers on
/// (`listen`, loopback on a wildcard listen port, and `own_ips` on port
/// 53), so a host whose resolv.conf points back at cluster DNS does not
/// make forwarded queries loop.
pub fn without_self(upstreams: &[SocketAddr], listen: &[SocketAddr], own_ips: &[IpAddr]) -> Vec<SocketAddr> {
    upstreams
        .iter()
        .filter(|u| {
            let listened = listen.iter().any(|l| {
                *l == **u
                    || (l.port() == u.port()
                        && l.ip().is_unspecified()
                        && (u.ip().is_loopback() || own_ips.contains(&u.ip())))
            });
            let own = u.port() == 53 && own_ips.contains(&u.ip());
            !(listened || own)
        })
        .copied()
        .collect()
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

    #[test]
    fn systemd_resolved_stub_is_replaced_by_its_upstreams() {
        let dir = std::env::temp_dir().join(format!("skiff-dns-resolv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (etc, run) = (dir.join("etc"), dir.join("run"));
        let (etc_s, run_s) = (etc.to_str().unwrap(), run.to_str().unwrap());
        std::fs::write(&etc, "nameserver 127.0.0.53\noptions edns0 trust-ad\n").unwrap();
        std::fs::write(&run, "nameserver 192.0.2.53\nnameserver 192.0.2.54\n").unwrap();
        let want: Vec<SocketAddr> = vec!["192.0.2.53:53".parse().unwrap(), "192.0.2.54:53".parse().unwrap()];
        assert_eq!(upstreams_from(etc_s, run_s), want);
        // Without systemd's file the stub is kept: it works from the host.
        assert_eq!(
            upstreams_from(etc_s, "/nonexistent"),
            vec!["127.0.0.53:53".parse().unwrap()]
        );
        // Any other resolver listed keeps the file as it is.
        std::fs::write(&etc, "nameserver 127.0.0.53\nnameserver 10.0.0.2\n").unwrap();
        assert_eq!(upstreams_from(etc_s, run_s).len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn upstreams_pointing_back_at_cluster_dns_are_dropped() {
        let ups: Vec<SocketAddr> = [
            "10.43.0.10:53",
            "127.0.0.1:53",
            "10.42.0.1:53",
            "192.0.2.1:53",
            "127.0.0.1:5353",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let own: Vec<IpAddr> = vec!["10.43.0.10".parse().unwrap(), "10.42.0.1".parse().unwrap()];
        let got = without_self(&ups, &["0.0.0.0:53".parse().unwrap()], &own);
        assert_eq!(
            got,
            vec!["192.0.2.1:53".parse().unwrap(), "127.0.0.1:5353".parse().unwrap()]
        );
        let got = without_self(&ups, &["10.42.0.1:53".parse().unwrap()], &own);
        assert_eq!(got.len(), 3);
    }
}
