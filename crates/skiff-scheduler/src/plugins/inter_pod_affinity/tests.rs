use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Affinity, PodAffinity, PodAffinityTerm, PodAntiAffinity, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::*;
use crate::test_util::{node, pod};

fn term(app: &str, key: &str) -> PodAffinityTerm {
    PodAffinityTerm {
        label_selector: Some(LabelSelector {
            match_labels: Some([("app".to_string(), app.to_string())].into_iter().collect()),
            match_expressions: None,
        }),
        topology_key: key.into(),
        ..Default::default()
    }
}

fn affinity(app: &str) -> Affinity {
    Affinity {
        pod_affinity: Some(PodAffinity {
            required_during_scheduling_ignored_during_execution: Some(vec![term(app, "zone")]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn anti(app: &str) -> Affinity {
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: Some(vec![term(
                app,
                "kubernetes.io/hostname",
            )]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn nodes() -> Vec<NodeInfo> {
    vec![
        node("a").label("zone", "z1").info(),
        node("b").label("zone", "z1").info(),
        node("c").label("zone", "z2").info(),
    ]
}

fn run(p: &PodInfo, nodes: &[NodeInfo]) -> Vec<Status> {
    let mut st = CycleState::new();
    let pre = InterPodAffinity.pre_filter(&mut st, p, nodes);
    if pre.code == Code::Skip {
        return nodes.iter().map(|_| Status::success()).collect();
    }
    nodes.iter().map(|n| InterPodAffinity.filter(&st, p, n)).collect()
}

#[test]
fn affinity_follows_the_zone_of_matching_pods() {
    let mut ns = nodes();
    ns[0].add_pod(Arc::new(pod("db").label("app", "db").info()));
    let r = run(&pod("web").affinity(affinity("db")).info(), &ns);
    assert!(r[0].is_success() && r[1].is_success(), "same zone as the db pod");
    assert_eq!(r[2].message(), "node(s) didn't match pod affinity rules");
    assert_eq!(r[2].code, Code::UnschedulableAndUnresolvable);
}

#[test]
fn first_pod_of_a_self_affine_group_may_go_anywhere() {
    let r = run(
        &pod("web").label("app", "web").affinity(affinity("web")).info(),
        &nodes(),
    );
    assert!(r.iter().all(Status::is_success));
    let r = run(&pod("web").affinity(affinity("db")).info(), &nodes());
    assert!(
        r.iter().all(|s| !s.is_success()),
        "no db pod anywhere and not self-matching"
    );
}

#[test]
fn anti_affinity_both_ways() {
    let mut ns = nodes();
    ns[0].add_pod(Arc::new(
        pod("w1").label("app", "web").affinity(anti("web")).info(),
    ));
    let incoming = pod("w2").label("app", "web").info();
    let r = run(&incoming, &ns);
    assert_eq!(
        r[0].message(),
        "node(s) didn't satisfy existing pods anti-affinity rules"
    );
    assert!(r[1].is_success());
    let r = run(&pod("w3").affinity(anti("web")).info(), &ns);
    assert_eq!(r[0].message(), "node(s) didn't match pod anti-affinity rules");
    assert_eq!(r[0].code, Code::Unschedulable);
    assert!(r[2].is_success());
}

#[test]
fn preferred_terms_score_topologies() {
    let mut ns = nodes();
    ns[2].add_pod(Arc::new(pod("db").label("app", "db").info()));
    let aff = Affinity {
        pod_affinity: Some(PodAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![WeightedPodAffinityTerm {
                weight: 50,
                pod_affinity_term: term("db", "zone"),
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let p = pod("web").affinity(aff).info();
    let mut st = CycleState::new();
    assert!(InterPodAffinity.pre_score(&mut st, &p, &[], &ns).is_success());
    let mut s: Vec<i64> = ns.iter().map(|n| InterPodAffinity.score(&st, &p, n)).collect();
    InterPodAffinity.normalize(&st, &p, &mut s);
    assert_eq!(s, vec![0, 0, 100]);
}

#[test]
fn terms_look_at_the_pod_namespace_only_by_default() {
    let mut ns = nodes();
    ns[0].add_pod(Arc::new(pod("w1").namespace("other").label("app", "web").info()));
    let r = run(&pod("w3").affinity(anti("web")).info(), &ns);
    assert!(r[0].is_success(), "a web pod in another namespace does not repel");
}
