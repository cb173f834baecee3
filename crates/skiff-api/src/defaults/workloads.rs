//! Defaults of the pod-owning workloads: ReplicationController, apps/v1
//! Deployment, ReplicaSet, StatefulSet, DaemonSet, and batch/v1 Job, CronJob.

use super::{core, each, existing, object, pod, set, set_str, str_of};
use serde_json::{Value, json};

pub(crate) fn replication_controller(obj: &mut Value) {
    let template_labels = obj.pointer("/spec/template/metadata/labels").cloned();
    if let Some(spec) = object(obj, "spec") {
        set(spec, "replicas", json!(1));
        if let Some(labels) = template_labels.clone().filter(non_empty_map)
            && !spec.get("selector").is_some_and(non_empty_map)
        {
            spec["selector"] = labels;
        }
        pod::template_in(spec, "template");
    }
    if let Some(labels) = template_labels.filter(non_empty_map)
        && let Some(meta) = object(obj, "metadata")
        && !meta.get("labels").is_some_and(non_empty_map)
    {
        meta["labels"] = labels;
    }
}

fn non_empty_map(v: &Value) -> bool {
    v.as_object().is_some_and(|m| !m.is_empty())
}

pub(crate) fn deployment(obj: &mut Value) {
    let Some(spec) = object(obj, "spec") else { return };
    set(spec, "replicas", json!(1));
    if let Some(strategy) = object(spec, "strategy") {
        set_str(strategy, "type", "RollingUpdate");
        if str_of(strategy, "type") == "RollingUpdate"
            && let Some(ru) = object(strategy, "rollingUpdate")
        {
            set(ru, "maxUnavailable", json!("25%"));
            set(ru, "maxSurge", json!("25%"));
        }
    }
    set(spec, "revisionHistoryLimit", json!(10));
    set(spec, "progressDeadlineSeconds", json!(600));
    pod::template_in(spec, "template");
}

pub(crate) fn replica_set(obj: &mut Value) {
    let Some(spec) = object(obj, "spec") else { return };
    set(spec, "replicas", json!(1));
    pod::template_in(spec, "template");
}

pub(crate) fn stateful_set(obj: &mut Value) {
    let Some(spec) = object(obj, "spec") else { return };
    set_str(spec, "podManagementPolicy", "OrderedReady");
    if let Some(strategy) = object(spec, "updateStrategy") {
        // rollingUpdate is only created when the type itself was defaulted.
        if str_of(strategy, "type").is_empty() {
            set_str(strategy, "type", "RollingUpdate");
            object(strategy, "rollingUpdate");
        }
        if str_of(strategy, "type") == "RollingUpdate"
            && let Some(ru) = existing(strategy, "rollingUpdate")
        {
            set(ru, "partition", json!(0));
        }
    }
    if let Some(policy) = object(spec, "persistentVolumeClaimRetentionPolicy") {
        set_str(policy, "whenDeleted", "Retain");
        set_str(policy, "whenScaled", "Retain");
    }
    set(spec, "replicas", json!(1));
    set(spec, "revisionHistoryLimit", json!(10));
    each(spec, "volumeClaimTemplates", core::pvc);
    pod::template_in(spec, "template");
}

pub(crate) fn daemon_set(obj: &mut Value) {
    let Some(spec) = object(obj, "spec") else { return };
    if let Some(strategy) = object(spec, "updateStrategy") {
        set_str(strategy, "type", "RollingUpdate");
        if str_of(strategy, "type") == "RollingUpdate"
            && let Some(ru) = object(strategy, "rollingUpdate")
        {
            set(ru, "maxUnavailable", json!(1));
            set(ru, "maxSurge", json!(0));
        }
    }
    set(spec, "revisionHistoryLimit", json!(10));
    pod::template_in(spec, "template");
}

/// Job defaults, and the selector and template labels the Job strategy
/// generates from the uid unless `spec.manualSelector` is true.
pub(crate) fn job(obj: &mut Value) {
    let uid = obj
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let Some(spec) = object(obj, "spec") else { return };
    job_spec(spec);
    let manual = spec.get("manualSelector").and_then(Value::as_bool) == Some(true);
    if !manual && !uid.is_empty() {
        if let Some(labels) = object(spec, "template")
            .and_then(|t| object(t, "metadata"))
            .and_then(|m| object(m, "labels"))
        {
            set_str(labels, "batch.kubernetes.io/controller-uid", &uid);
            set_str(labels, "batch.kubernetes.io/job-name", &name);
            set_str(labels, "controller-uid", &uid);
            set_str(labels, "job-name", &name);
        }
        set(
            spec,
            "selector",
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        );
    }
    // Upstream defaults again when reading from storage, so a Job also shows
    // the generated template labels as its own.
    let template_labels = obj.pointer("/spec/template/metadata/labels").cloned();
    if let Some(labels) = template_labels.filter(non_empty_map)
        && let Some(meta) = object(obj, "metadata")
        && !meta.get("labels").is_some_and(non_empty_map)
    {
        meta["labels"] = labels;
    }
}

fn job_spec(spec: &mut Value) {
    let has = |spec: &Value, k: &str| spec.get(k).is_some_and(|v| !v.is_null());
    if !has(spec, "completions") && !has(spec, "parallelism") {
        set(spec, "completions", json!(1));
    }
    set(spec, "parallelism", json!(1));
    if has(spec, "backoffLimitPerIndex") {
        set(spec, "backoffLimit", json!(i32::MAX));
    } else {
        set(spec, "backoffLimit", json!(6));
    }
    set_str(spec, "completionMode", "NonIndexed");
    set(spec, "suspend", json!(false));
    let replacement = if has(spec, "podFailurePolicy") {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    set_str(spec, "podReplacementPolicy", replacement);
    pod::template_in(spec, "template");
}

pub(crate) fn cron_job(obj: &mut Value) {
    let Some(spec) = object(obj, "spec") else { return };
    set_str(spec, "concurrencyPolicy", "Allow");
    set(spec, "suspend", json!(false));
    set(spec, "successfulJobsHistoryLimit", json!(3));
    set(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(job_spec) = existing(spec, "jobTemplate").and_then(|t| existing(t, "spec")) {
        pod::template_in(job_spec, "template");
    }
}
