//! Event rules (`ValidateEventCreate`/`ValidateEventUpdate`): every Event
//! passes the legacy checks (namespace agreement, and for new-style events
//! the reporting fields); Events written through events.k8s.io/v1 also get
//! the strict checks and immutable fields. Rules run on the core/v1 form, so
//! field paths use upstream's internal names (`message`, `reportingController`).

use super::names;
use crate::status::Cause;
use serde_json::{Value, json};

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

fn set(v: &Value, key: &str) -> bool {
    v.get(key)
        .is_some_and(|x| !x.is_null() && x != &json!("") && x != &json!(0))
}

fn too_long(field: &str, value: &str, limit: usize, out: &mut Vec<Cause>) {
    if value.len() > limit {
        out.push(Cause::invalid(
            field,
            &json!(""),
            format!("can have at most {limit} characters"),
        ));
    }
}

/// `legacyValidateEvent`, for an Event in core/v1 form.
pub(crate) fn legacy(ev: &Value, out: &mut Vec<Cause>) {
    let namespace = s(ev, "/metadata/namespace");
    let involved_ns = s(ev, "/involvedObject/namespace");
    let mismatch = || {
        Cause::invalid(
            "involvedObject.namespace",
            &json!(involved_ns),
            "does not match event.namespace",
        )
    };
    if !set(ev, "eventTime") {
        let ok = if involved_ns.is_empty() {
            namespace.is_empty() || namespace == "default"
        } else {
            namespace == involved_ns
        };
        if !ok {
            out.push(mismatch());
        }
    } else {
        if involved_ns.is_empty() && namespace != "default" && namespace != "kube-system" {
            out.push(mismatch());
        }
        let controller = s(ev, "/reportingComponent");
        if controller.is_empty() {
            out.push(Cause::required("reportingController"));
        }
        for msg in names::qualified_name(controller) {
            out.push(Cause::invalid("reportingController", &json!(controller), msg));
        }
        for (field, json_field, limit) in [
            ("reportingInstance", "reportingInstance", 128),
            ("action", "action", 128),
            ("reason", "reason", 128),
        ] {
            let value = s(ev, &format!("/{json_field}"));
            if value.is_empty() {
                out.push(Cause::required(field));
            }
            too_long(field, value, limit, out);
        }
        too_long("message", s(ev, "/message"), 1024, out);
    }
    for msg in names::dns1123_subdomain(namespace) {
        out.push(Cause::invalid("namespace", &json!(namespace), msg));
    }
}

/// The extra rules for Events created through events.k8s.io/v1.
pub(crate) fn strict(ev: &Value, out: &mut Vec<Cause>) {
    series(ev, out);
    if !set(ev, "eventTime") {
        out.push(Cause::required("eventTime"));
    }
    let ty = s(ev, "/type");
    if ty != "Normal" && ty != "Warning" {
        out.push(Cause::invalid(
            "type",
            &json!(""),
            format!("has invalid value: {ty}"),
        ));
    }
    for (json_field, field) in [
        ("firstTimestamp", "firstTimestamp"),
        ("lastTimestamp", "lastTimestamp"),
        ("count", "count"),
    ] {
        if set(ev, json_field) {
            out.push(Cause::invalid(field, &json!(""), "needs to be unset"));
        }
    }
    if !s(ev, "/source/component").is_empty() || !s(ev, "/source/host").is_empty() {
        out.push(Cause::invalid("source", &json!(""), "needs to be unset"));
    }
}

fn series(ev: &Value, out: &mut Vec<Cause>) {
    let Some(series) = ev.get("series").filter(|v| v.is_object()) else {
        return;
    };
    if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
        out.push(Cause::invalid("series.count", &json!(""), "should be at least 2"));
    }
    if series.get("lastObservedTime").is_none_or(Value::is_null) {
        out.push(Cause::required("series.lastObservedTime"));
    }
}

/// What an events.k8s.io/v1 update may not change (both Events in core/v1 form).
pub(crate) fn strict_update(new: &Value, old: &Value, out: &mut Vec<Cause>) {
    if new.get("series") != old.get("series") {
        series(new, out);
    }
    for (json_field, field) in [
        ("involvedObject", "involvedObject"),
        ("reason", "reason"),
        ("message", "message"),
        ("source", "source"),
        ("firstTimestamp", "firstTimestamp"),
        ("lastTimestamp", "lastTimestamp"),
        ("count", "count"),
        ("type", "type"),
        ("eventTime", "eventTime"),
        ("action", "action"),
        ("related", "related"),
        ("reportingComponent", "reportingController"),
        ("reportingInstance", "reportingInstance"),
    ] {
        let n = new.get(json_field).unwrap_or(&Value::Null);
        if n != old.get(json_field).unwrap_or(&Value::Null) {
            out.push(Cause::invalid(field, n, "field is immutable"));
        }
    }
}
