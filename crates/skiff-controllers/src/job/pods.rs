//! What the Job controller needs to know about one pod, and the pods it
//! creates: phase classification, when a failed pod finished, completion
//! indexes (annotation, label, hostname, `JOB_COMPLETION_INDEX`) and the
//! `completedIndexes` interval format (`"0-2,5"`).
//!
//! Must not: call the API server.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use crate::workload_util as wu;

/// The annotation (and label) holding an Indexed Job pod's index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// Where a pod is in its life, as the Job controller counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodState {
    /// Not finished and not being deleted.
    Active,
    /// Being deleted before it finished.
    Terminating,
    /// Phase Succeeded.
    Succeeded,
    /// Phase Failed.
    Failed,
}

/// Classifies `pod`.
pub fn state(pod: &Pod) -> PodState {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Succeeded") => PodState::Succeeded,
        Some("Failed") => PodState::Failed,
        _ if pod.metadata.deletion_timestamp.is_some() => PodState::Terminating,
        _ => PodState::Active,
    }
}

/// When a failed pod finished: its latest container `finishedAt`, else the
/// last condition change, else its creation.
pub fn finished_at(pod: &Pod) -> Option<jiff::Timestamp> {
    let status = pod.status.as_ref();
    let containers = status
        .into_iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max();
    let conditions = || {
        status
            .into_iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .filter_map(|c| c.last_transition_time.as_ref())
            .map(|t| t.0)
            .max()
    };
    containers
        .or_else(conditions)
        .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// Container restarts of the pod (init and regular), for `OnFailure` pods.
pub fn restarts(pod: &Pod) -> i32 {
    pod.status
        .iter()
        .flat_map(|s| {
            s.container_statuses
                .iter()
                .flatten()
                .chain(s.init_container_statuses.iter().flatten())
        })
        .map(|c| c.restart_count)
        .sum()
}

/// The pod's completion index if it is valid for `completions`.
pub fn index(pod: &Pod, completions: i32) -> Option<i32> {
    let v = pod.metadata.annotations.as_ref()?.get(COMPLETION_INDEX)?;
    v.parse::<i32>().ok().filter(|i| (0..completions).contains(i))
}

/// A pod for the Job from `template`; with `index` it gets the completion
/// index annotation and label, hostname `<job>-<index>` (unless the
/// template sets one) and `JOB_COMPLETION_INDEX` in every container.
pub fn build(template: &PodTemplateSpec, job: &str, index: Option<i32>, owner: OwnerReference) -> Pod {
    let prefix = match index {
        Some(i) => format!("{job}-{i}-"),
        None => format!("{job}-"),
    };
    let mut pod = wu::pod_from_template(template, &prefix, owner);
    let Some(i) = index else { return pod };
    let value = i.to_string();
    pod.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(COMPLETION_INDEX.into(), value.clone());
    pod.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(COMPLETION_INDEX.into(), value);
    if let Some(spec) = pod.spec.as_mut() {
        if spec.hostname.is_none() {
            spec.hostname = Some(format!("{job}-{i}"));
        }
        let env = EnvVar {
            name: "JOB_COMPLETION_INDEX".into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: None,
                    field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
                }),
                ..EnvVarSource::default()
            }),
        };
        let inits = spec.init_containers.iter_mut().flatten();
        for c in spec.containers.iter_mut().chain(inits) {
            let vars = c.env.get_or_insert_with(Vec::new);
            if !vars.iter().any(|e| e.name == env.name) {
                vars.push(env.clone());
            }
        }
    }
    pod
}

/// Parses `completedIndexes` (`"0-2,5"`); malformed parts are skipped.
pub fn parse_indexes(text: &str) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
            out.extend(a..=b);
        }
    }
    out
}

/// Formats indexes as sorted intervals (`"0-2,5"`).
pub fn format_indexes(set: &BTreeSet<i32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn indexes_round_trip_as_intervals() {
        let set = parse_indexes("0-2,5,7-8");
        assert_eq!(set.iter().copied().collect::<Vec<_>>(), [0, 1, 2, 5, 7, 8]);
        assert_eq!(format_indexes(&set), "0-2,5,7-8");
        assert_eq!(format_indexes(&BTreeSet::new()), "");
    }

    #[test]
    fn indexed_pods_carry_index_hostname_and_env() {
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta::default()),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        };
        let pod = build(&template, "work", Some(3), OwnerReference::default());
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("work-3-"));
        assert_eq!(index(&pod, 4), Some(3));
        assert_eq!(index(&pod, 3), None);
        let spec = pod.spec.unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("work-3"));
        let env = &spec.containers[0].env.as_ref().unwrap()[0];
        assert_eq!(env.name, "JOB_COMPLETION_INDEX");
        let plain = build(&template, "work", None, OwnerReference::default());
        assert_eq!(plain.metadata.generate_name.as_deref(), Some("work-"));
        assert!(plain.spec.unwrap().hostname.is_none());
    }
}
