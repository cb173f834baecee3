//! The write path shared by every mutating verb: checking a request body
//! against the URL, field validation, the create core and the
//! read-modify-write loop of updates (with compare-and-swap retries).
//!
//! Must not: parse HTTP; verb handlers turn requests into calls here.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use serde_json::{Value, json};
use skiff_api::status::ApiError;
use skiff_api::{conversion, defaults, patch, validation};
use skiff_store::{KeyValue, Revision, StoreError};

use super::Ctx;
use crate::allocator::{Allocation, ServiceAllocator};
use crate::errors::{ApiResult, decode_error, store_error};
use crate::negotiate;
use crate::request::FieldValidation;
use crate::strategy::{self, Target};

/// How long a write waits for the watch cache to show it.
const CACHE_SYNC: Duration = Duration::from_secs(3);

/// Warnings collected for the `Warning` response header.
pub(crate) type Warnings = Vec<String>;

/// Checks apiVersion/kind/namespace of a body against the URL, fills them when
/// absent, applies fieldValidation and round-trips the body through its type.
pub(crate) fn check_body(ctx: &Ctx, mut obj: Value, warnings: &mut Warnings) -> ApiResult<Value> {
    let def = &ctx.def;
    let av = def.api_version();
    match obj["apiVersion"].as_str() {
        Some(v) if !v.is_empty() && v != av => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({av})"
            )));
        }
        _ => obj["apiVersion"] = json!(av),
    }
    match obj["kind"].as_str() {
        Some(k) if !k.is_empty() && k != def.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                def.kind
            )));
        }
        _ => obj["kind"] = json!(def.kind),
    }
    if def.namespaced
        && let Some(ns) = obj["metadata"]["namespace"].as_str().filter(|s| !s.is_empty())
        && Some(ns) != ctx.namespace()
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    if let Some(name) = obj["metadata"]["name"].as_str().filter(|s| !s.is_empty())
        && let Some(url_name) = ctx.path.name.as_deref()
        && name != url_name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({url_name})"
        )));
    }
    if ctx.query.field_validation != FieldValidation::Ignore {
        let unknown = validation::unknown_fields(def, &obj);
        if !unknown.is_empty() {
            let msgs: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
            if ctx.query.field_validation == FieldValidation::Strict {
                return Err(ApiError::bad_request(format!(
                    "strict decoding error: {}",
                    msgs.join(", ")
                )));
            }
            warnings.extend(msgs);
        }
    }
    (def.normalize)(obj).map_err(|e| decode_error(def, &e))
}

/// Adds `Warning` headers to a response.
pub(crate) fn with_warnings(
    mut resp: axum::response::Response,
    warnings: &Warnings,
) -> axum::response::Response {
    for w in warnings {
        let v = format!("299 - \"{}\"", w.replace('"', "\\\""));
        if let Ok(h) = HeaderValue::from_str(&v) {
            resp.headers_mut().append(http::header::WARNING, h);
        }
    }
    resp
}

/// Renders a written object (JSON/YAML; Tables are not served for writes).
pub(crate) fn respond_object(
    ctx: &Ctx,
    code: StatusCode,
    obj: &Value,
    warnings: &Warnings,
) -> axum::response::Response {
    let out = match ctx.output {
        negotiate::Output::Yaml => negotiate::Output::Yaml,
        _ => negotiate::Output::Json,
    };
    with_warnings(negotiate::respond(code, &out, obj), warnings)
}

/// Parses a stored value into the served form with its resourceVersion.
pub(crate) fn served_from_kv(ctx: &Ctx, kv: &KeyValue) -> ApiResult<Value> {
    let mut v: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("stored object {} is not JSON: {e}", kv.key)))?;
    v["metadata"]["resourceVersion"] = json!(kv.mod_revision.to_string());
    Ok(conversion::from_storage(&ctx.server.registry, &ctx.def, v))
}

/// The bytes to store for a served object (storage version, no resourceVersion).
pub(crate) fn storage_bytes(ctx: &Ctx, obj: &Value) -> ApiResult<Bytes> {
    let mut stored = conversion::to_storage(&ctx.server.registry, &ctx.def, obj.clone());
    if let Some(m) = stored["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    serde_json::to_vec(&stored)
        .map(Bytes::from)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Waits until the watch cache shows `rev`, so the client's next read sees its write.
pub(crate) async fn sync_cache(ctx: &Ctx, rev: Revision) {
    if !ctx.server.cache.wait_for(rev, CACHE_SYNC).await {
        tracing::warn!(rev, "watch cache did not reach a written revision in time");
    }
}

fn is_services(ctx: &Ctx) -> bool {
    ctx.def.group.is_empty() && ctx.def.plural == "services"
}

/// Creates a new object (already checked with [`check_body`]). Returns it as
/// stored, with its resourceVersion.
pub(crate) async fn create_object(ctx: &Ctx, mut obj: Value) -> ApiResult<Value> {
    let def = &ctx.def;
    let generated = obj["metadata"]["name"].as_str().is_none_or(str::is_empty);
    let mut name = strategy::resolve_name(def, &mut obj)?;
    if let Some(ns) = ctx.namespace() {
        check_namespace_open(ctx, ns)?;
    }
    let now = strategy::now_rfc3339();
    strategy::prepare_create(def, &mut obj, ctx.namespace(), &now);
    defaults::apply_defaults(def, &mut obj);
    if def.group.is_empty() && def.kind == "Pod" {
        let seconds = ctx.server.config.default_not_ready_toleration_seconds;
        defaults::add_default_tolerations(&mut obj["spec"], seconds);
        crate::admission::serviceaccount::admit_pod(&ctx.server, ctx.namespace(), &mut obj);
    }
    let causes = validation::validate_create(def, &obj);
    if !causes.is_empty() {
        return Err(ApiError::invalid(def.kind, def.group, &name, causes));
    }
    let _quota =
        crate::admission::quota::admit_create(&ctx.server, def, ctx.namespace(), &name, &obj).await?;
    let alloc = if is_services(ctx) {
        ctx.server.services.allocate_create(&name, &mut obj).await?
    } else {
        Allocation::default()
    };
    if !is_server_side_apply(ctx) {
        patch::record_update_managed_fields(def, None, &mut obj, &ctx.field_manager(), &now, "");
    }
    if ctx.query.dry_run {
        ctx.server.services.release(&alloc).await;
        return Ok(obj);
    }
    let mut attempts = 0;
    loop {
        let bytes = storage_bytes(ctx, &obj)?;
        match ctx
            .server
            .store
            .create(&def.key(ctx.namespace(), &name), bytes)
            .await
        {
            Ok(rev) => {
                obj["metadata"]["resourceVersion"] = json!(rev.to_string());
                sync_cache(ctx, rev).await;
                return Ok(obj);
            }
            Err(StoreError::AlreadyExists(_)) if generated && attempts < 8 => {
                attempts += 1;
                let prefix = obj["metadata"]["generateName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                name = strategy::generate_name(&prefix);
                obj["metadata"]["name"] = json!(name);
            }
            Err(e) => {
                ctx.server.services.release(&alloc).await;
                return Err(store_error(def, &name, e));
            }
        }
    }
}

fn check_namespace_open(ctx: &Ctx, ns: &str) -> ApiResult<()> {
    match ctx.server.cache.get(&format!("/registry/namespaces/{ns}")) {
        None => Err(ApiError::not_found("namespaces", "", ns)),
        Some(obj) if obj.fields["status"]["phase"] == "Terminating" => Err(ApiError::forbidden(format!(
            "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
            skiff_api::status::qualified_resource(ctx.def.plural, ctx.def.group),
            ctx.path.name.as_deref().unwrap_or_default()
        ))),
        Some(_) => Ok(()),
    }
}

/// The live object an update starts from.
pub(crate) struct Current {
    /// Its resourceVersion (the store's mod revision).
    pub revision: Revision,
    /// Its served form, with `metadata.resourceVersion`.
    pub served: Value,
}

/// Reads the object an update starts from: the watch cache's copy when
/// `from_cache` (a stale copy only costs a failed compare-and-swap and a
/// retry from the store, as upstream's GuaranteedUpdate does), else the store's.
pub(crate) async fn read_current(ctx: &Ctx, key: &str, from_cache: bool) -> ApiResult<Option<Current>> {
    if from_cache && let Some(obj) = ctx.server.cache.get(key) {
        return Ok(Some(Current {
            revision: obj.mod_revision,
            served: super::read::served_value(ctx, &obj),
        }));
    }
    let (current, _) = ctx
        .server
        .store
        .get(key)
        .await
        .map_err(|e| store_error(&ctx.def, ctx.name(), e))?;
    current
        .map(|kv| {
            Ok(Current {
                revision: kv.mod_revision,
                served: served_from_kv(ctx, &kv)?,
            })
        })
        .transpose()
}

/// Whether two objects are equal apart from `metadata.resourceVersion`
/// (an update that changes nothing else is not written).
pub(crate) fn same_but_resource_version(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let without_rv =
        |m: &serde_json::Map<String, Value>| m.iter().filter(|(k, _)| *k != "resourceVersion").count();
    a.len() == b.len()
        && a.iter().all(|(k, va)| match (k.as_str(), b.get(k)) {
            ("metadata", Some(vb)) => match (va.as_object(), vb.as_object()) {
                (Some(ma), Some(mb)) => {
                    without_rv(ma) == without_rv(mb)
                        && ma
                            .iter()
                            .filter(|(k, _)| *k != "resourceVersion")
                            .all(|(k, v)| mb.get(k) == Some(v))
                }
                _ => va == vb,
            },
            (_, Some(vb)) => va == vb,
            (_, None) => false,
        })
}

/// The outcome of [`update_object`].
pub(crate) enum Updated {
    /// Written (or unchanged) object.
    Object(Value),
    /// The object did not exist and was created.
    Created(Value),
    /// The object lost its last finalizer and was removed.
    Removed(Value),
}

/// How an update may create a missing object.
pub(crate) type CreateFn<'a> = &'a (dyn Fn() -> ApiResult<Option<Value>> + Send + Sync);

/// The read-modify-write loop of updates: reads the live object, lets
/// `mutate` produce the new one from it, applies update rules and writes it
/// with compare-and-swap. A CAS failure retries with the fresh object unless
/// the client pinned a resourceVersion (then 409 Conflict).
pub(crate) async fn update_object(
    ctx: &Ctx,
    target: Target,
    mutate: &(dyn Fn(&Value) -> ApiResult<Value> + Send + Sync),
    create: Option<CreateFn<'_>>,
) -> ApiResult<Updated> {
    let def = &ctx.def;
    let key = ctx.key();
    let name = ctx.name().to_string();
    let mut from_cache = true;
    loop {
        let Some(current) = read_current(ctx, &key, from_cache).await? else {
            if let Some(create) = create
                && let Some(obj) = create()?
            {
                return create_object(ctx, obj).await.map(Updated::Created);
            }
            return Err(ApiError::not_found(def.plural, def.group, &name));
        };
        let (mod_revision, old) = (current.revision, current.served);
        let new = mutate(&old)?;
        let pinned = new["metadata"]["resourceVersion"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        if let Some(rv) = &pinned
            && *rv != mod_revision.to_string()
        {
            if from_cache {
                // The cache may be a write behind the client: ask the store.
                from_cache = false;
                continue;
            }
            return Err(ApiError::stale_conflict(def.plural, def.group, &name));
        }
        let now = strategy::now_rfc3339();
        let mut new = strategy::prepare_update(def, new, &old, target);
        if target == Target::Main {
            defaults::apply_defaults(def, &mut new);
        }
        let causes = validation::validate_update(def, &new, &old);
        if !causes.is_empty() {
            return Err(ApiError::invalid(def.kind, def.group, &name, causes));
        }
        let alloc = if is_services(ctx) && target == Target::Main {
            ctx.server.services.allocate_update(&name, &mut new, &old).await?
        } else {
            Allocation::default()
        };
        let sub = if target == Target::Status { "status" } else { "" };
        if !is_server_side_apply(ctx) {
            patch::record_update_managed_fields(def, Some(&old), &mut new, &ctx.field_manager(), &now, sub);
        }
        if strategy::ready_to_remove(&new) {
            ctx.server.services.release(&alloc).await;
            if ctx.query.dry_run {
                return Ok(Updated::Removed(new));
            }
            return match ctx.server.store.delete(&key, Some(mod_revision)).await {
                Ok((rev, _)) => {
                    if is_services(ctx) {
                        ctx.server
                            .services
                            .release(&ServiceAllocator::held_by(&old))
                            .await;
                    }
                    sync_cache(ctx, rev).await;
                    Ok(Updated::Removed(new))
                }
                Err(StoreError::Conflict { .. }) if pinned.is_none() => {
                    from_cache = false;
                    continue;
                }
                Err(e) => Err(store_error(def, &name, e)),
            };
        }
        if same_but_resource_version(&new, &old) {
            ctx.server.services.release(&alloc).await;
            return Ok(Updated::Object(old));
        }
        let bytes = storage_bytes(ctx, &new)?;
        if ctx.query.dry_run {
            ctx.server.services.release(&alloc).await;
            new["metadata"]["resourceVersion"] = json!(mod_revision.to_string());
            return Ok(Updated::Object(new));
        }
        match ctx.server.store.update(&key, bytes, mod_revision).await {
            Ok(rev) => {
                if is_services(ctx) {
                    ctx.server
                        .services
                        .release(&ServiceAllocator::freed_by_update(&old, &new))
                        .await;
                }
                new["metadata"]["resourceVersion"] = json!(rev.to_string());
                sync_cache(ctx, rev).await;
                return Ok(Updated::Object(new));
            }
            Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound(_)) if pinned.is_none() => {
                ctx.server.services.release(&alloc).await;
                from_cache = false;
                continue;
            }
            Err(e) => {
                ctx.server.services.release(&alloc).await;
                return Err(store_error(def, &name, e));
            }
        }
    }
}

/// Whether the request is a server-side apply (only PATCH carries an
/// apply-patch body), which records its own
/// `Apply` entry in managedFields and must not be recorded as an `Update` too.
fn is_server_side_apply(ctx: &Ctx) -> bool {
    crate::negotiate::body_type(&ctx.headers).is_ok_and(|t| t == crate::negotiate::BodyType::ApplyPatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_changing_only_the_resource_version_is_no_change() {
        let old = json!({"metadata": {"name": "a", "resourceVersion": "7", "labels": {"x": "1"}}, "spec": {"n": 1}});
        let same = json!({"spec": {"n": 1}, "metadata": {"labels": {"x": "1"}, "name": "a"}});
        assert!(same_but_resource_version(&same, &old));
        let relabelled = json!({"metadata": {"name": "a", "labels": {"x": "2"}}, "spec": {"n": 1}});
        assert!(!same_but_resource_version(&relabelled, &old));
        let extra = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"n": 1}, "status": {}});
        assert!(!same_but_resource_version(&extra, &old));
        let float = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"n": 1.0}});
        assert!(!same_but_resource_version(&float, &old));
    }
}
