//! What one StatefulSet reconcile should do, decided from a snapshot as
//! upstream's `updateStatefulSet`: create missing ordinals (each only after
//! the previous is Running and Ready under OrderedReady, all at once under
//! Parallel), delete surplus ordinals from the highest, then roll pods at or
//! above the partition onto the update revision, highest first, one at a
//! time and only while every replica is healthy; and the status counts.
//!
//! Pure functions; no API access.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::pods::pod_revision;
use crate::workload_util as wu;

/// One action of a reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create the pod with this ordinal; `update` picks the update revision
    /// (else the current one).
    Create {
        /// Ordinal of the pod.
        ordinal: i32,
        /// Made from the update revision.
        update: bool,
    },
    /// Delete this pod (failed, surplus, or outdated).
    Delete {
        /// Ordinal of the pod.
        ordinal: i32,
        /// Scaled away (its claims may follow `whenScaled`).
        condemned: bool,
    },
}

/// The inputs of a plan.
#[derive(Debug, Clone)]
pub struct Snapshot<'a> {
    /// Pods by ordinal, terminating ones included.
    pub pods: &'a BTreeMap<i32, Pod>,
    /// First ordinal (`spec.ordinals.start`).
    pub start: i32,
    /// `spec.replicas`.
    pub replicas: i32,
    /// `podManagementPolicy: OrderedReady`.
    pub ordered: bool,
    /// `updateStrategy.type: RollingUpdate`.
    pub rolling: bool,
    /// Pods with an index below this keep the current revision.
    pub partition: i32,
    /// Name of the current revision.
    pub current: &'a str,
    /// Name of the update revision.
    pub update: &'a str,
    /// `minReadySeconds`.
    pub min_ready: i32,
    /// Now.
    pub now: jiff::Timestamp,
}

fn phase(p: &Pod) -> &str {
    p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

fn terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
}

/// Running, Ready and available for minReadySeconds, and not terminating.
pub fn healthy(p: &Pod, min_ready: i32, now: jiff::Timestamp) -> bool {
    phase(p) == "Running" && !terminating(p) && wu::is_available(p, min_ready, now)
}

/// The steps of one reconcile, in order.
pub fn plan(s: &Snapshot<'_>) -> Vec<Step> {
    let mut steps = Vec::new();
    let end = s.start + s.replicas.max(0);
    for ordinal in s.start..end {
        let index = ordinal - s.start;
        match s.pods.get(&ordinal) {
            None => {
                let update = !(s.rolling && index < s.partition && s.current != s.update);
                steps.push(Step::Create { ordinal, update });
                if s.ordered {
                    return steps;
                }
            }
            Some(p) if matches!(phase(p), "Failed" | "Succeeded") && !terminating(p) => {
                steps.push(Step::Delete {
                    ordinal,
                    condemned: false,
                });
                if s.ordered {
                    return steps;
                }
            }
            Some(p) if s.ordered && !healthy(p, s.min_ready, s.now) => return steps,
            Some(_) => {}
        }
    }
    let condemned = s.pods.range(end..).chain(s.pods.range(..s.start)).rev();
    let mut condemned: Vec<(&i32, &Pod)> = condemned.collect();
    condemned.sort_by_key(|(o, _)| std::cmp::Reverse(**o));
    for (ordinal, p) in condemned {
        if terminating(p) {
            if s.ordered {
                return steps;
            }
            continue;
        }
        steps.push(Step::Delete {
            ordinal: *ordinal,
            condemned: true,
        });
        if s.ordered {
            return steps;
        }
    }
    if !s.rolling || !steps.is_empty() {
        return steps;
    }
    for ordinal in (s.start + s.partition.max(0)..end).rev() {
        let Some(p) = s.pods.get(&ordinal) else {
            return steps;
        };
        if pod_revision(p) != Some(s.update) && !terminating(p) {
            steps.push(Step::Delete {
                ordinal,
                condemned: false,
            });
            return steps;
        }
        if !healthy(p, s.min_ready, s.now) {
            return steps;
        }
    }
    steps
}

/// The counts a StatefulSet reports.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Pods that exist.
    pub replicas: i32,
    /// Running and Ready.
    pub ready: i32,
    /// Ready for minReadySeconds.
    pub available: i32,
    /// Live pods of the current revision.
    pub current: i32,
    /// Live pods of the update revision.
    pub updated: i32,
}

/// Counts as upstream's `computeReplicaStatus`.
pub fn count(
    pods: &BTreeMap<i32, Pod>,
    current: &str,
    update: &str,
    min_ready: i32,
    now: jiff::Timestamp,
) -> Counts {
    let mut c = Counts::default();
    for p in pods.values() {
        c.replicas += 1;
        if phase(p) == "Running" && wu::is_ready(p) {
            c.ready += 1;
            if wu::is_available(p, min_ready, now) {
                c.available += 1;
            }
        }
        if !terminating(p) {
            let rev = pod_revision(p);
            if rev == Some(current) {
                c.current += 1;
            }
            if rev == Some(update) {
                c.updated += 1;
            }
        }
    }
    c
}

/// The pods by ordinal whose names belong to `set`.
pub fn by_ordinal(set: &str, pods: Vec<Pod>) -> BTreeMap<i32, Pod> {
    pods.into_iter()
        .filter_map(|p| super::pods::ordinal_of(set, &p.name_any()).map(|o| (o, p)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemonset::history::REVISION_HASH_LABEL;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(ordinal: i32, rev: &str, ready: bool) -> (i32, Pod) {
        let p = Pod {
            metadata: ObjectMeta {
                name: Some(format!("web-{ordinal}")),
                labels: Some([(REVISION_HASH_LABEL.to_string(), rev.to_string())].into()),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some(if ready { "Running" } else { "Pending" }.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        };
        (ordinal, p)
    }

    fn snap<'a>(pods: &'a BTreeMap<i32, Pod>, replicas: i32, ordered: bool) -> Snapshot<'a> {
        Snapshot {
            pods,
            start: 0,
            replicas,
            ordered,
            rolling: true,
            partition: 0,
            current: "r1",
            update: "r1",
            min_ready: 0,
            now: jiff::Timestamp::now(),
        }
    }

    const fn create(ordinal: i32) -> Step {
        Step::Create {
            ordinal,
            update: true,
        }
    }

    #[test]
    fn ordered_ready_creates_one_at_a_time_after_the_previous_is_ready() {
        let none = BTreeMap::new();
        assert_eq!(plan(&snap(&none, 3, true)), [create(0)]);
        let pending: BTreeMap<_, _> = [pod(0, "r1", false)].into();
        assert!(plan(&snap(&pending, 3, true)).is_empty());
        let ready: BTreeMap<_, _> = [pod(0, "r1", true)].into();
        assert_eq!(plan(&snap(&ready, 3, true)), [create(1)]);
        assert_eq!(plan(&snap(&none, 3, false)), [create(0), create(1), create(2)]);
    }

    #[test]
    fn scale_down_removes_the_highest_ordinal_first() {
        let pods: BTreeMap<_, _> = [pod(0, "r1", true), pod(1, "r1", true), pod(2, "r1", true)].into();
        let del = |ordinal| Step::Delete {
            ordinal,
            condemned: true,
        };
        assert_eq!(plan(&snap(&pods, 1, true)), [del(2)]);
        assert_eq!(plan(&snap(&pods, 1, false)), [del(2), del(1)]);
    }

    #[test]
    fn rolling_update_goes_down_to_the_partition_one_pod_at_a_time() {
        let pods: BTreeMap<_, _> = [pod(0, "r1", true), pod(1, "r1", true), pod(2, "r2", true)].into();
        let mut s = snap(&pods, 3, true);
        s.update = "r2";
        let del = |ordinal| Step::Delete {
            ordinal,
            condemned: false,
        };
        assert_eq!(plan(&s), [del(1)]);
        s.partition = 2;
        assert!(plan(&s).is_empty());
        // A missing pod below the partition comes back at the current revision.
        let gap: BTreeMap<_, _> = [pod(1, "r1", true), pod(2, "r2", true)].into();
        let mut s = snap(&gap, 3, true);
        (s.update, s.partition) = ("r2", 2);
        assert_eq!(
            plan(&s),
            [Step::Create {
                ordinal: 0,
                update: false
            }]
        );
        let c = count(&pods, "r1", "r2", 0, jiff::Timestamp::now());
        assert_eq!((c.replicas, c.ready, c.current, c.updated), (3, 3, 2, 1));
    }
}
