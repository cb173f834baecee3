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
        "integer",
        "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up.",
    ),
    col(
        "Replicas",
        "integer",
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
    let mut items = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i);
        let source = match text(spec, "/type") {
            "Resource" => "resource",
            "ContainerResource" => "containerResource",
            "Pods" => "pods",
            "Object" => "object",
            "External" => "external",
            _ => continue,
        };
        let current_of = |field: &str, percent: bool| -> String {
            status
                .and_then(|s| s.pointer(&format!("/{source}/current/{field}")))
                .map(|v| match v {
                    Value::Number(n) if percent => format!("{n}%"),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_else(|| "<unknown>".to_string())
        };
        let target = spec
            .get(source)
            .and_then(|s| s.get("target"))
            .unwrap_or(&Value::Null);
        let metric_name = match source {
            "resource" | "containerResource" => text(spec, &format!("/{source}/name")).to_string(),
            _ => text(spec, &format!("/{source}/metric/name")).to_string(),
        };
        let item = if let Some(avg) = target.get("averageValue").and_then(Value::as_str) {
            let current = current_of("averageValue", false);
            if source == "resource" || source == "containerResource" {
                format!("{metric_name}: {current}/{avg}")
            } else {
                format!("{current}/{avg} (avg)")
            }
        } else if let Some(value) = target.get("value").and_then(Value::as_str) {
            format!("{}/{value}", current_of("value", false))
        } else {
            let current = current_of("averageUtilization", true);
            let want = target
                .get("averageUtilization")
                .and_then(Value::as_i64)
                .map_or("<auto>".to_string(), |n| format!("{n}%"));
            format!("{metric_name}: {current}/{want}")
        };
        items.push(item);
    }
    if items.len() > 2 {
        let more = items.len() - 2;
        format!("{} + {more} more...", items[..2].join(", "))
    } else {
        items.join(", ")
    }
}
