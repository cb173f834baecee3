//! NodePorts: a pod's host ports (`hostPort`, per protocol and host IP) must
//! be free on the node.

use crate::framework::{CycleState, FilterPlugin, Plugin, Status};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

/// The plugin.
#[derive(Debug, Default)]
pub struct NodePorts;

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        "NodePorts"
    }
}

impl FilterPlugin for NodePorts {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let conflict = pod
            .host_ports
            .iter()
            .any(|want| node.used_ports.iter().any(|used| used.conflicts(want)));
        if conflict {
            Status::unschedulable(vec![
                "node(s) didn't have free ports for the requested pod ports".into(),
            ])
        } else {
            Status::success()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::framework::Code;
    use crate::test_util::{node, pod};

    #[test]
    fn a_used_host_port_rejects() {
        let mut n = node("n").info();
        n.add_pod(Arc::new(pod("a").host_port(8080).info()));
        let s = NodePorts.filter(&CycleState::new(), &pod("b").host_port(8080).info(), &n);
        assert_eq!(s.code, Code::Unschedulable);
        assert_eq!(
            s.message(),
            "node(s) didn't have free ports for the requested pod ports"
        );
        assert!(
            NodePorts
                .filter(&CycleState::new(), &pod("c").host_port(9090).info(), &n)
                .is_success()
        );
        n.remove_pod("uid-a");
        assert!(
            NodePorts
                .filter(&CycleState::new(), &pod("b").host_port(8080).info(), &n)
                .is_success()
        );
    }
}
