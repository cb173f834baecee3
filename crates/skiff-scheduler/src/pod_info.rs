//! [`PodInfo`]: a pod plus everything the plugins would otherwise recompute
//! on every node of every cycle (requests, host ports, compiled affinity
//! terms, priority). Built once when the pod enters the scheduler's view.
//!
//! Pure data; no API access.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm, WeightedPodAffinityTerm};

use crate::labels::{Labels, Selector};
use crate::resources::{Resource, pod_requests};

/// A host port a pod asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// `hostIP`, "0.0.0.0" when unset.
    pub ip: String,
    /// TCP, UDP or SCTP.
    pub protocol: String,
    /// The port.
    pub port: i32,
}

impl HostPort {
    /// Whether two host ports cannot share a node.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

/// A compiled pod (anti-)affinity term.
#[derive(Debug, Clone)]
pub struct AffinityTerm {
    /// Namespaces whose pods the term looks at; empty with `all_namespaces`
    /// false means none.
    pub namespaces: Vec<String>,
    /// `namespaceSelector: {}`: every namespace.
    pub all_namespaces: bool,
    /// Which pods.
    pub selector: Selector,
    /// The node label that defines a domain.
    pub topology_key: String,
    /// Weight (preferred terms; 1 for required ones).
    pub weight: i64,
}

impl AffinityTerm {
    fn new(term: &PodAffinityTerm, own_ns: &str, weight: i64) -> Self {
        let selector = Selector::from_label_selector(term.label_selector.as_ref());
        let all_namespaces = term.namespace_selector.as_ref().is_some_and(|s| {
            s.match_labels.as_ref().is_none_or(|m| m.is_empty())
                && s.match_expressions.as_ref().is_none_or(|m| m.is_empty())
        });
        let mut namespaces = term.namespaces.clone().unwrap_or_default();
        if namespaces.is_empty() && term.namespace_selector.is_none() {
            namespaces.push(own_ns.to_string());
        }
        AffinityTerm {
            namespaces,
            all_namespaces,
            selector,
            topology_key: term.topology_key.clone(),
            weight,
        }
    }

    /// Whether `pod` is one of the pods this term selects.
    pub fn matches(&self, pod: &PodInfo) -> bool {
        (self.all_namespaces || self.namespaces.contains(&pod.namespace))
            && self.selector.matches(&pod.labels)
    }
}

/// A pod with pre-computed scheduling data.
#[derive(Debug, Clone)]
pub struct PodInfo {
    /// The pod as last seen.
    pub pod: Arc<Pod>,
    /// `namespace/name`.
    pub key: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
    /// Labels.
    pub labels: Labels,
    /// Effective priority (spec.priority or its PriorityClass's value).
    pub priority: i32,
    /// Requests for fit checks.
    pub requests: Resource,
    /// Requests for scoring (defaults for unset cpu/memory).
    pub non_zero_requests: Resource,
    /// Host ports.
    pub host_ports: Vec<HostPort>,
    /// Required affinity terms.
    pub required_affinity: Vec<AffinityTerm>,
    /// Required anti-affinity terms.
    pub required_anti_affinity: Vec<AffinityTerm>,
    /// Preferred affinity terms.
    pub preferred_affinity: Vec<AffinityTerm>,
    /// Preferred anti-affinity terms.
    pub preferred_anti_affinity: Vec<AffinityTerm>,
}

fn required(terms: Option<&Vec<PodAffinityTerm>>, ns: &str) -> Vec<AffinityTerm> {
    terms
        .into_iter()
        .flatten()
        .map(|t| AffinityTerm::new(t, ns, 1))
        .collect()
}

fn preferred(terms: Option<&Vec<WeightedPodAffinityTerm>>, ns: &str) -> Vec<AffinityTerm> {
    terms
        .into_iter()
        .flatten()
        .map(|t| AffinityTerm::new(&t.pod_affinity_term, ns, i64::from(t.weight)))
        .collect()
}

impl PodInfo {
    /// Pre-computes a pod's data; `priority` is its resolved priority.
    pub fn new(pod: Arc<Pod>, priority: i32) -> Self {
        let md = &pod.metadata;
        let namespace = md.namespace.clone().unwrap_or_default();
        let name = md.name.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        let mut host_ports = Vec::new();
        for c in spec.map(|s| s.containers.as_slice()).unwrap_or_default() {
            for p in c.ports.iter().flatten() {
                if let Some(port) = p.host_port.filter(|p| *p > 0) {
                    host_ports.push(HostPort {
                        ip: p
                            .host_ip
                            .clone()
                            .filter(|s| !s.is_empty())
                            .unwrap_or_else(|| "0.0.0.0".into()),
                        protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                        port,
                    });
                }
            }
        }
        let aff = spec.and_then(|s| s.affinity.as_ref());
        let pa = aff.and_then(|a| a.pod_affinity.as_ref());
        let paa = aff.and_then(|a| a.pod_anti_affinity.as_ref());
        PodInfo {
            key: format!("{namespace}/{name}"),
            uid: md.uid.clone().unwrap_or_default(),
            labels: md.labels.clone().unwrap_or_default(),
            priority,
            requests: pod_requests(&pod, false),
            non_zero_requests: pod_requests(&pod, true),
            host_ports,
            required_affinity: required(
                pa.and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()),
                &namespace,
            ),
            required_anti_affinity: required(
                paa.and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()),
                &namespace,
            ),
            preferred_affinity: preferred(
                pa.and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref()),
                &namespace,
            ),
            preferred_anti_affinity: preferred(
                paa.and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref()),
                &namespace,
            ),
            namespace,
            name,
            pod,
        }
    }

    /// Whether the pod has any affinity or anti-affinity term.
    pub fn has_affinity(&self) -> bool {
        !(self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty())
    }

    /// `spec.nodeName`, if bound.
    pub fn node_name(&self) -> Option<&str> {
        self.pod
            .spec
            .as_ref()?
            .node_name
            .as_deref()
            .filter(|s| !s.is_empty())
    }
}
