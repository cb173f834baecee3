//! NodeName: a pod that names a node (`spec.nodeName`) fits only that node.

use crate::framework::{Code, CycleState, FilterPlugin, Plugin, Status};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

/// The plugin.
#[derive(Debug, Default)]
pub struct NodeName;

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        "NodeName"
    }
}

impl FilterPlugin for NodeName {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        match pod.node_name() {
            Some(want) if want != node.name => Status::new(
                Code::UnschedulableAndUnresolvable,
                "node(s) didn't match the requested node name",
            ),
            _ => Status::success(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{node, pod};

    #[test]
    fn only_the_named_node_fits() {
        let p = pod("p").node_name("n1").info();
        assert!(
            NodeName
                .filter(&CycleState::new(), &p, &node("n1").info())
                .is_success()
        );
        let s = NodeName.filter(&CycleState::new(), &p, &node("n2").info());
        assert_eq!(s.message(), "node(s) didn't match the requested node name");
        assert!(
            NodeName
                .filter(&CycleState::new(), &pod("q").info(), &node("n2").info())
                .is_success()
        );
    }
}
