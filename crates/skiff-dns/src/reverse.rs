//! Reverse lookups (PTR) for cluster addresses, as the DNS spec's section
//! 2.5 and CoreDNS's kubernetes plugin answer them: a Service's ClusterIP
//! maps to `svc.ns.svc.<domain>`, a ready endpoint of a headless Service to
//! `<hostname or dashed IP>.svc.ns.svc.<domain>`. IPv4 (`in-addr.arpa`) and
//! IPv6 (`ip6.arpa`). Other reverse names are not the cluster's (forwarded).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::rdata::PTR;
use hickory_proto::rr::{Name, RData};

use crate::answer::{Answer, Zone, cluster_ips, endpoint_label, is_headless, ns_name, ready_endpoints};
use crate::lookup::Lookup;

/// The address a reverse name (`4.3.2.1.in-addr.arpa.`, 32 nibbles
/// `.ip6.arpa.`) stands for; `None` for anything else, including partial
/// reverse zones such as `2.1.in-addr.arpa.`.
pub fn reverse_ip(qname: &str) -> Option<IpAddr> {
    let q = qname.trim_end_matches('.').to_ascii_lowercase();
    if let Some(rest) = q.strip_suffix(".in-addr.arpa") {
        let mut octets = [0u8; 4];
        let labels: Vec<&str> = rest.split('.').collect();
        if labels.len() != 4 {
            return None;
        }
        for (i, l) in labels.iter().rev().enumerate() {
            // Leading zeros and signs are not how reverse names are written.
            if l.is_empty() || (l.len() > 1 && l.starts_with('0')) || !l.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            octets[i] = l.parse().ok()?;
        }
        return Some(IpAddr::V4(Ipv4Addr::from(octets)));
    }
    let rest = q.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<&str> = rest.split('.').collect();
    if nibbles.len() != 32 {
        return None;
    }
    let mut v: u128 = 0;
    for n in nibbles.iter().rev() {
        let [c] = n.as_bytes() else { return None };
        let d = char::from(*c).to_digit(16)?;
        v = (v << 4) | u128::from(d);
    }
    Some(IpAddr::V6(Ipv6Addr::from(v)))
}

/// PTR answer for a cluster address; `None` when `qname` is not a reverse
/// name of a ClusterIP or of a headless Service's ready endpoint.
pub fn ptr(zone: &Zone, lookup: &dyn Lookup, qname: &Name) -> Option<Answer> {
    let ip = reverse_ip(&qname.to_ascii())?;
    let services = lookup.services();
    let mut targets: Vec<String> = services
        .iter()
        .filter(|s| !is_headless(s) && cluster_ips(s).contains(&ip))
        .map(|s| {
            let (ns, name) = ns_name(s);
            format!("{name}.{ns}.svc.{}", zone.domain)
        })
        .collect();
    if targets.is_empty() {
        for svc in services.iter().filter(|s| is_headless(s)) {
            let (ns, name) = ns_name(svc);
            let slices = lookup.slices(ns, name);
            for (_, e) in ready_endpoints(&slices) {
                if e.addresses.iter().any(|a| a.parse::<IpAddr>().ok() == Some(ip)) {
                    targets.push(format!("{}.{name}.{ns}.svc.{}", endpoint_label(e), zone.domain));
                }
            }
        }
    }
    if targets.is_empty() {
        return None;
    }
    targets.sort();
    targets.dedup();
    let answers = targets
        .iter()
        .filter_map(|t| zone.name(t))
        .map(|t| zone.rec(qname, RData::PTR(PTR(t))))
        .collect();
    Some(Answer {
        answers,
        ..Answer::default()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reverse_names_parse_to_addresses() {
        assert_eq!(
            reverse_ip("20.0.43.10.in-addr.arpa."),
            Some("10.43.0.20".parse().unwrap())
        );
        assert_eq!(
            reverse_ip("20.0.43.10.IN-ADDR.ARPA"),
            Some("10.43.0.20".parse().unwrap())
        );
        assert_eq!(reverse_ip("0.43.10.in-addr.arpa."), None);
        assert_eq!(reverse_ip("020.0.43.10.in-addr.arpa."), None);
        assert_eq!(reverse_ip("256.0.43.10.in-addr.arpa."), None);
        let v6: IpAddr = "fd00:10:43::a".parse().unwrap();
        let IpAddr::V6(a) = v6 else { panic!() };
        let nibbles: Vec<String> = format!("{:032x}", u128::from(a))
            .chars()
            .rev()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(reverse_ip(&format!("{}.ip6.arpa.", nibbles.join("."))), Some(v6));
        assert_eq!(reverse_ip("a.ip6.arpa."), None);
        assert_eq!(reverse_ip("example.com."), None);
    }
}
