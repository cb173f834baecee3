//! Pod subresources that act on the pod: `binding` (the scheduler's
//! assignment of a node) and `eviction` (a policy/v1 Eviction).

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};
use skiff_api::status::ApiError;
use skiff_store::StoreError;

use super::write::{Warnings, read_current, respond_object, storage_bytes, sync_cache};
use super::{Ctx, read_object};
use crate::errors::{ApiResult, store_error};
use crate::strategy;

fn created_status() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
}

/// POST pods/{name}/binding: sets `spec.nodeName` once (409 if already bound).
pub(crate) async fn binding(ctx: Ctx, body: Body) -> ApiResult<Response> {
    let binding = read_object(&ctx, body).await?;
    let node = binding["target"]["name"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::invalid(
                "Binding",
                "",
                ctx.name(),
                vec![skiff_api::status::Cause::required("target.name")],
            )
        })?;
    let key = ctx.key();
    let name = ctx.name().to_string();
    let mut from_cache = true;
    loop {
        let Some(current) = read_current(&ctx, &key, from_cache).await? else {
            return Err(ApiError::not_found("pods", "", &name));
        };
        let mut pod = current.served;
        if pod["metadata"]
            .get("deletionTimestamp")
            .is_some_and(|v| !v.is_null())
        {
            return Err(ApiError::conflict(
                "pods/binding",
                "",
                &name,
                "pod is being deleted, cannot be assigned to a host",
            ));
        }
        if let Some(bound) = pod["spec"]["nodeName"].as_str().filter(|s| !s.is_empty()) {
            return Err(ApiError::conflict(
                "pods/binding",
                "",
                &name,
                &format!("pod {name} is already assigned to node \"{bound}\""),
            ));
        }
        pod["spec"]["nodeName"] = json!(node);
        set_scheduled_condition(&mut pod);
        if ctx.query.dry_run {
            return Ok(respond_object(
                &ctx,
                StatusCode::CREATED,
                &created_status(),
                &Warnings::new(),
            ));
        }
        match ctx
            .server
            .store
            .update(&key, storage_bytes(&ctx, &pod)?, current.revision)
            .await
        {
            Ok(rev) => {
                sync_cache(&ctx, rev).await;
                return Ok(respond_object(
                    &ctx,
                    StatusCode::CREATED,
                    &created_status(),
                    &Warnings::new(),
                ));
            }
            Err(StoreError::Conflict { .. } | StoreError::NotFound(_)) if from_cache => from_cache = false,
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_error(&ctx.def, &name, e)),
        }
    }
}

fn set_scheduled_condition(pod: &mut Value) {
    let cond = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null,
        "lastTransitionTime": strategy::now_rfc3339()});
    let conds = &mut pod["status"]["conditions"];
    if !conds.is_array() {
        *conds = json!([]);
    }
    if let Some(list) = conds.as_array_mut() {
        list.retain(|c| c["type"] != "PodScheduled");
        list.push(cond);
    }
}

/// POST pods/{name}/eviction: deletes the pod unless its PodDisruptionBudget
/// forbids it (see [`super::eviction`]).
pub(crate) async fn eviction(ctx: Ctx, body: Body) -> ApiResult<Response> {
    super::eviction::evict(ctx, body).await
}
