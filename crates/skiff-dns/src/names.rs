//! Parsing a query name inside the cluster domain into what it asks for.

/// What a name under the cluster domain refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterName {
    /// The domain apex itself.
    Apex,
    /// An empty non-terminal such as `svc.<domain>` or `ns.svc.<domain>`.
    Interior,
    /// `svc.ns.svc.<domain>`.
    Service {
        /// Namespace.
        ns: String,
        /// Service name.
        name: String,
    },
    /// `host.svc.ns.svc.<domain>`: an endpoint by hostname or dashed IP.
    Endpoint {
        /// Namespace.
        ns: String,
        /// Service name.
        name: String,
        /// The endpoint's hostname, or its IP with dashes.
        host: String,
    },
    /// `_port._proto.svc.ns.svc.<domain>`.
    Srv {
        /// Namespace.
        ns: String,
        /// Service name.
        name: String,
        /// Port name without the underscore.
        port: String,
        /// Protocol (`tcp`/`udp`/`sctp`) without the underscore.
        proto: String,
    },
    /// `a-b-c-d.ns.pod.<domain>`.
    Pod {
        /// The IP encoded in the first label.
        ip: std::net::IpAddr,
    },
    /// Nothing can exist at this name.
    Unknown,
}

/// Splits `qname` (any case, with or without the final dot) against
/// `domain`; `None` when the name is outside the cluster domain.
pub fn parse(qname: &str, domain: &str) -> Option<ClusterName> {
    let q = qname.trim_end_matches('.').to_ascii_lowercase();
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    let rest = if q == d {
        ""
    } else {
        q.strip_suffix(&d)?.strip_suffix('.')?
    };
    if rest.is_empty() {
        return Some(ClusterName::Apex);
    }
    let labels: Vec<&str> = rest.split('.').collect();
    let s = |i: usize| labels[i].to_string();
    Some(match labels.as_slice() {
        ["svc"] | [_, "svc"] | ["pod"] | [_, "pod"] => ClusterName::Interior,
        [_, _, "svc"] => ClusterName::Service { ns: s(1), name: s(0) },
        [p, t, _, _, "svc"] if p.starts_with('_') && t.starts_with('_') => ClusterName::Srv {
            ns: s(3),
            name: s(2),
            port: p[1..].to_string(),
            proto: t[1..].to_string(),
        },
        [_, _, _, "svc"] => ClusterName::Endpoint {
            ns: s(2),
            name: s(1),
            host: s(0),
        },
        [ip, _, "pod"] => match dashed_ip(ip) {
            Some(ip) => ClusterName::Pod { ip },
            None => ClusterName::Unknown,
        },
        _ => ClusterName::Unknown,
    })
}

/// Decodes `10-42-0-5` (or an IPv6 address with dashes for colons).
pub fn dashed_ip(label: &str) -> Option<std::net::IpAddr> {
    if let Ok(v4) = label.replace('-', ".").parse::<std::net::Ipv4Addr>() {
        return Some(v4.into());
    }
    label
        .replace('-', ":")
        .parse::<std::net::Ipv6Addr>()
        .ok()
        .map(Into::into)
}

/// Encodes an IP as a DNS label (`10.42.0.5` → `10-42-0-5`).
pub fn ip_label(ip: &std::net::IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const D: &str = "cluster.local";

    #[test]
    fn service_names() {
        assert_eq!(
            parse("Web.Default.svc.cluster.local.", D),
            Some(ClusterName::Service {
                ns: "default".into(),
                name: "web".into()
            })
        );
        assert_eq!(parse("cluster.local.", D), Some(ClusterName::Apex));
        assert_eq!(parse("default.svc.cluster.local", D), Some(ClusterName::Interior));
        assert_eq!(parse("example.com.", D), None);
        assert_eq!(parse("notcluster.local.", D), None);
    }

    #[test]
    fn srv_endpoint_and_pod_names() {
        assert_eq!(
            parse("_http._tcp.web.ns.svc.cluster.local", D),
            Some(ClusterName::Srv {
                ns: "ns".into(),
                name: "web".into(),
                port: "http".into(),
                proto: "tcp".into()
            })
        );
        assert_eq!(
            parse("web-0.web.ns.svc.cluster.local", D),
            Some(ClusterName::Endpoint {
                ns: "ns".into(),
                name: "web".into(),
                host: "web-0".into()
            })
        );
        assert_eq!(
            parse("10-42-0-5.ns.pod.cluster.local", D),
            Some(ClusterName::Pod {
                ip: "10.42.0.5".parse().unwrap()
            })
        );
        assert_eq!(
            parse("a.b.c.d.e.svc.cluster.local", D),
            Some(ClusterName::Unknown)
        );
        assert_eq!(ip_label(&"10.42.0.5".parse().unwrap()), "10-42-0-5");
    }
}
