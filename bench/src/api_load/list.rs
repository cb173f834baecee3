//! LIST latency of all pods in the cluster (`GET /api/v1/pods`, no limit), in
//! two modes: `resourceVersion=0` (any version, what a watch cache serves) and
//! a consistent list (no resourceVersion, most recent data). The modes are
//! interleaved run by run so neither gains from going second, after one
//! untimed list each. The clock stops at the body's last byte; the body is
//! kept as raw bytes (no copy, no UTF-8 pass) and parsed after the clock.

use std::time::{Duration, Instant};

use kube::Client;
use kube::api::ListParams;
use kube::client::Body;
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
    /// Both modes, in the order they are run.
    pub const ALL: [ListMode; 2] = [ListMode::Rv0, ListMode::Consistent];

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

/// Lists all pods `runs` times in every mode, interleaved.
pub async fn run(client: &Client, runs: usize) -> Result<Vec<ListResult>, BenchError> {
    let mut latencies: Vec<Vec<Duration>> = vec![Vec::with_capacity(runs); ListMode::ALL.len()];
    let mut last: Vec<bytes::Bytes> = vec![bytes::Bytes::new(); ListMode::ALL.len()];
    for run in 0..=runs {
        for (i, mode) in ListMode::ALL.into_iter().enumerate() {
            let (took, body) = list_once(client, mode).await?;
            if run > 0 {
                latencies[i].push(took);
            }
            last[i] = body;
        }
    }
    ListMode::ALL
        .into_iter()
        .zip(latencies.iter().zip(&last))
        .map(|(mode, (samples, body))| {
            Ok(ListResult {
                mode,
                items: count_items(body)?,
                bytes: body.len(),
                latency: LatencySummary::from_samples(samples),
            })
        })
        .collect()
}

/// One LIST: its latency to the last byte and its body.
async fn list_once(client: &Client, mode: ListMode) -> Result<(Duration, bytes::Bytes), BenchError> {
    let what = || format!("LIST /api/v1/pods ({})", mode.label());
    let request = kube::core::Request::new("/api/v1/pods")
        .list(&mode.params())
        .map_err(|e| BenchError::Response {
            what: what(),
            detail: e.to_string(),
        })?;
    let sent = Instant::now();
    let response = client
        .send(request.map(Body::from))
        .await
        .map_err(|e| BenchError::api(what(), e))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect_bytes()
        .await
        .map_err(|e| BenchError::api(what(), e))?;
    let took = sent.elapsed();
    if !status.is_success() {
        let detail = format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
        return Err(BenchError::Response { what: what(), detail });
    }
    Ok((took, body))
}

/// Number of entries in a list response's `items` (an absent or null
/// `items` is an empty list, as upstream sends for no objects).
pub fn count_items(body: &[u8]) -> Result<usize, BenchError> {
    let bad = |detail: String| BenchError::Response {
        what: "LIST /api/v1/pods".into(),
        detail,
    };
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
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
        let body = br#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9"},
            "items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}}]}"#;
        assert_eq!(count_items(body).unwrap(), 2);
        assert_eq!(count_items(br#"{"kind":"PodList","items":null}"#).unwrap(), 0);
    }

    #[test]
    fn a_status_instead_of_a_list_is_an_error() {
        let body = br#"{"kind":"Status","status":"Failure","code":500}"#;
        assert!(count_items(body).is_err());
        assert!(count_items(b"not json").is_err());
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
