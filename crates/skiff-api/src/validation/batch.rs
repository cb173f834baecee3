//! batch/v1 rules: Jobs (restart policy OnFailure/Never, counts, selector,
//! immutable template and completions) and CronJobs (schedule, concurrency
//! policy, name length, job template).

use super::s;
use super::workloads::non_negative;
use super::{cron, labelsel, pod};
use crate::status::Cause;
use serde_json::{Value, json};

/// Problems with a job spec at `path` (`spec` or `spec.jobTemplate.spec`).
fn job_spec(spec: &Value, path: &str, check_selector: bool, out: &mut Vec<Cause>) {
    for key in [
        "parallelism",
        "completions",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
    ] {
        non_negative(spec, key, path, out);
    }
    if let Some(ads) = spec
        .get("activeDeadlineSeconds")
        .and_then(Value::as_i64)
        .filter(|n| *n <= 0)
    {
        out.push(Cause::invalid(
            format!("{path}.activeDeadlineSeconds"),
            &json!(ads),
            "must be greater than 0",
        ));
    }
    let mode = s(spec, "completionMode");
    if !mode.is_empty() && !["NonIndexed", "Indexed"].contains(&mode) {
        out.push(Cause::not_supported(
            format!("{path}.completionMode"),
            &json!(mode),
            &["NonIndexed", "Indexed"],
        ));
    }
    if mode == "Indexed" && spec.get("completions").is_none_or(Value::is_null) {
        out.push(Cause::new(
            "FieldValueRequired",
            format!("{path}.completions"),
            "Required value: when completion mode is Indexed",
        ));
    }
    let tpath = format!("{path}.template");
    match spec.get("template").filter(|t| t.is_object()) {
        Some(t) => pod::template(t, &tpath, out),
        None => out.push(Cause::required(tpath.clone())),
    }
    let restart = spec
        .pointer("/template/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let rpath = format!("{tpath}.spec.restartPolicy");
    if restart.is_empty() {
        out.push(Cause::new(
            "FieldValueRequired",
            rpath,
            "Required value: valid values: \"OnFailure\", \"Never\"",
        ));
    } else if !["OnFailure", "Never"].contains(&restart) {
        out.push(Cause::not_supported(
            rpath,
            &json!(restart),
            &["OnFailure", "Never"],
        ));
    }
    if check_selector {
        let manual = spec.get("manualSelector").and_then(Value::as_bool) == Some(true);
        match spec.get("selector").filter(|v| !v.is_null()) {
            None if manual => out.push(Cause::required(format!("{path}.selector"))),
            None => {}
            Some(sel) => {
                labelsel::validate(sel, &format!("{path}.selector"), out);
                let labels = spec.pointer("/template/metadata/labels");
                if !labelsel::matches(sel, labels) {
                    out.push(Cause::invalid(
                        format!("{tpath}.metadata.labels"),
                        &labelsel::labels_value(labels),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
        }
    }
}

pub(crate) fn job(obj: &Value, out: &mut Vec<Cause>) {
    job_spec(obj.get("spec").unwrap_or(&Value::Null), "spec", true, out);
}

/// A Job's selector, completion mode and (unless suspended) template are fixed.
pub(crate) fn job_update(new: &Value, old: &Value, out: &mut Vec<Cause>) {
    let get = |v: &Value, p: &str| v.pointer(p).cloned().unwrap_or(Value::Null);
    for (ptr, path) in [
        ("/spec/selector", "spec.selector"),
        ("/spec/completionMode", "spec.completionMode"),
    ] {
        let n = get(new, ptr);
        if n != get(old, ptr) {
            out.push(Cause::invalid(path, &n, "field is immutable"));
        }
    }
    let suspended = old.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
    let n = get(new, "/spec/template");
    if !suspended && n != get(old, "/spec/template") {
        out.push(Cause::invalid("spec.template", &n, "field is immutable"));
    }
    let indexed = get(new, "/spec/completionMode") == json!("Indexed");
    let n = get(new, "/spec/completions");
    if !indexed && n != get(old, "/spec/completions") {
        out.push(Cause::invalid("spec.completions", &n, "field is immutable"));
    }
}

pub(crate) fn cron_job(obj: &Value, out: &mut Vec<Cause>) {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name.len() > 52 {
        out.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            "must be no more than 52 characters",
        ));
    }
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let schedule = s(spec, "schedule");
    if schedule.is_empty() {
        out.push(Cause::required("spec.schedule"));
    } else if schedule.contains("TZ") {
        out.push(Cause::invalid(
            "spec.schedule",
            &json!(schedule),
            "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        ));
    } else if let Err(msg) = cron::parse_schedule(schedule) {
        out.push(Cause::invalid("spec.schedule", &json!(schedule), msg));
    }
    let policy = s(spec, "concurrencyPolicy");
    let policies = ["Allow", "Forbid", "Replace"];
    if !policy.is_empty() && !policies.contains(&policy) {
        out.push(Cause::not_supported(
            "spec.concurrencyPolicy",
            &json!(policy),
            &policies,
        ));
    }
    for key in [
        "startingDeadlineSeconds",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
    ] {
        non_negative(spec, key, "spec", out);
    }
    match spec.pointer("/jobTemplate/spec").filter(|v| v.is_object()) {
        Some(js) => job_spec(js, "spec.jobTemplate.spec", false, out),
        None => out.push(Cause::required("spec.jobTemplate.spec.template")),
    }
}
