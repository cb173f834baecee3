//! PUT of an object or its status: replace it, honouring the resourceVersion
//! precondition (409 Conflict when stale) and creating it for the kinds
//! upstream allows to be created by an update.

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use serde_json::Value;

use super::write::{Updated, Warnings, check_body, respond_object, update_object};
use super::{Ctx, read_object};
use crate::errors::ApiResult;
use crate::strategy::Target;

/// Kinds whose update creates a missing object (upstream's AllowCreateOnUpdate).
fn allow_create_on_update(group: &str, plural: &str) -> bool {
    matches!(
        (group, plural),
        ("", "endpoints")
            | ("", "services")
            | ("", "events")
            | ("", "limitranges")
            | ("coordination.k8s.io", "leases")
            | ("discovery.k8s.io", "endpointslices")
            | ("events.k8s.io", "events")
            | ("rbac.authorization.k8s.io", _)
    )
}

/// Replaces an object (or its status) with the body.
pub(crate) async fn put(ctx: Ctx, body: Body, target: Target) -> ApiResult<Response> {
    let obj = read_object(&ctx, body).await?;
    let mut warnings = Warnings::new();
    let obj = check_body(&ctx, obj, &mut warnings)?;
    let mutate = |_: &Value| Ok(obj.clone());
    let create = || Ok(Some(obj.clone()));
    let creator: Option<super::write::CreateFn<'_>> =
        if target == Target::Main && allow_create_on_update(ctx.def.group, ctx.def.plural) {
            Some(&create)
        } else {
            None
        };
    let (code, out) = match update_object(&ctx, target, &mutate, creator).await? {
        Updated::Created(v) => (StatusCode::CREATED, v),
        Updated::Object(v) | Updated::Removed(v) => (StatusCode::OK, v),
    };
    Ok(respond_object(&ctx, code, &out, &warnings))
}
