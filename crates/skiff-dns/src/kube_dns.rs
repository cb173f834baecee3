//! The `kube-dns` Service in `kube-system` that pods reach cluster DNS
//! through: a fixed ClusterIP, ports 53 UDP/TCP named `dns`/`dns-tcp`, no
//! selector, and an Endpoints object and EndpointSlice managed here that point
//! at the address the server's DNS listens on.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::api::discovery::v1::{self as discovery, EndpointConditions, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::config::DnsError;

/// Namespace of the Service.
pub const NAMESPACE: &str = "kube-system";
/// Name of the Service (and its Endpoints).
pub const NAME: &str = "kube-dns";
/// Name of the managed EndpointSlice.
pub const SLICE_NAME: &str = "kube-dns-skiff";
const MANAGER: &str = "skiff-dns";

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("k8s-app".to_string(), "kube-dns".to_string()),
        ("kubernetes.io/name".to_string(), "CoreDNS".to_string()),
    ])
}

/// Creates or updates (server-side apply) the `kube-dns` Service with
/// `cluster_ip`, and points its Endpoints and EndpointSlice at
/// `endpoint_ip:port`. Idempotent; call it at every server start.
pub async fn ensure_kube_dns_service(
    client: kube::Client,
    cluster_ip: IpAddr,
    endpoint_ip: IpAddr,
    port: u16,
) -> Result<(), DnsError> {
    let pp = PatchParams::apply(MANAGER).force();
    let port_i = i32::from(port);
    let svc = Service {
        metadata: ObjectMeta {
            name: Some(NAME.into()),
            namespace: Some(NAMESPACE.into()),
            labels: Some(labels()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some(cluster_ip.to_string()),
            cluster_ips: Some(vec![cluster_ip.to_string()]),
            ports: Some(vec![
                ServicePort {
                    name: Some("dns".into()),
                    port: 53,
                    protocol: Some("UDP".into()),
                    target_port: Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(
                        port_i,
                    )),
                    ..Default::default()
                },
                ServicePort {
                    name: Some("dns-tcp".into()),
                    port: 53,
                    protocol: Some("TCP".into()),
                    target_port: Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(
                        port_i,
                    )),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        }),
        status: None,
    };
    Api::<Service>::namespaced(client.clone(), NAMESPACE)
        .patch(NAME, &pp, &Patch::Apply(&svc))
        .await?;

    let ep_ports = |proto: &str, name: &str| EndpointPort {
        name: Some(name.into()),
        port: port_i,
        protocol: Some(proto.into()),
        ..Default::default()
    };
    let eps = Endpoints {
        metadata: ObjectMeta {
            name: Some(NAME.into()),
            namespace: Some(NAMESPACE.into()),
            labels: Some(labels()),
            ..Default::default()
        },
        subsets: Some(vec![EndpointSubset {
            addresses: Some(vec![EndpointAddress {
                ip: endpoint_ip.to_string(),
                ..Default::default()
            }]),
            ports: Some(vec![ep_ports("UDP", "dns"), ep_ports("TCP", "dns-tcp")]),
            ..Default::default()
        }]),
    };
    Api::<Endpoints>::namespaced(client.clone(), NAMESPACE)
        .patch(NAME, &pp, &Patch::Apply(&eps))
        .await?;

    let mut slice_labels = labels();
    slice_labels.insert(crate::lookup::SERVICE_NAME_LABEL.into(), NAME.into());
    slice_labels.insert(
        "endpointslice.kubernetes.io/managed-by".into(),
        "skiff-dns".into(),
    );
    let slice_port = |proto: &str, name: &str| discovery::EndpointPort {
        name: Some(name.into()),
        port: Some(port_i),
        protocol: Some(proto.into()),
        ..Default::default()
    };
    let slice = EndpointSlice {
        metadata: ObjectMeta {
            name: Some(SLICE_NAME.into()),
            namespace: Some(NAMESPACE.into()),
            labels: Some(slice_labels),
            ..Default::default()
        },
        address_type: if endpoint_ip.is_ipv4() {
            "IPv4".into()
        } else {
            "IPv6".into()
        },
        endpoints: vec![discovery::Endpoint {
            addresses: vec![endpoint_ip.to_string()],
            conditions: Some(EndpointConditions {
                ready: Some(true),
                serving: Some(true),
                terminating: Some(false),
            }),
            ..Default::default()
        }],
        ports: Some(vec![slice_port("UDP", "dns"), slice_port("TCP", "dns-tcp")]),
    };
    Api::<EndpointSlice>::namespaced(client, NAMESPACE)
        .patch(SLICE_NAME, &pp, &Patch::Apply(&slice))
        .await?;
    Ok(())
}
