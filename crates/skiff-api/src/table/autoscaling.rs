//! The HorizontalPodAutoscaler printer (REFERENCE TARGETS MINPODS MAXPODS
//! REPLICAS) with upstream's metric formatting; autoscaling/v1 objects are
//! shown through their v2 form.

use super::format::{age_of, int, list, name, text};
use super::{AGE, Column, NAME, Row, col};
use serde_json::{Value, json};

pub(super) const HPA: &[Column] = &[
    NAME,
    col(
        "Reference",
        "string",
        "reference to scaled resource; horizontal pod autoscaler will learn the current resource consumption and will set the desired number of pods by using its Scale subresource.",
    ),
    col(
        "Targets",
        "string",
        "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).",
    ),
    col(
        "MinPods",
        "string",
        "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.",
    ),
    col(
        "MaxPods",
        "string",
        "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up.",
    ),
    col(
        "Replicas",
        "string",
        "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler.",
    ),
    AGE,
];

pub(super) fn hpa(obj: &Value, now: jiff::Timestamp) -> Row {
    let v2;
    let obj = if obj.pointer("/spec/targetCPUUtilizationPercentage").is_some()
        || text(obj, "/apiVersion") == "autoscaling/v1"
    {
        v2 = crate::conversion::hpa_v1_to_v2(obj.clone());
        &v2
    } else {
        obj
    };
    let reference = format!(
        "{}/{}",
        text(obj, "/spec/scaleTargetRef/kind"),
        text(obj, "/spec/scaleTargetRef/name")
    );
    let min = obj
        .pointer("/spec/minReplicas")
        .and_then(Value::as_i64)
        .map_or("<unset>".to_string(), |n| n.to_string());
    vec![
        json!(name(obj)),
        json!(reference),
        json!(hpa_targets(
            list(obj, "/spec/metrics"),
            list(obj, "/status/currentMetrics")
        )),
        json!(min),
        json!(int(obj, "/spec/maxReplicas")),
        json!(int(obj, "/status/currentReplicas")),
        json!(age_of(obj, now)),
    ]
    .into()
}

/// Upstream's `formatHPAMetrics`: `cpu: 40%/80%`, at most two then ` + N more...`.
fn hpa_targets(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".to_string();
    }
    let items: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| metric(spec, statuses.get(i)))
        .collect();
    if items.len() > 2 {
        format!("{} + {} more...", items[..2].join(", "), items.len() - 2)
    } else {
        items.join(", ")
    }
}

/// One metric as `current/target`, in the form upstream uses for its source type.
fn metric(spec: &Value, status: Option<&Value>) -> String {
    let source = match text(spec, "/type") {
        "Resource" => "resource",
        "ContainerResource" => "containerResource",
        "Pods" => "pods",
        "Object" => "object",
        "External" => "external",
        _ => return "<unknown type>".to_string(),
    };
    // The status entry must be of the same source type to count.
    let current = |field: &str| -> Option<String> {
        let v = status?.get(source)?.get("current")?.get(field)?;
        Some(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    let unknown = || "<unknown>".to_string();
    let target = |field: &str| text(spec, &format!("/{source}/target/{field}")).to_string();
    let average_value = spec
        .pointer(&format!("/{source}/target/averageValue"))
        .is_some_and(|v| !v.is_null());
    match source {
        "resource" | "containerResource" => {
            let name = text(spec, &format!("/{source}/name"));
            if average_value {
                format!(
                    "{name}: {}/{}",
                    current("averageValue").unwrap_or_else(unknown),
                    target("averageValue")
                )
            } else {
                let now = current("averageUtilization")
                    .map(|p| format!("{p}%"))
                    .unwrap_or_else(unknown);
                let want = spec
                    .pointer(&format!("/{source}/target/averageUtilization"))
                    .and_then(Value::as_i64)
                    .map_or_else(|| "<auto>".to_string(), |n| format!("{n}%"));
                format!("{name}: {now}/{want}")
            }
        }
        "pods" => format!(
            "{}/{}",
            current("averageValue").unwrap_or_else(unknown),
            target("averageValue")
        ),
        _ if average_value => {
            format!(
                "{}/{} (avg)",
                current("averageValue").unwrap_or_else(unknown),
                target("averageValue")
            )
        }
        _ => format!("{}/{}", current("value").unwrap_or_else(unknown), target("value")),
    }
}
