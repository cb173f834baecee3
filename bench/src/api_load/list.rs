//! LIST latency of all pods in the cluster (`GET /api/v1/pods`, no limit), in
//! two modes: `resourceVersion=0` (any version, what a watch cache serves) and
//! a consistent list (no resourceVersion, most recent data). One untimed list
//! per mode warms up first. Times the whole response body; parsing happens
//! after the clock stops.

use std::time::{Duration, Instant};

use kube::Client;
use kube::api::ListParams;
use serde::Serialize;

use crate::error::BenchError;
use crate::stats::LatencySummary;

/// The two list semantics the benchmark measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListMode {
    /// `resourceVersion=0&resourceVersionMatch=NotOlderThan`.
    Rv0,
    /// No resourceVersion: a quorum/consistent read.
    Consistent,
}

impl ListMode {
    /// How the table names the mode.
    pub fn label(self) -> &'static str {
        match self {
            Self::Rv0 => "rv=0 (cache)",
            Self::Consistent => "consistent",
        }
    }

    fn params(self) -> ListParams {
        match self {
            Self::Rv0 => ListParams::default().match_any(),
            Self::Consistent => ListParams::default(),
        }
    }
}

/// What one list mode measured.
#[derive(Debug, Clone, Serialize)]
pub struct ListResult {
    /// Which semantics.
    pub mode: ListMode,
    /// Pods in the last response.
    pub items: usize,
    /// Size of the last response body in bytes.
    pub bytes: usize,
    /// Latency over all runs.
    pub latency: Option<LatencySummary>,
}

/// Lists all pods `runs` times in `mode`.
pub async fn run(client: &Client, mode: ListMode, runs: usize) -> Result<ListResult, BenchError> {
    let mut latencies: Vec<Duration> = Vec::with_capacity(runs);
    let mut last_body = String::new();
    for run in 0..=runs {
        let request = kube::core::Request::new("/api/v1/pods")
            .list(&mode.params())
            .map_err(|e| BenchError::Response {
                what: "building the list request".into(),
                detail: e.to_string(),
            })?;
        let sent = Instant::now();
        let body = client
            .request_text(request)
            .await
            .map_err(|e| BenchError::api(format!("LIST /api/v1/pods ({})", mode.label()), e))?;
        if run > 0 {
            latencies.push(sent.elapsed());
        }
        last_body = body;
    }
    let items = count_items(&last_body)?;
    Ok(ListResult {
        mode,
        items,
        bytes: last_body.len(),
        latency: LatencySummary::from_samples(&latencies),
    })
}

/// Number of entries in a list response's `items` (an absent or null
/// `items` is an empty list, as upstream sends for no objects).
pub fn count_items(body: &str) -> Result<usize, BenchError> {
    let bad = |detail: String| BenchError::Response {
        what: "LIST /api/v1/pods".into(),
        detail,
    };
    let value: serde_json::Value = serde_json::from_str(body).map_err(|e| bad(e.to_string()))?;
    if value.get("kind").and_then(|k| k.as_str()) != Some("PodList") {
        return Err(bad(format!("kind is {}, not PodList", value["kind"])));
    }
    match value.get("items") {
        None | Some(serde_json::Value::Null) => Ok(0),
        Some(serde_json::Value::Array(items)) => Ok(items.len()),
        Some(other) => Err(bad(format!("items is not an array: {other}"))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counts_pods_in_a_pod_list() {
        let body = r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9"},
            "items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}}]}"#;
        assert_eq!(count_items(body).unwrap(), 2);
        assert_eq!(count_items(r#"{"kind":"PodList","items":null}"#).unwrap(), 0);
    }

    #[test]
    fn a_status_instead_of_a_list_is_an_error() {
        let body = r#"{"kind":"Status","status":"Failure","code":500}"#;
        assert!(count_items(body).is_err());
        assert!(count_items("not json").is_err());
    }

    #[test]
    fn rv0_mode_asks_for_any_version() {
        let req = kube::core::Request::new("/api/v1/pods")
            .list(&ListMode::Rv0.params())
            .unwrap();
        let query = req.uri().query().unwrap_or_default().to_string();
        assert!(query.contains("resourceVersion=0"), "{query}");
        let req = kube::core::Request::new("/api/v1/pods")
            .list(&ListMode::Consistent.params())
            .unwrap();
        assert!(!req.uri().query().unwrap_or_default().contains("resourceVersion"));
    }
}
