//! PATCH of an object or its status: JSON patch, merge patch, strategic merge
//! patch and server-side apply (`application/apply-patch+yaml`), applied to
//! the live object inside the update loop so concurrent writers retry.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::Value;
use skiff_api::patch::{self, ApplyRequest};
use skiff_api::status::ApiError;

use super::Ctx;
use super::write::{Updated, Warnings, check_body, respond_object, update_object};
use crate::errors::ApiResult;
use crate::negotiate::{self, BodyType};
use crate::strategy::{self, Target};

/// Applies one patch to `current` (the served object) by its content type.
pub(crate) fn apply_patch(
    ctx: &Ctx,
    ty: BodyType,
    current: &Value,
    body: &[u8],
    target: Target,
) -> ApiResult<Value> {
    let mut out = match ty {
        BodyType::JsonPatch => patch::apply_json_patch(current, body)?,
        BodyType::MergePatch => patch::apply_merge_patch(current, body)?,
        BodyType::StrategicMergePatch => patch::apply_strategic_merge_patch(&ctx.def, current, body)?,
        BodyType::ApplyPatch => {
            let applied = negotiate::decode_object(body, BodyType::ApplyPatch)?;
            apply(ctx, Some(current), &applied, target)?
        }
        BodyType::Json | BodyType::Yaml | BodyType::Protobuf => {
            return Err(ApiError::unsupported_media_type(
                ctx.headers
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default(),
            ));
        }
    };
    // The live resourceVersion is only a precondition when the patch itself names another one.
    if out["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]
        && let Some(m) = out["metadata"].as_object_mut()
    {
        m.remove("resourceVersion");
    }
    Ok(out)
}

fn apply(ctx: &Ctx, current: Option<&Value>, applied: &Value, target: Target) -> ApiResult<Value> {
    let manager = ctx.query.field_manager.clone().ok_or_else(|| {
        ApiError::bad_request("PATCH with apply-patch+yaml requires a fieldManager parameter")
    })?;
    let now = strategy::now_rfc3339();
    let req = ApplyRequest {
        def: &ctx.def,
        current,
        applied,
        manager: &manager,
        force: ctx.query.force,
        now: &now,
        subresource: if target == Target::Status { "status" } else { "" },
    };
    patch::server_side_apply(&req)
}

/// Patches an object (or its status); server-side apply creates a missing one.
pub(crate) async fn patch(ctx: Ctx, body: Body, target: Target) -> ApiResult<Response> {
    let ty = negotiate::body_type(&ctx.headers)?;
    let bytes: Bytes = negotiate::read_body(body).await?;
    if ty == BodyType::ApplyPatch && ctx.query.field_manager.is_none() {
        return Err(ApiError::bad_request(
            "PATCH with apply-patch+yaml requires a fieldManager parameter",
        ));
    }
    let warnings = std::sync::Mutex::new(Warnings::new());
    let mutate = |current: &Value| {
        let patched = apply_patch(&ctx, ty, current, &bytes, target)?;
        let mut w = Warnings::new();
        let out = check_body(&ctx, patched, &mut w)?;
        if let Ok(mut all) = warnings.lock() {
            *all = w;
        }
        Ok(out)
    };
    let create = || {
        let applied = negotiate::decode_object(&bytes, BodyType::ApplyPatch)?;
        let obj = apply(&ctx, None, &applied, target)?;
        let mut w = Warnings::new();
        check_body(&ctx, obj, &mut w).map(Some)
    };
    let creator: Option<super::write::CreateFn<'_>> = if ty == BodyType::ApplyPatch && target == Target::Main
    {
        Some(&create)
    } else {
        None
    };
    let (code, out) = match update_object(&ctx, target, &mutate, creator).await? {
        Updated::Created(v) => (StatusCode::CREATED, v),
        Updated::Object(v) | Updated::Removed(v) => (StatusCode::OK, v),
    };
    let warnings = warnings.into_inner().unwrap_or_default();
    Ok(respond_object(&ctx, code, &out, &warnings))
}
