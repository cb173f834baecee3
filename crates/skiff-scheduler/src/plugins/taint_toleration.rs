//! TaintToleration: Filter rejects nodes with a NoSchedule/NoExecute taint
//! the pod does not tolerate; Score prefers nodes with fewer untolerated
//! PreferNoSchedule taints.

use k8s_openapi::api::core::v1::{Taint, Toleration};

use crate::framework::{Code, CycleState, FilterPlugin, Plugin, ScorePlugin, Status, default_normalize};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

/// The plugin.
#[derive(Debug, Default)]
pub struct TaintToleration;

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }
}

/// Upstream's `Toleration.ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    if t.key.as_deref().is_some_and(|k| !k.is_empty() && k != taint.key) {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

fn tolerations(pod: &PodInfo) -> &[Toleration] {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default()
}

impl FilterPlugin for TaintToleration {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let tols = tolerations(pod);
        let untolerated = node.taints.iter().find(|taint| {
            (taint.effect == "NoSchedule" || taint.effect == "NoExecute")
                && !tols.iter().any(|t| tolerates(t, taint))
        });
        match untolerated {
            None => Status::success(),
            Some(t) => Status::new(
                Code::UnschedulableAndUnresolvable,
                format!(
                    "node(s) had untolerated taint {{{}: {}}}",
                    t.key,
                    t.value.as_deref().unwrap_or("")
                ),
            ),
        }
    }
}

impl ScorePlugin for TaintToleration {
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let tols: Vec<&Toleration> = tolerations(pod)
            .iter()
            .filter(|t| {
                t.effect
                    .as_deref()
                    .is_none_or(|e| e.is_empty() || e == "PreferNoSchedule")
            })
            .collect();
        node.taints
            .iter()
            .filter(|taint| taint.effect == "PreferNoSchedule" && !tols.iter().any(|t| tolerates(t, taint)))
            .count() as i64
    }

    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) {
        default_normalize(scores, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{node, pod};

    #[test]
    fn untolerated_no_schedule_taints_reject() {
        let n = node("n").taint("dedicated", "gpu", "NoSchedule").info();
        let s = TaintToleration.filter(&CycleState::new(), &pod("p").info(), &n);
        assert_eq!(s.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(s.message(), "node(s) had untolerated taint {dedicated: gpu}");
        let equal = pod("p")
            .toleration("dedicated", "Equal", "gpu", "NoSchedule")
            .info();
        assert!(
            TaintToleration
                .filter(&CycleState::new(), &equal, &n)
                .is_success()
        );
        let wrong = pod("p").toleration("dedicated", "Equal", "cpu", "").info();
        assert!(
            !TaintToleration
                .filter(&CycleState::new(), &wrong, &n)
                .is_success()
        );
        let all = pod("p").toleration("", "Exists", "", "").info();
        assert!(TaintToleration.filter(&CycleState::new(), &all, &n).is_success());
    }

    #[test]
    fn prefer_no_schedule_only_lowers_the_score() {
        let tainted = node("a")
            .taint("x", "", "PreferNoSchedule")
            .taint("y", "", "PreferNoSchedule")
            .info();
        let clean = node("b").info();
        let p = pod("p").info();
        let st = CycleState::new();
        assert!(TaintToleration.filter(&st, &p, &tainted).is_success());
        let mut scores = vec![
            TaintToleration.score(&st, &p, &tainted),
            TaintToleration.score(&st, &p, &clean),
        ];
        TaintToleration.normalize(&st, &p, &mut scores);
        assert_eq!(scores, vec![0, 100]);
    }
}
