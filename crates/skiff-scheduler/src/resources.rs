//! Resource arithmetic for scheduling: a [`Resource`] vector (cpu, memory,
//! ephemeral-storage, pod count, extended resources) and a pod's effective
//! request computed as upstream does (sum of containers, sidecars and init
//! containers folded in, pod overhead added).
//!
//! Pure data; no API access.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::quantity;

/// CPU (milli) a container without a cpu request counts as when scoring.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Memory (bytes) a container without a memory request counts as when scoring.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// A vector of resource amounts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    /// CPU in milli-cores.
    pub milli_cpu: i64,
    /// Memory in bytes.
    pub memory: i64,
    /// Ephemeral storage in bytes.
    pub ephemeral_storage: i64,
    /// Number of pods (only meaningful for a node's allocatable).
    pub allowed_pods: i64,
    /// Extended and other scalar resources (hugepages, example.com/gpu, ...).
    pub scalar: BTreeMap<String, i64>,
}

impl Resource {
    /// Reads a resource list (`requests`, `allocatable`, `overhead`).
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Self {
        let mut r = Resource::default();
        for (name, q) in list {
            r.set(name, &q.0);
        }
        r
    }

    fn set(&mut self, name: &str, q: &str) {
        match name {
            "cpu" => self.milli_cpu = quantity::milli_value(q).unwrap_or(0),
            "memory" => self.memory = quantity::value(q).unwrap_or(0),
            "ephemeral-storage" => self.ephemeral_storage = quantity::value(q).unwrap_or(0),
            "pods" => self.allowed_pods = quantity::value(q).unwrap_or(0),
            other => {
                self.scalar
                    .insert(other.to_string(), quantity::value(q).unwrap_or(0));
            }
        }
    }

    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.allowed_pods += other.allowed_pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_insert(0) += v;
        }
    }

    /// Subtracts `other` from `self`.
    pub fn sub(&mut self, other: &Resource) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.allowed_pods -= other.allowed_pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_insert(0) -= v;
        }
    }

    /// Sets every amount to the larger of `self` and `other`.
    pub fn set_max(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        self.allowed_pods = self.allowed_pods.max(other.allowed_pods);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = (*e).max(*v);
        }
    }

    /// True when nothing at all is requested.
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }
}

fn container_requests(c: &Container, non_zero: bool) -> Resource {
    let mut r = c.resources.as_ref().map(requests_of).unwrap_or_default();
    if non_zero {
        if r.milli_cpu == 0 {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if r.memory == 0 {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

/// A container's requests; limits stand in for missing requests, as API
/// defaulting would have made them.
fn requests_of(rr: &ResourceRequirements) -> Resource {
    let mut r = rr.limits.as_ref().map(Resource::from_list).unwrap_or_default();
    if let Some(req) = &rr.requests {
        for (name, q) in req {
            r.set(name, &q.0);
        }
    }
    r
}

/// The pod's effective request, upstream's `PodRequests`: the larger of
/// (containers + sidecars) and the largest init step, plus overhead. With `non_zero`, containers with no
/// cpu/memory request count as 100m / 200Mi (used for scoring).
pub fn pod_requests(pod: &Pod, non_zero: bool) -> Resource {
    let Some(spec) = &pod.spec else {
        return Resource::default();
    };
    let mut reqs = Resource::default();
    for c in &spec.containers {
        reqs.add(&container_requests(c, non_zero));
    }
    let mut restartable = Resource::default();
    let mut init_max = Resource::default();
    for ic in spec.init_containers.iter().flatten() {
        let r = container_requests(ic, non_zero);
        let this = if ic.restart_policy.as_deref() == Some("Always") {
            reqs.add(&r);
            restartable.add(&r);
            restartable.clone()
        } else {
            let mut t = r;
            t.add(&restartable);
            t
        };
        init_max.set_max(&this);
    }
    reqs.set_max(&init_max);
    if let Some(overhead) = &spec.overhead {
        reqs.add(&Resource::from_list(overhead));
    }
    reqs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{container, pod};

    #[test]
    fn sums_containers_and_adds_overhead() {
        let mut p = pod("a")
            .containers(vec![container("100m", "1Gi"), container("200m", "1Gi")])
            .build();
        p.spec.as_mut().unwrap().overhead = Some(
            [("cpu".to_string(), Quantity("50m".into()))]
                .into_iter()
                .collect(),
        );
        let r = pod_requests(&p, false);
        assert_eq!(r.milli_cpu, 350);
        assert_eq!(r.memory, 2 << 30);
    }

    #[test]
    fn init_containers_take_the_max() {
        let p = pod("a")
            .containers(vec![container("100m", "1Gi")])
            .init_containers(vec![container("500m", "100Mi")])
            .build();
        let r = pod_requests(&p, false);
        assert_eq!(r.milli_cpu, 500);
        assert_eq!(r.memory, 1 << 30);
    }

    #[test]
    fn sidecars_add_to_the_containers() {
        let mut sidecar = container("100m", "0");
        sidecar.restart_policy = Some("Always".into());
        let p = pod("a")
            .containers(vec![container("100m", "0")])
            .init_containers(vec![sidecar, container("150m", "0")])
            .build();
        // containers + sidecar = 200m; init step = 150m + sidecar 100m = 250m.
        assert_eq!(pod_requests(&p, false).milli_cpu, 250);
    }

    #[test]
    fn non_zero_defaults_for_scoring() {
        let p = pod("a").containers(vec![container("0", "0")]).build();
        let r = pod_requests(&p, true);
        assert_eq!(r.milli_cpu, DEFAULT_MILLI_CPU_REQUEST);
        assert_eq!(r.memory, DEFAULT_MEMORY_REQUEST);
        assert!(pod_requests(&p, false).is_zero());
    }
}
