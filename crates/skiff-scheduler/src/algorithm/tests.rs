use std::sync::Arc;

use super::*;
use crate::plugins::{ScoreWeights, default_framework};
use crate::test_util::{cache_with, container, node, pod};

#[test]
fn sample_size_follows_upstream() {
    assert_eq!(num_feasible_nodes_to_find(50, None), 50);
    assert_eq!(num_feasible_nodes_to_find(1000, None), 420);
    assert_eq!(num_feasible_nodes_to_find(5000, None), 500);
    assert_eq!(num_feasible_nodes_to_find(20000, None), 1000);
    assert_eq!(num_feasible_nodes_to_find(1000, Some(100)), 1000);
    assert_eq!(num_feasible_nodes_to_find(1000, Some(1)), 100);
}

#[test]
fn fit_error_message_like_upstream() {
    let cache = cache_with(
        vec![
            node("a").cpu("1").build(),
            node("b").cpu("1").build(),
            node("c").cpu("1").taint("k", "v", "NoSchedule").build(),
        ],
        vec![],
    );
    let fw = default_framework(&ScoreWeights::default());
    let p = pod("p").containers(vec![container("2", "0")]).info();
    let err = Algorithm::new(None, 1)
        .schedule(&fw, &mut CycleState::new(), &p, &cache)
        .unwrap_err();
    let ScheduleError::Fit(mut fit) = err else {
        panic!("expected a fit error")
    };
    assert_eq!(
        fit.message(),
        "0/3 nodes are available: 1 node(s) had untolerated taint {k: v}, 2 Insufficient cpu."
    );
    fit.post_filter_msg =
        Some("preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod".into());
    assert!(fit.message().ends_with(
        "cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    ));
}

#[test]
fn least_allocated_spreads_pods() {
    let nodes: Vec<_> = (0..3).map(|i| node(&format!("n{i}")).build()).collect();
    let mut cache = cache_with(nodes, vec![]);
    let fw = default_framework(&ScoreWeights::default());
    let mut algo = Algorithm::new(None, 1);
    for i in 0..9 {
        let p = Arc::new(
            pod(&format!("p{i}"))
                .containers(vec![container("500m", "512Mi")])
                .info(),
        );
        let n = algo.schedule(&fw, &mut CycleState::new(), &p, &cache).unwrap();
        cache.assume(p, &n);
    }
    for n in cache.nodes() {
        assert_eq!(n.pods.len(), 3, "{} got {}", n.name, n.pods.len());
    }
}

#[test]
fn parallel_filtering_finds_the_same_nodes() {
    let nodes: Vec<_> = (0..600)
        .map(|i| {
            node(&format!("n{i}"))
                .label("even", if i % 2 == 0 { "y" } else { "n" })
                .build()
        })
        .collect();
    let cache = cache_with(nodes, vec![]);
    let fw = default_framework(&ScoreWeights::default());
    let p = pod("p").node_selector("even", "y").info();
    for threads in [1, 4] {
        let mut algo = Algorithm::new(Some(100), threads);
        let n = algo.schedule(&fw, &mut CycleState::new(), &p, &cache).unwrap();
        let idx: usize = n.trim_start_matches('n').parse().unwrap();
        assert_eq!(idx % 2, 0);
    }
    let q = pod("q").node_selector("even", "nope").info();
    let err = Algorithm::new(None, 4)
        .schedule(&fw, &mut CycleState::new(), &q, &cache)
        .unwrap_err();
    let ScheduleError::Fit(fit) = err else { panic!() };
    assert_eq!(
        fit.message(),
        "0/600 nodes are available: 600 node(s) didn't match Pod's node affinity/selector."
    );
}

#[test]
fn no_nodes_at_all() {
    let fw = default_framework(&ScoreWeights::default());
    let err = Algorithm::new(None, 1).schedule(&fw, &mut CycleState::new(), &pod("p").info(), &Cache::new());
    let Err(ScheduleError::Fit(fit)) = err else {
        panic!()
    };
    assert_eq!(fit.message(), "no nodes available to schedule pods");
}

/// The algorithm alone (no API): 1,000 nodes, 10,000 pods, schedule and
/// assume each. Run with `cargo test --release -p skiff-scheduler --lib
/// algorithm_throughput -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark"]
fn algorithm_throughput() {
    let nodes: Vec<_> = (0..1000)
        .map(|i| node(&format!("n{i:04}")).cpu("32").memory("64Gi").build())
        .collect();
    let mut cache = cache_with(nodes, vec![]);
    let fw = default_framework(&ScoreWeights::default());
    let mut algo = Algorithm::new(None, 1);
    let pods: Vec<_> = (0..10_000)
        .map(|i| {
            Arc::new(
                pod(&format!("p{i}"))
                    .label("app", "web")
                    .containers(vec![container("100m", "128Mi")])
                    .info(),
            )
        })
        .collect();
    let t = std::time::Instant::now();
    for p in pods {
        let n = algo.schedule(&fw, &mut CycleState::new(), &p, &cache).unwrap();
        cache.assume(p, &n);
    }
    let secs = t.elapsed().as_secs_f64();
    let counts: Vec<usize> = cache.nodes().iter().map(|n| n.pods.len()).collect();
    eprintln!(
        "10000 pods on 1000 nodes in {secs:.2}s: {:.0} pods/s; per node min {} max {}",
        10_000.0 / secs,
        counts.iter().min().unwrap(),
        counts.iter().max().unwrap()
    );
    assert!(
        counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 5,
        "least-allocated spreads pods (integer scores tie within a few pods)"
    );
}
