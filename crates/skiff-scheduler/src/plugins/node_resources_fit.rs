//! NodeResourcesFit: the node's allocatable must cover what its pods already
//! request plus the incoming pod's request (cpu, memory, ephemeral-storage,
//! extended resources) and its pod count must stay within `pods`. Messages
//! as upstream: "Too many pods", "Insufficient cpu", ...

use crate::framework::{CycleState, FilterPlugin, Plugin, Status};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

/// The plugin.
#[derive(Debug, Default)]
pub struct NodeResourcesFit;

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }
}

/// Every reason `pod` does not fit `node`, in upstream's order.
pub fn insufficient(pod: &PodInfo, node: &NodeInfo) -> Vec<String> {
    let mut reasons = Vec::new();
    if node.pods.len() as i64 + 1 > node.allocatable.allowed_pods {
        reasons.push("Too many pods".to_string());
    }
    let req = &pod.requests;
    if req.is_zero() {
        return reasons;
    }
    let alloc = &node.allocatable;
    let used = &node.requested;
    if req.milli_cpu > 0 && req.milli_cpu > alloc.milli_cpu - used.milli_cpu {
        reasons.push("Insufficient cpu".to_string());
    }
    if req.memory > 0 && req.memory > alloc.memory - used.memory {
        reasons.push("Insufficient memory".to_string());
    }
    if req.ephemeral_storage > 0 && req.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage {
        reasons.push("Insufficient ephemeral-storage".to_string());
    }
    for (name, amount) in &req.scalar {
        if *amount == 0 {
            continue;
        }
        let have = alloc.scalar.get(name).copied().unwrap_or(0);
        let taken = used.scalar.get(name).copied().unwrap_or(0);
        if *amount > have - taken {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    reasons
}

impl FilterPlugin for NodeResourcesFit {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let reasons = insufficient(pod, node);
        if reasons.is_empty() {
            Status::success()
        } else {
            Status::unschedulable(reasons)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::*;
    use crate::framework::Code;
    use crate::test_util::{container, node, pod};

    fn check(p: &PodInfo, n: &NodeInfo) -> Status {
        NodeResourcesFit.filter(&CycleState::new(), p, n)
    }

    #[test]
    fn cpu_and_memory_must_fit_what_is_left() {
        let mut n = node("n").cpu("1").memory("1Gi").info();
        n.add_pod(Arc::new(
            pod("a").containers(vec![container("600m", "512Mi")]).info(),
        ));
        assert!(check(&pod("b").containers(vec![container("400m", "512Mi")]).info(), &n).is_success());
        let s = check(&pod("b").containers(vec![container("500m", "600Mi")]).info(), &n);
        assert_eq!(s.code, Code::Unschedulable);
        assert_eq!(s.reasons, vec!["Insufficient cpu", "Insufficient memory"]);
    }

    #[test]
    fn pod_count_and_extended_resources() {
        let mut n = node("n").pods("1").extended("example.com/gpu", "1").info();
        let mut c = container("0", "0");
        c.resources
            .as_mut()
            .unwrap()
            .requests
            .as_mut()
            .unwrap()
            .insert("example.com/gpu".into(), Quantity("2".into()));
        assert_eq!(
            check(&pod("g").containers(vec![c]).info(), &n).reasons,
            vec!["Insufficient example.com/gpu"]
        );
        n.add_pod(Arc::new(pod("a").info()));
        assert_eq!(check(&pod("b").info(), &n).reasons, vec!["Too many pods"]);
    }

    #[test]
    fn init_containers_count_as_upstream() {
        let n = node("n").cpu("1").info();
        let p = pod("p")
            .containers(vec![container("100m", "0")])
            .init_containers(vec![container("2", "0")])
            .info();
        assert_eq!(check(&p, &n).reasons, vec!["Insufficient cpu"]);
    }
}
