//! DELETE of one object and of a collection: preconditions, graceful pod
//! deletion, finalizers and propagationPolicy (via [`crate::strategy::plan_delete`]),
//! ClusterIP/NodePort release, and namespace termination.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};
use skiff_api::registry::ResourceDef;
use skiff_api::status::{ApiError, success_status};
use skiff_store::{ListOptions, StoreError};

use super::Ctx;
use super::list::Filter;
use super::read::{served_value, sync_for_read};
use super::write::{respond_object, served_from_kv, storage_bytes, sync_cache};
use crate::allocator::ServiceAllocator;
use crate::errors::{ApiResult, store_error};
use crate::negotiate;
use crate::server::ApiServer;
use crate::strategy::{self, DeleteOptions, DeletePlan};

/// Namespaces that can never be deleted.
const PROTECTED_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

fn options(ctx: &Ctx, body: &[u8]) -> ApiResult<DeleteOptions> {
    let mut opts = DeleteOptions::from_body(body)?;
    if let Some(g) = ctx.query.grace_period_seconds {
        opts.grace_period_seconds = Some(g);
    }
    if let Some(p) = &ctx.query.propagation_policy {
        opts.propagation_policy = Some(p.clone());
    }
    if let Some(p) = &opts.propagation_policy
        && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::bad_request(format!(
            "propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
        )));
    }
    opts.dry_run |= ctx.query.dry_run;
    Ok(opts)
}

fn returns_object(def: &ResourceDef) -> bool {
    def.group.is_empty() && matches!(def.plural, "pods" | "services" | "namespaces")
}

/// Deletes (or starts deleting) one object; returns the response code and body.
pub(crate) async fn delete_one(
    ctx: &Ctx,
    name: &str,
    opts: &DeleteOptions,
) -> ApiResult<(StatusCode, Value)> {
    let def = &ctx.def;
    let key = def.key(ctx.namespace(), name);
    if def.group.is_empty() && def.plural == "namespaces" && PROTECTED_NAMESPACES.contains(&name) {
        return Err(ApiError::forbidden(format!(
            "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
        )));
    }
    loop {
        let (current, _) = ctx
            .server
            .store
            .get(&key)
            .await
            .map_err(|e| store_error(def, name, e))?;
        let Some(kv) = current else {
            return Err(ApiError::not_found(def.plural, def.group, name));
        };
        let obj = served_from_kv(ctx, &kv)?;
        let mut plan = strategy::plan_delete(def, &obj, opts, jiff::Timestamp::now())?;
        if def.group.is_empty() && def.plural == "namespaces" {
            plan = namespace_plan(&obj);
        }
        match plan {
            DeletePlan::Unchanged => return Ok((StatusCode::OK, obj)),
            DeletePlan::Pending(mut new) => {
                if opts.dry_run {
                    return Ok((StatusCode::OK, new));
                }
                match ctx
                    .server
                    .store
                    .update(&key, storage_bytes(ctx, &new)?, kv.mod_revision)
                    .await
                {
                    Ok(rev) => {
                        new["metadata"]["resourceVersion"] = json!(rev.to_string());
                        sync_cache(ctx, rev).await;
                        if def.group.is_empty() && def.plural == "namespaces" {
                            tokio::spawn(terminate_namespace(ctx.server.clone(), name.to_string()));
                        }
                        return Ok((StatusCode::OK, new));
                    }
                    Err(StoreError::Conflict { .. }) if opts.precondition_rv.is_none() => continue,
                    Err(e) => return Err(store_error(def, name, e)),
                }
            }
            DeletePlan::Now => {
                if opts.dry_run {
                    return Ok((StatusCode::OK, response_body(def, name, &obj)));
                }
                match ctx.server.store.delete(&key, Some(kv.mod_revision)).await {
                    Ok((rev, _)) => {
                        if def.group.is_empty() && def.plural == "services" {
                            ctx.server
                                .services
                                .release(&ServiceAllocator::held_by(&obj))
                                .await;
                        }
                        sync_cache(ctx, rev).await;
                        return Ok((StatusCode::OK, response_body(def, name, &obj)));
                    }
                    Err(StoreError::Conflict { .. }) if opts.precondition_rv.is_none() => continue,
                    Err(e) => return Err(store_error(def, name, e)),
                }
            }
        }
    }
}

fn response_body(def: &ResourceDef, name: &str, obj: &Value) -> Value {
    if returns_object(def) {
        obj.clone()
    } else {
        success_status(def.plural, def.group, name, obj["metadata"]["uid"].as_str())
    }
}

/// Namespaces are never removed at once: they turn Terminating and a
/// background task empties and then removes them.
fn namespace_plan(obj: &Value) -> DeletePlan {
    if obj["status"]["phase"] == "Terminating" {
        return DeletePlan::Unchanged;
    }
    let mut new = obj.clone();
    new["metadata"]["deletionTimestamp"] = json!(strategy::now_rfc3339());
    new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    new["status"]["phase"] = json!("Terminating");
    DeletePlan::Pending(new)
}

/// Removes every object in a terminating namespace, then the namespace.
///
/// A shortcut for upstream's namespace controller: contents are removed
/// directly, without waiting for their finalizers or grace periods.
pub(crate) async fn terminate_namespace(server: Arc<ApiServer>, ns: String) {
    let mut prefixes: Vec<String> = server
        .registry
        .all()
        .iter()
        .filter(|d| d.namespaced)
        .map(|d| format!("/registry/{}/{ns}/", d.storage_resource))
        .collect();
    prefixes.dedup();
    for prefix in prefixes {
        let Ok(list) = server.store.list(&prefix, ListOptions::default()).await else {
            continue;
        };
        for kv in list.kvs {
            if let Ok((_, prev)) = server.store.delete(&kv.key, None).await
                && kv.key.starts_with("/registry/services/")
                && let Ok(v) = serde_json::from_slice::<Value>(&prev.value)
            {
                server.services.release(&ServiceAllocator::held_by(&v)).await;
            }
        }
    }
    if let Err(e) = server
        .store
        .delete(&format!("/registry/namespaces/{ns}"), None)
        .await
    {
        tracing::warn!(namespace = %ns, error = %e, "failed to remove terminated namespace");
    }
}

/// DELETE of one object.
pub(crate) async fn delete(ctx: Ctx, body: Body) -> ApiResult<Response> {
    let bytes = negotiate::read_body(body).await?;
    let opts = options(&ctx, &bytes)?;
    let (code, value) = delete_one(&ctx, ctx.name(), &opts).await?;
    Ok(respond_object(&ctx, code, &value, &Vec::new()))
}

/// DELETE of a collection (with label/field selectors).
pub(crate) async fn delete_collection(ctx: Ctx, body: Body) -> ApiResult<Response> {
    let bytes = negotiate::read_body(body).await?;
    let opts = options(&ctx, &bytes)?;
    sync_for_read(&ctx).await?;
    let filter = Filter::new(&ctx)?;
    let snap = ctx
        .server
        .cache
        .snapshot(ctx.def.storage_resource, ctx.namespace());
    let mut items = Vec::new();
    for obj in snap.items.iter().filter(|o| filter.matches(o)) {
        let name = obj.name().unwrap_or_default().to_string();
        match delete_one(&ctx, &name, &opts).await {
            Ok(_) => items.push(served_value(&ctx, obj)),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let list = json!({
        "kind": ctx.def.list_kind,
        "apiVersion": ctx.def.api_version(),
        "metadata": {"resourceVersion": ctx.server.cache.revision().to_string()},
        "items": items,
    });
    Ok(respond_object(&ctx, StatusCode::OK, &list, &Vec::new()))
}
