//! Endpoints controller: for every Service with a selector, an Endpoints
//! object of the same name listing the IPs of the matching pods — ready ones
//! in `addresses`, others in `notReadyAddresses` (all in `addresses` with
//! `publishNotReadyAddresses`) — grouped into subsets by resolved ports
//! (numeric or named `targetPort`). Also keeps `default/kubernetes` pointing
//! at the API server. The pod/port resolution is shared with
//! [`crate::endpointslice`], and so is [`cache`]'s loop, which only looks at
//! namespaces whose services or pods changed.

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, PostParams};
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::informer::Informers;
use crate::manager::{ControllerConfig, Error};

mod cache;
pub(crate) use cache::drive;

/// One resolved endpoint of a service: a pod and its readiness.
#[derive(Debug, Clone, PartialEq)]
pub struct PodEndpoint {
    /// The pod's IP.
    pub ip: String,
    /// The node it runs on.
    pub node_name: Option<String>,
    /// The pod.
    pub target: ObjectReference,
    /// Ready (or published while not ready).
    pub ready: bool,
    /// Being deleted.
    pub terminating: bool,
    /// The pod's `spec.hostname` when its `spec.subdomain` is the service's
    /// name (per-pod DNS names such as `web-0.web.ns.svc.cluster.local`).
    pub hostname: Option<String>,
}

/// Pods sharing one resolved port list.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PortGroup {
    /// `(name, port, protocol)` sorted by name.
    pub ports: Vec<(String, i32, String)>,
    /// The pods, sorted by IP.
    pub endpoints: Vec<PodEndpoint>,
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn matches(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The port `target` names on `pod` (a number, or a container port's name).
pub fn resolve_port(target: Option<&IntOrString>, port: i32, pod: &Pod) -> Option<i32> {
    match target {
        None => Some(port),
        Some(IntOrString::Int(p)) => Some(*p),
        Some(IntOrString::String(name)) => pod
            .spec
            .as_ref()?
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port),
    }
}

/// The service's endpoints grouped by resolved ports; `None` for services
/// this controller does not manage (no selector, ExternalName).
pub fn resolve(svc: &Service, pods: &[Arc<Pod>]) -> Option<Vec<PortGroup>> {
    let spec = svc.spec.as_ref()?;
    let selector = spec.selector.as_ref().filter(|s| !s.is_empty())?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    let publish = spec.publish_not_ready_addresses == Some(true);
    let mut groups: BTreeMap<Vec<(String, i32, String)>, Vec<PodEndpoint>> = BTreeMap::new();
    for pod in pods.iter().filter(|p| matches(selector, p)) {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            continue;
        }
        let terminating = pod.metadata.deletion_timestamp.is_some();
        if terminating && !publish {
            continue;
        }
        let Some(ip) = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .filter(|ip| !ip.is_empty())
        else {
            continue;
        };
        let mut ports: Vec<(String, i32, String)> = spec
            .ports
            .iter()
            .flatten()
            .filter_map(|sp| {
                let p = resolve_port(sp.target_port.as_ref(), sp.port, pod)?;
                let proto = sp.protocol.clone().unwrap_or_else(|| "TCP".into());
                Some((sp.name.clone().unwrap_or_default(), p, proto))
            })
            .collect();
        ports.sort();
        let ep = PodEndpoint {
            ip,
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target: ObjectReference {
                kind: Some("Pod".into()),
                namespace: pod.metadata.namespace.clone(),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
                ..ObjectReference::default()
            },
            ready: publish || (pod_ready(pod) && !terminating),
            terminating,
            hostname: pod
                .spec
                .as_ref()
                .filter(|ps| ps.subdomain.is_some() && ps.subdomain == svc.metadata.name)
                .and_then(|ps| ps.hostname.clone())
                .filter(|h| !h.is_empty()),
        };
        groups.entry(ports).or_default().push(ep);
    }
    Some(
        groups
            .into_iter()
            .map(|(ports, mut endpoints)| {
                endpoints.sort_by(|a, b| a.ip.cmp(&b.ip));
                PortGroup { ports, endpoints }
            })
            .collect(),
    )
}

/// The Endpoints subsets for resolved groups.
pub fn subsets(groups: &[PortGroup]) -> Vec<EndpointSubset> {
    let addr = |e: &PodEndpoint| EndpointAddress {
        ip: e.ip.clone(),
        node_name: e.node_name.clone(),
        target_ref: Some(e.target.clone()),
        hostname: e.hostname.clone(),
    };
    groups
        .iter()
        .filter(|g| !g.endpoints.is_empty())
        .map(|g| {
            let ready: Vec<EndpointAddress> = g.endpoints.iter().filter(|e| e.ready).map(addr).collect();
            let not_ready: Vec<EndpointAddress> = g.endpoints.iter().filter(|e| !e.ready).map(addr).collect();
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: Some(
                    g.ports
                        .iter()
                        .map(|(name, port, proto)| EndpointPort {
                            name: (!name.is_empty()).then(|| name.clone()),
                            port: *port,
                            protocol: Some(proto.clone()),
                            app_protocol: None,
                        })
                        .collect(),
                ),
            }
        })
        .collect()
}

/// The `default/kubernetes` groups for the API server at `ip:port`.
pub fn apiserver_groups(ip: &str, port: i32) -> Vec<PortGroup> {
    vec![PortGroup {
        ports: vec![("https".into(), port, "TCP".into())],
        endpoints: vec![PodEndpoint {
            ip: ip.into(),
            node_name: None,
            target: ObjectReference::default(),
            ready: true,
            terminating: false,
            hostname: None,
        }],
    }]
}

/// Keeps Endpoints in step with services and pods (own informers) until an error.
pub async fn run(client: kube::Client, cfg: Arc<ControllerConfig>) -> Result<(), Error> {
    run_with(Arc::new(Informers::new(client)), cfg).await
}

/// Keeps Endpoints in step with services and pods (the manager's shared
/// informers) until an error.
pub async fn run_with(informers: Arc<Informers>, cfg: Arc<ControllerConfig>) -> Result<(), Error> {
    let client = informers.client().clone();
    drive(&informers, |cache, scope| {
        let desired = cache.desired(&cfg, scope);
        let client = client.clone();
        async move {
            for (svc, groups) in desired {
                if let Err(e) = write(&client, &svc, subsets(&groups)).await {
                    tracing::debug!(error = %e, "endpoints: write failed");
                }
            }
        }
    })
    .await
}

async fn write(client: &kube::Client, svc: &Service, subsets: Vec<EndpointSubset>) -> Result<(), Error> {
    let (Some(ns), Some(name)) = (svc.metadata.namespace.as_deref(), svc.metadata.name.as_deref()) else {
        return Ok(());
    };
    let api: Api<Endpoints> = Api::namespaced(client.clone(), ns);
    let subsets = (!subsets.is_empty()).then_some(subsets);
    match api.get_opt(name).await? {
        Some(mut cur) => {
            if cur.subsets == subsets {
                return Ok(());
            }
            cur.subsets = subsets;
            api.replace(name, &PostParams::default(), &cur).await?;
        }
        None => {
            let ep = Endpoints {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    labels: svc.metadata.labels.clone(),
                    ..ObjectMeta::default()
                },
                subsets,
            };
            api.create(&PostParams::default(), &ep).await?;
        }
    }
    Ok(())
}
