//! PodDisruptionBudget status arithmetic, as upstream's disruption
//! controller: expected pods, desired and current healthy pods, allowed
//! disruptions, the `DisruptionAllowed` condition, and which evictions in
//! `status.disruptedPods` are still awaited.
//!
//! Must not: do I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::deployment::rollout::resolve;
use crate::workload_util::is_ready;

/// How long an eviction recorded in `disruptedPods` is awaited before the
/// pod counts again (upstream's DeletionTimeout).
pub const DELETION_TIMEOUT_SECONDS: i64 = 120;

/// Expected and desired healthy pods of a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Targets {
    pub expected: i32,
    pub desired_healthy: i32,
}

/// Why the targets could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// A percentage or maxUnavailable needs the pods' controllers, and some pod has none.
    #[error("found no controllers for pod {0:?}")]
    NoController(String),
    /// Neither minAvailable nor maxUnavailable is usable.
    #[error("invalid budget: {0}")]
    Invalid(String),
}

/// Upstream's `getExpectedPodCount`. `scale` is the sum of the pods'
/// controllers' replicas (`Err(pod)` when a pod has no scalable controller);
/// only asked for when the budget needs it.
pub fn targets(
    pdb: &PodDisruptionBudget,
    pod_count: i32,
    scale: impl FnOnce() -> Result<i32, String>,
) -> Result<Targets, TargetError> {
    let spec = pdb.spec.as_ref();
    let min = spec.and_then(|s| s.min_available.as_ref());
    let max = spec.and_then(|s| s.max_unavailable.as_ref());
    if let Some(max) = max {
        let expected = scale().map_err(TargetError::NoController)?;
        let unavailable = scaled(max, expected)?;
        return Ok(Targets {
            expected,
            desired_healthy: (expected - unavailable).max(0),
        });
    }
    match min {
        Some(IntOrString::Int(n)) => Ok(Targets {
            expected: pod_count,
            desired_healthy: *n,
        }),
        Some(m @ IntOrString::String(_)) => {
            let expected = scale().map_err(TargetError::NoController)?;
            Ok(Targets {
                expected,
                desired_healthy: scaled(m, expected)?,
            })
        }
        None => Err(TargetError::Invalid(
            "neither minAvailable nor maxUnavailable is set".into(),
        )),
    }
}

fn scaled(v: &IntOrString, total: i32) -> Result<i32, TargetError> {
    if let IntOrString::String(s) = v
        && s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()).is_none()
    {
        return Err(TargetError::Invalid(format!(
            "invalid value for IntOrString: {s:?}"
        )));
    }
    Ok(resolve(Some(v), 0, total, true))
}

fn seconds(t: &Time) -> i64 {
    t.0.as_second()
}

/// The evictions still awaited: entries for pods that exist, are not yet
/// deleting and were evicted less than [`DELETION_TIMEOUT_SECONDS`] ago.
pub fn awaited_disruptions(
    pdb: &PodDisruptionBudget,
    pods: &[&Pod],
    now: jiff::Timestamp,
) -> BTreeMap<String, Time> {
    let old = pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref());
    let mut out = BTreeMap::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if let Some(at) = old.and_then(|m| m.get(&name))
            && seconds(at) + DELETION_TIMEOUT_SECONDS > now.as_second()
        {
            out.insert(name, at.clone());
        }
    }
    out
}

/// Ready pods that are not being deleted nor awaiting an eviction.
pub fn current_healthy(pods: &[&Pod], disrupted: &BTreeMap<String, Time>) -> i32 {
    let n = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| !disrupted.contains_key(p.metadata.name.as_deref().unwrap_or_default()))
        .filter(|p| is_ready(p))
        .count();
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn condition(
    old: Option<&PodDisruptionBudgetStatus>,
    status: &str,
    reason: &str,
    generation: i64,
) -> Condition {
    let prev = old
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "DisruptionAllowed"));
    let since = match prev {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Time(jiff::Timestamp::now()),
    };
    Condition {
        type_: "DisruptionAllowed".into(),
        status: status.into(),
        reason: reason.into(),
        message: String::new(),
        observed_generation: Some(generation),
        last_transition_time: since,
    }
}

/// The status the budget should have, given its matching pods and targets
/// (`Err` makes the fail-safe status: no disruptions, reason SyncFailed).
pub fn desired_status(
    pdb: &PodDisruptionBudget,
    pods: &[&Pod],
    targets: &Result<Targets, TargetError>,
    now: jiff::Timestamp,
) -> PodDisruptionBudgetStatus {
    let old = pdb.status.as_ref();
    let generation = pdb.metadata.generation.unwrap_or(0);
    let disrupted = awaited_disruptions(pdb, pods, now);
    let healthy = current_healthy(pods, &disrupted);
    let Ok(t) = targets else {
        return PodDisruptionBudgetStatus {
            current_healthy: old.map_or(0, |s| s.current_healthy),
            desired_healthy: old.map_or(0, |s| s.desired_healthy),
            expected_pods: old.map_or(0, |s| s.expected_pods),
            disruptions_allowed: 0,
            disrupted_pods: old.and_then(|s| s.disrupted_pods.clone()),
            observed_generation: Some(generation),
            conditions: Some(vec![condition(old, "False", "SyncFailed", generation)]),
        };
    };
    let mut allowed = healthy - t.desired_healthy;
    if t.expected <= 0 || allowed <= 0 {
        allowed = 0;
    }
    let (status, reason) = if allowed > 0 {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    PodDisruptionBudgetStatus {
        current_healthy: healthy,
        desired_healthy: t.desired_healthy,
        expected_pods: t.expected,
        disruptions_allowed: allowed,
        disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
        observed_generation: Some(generation),
        conditions: Some(vec![condition(old, status, reason, generation)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::api::policy::v1::PodDisruptionBudgetSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(name: &str, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn pdb(min: Option<IntOrString>, max: Option<IntOrString>) -> PodDisruptionBudget {
        PodDisruptionBudget {
            metadata: ObjectMeta {
                name: Some("b".into()),
                generation: Some(3),
                ..Default::default()
            },
            spec: Some(PodDisruptionBudgetSpec {
                min_available: min,
                max_unavailable: max,
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn min_available_int_counts_matching_pods() {
        let b = pdb(Some(IntOrString::Int(2)), None);
        let pods = [pod("a", true), pod("b", true), pod("c", false)];
        let refs: Vec<&Pod> = pods.iter().collect();
        let t = targets(&b, 3, || unreachable!());
        let s = desired_status(&b, &refs, &t, jiff::Timestamp::now());
        assert_eq!(
            (
                s.expected_pods,
                s.desired_healthy,
                s.current_healthy,
                s.disruptions_allowed
            ),
            (3, 2, 2, 0)
        );
        assert_eq!(s.observed_generation, Some(3));
        let c = &s.conditions.unwrap()[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "InsufficientPods")
        );
    }

    #[test]
    fn percentages_and_max_unavailable_use_the_controller_scale() {
        let b = pdb(None, Some(IntOrString::String("25%".into())));
        let t = targets(&b, 4, || Ok(5)).unwrap();
        assert_eq!(
            t,
            Targets {
                expected: 5,
                desired_healthy: 3
            }
        );
        let b = pdb(Some(IntOrString::String("50%".into())), None);
        assert_eq!(targets(&b, 2, || Ok(3)).unwrap().desired_healthy, 2);
        let b = pdb(None, Some(IntOrString::Int(1)));
        assert!(matches!(
            targets(&b, 1, || Err("p".into())),
            Err(TargetError::NoController(_))
        ));
    }

    #[test]
    fn awaited_evictions_do_not_count_as_healthy() {
        let mut b = pdb(None, Some(IntOrString::Int(1)));
        let now = jiff::Timestamp::now();
        b.status = Some(PodDisruptionBudgetStatus {
            disrupted_pods: Some(
                [
                    ("a".to_string(), Time(now)),
                    ("gone".to_string(), Time(now)),
                    ("b".to_string(), Time(now - jiff::SignedDuration::from_secs(600))),
                ]
                .into(),
            ),
            ..Default::default()
        });
        let pods = [pod("a", true), pod("b", true), pod("c", true)];
        let refs: Vec<&Pod> = pods.iter().collect();
        let t = targets(&b, 3, || Ok(3));
        let s = desired_status(&b, &refs, &t, now);
        let awaited: Vec<&String> = s.disrupted_pods.as_ref().unwrap().keys().collect();
        assert_eq!(awaited, ["a"]);
        assert_eq!(
            (s.current_healthy, s.desired_healthy, s.disruptions_allowed),
            (2, 2, 0)
        );
    }
}
