//! POST pods/{name}/eviction (policy/v1 Eviction): deletes a pod unless a
//! PodDisruptionBudget forbids it, as upstream's eviction REST does.
//!
//! Running, ready pods covered by a budget need a positive
//! `status.disruptionsAllowed`; the eviction takes one (a compare-and-swap write of the budget's
//! status that also records the pod in `status.disruptedPods`) before the
//! pod is deleted. Otherwise: 429 TooManyRequests with upstream's message and
//! a `DisruptionBudget` cause.
//!
//! Must not: compute budgets; the disruption controller keeps their status.

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};
use skiff_api::selector::LabelSelector;
use skiff_api::status::{ApiError, Cause};
use skiff_store::StoreError;

use super::delete::delete_one;
use super::write::{Warnings, respond_object, served_from_kv, sync_cache};
use super::{Ctx, read_object};
use crate::errors::{ApiResult, store_error};
use crate::strategy::{self, DeleteOptions};

/// Upstream's message when a budget blocks an eviction.
pub const BLOCKED: &str = "Cannot evict pod as it would violate the pod's disruption budget.";
/// Upstream's limit on evictions the disruption controller has not yet seen.
const MAX_DISRUPTED_PODS: usize = 2000;
/// Compare-and-swap attempts on the budget's status before giving up.
const RETRIES: usize = 5;

/// What the budget says about evicting a pod.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Evict without touching the budget (the pod is unhealthy and the budget allows it).
    Delete,
    /// Take one disruption from the budget, then evict.
    Decrement,
    /// Refuse.
    Refuse(ApiError),
}

fn blocked(cause: String) -> ApiError {
    let mut err = ApiError::too_many_requests(BLOCKED, 0);
    err.retry_after_seconds = None;
    err.causes = vec![Cause::new("DisruptionBudget", "", cause)];
    err
}

/// Pods a budget never protects: finished, pending or already terminating.
pub(crate) fn ignores_budgets(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed" | "Pending")
    ) || pod["metadata"]["deletionTimestamp"].is_string()
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Upstream's eviction decision for a covered pod and its budget.
pub(crate) fn decide(pod: &Value, pdb: &Value) -> Verdict {
    let name = pdb["metadata"]["name"].as_str().unwrap_or_default();
    let status = &pdb["status"];
    let current = status["currentHealthy"].as_i64().unwrap_or(0);
    let desired = status["desiredHealthy"].as_i64().unwrap_or(0);
    if !is_ready(pod) {
        match pdb["spec"]["unhealthyPodEvictionPolicy"].as_str() {
            Some("AlwaysAllow") => return Verdict::Delete,
            _ if current >= desired && desired > 0 => return Verdict::Delete,
            _ => {}
        }
    }
    let generation = pdb["metadata"]["generation"].as_i64().unwrap_or(0);
    if status["observedGeneration"].as_i64().unwrap_or(0) < generation {
        return Verdict::Refuse(blocked(format!(
            "The disruption budget {name} is still being processed by the server."
        )));
    }
    let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0);
    if allowed < 0 {
        return Verdict::Refuse(ApiError::forbidden("pdb disruptions allowed is negative"));
    }
    if status["disruptedPods"].as_object().map_or(0, |m| m.len()) > MAX_DISRUPTED_PODS {
        return Verdict::Refuse(ApiError::forbidden(
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if allowed == 0 {
        return Verdict::Refuse(blocked(format!(
            "The disruption budget {name} needs {desired} healthy pods and has {current} currently"
        )));
    }
    Verdict::Decrement
}

/// The budget with one disruption taken for `pod_name` at `now`.
pub(crate) fn take_disruption(pdb: &Value, pod_name: &str, now: &str) -> Value {
    let mut out = pdb.clone();
    let allowed = pdb["status"]["disruptionsAllowed"].as_i64().unwrap_or(0);
    out["status"]["disruptionsAllowed"] = json!(allowed - 1);
    if !out["status"]["disruptedPods"].is_object() {
        out["status"]["disruptedPods"] = json!({});
    }
    out["status"]["disruptedPods"][pod_name] = json!(now);
    out
}

/// The store key of the one budget covering `pod`, if any (500 if several do).
fn budget_key(ctx: &Ctx, ns: &str, pod: &Value) -> ApiResult<Option<String>> {
    let labels = pod["metadata"].get("labels");
    let keys: Vec<String> = ctx
        .server
        .cache
        .snapshot("poddisruptionbudgets", Some(ns))
        .items
        .iter()
        .filter(|o| {
            let sel = o.value()["spec"].get("selector").cloned().unwrap_or(Value::Null);
            LabelSelector::from_label_selector(&sel).is_ok_and(|s| s.matches(labels))
        })
        .map(|o| o.key.clone())
        .collect();
    if keys.len() > 1 {
        return Err(ApiError::internal(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
        ));
    }
    Ok(keys.into_iter().next())
}

/// Checks the pod's budget and takes a disruption from it when needed.
async fn check_budget(ctx: &Ctx, ns: &str, pod: &Value, dry_run: bool) -> ApiResult<()> {
    let Some(key) = budget_key(ctx, ns, pod)? else {
        return Ok(());
    };
    for _ in 0..RETRIES {
        let (current, _) = ctx
            .server
            .store
            .get(&key)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let Some(kv) = current else {
            return Ok(());
        };
        let pdb: Value = serde_json::from_slice(&kv.value)
            .map_err(|e| ApiError::internal(format!("stored object {key} is not JSON: {e}")))?;
        match decide(pod, &pdb) {
            Verdict::Delete => return Ok(()),
            Verdict::Refuse(e) => return Err(e),
            Verdict::Decrement if dry_run => return Ok(()),
            Verdict::Decrement => {}
        }
        let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let updated = take_disruption(&pdb, pod_name, &strategy::now_rfc3339());
        let bytes = serde_json::to_vec(&updated).map_err(|e| ApiError::internal(e.to_string()))?;
        match ctx.server.store.update(&key, bytes.into(), kv.mod_revision).await {
            Ok(rev) => {
                sync_cache(ctx, rev).await;
                return Ok(());
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(ApiError::internal(e.to_string())),
        }
    }
    Err(ApiError::too_many_requests(
        "Too many concurrent evictions on the pod's disruption budget, try again.",
        1,
    ))
}

/// Handles POST pods/{name}/eviction.
pub(crate) async fn evict(ctx: Ctx, body: Body) -> ApiResult<Response> {
    let eviction = read_object(&ctx, body).await?;
    let opts = match eviction.get("deleteOptions") {
        Some(o) if o.is_object() => DeleteOptions::from_body(o.to_string().as_bytes())?,
        _ => DeleteOptions::default(),
    };
    let opts = DeleteOptions {
        dry_run: opts.dry_run || ctx.query.dry_run,
        ..opts
    };
    let name = ctx.name().to_string();
    let (current, _) = ctx
        .server
        .store
        .get(&ctx.key())
        .await
        .map_err(|e| store_error(&ctx.def, &name, e))?;
    let Some(kv) = current else {
        return Err(ApiError::not_found("pods", "", &name));
    };
    let pod = served_from_kv(&ctx, &kv)?;
    if let Some(ns) = ctx.namespace()
        && !ignores_budgets(&pod)
    {
        check_budget(&ctx, ns, &pod, opts.dry_run).await?;
    }
    delete_one(&ctx, &name, &opts).await?;
    let status =
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    Ok(respond_object(
        &ctx,
        StatusCode::CREATED,
        &status,
        &Warnings::new(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ready: bool) -> Value {
        json!({"metadata": {"name": "p"}, "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
    }

    fn pdb(allowed: i64, current: i64, desired: i64) -> Value {
        json!({"metadata": {"name": "b", "generation": 1}, "spec": {},
            "status": {"observedGeneration": 1, "disruptionsAllowed": allowed,
                "currentHealthy": current, "desiredHealthy": desired}})
    }

    #[test]
    fn a_budget_without_disruptions_refuses_with_429() {
        let Verdict::Refuse(e) = decide(&pod(true), &pdb(0, 2, 2)) else {
            panic!("expected a refusal")
        };
        assert_eq!(e.code, 429);
        assert_eq!(e.message, BLOCKED);
        assert_eq!(e.causes[0].reason, "DisruptionBudget");
        assert_eq!(
            e.causes[0].message,
            "The disruption budget b needs 2 healthy pods and has 2 currently"
        );
    }

    #[test]
    fn an_allowed_eviction_takes_one_disruption() {
        assert!(matches!(decide(&pod(true), &pdb(1, 3, 2)), Verdict::Decrement));
        let after = take_disruption(&pdb(1, 3, 2), "p", "2026-01-01T00:00:00Z");
        assert_eq!(after["status"]["disruptionsAllowed"], 0);
        assert_eq!(after["status"]["disruptedPods"]["p"], "2026-01-01T00:00:00Z");
    }

    #[test]
    fn unready_pods_go_when_the_budget_is_healthy() {
        assert!(matches!(decide(&pod(false), &pdb(0, 2, 2)), Verdict::Delete));
        assert!(matches!(decide(&pod(false), &pdb(0, 1, 2)), Verdict::Refuse(_)));
    }

    #[test]
    fn an_unobserved_budget_refuses_and_pending_pods_are_ignored() {
        let mut b = pdb(3, 3, 0);
        b["metadata"]["generation"] = json!(2);
        assert!(matches!(decide(&pod(true), &b), Verdict::Refuse(_)));
        let mut p = pod(false);
        p["status"]["phase"] = json!("Pending");
        assert!(ignores_budgets(&p));
    }
}
