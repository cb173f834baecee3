//! The `scale` subresource (`autoscaling/v1 Scale`) of deployments,
//! replicasets, statefulsets and replicationcontrollers: GET, PUT and PATCH
//! (what `kubectl scale` sends), changing only `spec.replicas` of the parent.

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};
use skiff_api::status::{ApiError, Cause};

use super::patch::apply_patch;
use super::read::sync_for_read;
use super::write::{Updated, Warnings, respond_object, update_object};
use super::{Ctx, read_object};
use crate::errors::ApiResult;
use crate::negotiate::{self, BodyType};
use crate::strategy::Target;

/// The label selector of a workload as a selector string.
fn selector_string(def_plural: &str, obj: &Value) -> String {
    let sel = &obj["spec"]["selector"];
    if def_plural == "replicationcontrollers" {
        let mut parts: Vec<String> = sel
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        parts.sort();
        return parts.join(",");
    }
    let mut parts: Vec<String> = sel["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            _ => format!("!{key}"),
        });
    }
    parts.sort();
    parts.join(",")
}

/// The Scale view of a workload.
pub(crate) fn to_scale(ctx: &Ctx, obj: &Value) -> Value {
    let m = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {
            "replicas": obj["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector_string(ctx.def.plural, obj),
        },
    })
}

/// Applies a new Scale to the workload.
fn apply_scale(ctx: &Ctx, current: &Value, scale: &Value) -> ApiResult<Value> {
    let name = ctx.name();
    let replicas = scale["spec"]["replicas"].as_i64().unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::invalid(
            "Scale",
            "autoscaling",
            name,
            vec![Cause::invalid(
                "spec.replicas",
                &json!(replicas),
                "must be greater than or equal to 0",
            )],
        ));
    }
    let mut out = current.clone();
    out["spec"]["replicas"] = json!(replicas);
    match scale["metadata"]["resourceVersion"]
        .as_str()
        .filter(|s| !s.is_empty())
    {
        Some(rv) if Some(rv) != current["metadata"]["resourceVersion"].as_str() => {
            out["metadata"]["resourceVersion"] = json!(rv);
        }
        _ => {
            if let Some(m) = out["metadata"].as_object_mut() {
                m.remove("resourceVersion");
            }
        }
    }
    Ok(out)
}

fn respond_scale(ctx: &Ctx, updated: Updated) -> Response {
    let obj = match updated {
        Updated::Object(v) | Updated::Created(v) | Updated::Removed(v) => v,
    };
    respond_object(ctx, StatusCode::OK, &to_scale(ctx, &obj), &Warnings::new())
}

/// GET …/scale.
pub(crate) async fn get(ctx: Ctx) -> ApiResult<Response> {
    sync_for_read(&ctx).await?;
    let obj = ctx
        .server
        .cache
        .get(&ctx.key())
        .ok_or_else(|| ApiError::not_found(ctx.def.plural, ctx.def.group, ctx.name()))?;
    let v = super::read::served_value(&ctx, &obj);
    Ok(respond_object(
        &ctx,
        StatusCode::OK,
        &to_scale(&ctx, &v),
        &Warnings::new(),
    ))
}

/// PUT …/scale with a Scale body.
pub(crate) async fn put(ctx: Ctx, body: Body) -> ApiResult<Response> {
    let scale = read_object(&ctx, body).await?;
    if scale["kind"].as_str().is_some_and(|k| k != "Scale") {
        return Err(ApiError::bad_request(
            "the body of a scale update must be an autoscaling/v1 Scale",
        ));
    }
    let mutate = |current: &Value| apply_scale(&ctx, current, &scale);
    let updated = update_object(&ctx, Target::Main, &mutate, None).await?;
    Ok(respond_scale(&ctx, updated))
}

/// PATCH …/scale (merge, strategic merge or JSON patch of the Scale).
pub(crate) async fn patch(ctx: Ctx, body: Body) -> ApiResult<Response> {
    let ty = negotiate::body_type(&ctx.headers)?;
    let ty = if ty == BodyType::StrategicMergePatch {
        BodyType::MergePatch
    } else {
        ty
    };
    let bytes = negotiate::read_body(body).await?;
    let mutate = |current: &Value| {
        let scale = to_scale(&ctx, current);
        let patched = apply_patch(&ctx, ty, &scale, &bytes, Target::Main)?;
        apply_scale(&ctx, current, &patched)
    };
    let updated = update_object(&ctx, Target::Main, &mutate, None).await?;
    Ok(respond_scale(&ctx, updated))
}
