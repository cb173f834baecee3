//! Printers of batch/v1 Jobs (STATUS COMPLETIONS DURATION) and CronJobs
//! (SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE).

use super::format::{age_of, bool_ptr, containers_images, int, label_selector, list, name, since, text};
use super::{AGE, Column, NAME, Printer, Row, col, wide};
use serde_json::{Value, json};

const JOB: &[Column] = &[
    NAME,
    col("Status", "string", "Status of the job."),
    col(
        "Completions",
        "string",
        "The desired number of successfully finished pods the job should be run with.",
    ),
    col("Duration", "string", "Time required to complete the job."),
    AGE,
    wide("Containers", "string", "Names of each container in the template."),
    wide(
        "Images",
        "string",
        "Images referenced by each container in the template.",
    ),
    wide(
        "Selector",
        "string",
        "A label query over pods that should match the pod count.",
    ),
];

const CRON_JOB: &[Column] = &[
    NAME,
    col(
        "Schedule",
        "string",
        "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
    ),
    col(
        "Timezone",
        "string",
        "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones.",
    ),
    col(
        "Suspend",
        "boolean",
        "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.",
    ),
    col(
        "Active",
        "integer",
        "A list of pointers to currently running jobs.",
    ),
    col(
        "Last Schedule",
        "string",
        "Information when was the last time the job was successfully scheduled.",
    ),
    AGE,
    wide("Containers", "string", "Names of each container in the template."),
    wide(
        "Images",
        "string",
        "Images referenced by each container in the template.",
    ),
    wide(
        "Selector",
        "string",
        "A label query over pods that should match the pod count.",
    ),
];

pub(super) fn printer(kind: &str) -> Option<Printer> {
    Some(match kind {
        "Job" => Printer {
            columns: JOB,
            row: job,
        },
        "CronJob" => Printer {
            columns: CRON_JOB,
            row: cron_job,
        },
        _ => return None,
    })
}

fn has_condition(obj: &Value, ty: &str) -> bool {
    list(obj, "/status/conditions")
        .iter()
        .any(|c| text(c, "/type") == ty && text(c, "/status") == "True")
}

fn job(obj: &Value, now: jiff::Timestamp) -> Row {
    let succeeded = int(obj, "/status/succeeded");
    let completions = match (
        obj.pointer("/spec/completions").and_then(Value::as_i64),
        int(obj, "/spec/parallelism"),
    ) {
        (Some(c), _) => format!("{succeeded}/{c}"),
        (None, p) if p > 1 => format!("{succeeded}/1 of {p}"),
        (None, _) => format!("{succeeded}/1"),
    };
    let start = text(obj, "/status/startTime").parse::<jiff::Timestamp>().ok();
    let end = text(obj, "/status/completionTime")
        .parse::<jiff::Timestamp>()
        .ok();
    let duration = match (start, end) {
        (None, _) => String::new(),
        (Some(s), None) => super::human_duration(now.as_second() - s.as_second()),
        (Some(s), Some(e)) => super::human_duration(e.as_second() - s.as_second()),
    };
    let status = if has_condition(obj, "Complete") {
        "Complete"
    } else if has_condition(obj, "Failed") {
        "Failed"
    } else if obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        "Terminating"
    } else if has_condition(obj, "Suspended") {
        "Suspended"
    } else if has_condition(obj, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(obj, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    let (containers, images) = containers_images(obj.pointer("/spec/template/spec"));
    vec![
        json!(name(obj)),
        json!(status),
        json!(completions),
        json!(duration),
        json!(age_of(obj, now)),
        json!(containers),
        json!(images),
        json!(label_selector(obj.pointer("/spec/selector"))),
    ]
    .into()
}

fn cron_job(obj: &Value, now: jiff::Timestamp) -> Row {
    let last = if text(obj, "/status/lastScheduleTime").is_empty() {
        "<none>".to_string()
    } else {
        since(obj, "/status/lastScheduleTime", now)
    };
    let tz = text(obj, "/spec/timeZone");
    let (containers, images) = containers_images(obj.pointer("/spec/jobTemplate/spec/template/spec"));
    vec![
        json!(name(obj)),
        json!(text(obj, "/spec/schedule")),
        json!(if tz.is_empty() { "<none>" } else { tz }),
        json!(bool_ptr(obj.pointer("/spec/suspend"))),
        json!(list(obj, "/status/active").len()),
        json!(last),
        json!(age_of(obj, now)),
        json!(containers),
        json!(images),
        json!(label_selector(obj.pointer("/spec/jobTemplate/spec/selector"))),
    ]
    .into()
}
