//! Rollout arithmetic for Deployments, as upstream computes it: maxSurge and
//! maxUnavailable from ints or percents (surge rounds up, unavailable rounds
//! down, never both zero), how far the new ReplicaSet may grow, and how many
//! old pods may go in one step.
//!
//! Must not: do I/O; everything here is pure so it can be unit-tested.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Resolves an int-or-percent against `total`; percents round up or down.
/// A malformed percent counts as 0.
pub fn resolve(v: Option<&IntOrString>, default_pct: i32, total: i32, round_up: bool) -> i32 {
    match v {
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => {
            let pct = s
                .strip_suffix('%')
                .and_then(|p| p.parse::<i64>().ok())
                .unwrap_or(0);
            percent_of(pct, total, round_up)
        }
        None => percent_of(i64::from(default_pct), total, round_up),
    }
}

fn percent_of(pct: i64, total: i32, round_up: bool) -> i32 {
    let prod = pct * i64::from(total);
    let v = if round_up { (prod + 99) / 100 } else { prod / 100 };
    v.clamp(0, i64::from(i32::MAX)) as i32
}

/// `(maxSurge, maxUnavailable)` for `replicas`; defaults 25%/25%. When both
/// resolve to 0, maxUnavailable becomes 1 so a rollout can progress.
pub fn surge_and_unavailable(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    replicas: i32,
) -> (i32, i32) {
    let surge = resolve(max_surge, 25, replicas, true);
    let mut unavailable = resolve(max_unavailable, 25, replicas, false);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable.min(replicas.max(0)))
}

/// The replicas the new ReplicaSet should have during a rolling update:
/// grow towards `replicas` without the total of all ReplicaSets' spec
/// replicas (`total_current`) exceeding `replicas + surge`.
pub fn new_rs_replicas(replicas: i32, surge: i32, total_current: i32, new_current: i32) -> i32 {
    let max_total = replicas + surge;
    if new_current > replicas {
        return replicas;
    }
    if total_current >= max_total {
        return new_current;
    }
    let up = (max_total - total_current).min(replicas - new_current).max(0);
    new_current + up
}

/// One old ReplicaSet as the scale-down step sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldRs {
    /// spec.replicas.
    pub replicas: i32,
    /// status.availableReplicas.
    pub available: i32,
}

/// New spec.replicas for each old ReplicaSet (same order, oldest first)
/// during a rolling update: first drop unhealthy replicas, then available
/// ones, never letting available pods fall below `replicas - unavailable`.
pub fn scale_down_old(
    old: &[OldRs],
    replicas: i32,
    unavailable: i32,
    new_spec: i32,
    new_available: i32,
) -> Vec<i32> {
    let mut out: Vec<i32> = old.iter().map(|o| o.replicas).collect();
    let all_pods: i32 = out.iter().sum::<i32>() + new_spec;
    let min_available = replicas - unavailable;
    let new_unavailable = (new_spec - new_available).max(0);
    let mut budget = all_pods - min_available - new_unavailable;
    if budget <= 0 {
        return out;
    }
    // Unhealthy replicas of old sets go first: they cost no availability.
    for (i, o) in old.iter().enumerate() {
        if budget <= 0 {
            break;
        }
        let unhealthy = (out[i] - o.available).max(0).min(budget);
        out[i] -= unhealthy;
        budget -= unhealthy;
    }
    let total_available: i32 = old
        .iter()
        .zip(&out)
        .map(|(o, r)| o.available.min(*r))
        .sum::<i32>()
        + new_available;
    let mut can_drop = (total_available - min_available).min(budget).max(0);
    for r in out.iter_mut() {
        if can_drop <= 0 {
            break;
        }
        let d = (*r).min(can_drop);
        *r -= d;
        can_drop -= d;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> IntOrString {
        IntOrString::String(v.into())
    }

    #[test]
    fn percents_round_like_upstream() {
        // 10 replicas, 25%: surge 3 (ceil 2.5), unavailable 2 (floor 2.5).
        assert_eq!(surge_and_unavailable(None, None, 10), (3, 2));
        assert_eq!(surge_and_unavailable(Some(&s("30%")), Some(&s("30%")), 5), (2, 1));
        assert_eq!(
            surge_and_unavailable(Some(&IntOrString::Int(0)), Some(&IntOrString::Int(0)), 3),
            (0, 1)
        );
        assert_eq!(
            surge_and_unavailable(Some(&IntOrString::Int(2)), Some(&s("0%")), 1),
            (2, 0)
        );
    }

    #[test]
    fn new_set_grows_within_surge() {
        // 10 replicas, surge 3, old at 10, new at 0: new may grow to 3.
        assert_eq!(new_rs_replicas(10, 3, 10, 0), 3);
        assert_eq!(new_rs_replicas(10, 3, 13, 3), 3);
        assert_eq!(new_rs_replicas(10, 3, 11, 8), 10);
        // A scale-down during a rollout never leaves the new set above replicas.
        assert_eq!(new_rs_replicas(2, 1, 5, 4), 2);
    }

    #[test]
    fn old_sets_shrink_without_dropping_below_min_available() {
        // 10 replicas, unavailable 2; old 10 available, new 3 not yet available.
        let old = [OldRs {
            replicas: 10,
            available: 10,
        }];
        assert_eq!(scale_down_old(&old, 10, 2, 3, 0), vec![8]);
        // Once the new pods are available, the old set may go further.
        let old = [OldRs {
            replicas: 8,
            available: 8,
        }];
        assert_eq!(scale_down_old(&old, 10, 2, 5, 5), vec![3]);
    }

    #[test]
    fn unhealthy_old_pods_go_first() {
        let old = [
            OldRs {
                replicas: 3,
                available: 0,
            },
            OldRs {
                replicas: 3,
                available: 3,
            },
        ];
        // unavailable 0: only the broken set may shrink.
        assert_eq!(scale_down_old(&old, 3, 0, 0, 0), vec![0, 3]);
    }
}
