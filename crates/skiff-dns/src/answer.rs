//! Building the answer to one question about a cluster name from Services
//! and EndpointSlices, as CoreDNS's kubernetes plugin does (the "Kubernetes
//! DNS-Based Service Discovery" specification): A/AAAA, SRV, CNAME for
//! ExternalName, per-endpoint names of headless Services, pod names, the
//! zone's SOA/NS, NXDOMAIN for names that do not exist and NODATA for names
//! that exist without records of the asked type. Reverse names are
//! [`crate::reverse`]'s; chasing CNAME targets is the server's.

use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
use rand::seq::SliceRandom;

use crate::lookup::Lookup;
use crate::names::{ClusterName, ip_label, parse};

/// The sections of a cluster answer.
#[derive(Debug, Default)]
pub struct Answer {
    /// NOERROR or NXDOMAIN.
    pub rcode: ResponseCode,
    /// Answer records.
    pub answers: Vec<Record>,
    /// Authority records (the SOA for negative answers).
    pub authorities: Vec<Record>,
    /// Additional records (addresses of SRV targets).
    pub additionals: Vec<Record>,
}

/// The zone being answered for.
#[derive(Debug, Clone)]
pub struct Zone {
    /// Cluster domain without the final dot.
    pub domain: String,
    /// TTL of every record.
    pub ttl: u32,
}

impl Zone {
    /// `s` (without the final dot) as a DNS name.
    pub(crate) fn name(&self, s: &str) -> Option<Name> {
        Name::from_ascii(format!("{s}.")).ok()
    }

    fn apex(&self) -> Option<Name> {
        self.name(&self.domain)
    }

    fn soa(&self) -> Option<Record> {
        let apex = self.apex()?;
        let mname = self.name(&format!("ns.dns.{}", self.domain))?;
        let rname = self.name(&format!("hostmaster.{}", self.domain))?;
        let serial = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        let soa = SOA::new(mname, rname, serial, 7200, 1800, 86400, self.ttl);
        Some(Record::from_rdata(apex, self.ttl, RData::SOA(soa)))
    }

    /// A record of this zone's TTL.
    pub(crate) fn rec(&self, name: &Name, data: RData) -> Record {
        Record::from_rdata(name.clone(), self.ttl, data)
    }
}

fn addr_rdata(ip: IpAddr, qtype: RecordType) -> Option<RData> {
    match (ip, qtype) {
        (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => Some(RData::A(A(v4))),
        (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => Some(RData::AAAA(AAAA(v6))),
        _ => None,
    }
}

/// True for a Service without a virtual IP (`clusterIP: None`).
pub(crate) fn is_headless(svc: &Service) -> bool {
    let ip = svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref());
    matches!(ip, None | Some("") | Some("None"))
}

/// The Service's ClusterIPs.
pub(crate) fn cluster_ips(svc: &Service) -> Vec<IpAddr> {
    let Some(spec) = svc.spec.as_ref() else {
        return Vec::new();
    };
    let mut ips: Vec<String> = spec.cluster_ips.clone().unwrap_or_default();
    if ips.is_empty() {
        ips.extend(spec.cluster_ip.clone());
    }
    ips.iter().filter_map(|s| s.parse().ok()).collect()
}

fn external_name(svc: &Service) -> Option<&str> {
    let spec = svc.spec.as_ref()?;
    (spec.type_.as_deref() == Some("ExternalName"))
        .then_some(spec.external_name.as_deref())
        .flatten()
}

/// Ready endpoints (a missing `ready` condition counts as ready, as the API says).
pub(crate) fn ready_endpoints(slices: &[std::sync::Arc<EndpointSlice>]) -> Vec<(&EndpointSlice, &Endpoint)> {
    slices
        .iter()
        .flat_map(|s| s.endpoints.iter().map(move |e| (s.as_ref(), e)))
        .filter(|(_, e)| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .collect()
}

/// The first label of an endpoint's own name: its hostname, else its IP with dashes.
pub(crate) fn endpoint_label(e: &Endpoint) -> String {
    match &e.hostname {
        Some(h) if !h.is_empty() => h.clone(),
        _ => e
            .addresses
            .first()
            .and_then(|a| a.parse().ok())
            .map(|ip| ip_label(&ip))
            .unwrap_or_default(),
    }
}

/// Answers `qname`/`qtype`; `None` when the name is not the cluster's (forward it).
pub fn answer(zone: &Zone, lookup: &dyn Lookup, qname: &Name, qtype: RecordType) -> Option<Answer> {
    if let Some(ptr) = crate::reverse::ptr(zone, lookup, qname) {
        return Some(ptr);
    }
    let text = qname.to_ascii();
    let parsed = parse(&text, &zone.domain)?;
    let mut a = Answer::default();
    let found = match parsed {
        ClusterName::Apex => {
            match qtype {
                RecordType::SOA => a.answers.extend(zone.soa()),
                RecordType::NS => {
                    if let (Some(apex), Some(ns)) =
                        (zone.apex(), zone.name(&format!("ns.dns.{}", zone.domain)))
                    {
                        a.answers.push(zone.rec(&apex, RData::NS(NS(ns))));
                    }
                }
                _ => {}
            }
            true
        }
        ClusterName::Interior => true,
        ClusterName::Pod { ip } => {
            a.answers
                .extend(addr_rdata(ip, qtype).map(|d| zone.rec(qname, d)));
            true
        }
        ClusterName::Service { ns, name } => match lookup.service(&ns, &name) {
            Some(svc) => service(zone, lookup, &svc, qname, qtype, &mut a),
            None => false,
        },
        ClusterName::Endpoint { ns, name, host } => {
            match lookup.service(&ns, &name).filter(|s| is_headless(s)) {
                Some(_) => {
                    let slices = lookup.slices(&ns, &name);
                    let mut hit = false;
                    for (_, e) in ready_endpoints(&slices)
                        .into_iter()
                        .filter(|(_, e)| endpoint_label(e) == host)
                    {
                        hit = true;
                        for ip in e.addresses.iter().filter_map(|s| s.parse::<IpAddr>().ok()) {
                            a.answers
                                .extend(addr_rdata(ip, qtype).map(|d| zone.rec(qname, d)));
                        }
                    }
                    hit
                }
                None => false,
            }
        }
        ClusterName::Srv {
            ns,
            name,
            port,
            proto,
        } => match lookup.service(&ns, &name) {
            Some(svc) if qtype == RecordType::SRV || qtype == RecordType::ANY => {
                srv(zone, lookup, &svc, Some((&port, &proto)), &mut a)
            }
            Some(svc) => has_port(&svc, &port, &proto),
            None => false,
        },
        ClusterName::Unknown => false,
    };
    if !found {
        a.rcode = ResponseCode::NXDomain;
    }
    if a.answers.is_empty() {
        a.authorities.extend(zone.soa());
    }
    Some(a)
}

fn has_port(svc: &Service, port: &str, proto: &str) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .is_some_and(|ps| {
            ps.iter().any(|p| {
                p.name.as_deref() == Some(port)
                    && p.protocol.as_deref().unwrap_or("TCP").eq_ignore_ascii_case(proto)
            })
        })
}

/// Records of a Service's own name; false when the name does not exist
/// (a headless Service without ready endpoints, as CoreDNS and the spec say).
fn service(
    zone: &Zone,
    lookup: &dyn Lookup,
    svc: &Service,
    qname: &Name,
    qtype: RecordType,
    a: &mut Answer,
) -> bool {
    if let Some(ext) = external_name(svc) {
        if let Some(target) = zone.name(ext.trim_end_matches('.')) {
            a.answers.push(zone.rec(qname, RData::CNAME(CNAME(target))));
        }
        return true;
    }
    if qtype == RecordType::SRV {
        srv(zone, lookup, svc, None, a);
        return true;
    }
    if is_headless(svc) {
        let (ns, name) = ns_name(svc);
        let slices = lookup.slices(ns, name);
        let ready = ready_endpoints(&slices);
        if ready.is_empty() {
            return false;
        }
        let mut ips: Vec<IpAddr> = ready
            .iter()
            .flat_map(|(_, e)| e.addresses.iter().filter_map(|s| s.parse::<IpAddr>().ok()))
            .collect();
        ips.sort();
        ips.dedup();
        // Round robin, as CoreDNS's loadbalance plugin: clients that take the
        // first address spread over the endpoints.
        ips.shuffle(&mut rand::rng());
        a.answers.extend(
            ips.into_iter()
                .filter_map(|ip| addr_rdata(ip, qtype))
                .map(|d| zone.rec(qname, d)),
        );
    } else {
        for ip in cluster_ips(svc) {
            a.answers
                .extend(addr_rdata(ip, qtype).map(|d| zone.rec(qname, d)));
        }
    }
    true
}

/// The Service's namespace and name.
pub(crate) fn ns_name(svc: &Service) -> (&str, &str) {
    (
        svc.metadata.namespace.as_deref().unwrap_or_default(),
        svc.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// SRV records for the service's named ports (only `want` if given); true
/// when the asked-for port exists.
fn srv(zone: &Zone, lookup: &dyn Lookup, svc: &Service, want: Option<(&str, &str)>, a: &mut Answer) -> bool {
    let (ns, name) = ns_name(svc);
    let Some(svc_name) = zone.name(&format!("{name}.{ns}.svc.{}", zone.domain)) else {
        return false;
    };
    let ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let mut found = false;
    for p in ports {
        let Some(pname) = p.name.as_deref().filter(|n| !n.is_empty()) else {
            continue;
        };
        let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
        if want.is_some_and(|(wp, wt)| wp != pname || wt != proto) {
            continue;
        }
        found = true;
        let Some(owner) = zone.name(&format!("_{pname}._{proto}.{name}.{ns}.svc.{}", zone.domain)) else {
            continue;
        };
        if !is_headless(svc) {
            let port = u16::try_from(p.port).unwrap_or(0);
            a.answers
                .push(zone.rec(&owner, RData::SRV(SRV::new(0, 100, port, svc_name.clone()))));
            for ip in cluster_ips(svc) {
                a.additionals
                    .extend(addr_rdata(ip, RecordType::ANY).map(|d| zone.rec(&svc_name, d)));
            }
            continue;
        }
        let slices = lookup.slices(ns, name);
        let eps = ready_endpoints(&slices);
        let weight = u16::try_from(100 / eps.len().max(1)).unwrap_or(100);
        for (slice, e) in eps {
            let port = slice
                .ports
                .iter()
                .flatten()
                .find(|sp| sp.name.as_deref() == Some(pname))
                .and_then(|sp| sp.port)
                .and_then(|n| u16::try_from(n).ok())
                .unwrap_or(0);
            let Some(target) = zone.name(&format!("{}.{name}.{ns}.svc.{}", endpoint_label(e), zone.domain))
            else {
                continue;
            };
            a.answers
                .push(zone.rec(&owner, RData::SRV(SRV::new(0, weight, port, target.clone()))));
            for ip in e.addresses.iter().filter_map(|s| s.parse::<IpAddr>().ok()) {
                a.additionals
                    .extend(addr_rdata(ip, RecordType::ANY).map(|d| zone.rec(&target, d)));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::lookup::Fixed;
    use std::sync::Arc;

    fn zone() -> Zone {
        Zone {
            domain: "cluster.local".into(),
            ttl: 5,
        }
    }

    fn fixed() -> Fixed {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"clusterIP": "10.43.0.20", "ports": [{"name": "http", "port": 80}]}}))
        .unwrap();
        Fixed {
            services: vec![Arc::new(svc)],
            slices: Vec::new(),
        }
    }

    fn ask(name: &str, t: RecordType) -> Option<Answer> {
        answer(&zone(), &fixed(), &Name::from_ascii(name).unwrap(), t)
    }

    #[test]
    fn cluster_ip_and_negative_answers() {
        let a = ask("web.ns.svc.cluster.local.", RecordType::A).unwrap();
        assert_eq!(a.answers.len(), 1);
        assert_eq!(a.answers[0].ttl, 5);
        let a = ask("_http._udp.web.ns.svc.cluster.local.", RecordType::SRV).unwrap();
        assert_eq!(a.rcode, ResponseCode::NXDomain);
        let a = ask("other.ns.svc.cluster.local.", RecordType::A).unwrap();
        assert_eq!(a.rcode, ResponseCode::NXDomain);
        assert_eq!(a.authorities.len(), 1);
        assert!(ask("example.com.", RecordType::A).is_none());
        assert!(ask("1.0.0.10.in-addr.arpa.", RecordType::PTR).is_none());
        let a = ask("20.0.43.10.in-addr.arpa.", RecordType::PTR).unwrap();
        assert_eq!(a.answers.len(), 1);
    }

    #[test]
    fn apex_soa() {
        let a = ask("cluster.local.", RecordType::SOA).unwrap();
        assert!(matches!(a.answers[0].data, RData::SOA(_)));
    }
}
