//! The endpoints of the `default/kubernetes` Service, as kube-apiserver's
//! endpoint reconciler writes them: an Endpoints and an EndpointSlice named
//! `kubernetes` pointing at the API server's advertise address and HTTPS
//! port, so pods reach the API through the Service's ClusterIP.
//!
//! Owns only choosing the advertise address and writing those two objects.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints};
use k8s_openapi::api::discovery::v1::{self as discovery, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{Patch, PatchParams};

/// Field manager of the objects written here.
const MANAGER: &str = "skiff-apiserver";
/// The Service (and its Endpoints/EndpointSlice) name.
const NAME: &str = "kubernetes";

/// The address pods reach the API server at: `--advertise-address`, else
/// the bind address or the node IP when they are neither loopback nor
/// unspecified, else the first IPv4 address of this host outside the pod
/// and service networks (which pods on every node route to). None when
/// the host has only loopback addresses.
pub fn advertise_address(
    flag: Option<IpAddr>,
    bind: IpAddr,
    node_ip: Option<IpAddr>,
    host_addresses: &[IpAddr],
    skip: &[Ipv4Net],
) -> Option<IpAddr> {
    let usable = |ip: &IpAddr| !ip.is_loopback() && !ip.is_unspecified();
    if let Some(ip) = flag {
        return Some(ip);
    }
    if let Some(ip) = [Some(bind), node_ip].into_iter().flatten().find(usable) {
        return Some(ip);
    }
    host_addresses.iter().copied().find(|ip| match ip {
        IpAddr::V4(v4) => usable(ip) && !v4.is_link_local() && !skip.iter().any(|n| n.contains(v4)),
        IpAddr::V6(_) => false,
    })
}

/// Points `default/kubernetes` at `ip:port` (server-side apply; idempotent).
pub async fn ensure(client: kube::Client, ip: IpAddr, port: u16) -> Result<(), kube::Error> {
    let pp = PatchParams::apply(MANAGER).force();
    let port = i32::from(port);
    let meta = |labels: BTreeMap<String, String>| ObjectMeta {
        name: Some(NAME.into()),
        namespace: Some("default".into()),
        labels: Some(labels),
        ..Default::default()
    };
    let eps = Endpoints {
        metadata: meta(BTreeMap::from([(
            "endpointslice.kubernetes.io/skip-mirror".to_string(),
            "true".to_string(),
        )])),
        subsets: Some(vec![EndpointSubset {
            addresses: Some(vec![EndpointAddress {
                ip: ip.to_string(),
                ..Default::default()
            }]),
            ports: Some(vec![EndpointPort {
                name: Some("https".into()),
                port,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }]),
    };
    Api::<Endpoints>::namespaced(client.clone(), "default")
        .patch(NAME, &pp, &Patch::Apply(&eps))
        .await?;
    let slice = EndpointSlice {
        metadata: meta(BTreeMap::from([(
            "kubernetes.io/service-name".to_string(),
            NAME.to_string(),
        )])),
        address_type: if ip.is_ipv4() { "IPv4" } else { "IPv6" }.into(),
        endpoints: vec![discovery::Endpoint {
            addresses: vec![ip.to_string()],
            conditions: Some(discovery::EndpointConditions {
                ready: Some(true),
                serving: Some(true),
                terminating: Some(false),
            }),
            ..Default::default()
        }],
        ports: Some(vec![discovery::EndpointPort {
            name: Some("https".into()),
            port: Some(port),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
    };
    Api::<EndpointSlice>::namespaced(client, "default")
        .patch(NAME, &pp, &Patch::Apply(&slice))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_flag_wins_then_a_routable_bind_or_node_address() {
        let any = ip("0.0.0.0");
        let lo = ip("127.0.0.1");
        let hosts = [lo, ip("192.168.1.5")];
        assert_eq!(
            advertise_address(Some(ip("10.9.9.9")), ip("10.1.1.1"), None, &hosts, &[]),
            Some(ip("10.9.9.9"))
        );
        assert_eq!(
            advertise_address(None, ip("10.1.1.1"), None, &hosts, &[]),
            Some(ip("10.1.1.1"))
        );
        assert_eq!(
            advertise_address(None, any, Some(ip("10.2.2.2")), &hosts, &[]),
            Some(ip("10.2.2.2"))
        );
        assert_eq!(
            advertise_address(None, lo, Some(lo), &hosts, &[]),
            Some(ip("192.168.1.5"))
        );
    }

    #[test]
    fn host_addresses_in_the_pod_network_or_loopback_only_are_skipped() {
        let pods: Ipv4Net = "10.42.0.0/16".parse().unwrap();
        let hosts = [ip("10.42.0.1"), ip("127.0.0.1"), ip("169.254.1.1"), ip("::1")];
        assert_eq!(
            advertise_address(None, ip("0.0.0.0"), None, &hosts, &[pods]),
            None
        );
        let hosts = [ip("10.42.0.1"), ip("172.20.0.4")];
        assert_eq!(
            advertise_address(None, ip("0.0.0.0"), None, &hosts, &[pods]),
            Some(ip("172.20.0.4"))
        );
    }
}
