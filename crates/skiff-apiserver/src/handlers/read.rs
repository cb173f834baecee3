//! GET of one object (or its status) from the watch cache, with upstream's
//! resourceVersion semantics, in JSON, YAML or Table form.

use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};
use skiff_api::status::ApiError;
use skiff_api::{conversion, table};

use super::Ctx;
use crate::errors::{ApiResult, generic_store_error};
use crate::negotiate::{self, Output};
use crate::strategy::Target;
use crate::watchcache::CachedObject;

/// How long a read waits for the cache to reach a requested revision.
const READ_WAIT: Duration = Duration::from_secs(3);

/// Parses a resourceVersion parameter.
pub(crate) fn parse_rv(rv: &str) -> ApiResult<i64> {
    rv.parse::<i64>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {rv}")))
}

/// Brings the cache up to what a read asks for: unset = the store's current
/// revision (consistent read), `0` = anything, `N` = not older than N.
pub(crate) async fn sync_for_read(ctx: &Ctx) -> ApiResult<()> {
    let cache = &ctx.server.cache;
    match ctx.query.resource_version.as_deref() {
        None => {
            let rev = ctx
                .server
                .store
                .current_revision()
                .await
                .map_err(generic_store_error)?;
            if !cache.wait_for(rev, READ_WAIT).await {
                tracing::warn!(rev, "consistent read: watch cache is behind the store");
            }
            Ok(())
        }
        Some("0") => Ok(()),
        Some(rv) => {
            let rev = parse_rv(rv)?;
            if cache.wait_for(rev, READ_WAIT).await {
                Ok(())
            } else {
                let mut e = ApiError::timeout(format!(
                    "Too large resource version: {rev}, current: {}",
                    cache.revision()
                ));
                e.retry_after_seconds = Some(1);
                Err(e)
            }
        }
    }
}

/// True when `def` is served in the version it is stored in (bytes can be reused).
pub(crate) fn served_as_stored(ctx: &Ctx) -> bool {
    let storage = conversion::storage_def(&ctx.server.registry, &ctx.def);
    storage.group == ctx.def.group && storage.version == ctx.def.version && storage.kind == ctx.def.kind
}

/// The served form of a cached object.
pub(crate) fn served_value(ctx: &Ctx, obj: &CachedObject) -> Value {
    if served_as_stored(ctx) {
        obj.value()
    } else {
        conversion::from_storage(&ctx.server.registry, &ctx.def, obj.value())
    }
}

/// The served JSON bytes of a cached object.
pub(crate) fn served_bytes(ctx: &Ctx, obj: &CachedObject) -> Bytes {
    if served_as_stored(ctx) {
        obj.json.clone()
    } else {
        Bytes::from(serde_json::to_vec(&served_value(ctx, obj)).unwrap_or_default())
    }
}

/// A Table of some objects.
pub(crate) fn table_of(ctx: &Ctx, include: &str, objects: &[&Value], list_meta: Value) -> Value {
    table::build_table(&ctx.def, objects, include, jiff::Timestamp::now(), list_meta)
}

/// Renders one cached object in the negotiated form.
pub(crate) fn respond_cached(ctx: &Ctx, obj: &Arc<CachedObject>) -> Response {
    match &ctx.output {
        Output::Json => negotiate::raw_json(StatusCode::OK, served_bytes(ctx, obj)),
        Output::Yaml => negotiate::respond(StatusCode::OK, &Output::Yaml, &served_value(ctx, obj)),
        Output::Table(include) => {
            let v = served_value(ctx, obj);
            let meta = json!({"resourceVersion": v["metadata"]["resourceVersion"]});
            negotiate::respond(
                StatusCode::OK,
                &Output::Json,
                &table_of(ctx, include, &[&v], meta),
            )
        }
    }
}

/// GET of one object.
pub(crate) async fn get(ctx: Ctx, _target: Target) -> ApiResult<Response> {
    sync_for_read(&ctx).await?;
    match ctx.server.cache.get(&ctx.key()) {
        Some(obj) => Ok(respond_cached(&ctx, &obj)),
        None => Err(ApiError::not_found(ctx.def.plural, ctx.def.group, ctx.name())),
    }
}
