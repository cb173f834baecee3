//! LIST of a collection: label and field selectors, `limit`/`continue`
//! pagination with an opaque token (revision + last key; 410 Expired once the
//! revision is compacted) and resourceVersion/resourceVersionMatch. Served
//! from the watch cache as one concatenation of cached JSON; pages at an older
//! revision come from the store.

use std::sync::Arc;

use axum::response::Response;
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use http::StatusCode;
use serde_json::{Value, json};
use skiff_api::selector::{FieldSelector, LabelSelector};
use skiff_api::status::ApiError;
use skiff_store::{ListOptions, Revision, StoreError};

use super::Ctx;
use super::read::{parse_rv, served_as_stored, served_bytes, served_value, sync_for_read, table_of};
use crate::errors::{ApiResult, generic_store_error};
use crate::negotiate::{self, Output};
use crate::request::RvMatch;
use crate::watchcache::CachedObject;

/// The selectors of a list or watch.
pub(crate) struct Filter {
    pub label: LabelSelector,
    pub field: FieldSelector,
    pub namespace_prefix: Option<String>,
}

impl Filter {
    /// Builds the filter of a request.
    pub fn new(ctx: &Ctx) -> ApiResult<Filter> {
        let mut field = ctx.query.field_selector.clone();
        if let Some(name) = &ctx.path.name {
            let clause = format!("metadata.name={name}");
            field = if field.is_empty() {
                clause
            } else {
                format!("{field},{clause}")
            };
        }
        Ok(Filter {
            label: LabelSelector::parse(&ctx.query.label_selector)?,
            field: FieldSelector::parse(&field, &ctx.def)?,
            namespace_prefix: ctx
                .namespace()
                .map(|ns| format!("/registry/{}/{ns}/", ctx.def.storage_resource)),
        })
    }

    /// Whether a (storage form) object passes.
    pub fn matches(&self, obj: &CachedObject) -> bool {
        if let Some(p) = &self.namespace_prefix
            && !obj.key.starts_with(p)
        {
            return false;
        }
        (self.label.is_empty() || self.label.matches(obj.fields["metadata"].get("labels")))
            && (self.field.is_empty() || self.field.matches(&obj.fields))
    }

    fn is_trivial(&self) -> bool {
        self.label.is_empty() && self.field.is_empty()
    }
}

fn encode_continue(rev: Revision, key: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rev, "start": key});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> ApiResult<(Revision, String)> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    match (v["rv"].as_i64(), v["start"].as_str()) {
        (Some(rv), Some(start)) if rv > 0 => Ok((rv, start.to_string())),
        _ => Err(bad()),
    }
}

fn expired_continue() -> ApiError {
    ApiError::gone(
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue value from the response to get an inconsistent list result.",
    )
}

/// One page of a list.
struct Page {
    items: Vec<Arc<CachedObject>>,
    revision: Revision,
    continue_key: Option<String>,
    remaining: Option<usize>,
}

fn page_from_cache(ctx: &Ctx, filter: &Filter, start_after: Option<&str>) -> Page {
    let snap = ctx
        .server
        .cache
        .snapshot(ctx.def.storage_resource, ctx.namespace());
    let limit = ctx.query.limit.unwrap_or(usize::MAX);
    let begin = match start_after {
        Some(k) => snap.items.partition_point(|o| o.key.as_str() <= k),
        None => 0,
    };
    let mut items = Vec::new();
    let mut continue_key = None;
    let mut remaining = None;
    for (i, obj) in snap.items[begin..].iter().enumerate() {
        if !filter.matches(obj) {
            continue;
        }
        if items.len() == limit {
            continue_key = items.last().map(|o: &Arc<CachedObject>| o.key.clone());
            if filter.is_trivial() {
                remaining = Some(snap.items.len() - begin - i);
            }
            break;
        }
        items.push(obj.clone());
    }
    Page {
        items,
        revision: snap.revision,
        continue_key,
        remaining,
    }
}

async fn page_from_store(
    ctx: &Ctx,
    filter: &Filter,
    rev: Revision,
    start_after: Option<String>,
) -> ApiResult<Page> {
    let prefix = filter
        .namespace_prefix
        .clone()
        .unwrap_or_else(|| ctx.def.key_prefix());
    let limit = ctx.query.limit.unwrap_or(usize::MAX);
    let mut items = Vec::new();
    let mut cursor = start_after;
    loop {
        let want = limit.saturating_sub(items.len()).saturating_add(1).min(10_000);
        let opts = ListOptions {
            revision: Some(rev),
            limit: Some(want),
            start_after: cursor.clone(),
        };
        let res = ctx.server.store.list(&prefix, opts).await.map_err(|e| match e {
            StoreError::Compacted { .. } => expired_continue(),
            other => generic_store_error(other),
        })?;
        let last = res.kvs.last().map(|kv| kv.key.clone());
        for kv in res.kvs {
            let Some(obj) = CachedObject::from_stored(&kv.key, &kv.value, kv.mod_revision) else {
                continue;
            };
            if !filter.matches(&obj) {
                continue;
            }
            if items.len() == limit {
                let continue_key = items.last().map(|o: &Arc<CachedObject>| o.key.clone());
                return Ok(Page {
                    items,
                    revision: rev,
                    continue_key,
                    remaining: None,
                });
            }
            items.push(Arc::new(obj));
        }
        if !res.more || last.is_none() {
            return Ok(Page {
                items,
                revision: rev,
                continue_key: None,
                remaining: None,
            });
        }
        cursor = last;
    }
}

/// LIST of a collection.
pub(crate) async fn list(ctx: Ctx) -> ApiResult<Response> {
    let filter = Filter::new(&ctx)?;
    let page = match &ctx.query.continue_token {
        Some(token) => {
            if ctx.query.resource_version.as_deref().is_some_and(|rv| rv != "0") {
                return Err(ApiError::bad_request(
                    "specifying resource version is not allowed when using continue",
                ));
            }
            let (rev, start) = decode_continue(token)?;
            if rev == ctx.server.cache.revision() {
                page_from_cache(&ctx, &filter, Some(&start))
            } else {
                page_from_store(&ctx, &filter, rev, Some(start)).await?
            }
        }
        None => match (
            ctx.query.resource_version.as_deref(),
            ctx.query.resource_version_match,
        ) {
            (Some(rv), Some(RvMatch::Exact)) => {
                let rev = parse_rv(rv)?;
                if rev == ctx.server.cache.revision() {
                    page_from_cache(&ctx, &filter, None)
                } else {
                    page_from_store(&ctx, &filter, rev, None).await.map_err(|e| {
                        if e.code == 410 {
                            ApiError::gone(format!("too old resource version: {rev}"))
                        } else {
                            e
                        }
                    })?
                }
            }
            _ => {
                sync_for_read(&ctx).await?;
                page_from_cache(&ctx, &filter, None)
            }
        },
    };
    let mut meta = json!({"resourceVersion": page.revision.to_string()});
    if let Some(k) = &page.continue_key {
        meta["continue"] = json!(encode_continue(page.revision, k));
        if let Some(n) = page.remaining {
            meta["remainingItemCount"] = json!(n);
        }
    }
    Ok(match &ctx.output {
        Output::Json => negotiate::raw_json(StatusCode::OK, concat_list(&ctx, &meta, &page.items)),
        Output::Yaml => {
            let items: Vec<Value> = page.items.iter().map(|o| served_value(&ctx, o)).collect();
            let list = json!({"kind": ctx.def.list_kind, "apiVersion": ctx.def.api_version(), "metadata": meta, "items": items});
            negotiate::respond(StatusCode::OK, &Output::Yaml, &list)
        }
        Output::Table(include) => {
            let values: Vec<Value> = page.items.iter().map(|o| served_value(&ctx, o)).collect();
            let refs: Vec<&Value> = values.iter().collect();
            negotiate::respond(
                StatusCode::OK,
                &Output::Json,
                &table_of(&ctx, include, &refs, meta),
            )
        }
    })
}

/// `{"kind":..,"apiVersion":..,"metadata":..,"items":[<cached bytes>,...]}` without re-serialising items.
fn concat_list(ctx: &Ctx, meta: &Value, items: &[Arc<CachedObject>]) -> Bytes {
    let total: usize = items.iter().map(|o| o.json.len() + 1).sum();
    let mut buf = BytesMut::with_capacity(total + 256);
    let head = format!(
        "{{\"kind\":{},\"apiVersion\":{},\"metadata\":{},\"items\":[",
        Value::String(ctx.def.list_kind.to_string()),
        Value::String(ctx.def.api_version()),
        meta
    );
    buf.put_slice(head.as_bytes());
    let as_stored = served_as_stored(ctx);
    for (i, obj) in items.iter().enumerate() {
        if i > 0 {
            buf.put_u8(b',');
        }
        if as_stored {
            buf.put_slice(&obj.json);
        } else {
            buf.put_slice(&served_bytes(ctx, obj));
        }
    }
    buf.put_slice(b"]}");
    buf.freeze()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = encode_continue(42, "/registry/pods/d/x");
        assert_eq!(
            decode_continue(&t).unwrap(),
            (42, "/registry/pods/d/x".to_string())
        );
        assert_eq!(decode_continue("!!!").unwrap_err().code, 400);
    }
}
