//! Subject alternative names of the serving certificate: the [`San`] type and
//! the set the API server is reachable under.

use std::fmt;
use std::net::IpAddr;

use super::PkiError;

/// One subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum San {
    Dns(String),
    Ip(IpAddr),
}

impl San {
    /// An IP SAN if `name` parses as an address, else a (lower-cased) DNS SAN.
    pub fn parse(name: &str) -> Result<San, PkiError> {
        let name = name.trim();
        if let Ok(ip) = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Ok(San::Ip(ip));
        }
        let valid = !name.is_empty()
            && name.len() <= 253
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*' | '_'));
        if !valid {
            return Err(PkiError::InvalidSan(name.to_string()));
        }
        Ok(San::Dns(name.to_ascii_lowercase()))
    }

    pub(crate) fn to_rcgen(&self) -> Result<rcgen::SanType, PkiError> {
        Ok(match self {
            San::Ip(ip) => rcgen::SanType::IpAddress(*ip),
            San::Dns(name) => rcgen::SanType::DnsName(
                name.clone()
                    .try_into()
                    .map_err(|_| PkiError::InvalidSan(name.clone()))?,
            ),
        })
    }
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(name) => write!(f, "DNS:{name}"),
            San::Ip(ip) => write!(f, "IP:{ip}"),
        }
    }
}

/// The in-cluster DNS names of the API server's Service.
pub const KUBERNETES_NAMES: [&str; 4] = [
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// The SANs of the serving certificate: localhost, 127.0.0.1, ::1, the
/// host's addresses, the `kubernetes.default...` names, the `kubernetes`
/// Service's ClusterIP and every extra name (`--tls-san`). Sorted, no duplicates.
pub fn serving_sans(
    service_ip: IpAddr,
    host_addrs: &[IpAddr],
    extra: &[String],
) -> Result<Vec<San>, PkiError> {
    let mut sans = std::collections::BTreeSet::new();
    sans.insert(San::Dns("localhost".into()));
    sans.insert(San::Ip(IpAddr::from([127, 0, 0, 1])));
    sans.insert(San::Ip(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)));
    sans.extend(host_addrs.iter().map(|ip| San::Ip(*ip)));
    sans.extend(KUBERNETES_NAMES.iter().map(|n| San::Dns((*n).to_string())));
    sans.insert(San::Ip(service_ip));
    for name in extra {
        sans.insert(San::parse(name)?);
    }
    Ok(sans.into_iter().collect())
}
