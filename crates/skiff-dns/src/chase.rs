//! Following the CNAME of an ExternalName Service to addresses, as CoreDNS
//! does: stub resolvers (glibc, musl, busybox) do not chase a CNAME on their
//! own, so `wget http://ext` only works when the answer already holds the
//! target's records. Targets inside the cluster domain are answered from the
//! cluster's objects, others are resolved by the upstream resolvers.

use std::net::SocketAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};

use crate::answer::{Answer, Zone, answer};
use crate::lookup::Lookup;

/// Longest CNAME chain followed (ExternalName pointing at ExternalName...).
const MAX_CHAIN: usize = 8;

/// The target of `a`'s last answer when it is a CNAME that nothing follows.
fn dangling_cname(a: &Answer) -> Option<Name> {
    match a.answers.last().map(|r| &r.data) {
        Some(RData::CNAME(c)) => Some(c.0.clone()),
        _ => None,
    }
}

/// Appends the records of `a`'s CNAME target (and so on, up to
/// [`MAX_CHAIN`] links); the response code becomes the last link's, as RFC
/// 6604 says. Questions for CNAME or ANY get the CNAME alone.
pub async fn chase(
    zone: &Zone,
    lookup: &(dyn Lookup + Sync),
    upstreams: &[SocketAddr],
    qtype: RecordType,
    a: &mut Answer,
) {
    if matches!(qtype, RecordType::CNAME | RecordType::ANY) {
        return;
    }
    let mut seen: Vec<Name> = Vec::new();
    for _ in 0..MAX_CHAIN {
        let Some(target) = dangling_cname(a) else { return };
        if seen.contains(&target) {
            return;
        }
        seen.push(target.clone());
        if let Some(next) = answer(zone, lookup, &target, qtype) {
            a.rcode = next.rcode;
            if next.answers.is_empty() {
                a.authorities = next.authorities;
            }
            a.answers.extend(next.answers);
            continue;
        }
        let Some(m) = crate::forward::resolve(upstreams, &target, qtype).await else {
            return;
        };
        if matches!(
            m.metadata.response_code,
            ResponseCode::NoError | ResponseCode::NXDomain
        ) {
            a.rcode = m.metadata.response_code;
        }
        a.answers.extend(m.answers);
        return;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::lookup::Fixed;
    use k8s_openapi::api::core::v1::Service;
    use std::sync::Arc;

    fn svc(v: serde_json::Value) -> Arc<Service> {
        Arc::new(serde_json::from_value(v).unwrap())
    }

    #[tokio::test]
    async fn external_names_inside_the_cluster_are_followed_to_addresses() {
        let zone = Zone {
            domain: "cluster.local".into(),
            ttl: 5,
        };
        let lookup = Fixed {
            services: vec![
                svc(
                    serde_json::json!({"metadata": {"name": "alias", "namespace": "a"},
                    "spec": {"type": "ExternalName", "externalName": "web.b.svc.cluster.local"}}),
                ),
                svc(serde_json::json!({"metadata": {"name": "loop", "namespace": "a"},
                    "spec": {"type": "ExternalName", "externalName": "loop.a.svc.cluster.local"}})),
                svc(serde_json::json!({"metadata": {"name": "gone", "namespace": "a"},
                    "spec": {"type": "ExternalName", "externalName": "nothere.b.svc.cluster.local"}})),
                svc(serde_json::json!({"metadata": {"name": "web", "namespace": "b"},
                    "spec": {"clusterIP": "10.43.0.7"}})),
            ],
            slices: Vec::new(),
        };
        let ask = |n: &str, t| {
            let name = Name::from_ascii(n).unwrap();
            let mut a = answer(&zone, &lookup, &name, t).unwrap();
            let (zone, lookup) = (zone.clone(), lookup.clone());
            async move {
                chase(&zone, &lookup, &[], t, &mut a).await;
                a
            }
        };
        let a = ask("alias.a.svc.cluster.local.", RecordType::A).await;
        assert_eq!(a.answers.len(), 2);
        assert!(matches!(a.answers[1].data, RData::A(ip) if ip.0.to_string() == "10.43.0.7"));
        // Asked for the CNAME itself: nothing is followed.
        let a = ask("alias.a.svc.cluster.local.", RecordType::CNAME).await;
        assert_eq!(a.answers.len(), 1);
        // A CNAME to itself stops instead of looping.
        let a = ask("loop.a.svc.cluster.local.", RecordType::A).await;
        assert!(a.answers.len() <= 2);
        // A target that does not exist makes the whole answer NXDOMAIN.
        let a = ask("gone.a.svc.cluster.local.", RecordType::A).await;
        assert_eq!(a.rcode, ResponseCode::NXDomain);
        assert_eq!(a.answers.len(), 1);
    }
}
