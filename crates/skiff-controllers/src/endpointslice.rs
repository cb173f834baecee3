//! EndpointSlice controller: for every Service the endpoints controller
//! manages, discovery.k8s.io/v1 EndpointSlices labelled
//! `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by`,
//! owned by the Service, one set per resolved port list, at most
//! [`MAX_ENDPOINTS_PER_SLICE`] endpoints each. Slices are named
//! `<service>-<port-group>-<chunk>` so each pass can compare and rewrite
//! them in place; slices no longer needed are deleted.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, ListParams, PostParams};

use crate::endpoints::{PortGroup, drive};
use crate::informer::Informers;
use crate::manager::{ControllerConfig, Error};

/// Upstream's cap on endpoints in one slice.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// Label naming a slice's service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Label naming a slice's managing controller.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's managed-by value (upstream's).
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";

/// The slices a service should have.
pub fn desired_slices(svc: &Service, groups: &[PortGroup]) -> Vec<EndpointSlice> {
    let name = svc.metadata.name.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = svc.metadata.labels.clone().unwrap_or_default();
    labels.insert(SERVICE_NAME_LABEL.into(), name.clone());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    let owner = OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: name.clone(),
        uid: svc.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let mut out = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        let ports: Vec<EndpointPort> = g
            .ports
            .iter()
            .map(|(n, p, proto)| EndpointPort {
                name: Some(n.clone()),
                port: Some(*p),
                protocol: Some(proto.clone()),
                app_protocol: None,
            })
            .collect();
        let chunks: Vec<&[crate::endpoints::PodEndpoint]> = if g.endpoints.is_empty() {
            vec![&[]]
        } else {
            g.endpoints.chunks(MAX_ENDPOINTS_PER_SLICE).collect()
        };
        for (ci, chunk) in chunks.into_iter().enumerate() {
            let endpoints = chunk
                .iter()
                .map(|e| Endpoint {
                    addresses: vec![e.ip.clone()],
                    conditions: Some(EndpointConditions {
                        ready: Some(e.ready),
                        serving: Some(e.ready || e.terminating),
                        terminating: Some(e.terminating),
                    }),
                    node_name: e.node_name.clone(),
                    target_ref: e.target.name.is_some().then(|| e.target.clone()),
                    hostname: e.hostname.clone(),
                    ..Endpoint::default()
                })
                .collect();
            out.push(EndpointSlice {
                metadata: ObjectMeta {
                    name: Some(format!("{name}-{gi}-{ci}")),
                    namespace: svc.metadata.namespace.clone(),
                    labels: Some(labels.clone()),
                    owner_references: Some(vec![owner.clone()]),
                    ..ObjectMeta::default()
                },
                address_type: "IPv4".into(),
                endpoints,
                ports: Some(ports.clone()),
            });
        }
    }
    if out.is_empty() {
        // A selector that matches nothing still gets one empty slice, as upstream.
        out.push(EndpointSlice {
            metadata: ObjectMeta {
                name: Some(format!("{name}-0-0")),
                namespace: svc.metadata.namespace.clone(),
                labels: Some(labels),
                owner_references: Some(vec![owner]),
                ..ObjectMeta::default()
            },
            address_type: "IPv4".into(),
            endpoints: Vec::new(),
            ports: None,
        });
    }
    out
}

/// Keeps EndpointSlices in step with services and pods until an error.
pub async fn run(client: kube::Client, cfg: Arc<ControllerConfig>) -> Result<(), Error> {
    run_with(Arc::new(Informers::new(client)), cfg).await
}

/// Keeps EndpointSlices in step with services and pods (the manager's
/// shared informers) until an error.
pub async fn run_with(informers: Arc<Informers>, cfg: Arc<ControllerConfig>) -> Result<(), Error> {
    let client = informers.client().clone();
    drive(&informers, |cache, scope| {
        let desired = cache.desired(&cfg, scope);
        let client = client.clone();
        async move {
            for (svc, groups) in desired {
                if let Err(e) = sync(&client, &svc, desired_slices(&svc, &groups)).await {
                    tracing::debug!(error = %e, "endpointslice: sync failed");
                }
            }
        }
    })
    .await
}

async fn sync(client: &kube::Client, svc: &Service, want: Vec<EndpointSlice>) -> Result<(), Error> {
    let (Some(ns), Some(name)) = (svc.metadata.namespace.as_deref(), svc.metadata.name.as_deref()) else {
        return Ok(());
    };
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&format!(
        "{SERVICE_NAME_LABEL}={name},{MANAGED_BY_LABEL}={MANAGED_BY}"
    ));
    let have = api.list(&lp).await?.items;
    let wanted: HashSet<String> = want.iter().filter_map(|s| s.metadata.name.clone()).collect();
    for mut slice in want {
        let Some(sname) = slice.metadata.name.clone() else {
            continue;
        };
        match have
            .iter()
            .find(|h| h.metadata.name.as_deref() == Some(sname.as_str()))
        {
            Some(cur) => {
                let same = cur.endpoints == slice.endpoints
                    && cur.ports == slice.ports
                    && cur.metadata.labels == slice.metadata.labels
                    && cur.metadata.owner_references == slice.metadata.owner_references;
                if !same {
                    slice.metadata.resource_version = cur.metadata.resource_version.clone();
                    api.replace(&sname, &PostParams::default(), &slice).await?;
                }
            }
            None => {
                api.create(&PostParams::default(), &slice).await?;
            }
        }
    }
    for old in have {
        if let Some(n) = old.metadata.name.as_deref()
            && !wanted.contains(n)
        {
            api.delete(n, &DeleteParams::default()).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::{PodEndpoint, resolve, subsets};
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, PodCondition, PodSpec, PodStatus, ServicePort, ServiceSpec,
    };
    use k8s_openapi::api::core::v1::{ObjectReference, Pod};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn pod(name: &str, ip: &str, ready: bool) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(vec![ContainerPort {
                        name: Some("http".into()),
                        container_port: 8080,
                        ..ContainerPort::default()
                    }]),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                pod_ip: Some(ip.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
        })
    }

    fn svc() -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                selector: Some([("app".to_string(), "web".to_string())].into()),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    target_port: Some(IntOrString::String("http".into())),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    #[test]
    fn named_target_ports_resolve_and_unready_pods_are_listed_apart() {
        let groups = resolve(
            &svc(),
            &[pod("a", "10.42.0.2", true), pod("b", "10.42.0.3", false)],
        )
        .unwrap();
        let s = subsets(&groups);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].ports.as_ref().unwrap()[0].port, 8080);
        assert_eq!(s[0].addresses.as_ref().unwrap()[0].ip, "10.42.0.2");
        assert_eq!(s[0].not_ready_addresses.as_ref().unwrap()[0].ip, "10.42.0.3");
    }

    #[test]
    fn pods_whose_subdomain_is_the_service_get_their_hostname() {
        let named = |name: &str, ip: &str, subdomain: &str| {
            let mut p = (*pod(name, ip, true)).clone();
            let spec = p.spec.as_mut().unwrap();
            spec.hostname = Some(name.into());
            spec.subdomain = Some(subdomain.into());
            Arc::new(p)
        };
        let groups = resolve(
            &svc(),
            &[
                named("web-0", "10.42.0.2", "web"),
                named("other-0", "10.42.0.3", "other"),
            ],
        )
        .unwrap();
        let slices = desired_slices(&svc(), &groups);
        let hosts: Vec<Option<&str>> = slices[0]
            .endpoints
            .iter()
            .map(|e| e.hostname.as_deref())
            .collect();
        assert_eq!(hosts, vec![Some("web-0"), None]);
        let s = subsets(&groups);
        assert_eq!(
            s[0].addresses.as_ref().unwrap()[0].hostname.as_deref(),
            Some("web-0")
        );
    }

    #[test]
    fn slices_carry_the_service_labels_and_hold_at_most_100_endpoints() {
        let ep = |i: usize| PodEndpoint {
            ip: format!("10.42.{}.{}", i / 250, i % 250),
            node_name: None,
            target: ObjectReference::default(),
            ready: true,
            terminating: false,
            hostname: None,
        };
        let g = PortGroup {
            ports: vec![("http".into(), 80, "TCP".into())],
            endpoints: (0..250).map(ep).collect(),
        };
        let slices = desired_slices(&svc(), &[g]);
        assert_eq!(
            slices.iter().map(|s| s.endpoints.len()).collect::<Vec<_>>(),
            vec![100, 100, 50]
        );
        let labels = slices[0].metadata.labels.as_ref().unwrap();
        assert_eq!(labels[SERVICE_NAME_LABEL], "web");
        assert_eq!(labels[MANAGED_BY_LABEL], MANAGED_BY);
    }
}
