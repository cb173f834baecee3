//! Deployment status: replica counts summed over its ReplicaSets and the
//! Available / Progressing conditions (with progressDeadlineSeconds) worded
//! as upstream, so `kubectl rollout status` and `kubectl get` read alike.
//!
//! Must not: do I/O.

use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// What the status computation needs to know.
pub struct Inputs<'a> {
    /// spec.replicas.
    pub replicas: i32,
    /// Resolved maxUnavailable (0 for Recreate).
    pub max_unavailable: i32,
    /// metadata.generation.
    pub generation: Option<i64>,
    /// spec.paused.
    pub paused: bool,
    /// spec.progressDeadlineSeconds (default 600).
    pub progress_deadline: Option<i32>,
    /// The new ReplicaSet, if any.
    pub new_rs: Option<&'a ReplicaSet>,
    /// Every ReplicaSet the Deployment owns (new included).
    pub all: &'a [ReplicaSet],
    /// Whether this reconcile created the new ReplicaSet.
    pub created_new: bool,
    /// The previous status.
    pub old: Option<&'a DeploymentStatus>,
    /// Now.
    pub now: jiff::Timestamp,
}

fn counts(rs: &ReplicaSet) -> (i32, i32, i32) {
    let s = rs.status.as_ref();
    (
        s.map_or(0, |s| s.replicas),
        s.and_then(|s| s.ready_replicas).unwrap_or(0),
        s.and_then(|s| s.available_replicas).unwrap_or(0),
    )
}

fn cond(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: jiff::Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Puts `c` into `conds`, keeping the old transition time when the status
/// did not change, and the old update time when nothing else did either.
fn set(conds: &mut Vec<DeploymentCondition>, mut c: DeploymentCondition) {
    if let Some(old) = conds.iter().find(|o| o.type_ == c.type_)
        && old.status == c.status
    {
        c.last_transition_time = old.last_transition_time.clone();
        if old.reason == c.reason && old.message == c.message {
            return;
        }
    }
    conds.retain(|o| o.type_ != c.type_);
    conds.push(c);
}

/// Whether the rollout is complete: every replica updated and available and
/// no old pods left.
pub fn complete(st: &DeploymentStatus, replicas: i32) -> bool {
    st.updated_replicas.unwrap_or(0) == replicas
        && st.replicas.unwrap_or(0) == replicas
        && st.available_replicas.unwrap_or(0) == replicas
}

/// Computes the new status.
pub fn compute(inp: &Inputs<'_>) -> DeploymentStatus {
    let (mut replicas, mut ready, mut available) = (0, 0, 0);
    for rs in inp.all {
        let (r, re, a) = counts(rs);
        replicas += r;
        ready += re;
        available += a;
    }
    let updated = inp.new_rs.map_or(0, |rs| counts(rs).0);
    let mut st = DeploymentStatus {
        replicas: Some(replicas),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        unavailable_replicas: Some((inp.replicas - available).max(0)),
        observed_generation: inp.generation,
        collision_count: inp.old.and_then(|o| o.collision_count),
        conditions: None,
        terminating_replicas: None,
    };
    let mut conds = inp.old.and_then(|o| o.conditions.clone()).unwrap_or_default();
    let now = inp.now;
    if available >= inp.replicas - inp.max_unavailable {
        let c = cond(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
            now,
        );
        set(&mut conds, c);
    } else {
        let msg = "Deployment does not have minimum availability.".to_string();
        set(
            &mut conds,
            cond("Available", "False", "MinimumReplicasUnavailable", msg, now),
        );
    }
    let rs_name = inp
        .new_rs
        .and_then(|r| r.metadata.name.clone())
        .unwrap_or_default();
    if inp.paused {
        set(
            &mut conds,
            cond(
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused".into(),
                now,
            ),
        );
    } else if inp.new_rs.is_some() && complete(&st, inp.replicas) {
        let msg = format!("ReplicaSet \"{rs_name}\" has successfully progressed.");
        set(
            &mut conds,
            cond("Progressing", "True", "NewReplicaSetAvailable", msg, now),
        );
    } else if inp.created_new {
        let msg = format!("Created new replica set \"{rs_name}\"");
        set(
            &mut conds,
            cond("Progressing", "True", "NewReplicaSetCreated", msg, now),
        );
    } else if progressed(inp.old, &st) {
        let msg = format!("ReplicaSet \"{rs_name}\" is progressing.");
        let mut c = cond("Progressing", "True", "ReplicaSetUpdated", msg, now);
        if let Some(old) = conds
            .iter()
            .find(|o| o.type_ == "Progressing" && o.status == "True")
        {
            c.last_transition_time = old.last_transition_time.clone();
        }
        conds.retain(|o| o.type_ != "Progressing");
        conds.push(c);
    } else if let Some(deadline) = inp.progress_deadline {
        let timed_out = conds.iter().any(|o| {
            o.type_ == "Progressing"
                && o.status == "True"
                && o.reason.as_deref() != Some("NewReplicaSetAvailable")
                && o.last_update_time
                    .as_ref()
                    .is_some_and(|t| now.as_second() - t.0.as_second() > i64::from(deadline))
        });
        if timed_out {
            let msg = format!("ReplicaSet \"{rs_name}\" has timed out progressing.");
            set(
                &mut conds,
                cond("Progressing", "False", "ProgressDeadlineExceeded", msg, now),
            );
        }
    }
    conds.sort_by(|a, b| b.type_.cmp(&a.type_));
    st.conditions = Some(conds);
    st
}

/// Whether the counts moved since the last status (the rollout made progress).
fn progressed(old: Option<&DeploymentStatus>, new: &DeploymentStatus) -> bool {
    let Some(o) = old else { return true };
    o.replicas.unwrap_or(0) != new.replicas.unwrap_or(0)
        || o.updated_replicas.unwrap_or(0) != new.updated_replicas.unwrap_or(0)
        || o.ready_replicas.unwrap_or(0) != new.ready_replicas.unwrap_or(0)
        || o.available_replicas.unwrap_or(0) != new.available_replicas.unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSetStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn rs(name: &str, replicas: i32, available: i32) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: None,
            status: Some(ReplicaSetStatus {
                replicas,
                ready_replicas: Some(available),
                available_replicas: Some(available),
                ..Default::default()
            }),
        }
    }

    fn find<'a>(st: &'a DeploymentStatus, t: &str) -> &'a DeploymentCondition {
        st.conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == t)
            .unwrap()
    }

    #[test]
    fn complete_rollout_reports_new_replica_set_available() {
        let all = [rs("web-abc", 3, 3)];
        let st = compute(&Inputs {
            replicas: 3,
            max_unavailable: 0,
            generation: Some(2),
            paused: false,
            progress_deadline: Some(600),
            new_rs: Some(&all[0]),
            all: &all,
            created_new: false,
            old: None,
            now: jiff::Timestamp::now(),
        });
        assert_eq!(find(&st, "Available").status, "True");
        assert_eq!(
            find(&st, "Progressing").reason.as_deref(),
            Some("NewReplicaSetAvailable")
        );
        assert_eq!(st.observed_generation, Some(2));
    }

    #[test]
    fn stalled_rollout_exceeds_the_progress_deadline() {
        let all = [rs("web-new", 1, 0), rs("web-old", 3, 3)];
        let long_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(100);
        let old = DeploymentStatus {
            replicas: Some(4),
            updated_replicas: Some(1),
            ready_replicas: Some(3),
            available_replicas: Some(3),
            conditions: Some(vec![DeploymentCondition {
                type_: "Progressing".into(),
                status: "True".into(),
                reason: Some("ReplicaSetUpdated".into()),
                last_update_time: Some(Time(long_ago)),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let st = compute(&Inputs {
            replicas: 3,
            max_unavailable: 0,
            generation: Some(2),
            paused: false,
            progress_deadline: Some(10),
            new_rs: Some(&all[0]),
            all: &all,
            created_new: false,
            old: Some(&old),
            now: jiff::Timestamp::now(),
        });
        let p = find(&st, "Progressing");
        assert_eq!(
            (p.status.as_str(), p.reason.as_deref()),
            ("False", Some("ProgressDeadlineExceeded"))
        );
    }
}
