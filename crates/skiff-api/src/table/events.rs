//! The Event printer (LAST SEEN TYPE REASON OBJECT MESSAGE, wide SUBOBJECT
//! SOURCE FIRST SEEN COUNT NAME), for core/v1 Events and, after conversion,
//! events.k8s.io/v1 Events.

use super::format::{int, name, since, text};
use super::{Column, Row, col, wide};
use serde_json::{Value, json};

pub(super) const EVENT: &[Column] = &[
    col(
        "Last Seen",
        "string",
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    col(
        "Type",
        "string",
        "Type of this event (Normal, Warning), new types could be added in the future.",
    ),
    col(
        "Reason",
        "string",
        "This should be a short, machine understandable string that gives the reason for this event being generated.",
    ),
    col("Object", "string", "The object that this event is about."),
    wide(
        "Subobject",
        "string",
        "The field of the object that this event is about.",
    ),
    wide(
        "Source",
        "string",
        "The component reporting this event. Should be a short machine understandable string.",
    ),
    col(
        "Message",
        "string",
        "A human-readable description of the status of this operation.",
    ),
    wide(
        "First Seen",
        "string",
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
    ),
    wide("Count", "string", "The number of times this event has occurred."),
    wide("Name", "string", super::NAME_DESC),
];

pub(super) fn event(obj: &Value, now: jiff::Timestamp) -> Row {
    let first = if text(obj, "/firstTimestamp").is_empty() {
        since(obj, "/eventTime", now)
    } else {
        since(obj, "/firstTimestamp", now)
    };
    let mut last = if text(obj, "/lastTimestamp").is_empty() {
        first.clone()
    } else {
        since(obj, "/lastTimestamp", now)
    };
    let mut count = int(obj, "/count");
    if obj.get("series").is_some_and(Value::is_object) {
        last = since(obj, "/series/lastObservedTime", now);
        count = int(obj, "/series/count");
    } else if count == 0 {
        count = 1;
    }
    let kind = text(obj, "/involvedObject/kind").to_ascii_lowercase();
    let target = match text(obj, "/involvedObject/name") {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let first_non_empty = |a: &'static str, b: &'static str| {
        let v = text(obj, a);
        if v.is_empty() { text(obj, b) } else { v }
    };
    let source = join_source(
        first_non_empty("/source/component", "/reportingComponent"),
        first_non_empty("/source/host", "/reportingInstance"),
    );
    vec![
        json!(last),
        json!(text(obj, "/type")),
        json!(text(obj, "/reason")),
        json!(target),
        json!(text(obj, "/involvedObject/fieldPath")),
        json!(source),
        json!(text(obj, "/message").trim()),
        json!(first),
        json!(count),
        json!(name(obj)),
    ]
    .into()
}

fn join_source(component: &str, host: &str) -> String {
    if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    }
}
