use std::sync::Arc;

use k8s_openapi::api::core::v1::TopologySpreadConstraint;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::*;
use crate::test_util::{node, pod};

fn constraint(key: &str, skew: i32, when: &str) -> TopologySpreadConstraint {
    TopologySpreadConstraint {
        max_skew: skew,
        topology_key: key.into(),
        when_unsatisfiable: when.into(),
        label_selector: Some(LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into_iter().collect()),
            match_expressions: None,
        }),
        ..Default::default()
    }
}

fn zones() -> Vec<NodeInfo> {
    let mut ns = vec![
        node("a").label("zone", "z1").info(),
        node("b").label("zone", "z2").info(),
        node("c").info(),
    ];
    ns[0].add_pod(Arc::new(pod("w1").label("app", "web").info()));
    ns[0].add_pod(Arc::new(pod("w2").label("app", "web").info()));
    ns[1].add_pod(Arc::new(pod("w3").label("app", "web").info()));
    ns
}

#[test]
fn do_not_schedule_respects_max_skew() {
    let ns = zones();
    let p = pod("w4")
        .label("app", "web")
        .spread(constraint("zone", 1, "DoNotSchedule"))
        .info();
    let mut st = CycleState::new();
    assert!(PodTopologySpread.pre_filter(&mut st, &p, &ns).is_success());
    // z1 has 2, z2 has 1: another in z1 makes skew 3-1 = 2 > 1.
    let s = PodTopologySpread.filter(&st, &p, &ns[0]);
    assert_eq!(s.code, Code::Unschedulable);
    assert_eq!(
        s.message(),
        "node(s) didn't match pod topology spread constraints"
    );
    assert!(PodTopologySpread.filter(&st, &p, &ns[1]).is_success());
    let s = PodTopologySpread.filter(&st, &p, &ns[2]);
    assert_eq!(
        s.code,
        Code::UnschedulableAndUnresolvable,
        "node without the zone label"
    );
}

#[test]
fn min_domains_forces_new_domains() {
    let ns = zones();
    let mut c = constraint("zone", 1, "DoNotSchedule");
    c.min_domains = Some(3);
    let p = pod("w4").label("app", "web").spread(c).info();
    let mut st = CycleState::new();
    PodTopologySpread.pre_filter(&mut st, &p, &ns);
    // Only 2 domains < 3, so the global minimum is 0: z2 (1 + 1 - 0 = 2) is too skewed too.
    assert!(!PodTopologySpread.filter(&st, &p, &ns[1]).is_success());
}

#[test]
fn schedule_anyway_prefers_emptier_domains() {
    let ns = zones();
    let p = pod("w4")
        .label("app", "web")
        .spread(constraint("zone", 1, "ScheduleAnyway"))
        .info();
    let mut st = CycleState::new();
    assert!(PodTopologySpread.pre_score(&mut st, &p, &[], &ns).is_success());
    let mut s: Vec<i64> = ns.iter().map(|n| PodTopologySpread.score(&st, &p, n)).collect();
    PodTopologySpread.normalize(&st, &p, &mut s);
    assert!(s[1] > s[0], "{s:?}");
    assert_eq!(s[2], 0);
}
