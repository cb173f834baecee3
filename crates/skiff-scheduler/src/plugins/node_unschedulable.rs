//! NodeUnschedulable: a cordoned node (`spec.unschedulable`) takes only pods
//! that tolerate `node.kubernetes.io/unschedulable:NoSchedule`.

use k8s_openapi::api::core::v1::Taint;

use super::taint_toleration::tolerates;
use crate::framework::{Code, CycleState, FilterPlugin, Plugin, Status};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

/// The plugin.
#[derive(Debug, Default)]
pub struct NodeUnschedulable;

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        "NodeUnschedulable"
    }
}

impl FilterPlugin for NodeUnschedulable {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if !node.unschedulable {
            return Status::success();
        }
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        let tolerations = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_deref())
            .unwrap_or_default();
        if tolerations.iter().any(|t| tolerates(t, &taint)) {
            return Status::success();
        }
        Status::new(Code::UnschedulableAndUnresolvable, "node(s) were unschedulable")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{node, pod};

    #[test]
    fn cordoned_nodes_reject_pods_without_the_toleration() {
        let n = node("n").unschedulable().info();
        let s = NodeUnschedulable.filter(&CycleState::new(), &pod("p").info(), &n);
        assert_eq!(s.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(s.message(), "node(s) were unschedulable");
        let tolerant = pod("p")
            .toleration("node.kubernetes.io/unschedulable", "Exists", "", "NoSchedule")
            .info();
        assert!(
            NodeUnschedulable
                .filter(&CycleState::new(), &tolerant, &n)
                .is_success()
        );
        assert!(
            NodeUnschedulable
                .filter(&CycleState::new(), &pod("p").info(), &node("m").info())
                .is_success()
        );
    }
}
