use std::sync::Mutex;

use super::*;
use crate::framework::default_normalize;
use crate::test_util::{node, pod};

struct Fixed {
    name: &'static str,
    verdict: Code,
    score: i64,
    reserve_ok: bool,
    log: Arc<Mutex<Vec<String>>>,
}

impl Fixed {
    fn new(name: &'static str, verdict: Code, log: &Arc<Mutex<Vec<String>>>) -> Arc<Self> {
        Arc::new(Fixed {
            name,
            verdict,
            score: 0,
            reserve_ok: true,
            log: log.clone(),
        })
    }
}

impl super::super::Plugin for Fixed {
    fn name(&self) -> &'static str {
        self.name
    }
}

impl PreFilterPlugin for Fixed {
    fn pre_filter(&self, _: &mut CycleState, _: &PodInfo, _: &[NodeInfo]) -> Status {
        Status {
            code: self.verdict,
            reasons: vec![],
            plugin: "",
        }
    }
}

impl FilterPlugin for Fixed {
    fn filter(&self, _: &CycleState, _: &PodInfo, node: &NodeInfo) -> Status {
        self.log
            .lock()
            .unwrap()
            .push(format!("filter {} {}", self.name, node.name));
        Status {
            code: self.verdict,
            reasons: vec![format!("{} says no", self.name)],
            plugin: "",
        }
    }
}

impl ScorePlugin for Fixed {
    fn score(&self, _: &CycleState, _: &PodInfo, node: &NodeInfo) -> i64 {
        self.score * node.name.len() as i64
    }
    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) {
        default_normalize(scores, false);
    }
}

impl ReservePlugin for Fixed {
    fn reserve(&self, _: &mut CycleState, _: &PodInfo, _: &str) -> Status {
        self.log.lock().unwrap().push(format!("reserve {}", self.name));
        if self.reserve_ok {
            Status::success()
        } else {
            Status::error("full")
        }
    }
    fn unreserve(&self, _: &mut CycleState, _: &PodInfo, _: &str) {
        self.log.lock().unwrap().push(format!("unreserve {}", self.name));
    }
}

#[test]
fn filters_stop_at_the_first_rejection_and_name_the_plugin() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let fw = Framework::new()
        .filter(Fixed::new("A", Code::Success, &log))
        .filter(Fixed::new("B", Code::Unschedulable, &log))
        .filter(Fixed::new("C", Code::Unschedulable, &log));
    let s = fw.run_filter(&CycleState::new(), &pod("p").info(), &node("n").info());
    assert_eq!(s.code, Code::Unschedulable);
    assert_eq!(s.plugin, "B");
    assert_eq!(s.message(), "B says no");
    assert_eq!(*log.lock().unwrap(), vec!["filter A n", "filter B n"]);
}

#[test]
fn pre_filter_skip_skips_the_filter() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let skipper = Fixed::new("S", Code::Skip, &log);
    let fw = Framework::new().pre_filter(skipper.clone()).filter(skipper);
    let mut st = CycleState::new();
    assert!(fw.run_pre_filter(&mut st, &pod("p").info(), &[]).is_success());
    assert!(
        fw.run_filter(&st, &pod("p").info(), &node("n").info())
            .is_success()
    );
    assert!(log.lock().unwrap().is_empty());
}

#[test]
fn scores_are_normalised_and_weighted() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let a = Arc::new(Fixed {
        name: "A",
        verdict: Code::Success,
        score: 7,
        reserve_ok: true,
        log: log.clone(),
    });
    let b = Arc::new(Fixed {
        name: "B",
        verdict: Code::Success,
        score: 1,
        reserve_ok: true,
        log,
    });
    let fw = Framework::new().score(a, 2).score(b, 1);
    let n1 = node("nn").info();
    let n2 = node("nnnn").info();
    let totals = fw.run_score(&CycleState::new(), &pod("p").info(), &[&n1, &n2]);
    // Each plugin normalises to 50 / 100; A counts twice.
    assert_eq!(totals, vec![150, 300]);
}

#[test]
fn a_failed_reserve_unreserves_in_reverse() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let ok = Fixed::new("ok", Code::Success, &log);
    let bad = Arc::new(Fixed {
        name: "bad",
        verdict: Code::Success,
        score: 0,
        reserve_ok: false,
        log: log.clone(),
    });
    let fw = Framework::new().reserve(ok).reserve(bad);
    let s = fw.run_reserve(&mut CycleState::new(), &pod("p").info(), "n");
    assert_eq!(s.code, Code::Error);
    assert_eq!(
        *log.lock().unwrap(),
        vec!["reserve ok", "reserve bad", "unreserve bad", "unreserve ok"]
    );
}

#[test]
fn cycle_state_is_typed() {
    let mut st = CycleState::new();
    st.write("k", 5u32);
    assert_eq!(st.read::<u32>("k"), Some(&5));
    assert_eq!(st.read::<i64>("k"), None);
    *st.read_mut::<u32>("k").unwrap() += 1;
    assert_eq!(st.read::<u32>("k"), Some(&6));
}
