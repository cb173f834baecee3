//! WATCH: a chunked stream of `{"type":...,"object":...}` lines served from
//! the watch cache. Resumes from a resourceVersion (410 Gone when it is older
//! than the cache's history), sends synthetic ADDED events for the initial
//! state when asked (`sendInitialEvents=true` ends them with a BOOKMARK
//! annotated `k8s.io/initial-events-end`), periodic BOOKMARKs, Table events
//! for `kubectl get -w`, and ends at `timeoutSeconds`. A watcher that falls
//! behind the live broadcast catches up from the cache's history and is only
//! dropped (410) once even that no longer reaches back to its last event.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;
use skiff_api::status::ApiError;
use tokio::sync::{broadcast, mpsc};

use super::Ctx;
use super::list::Filter;
use super::read::{parse_rv, served_bytes, served_value, sync_for_read, table_of};
use crate::errors::ApiResult;
use crate::negotiate::Output;
use crate::watchcache::{CacheEvent, CachedObject, EventKind, WatchStartError};

/// Interval of BOOKMARK events for watchers that allow them.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);
/// Default watch duration when the client gives no timeoutSeconds.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct Encoder {
    ctx: Ctx,
    include: Option<String>,
}

impl Encoder {
    fn event(&self, ty: &str, obj: &CachedObject) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_slice(b"{\"type\":\"");
        buf.put_slice(ty.as_bytes());
        buf.put_slice(b"\",\"object\":");
        match &self.include {
            None => buf.put_slice(&served_bytes(&self.ctx, obj)),
            Some(include) => {
                let v = served_value(&self.ctx, obj);
                let meta = json!({"resourceVersion": v["metadata"]["resourceVersion"]});
                let table = table_of(&self.ctx, include, &[&v], meta);
                buf.put_slice(&serde_json::to_vec(&table).unwrap_or_default());
            }
        }
        buf.put_slice(b"}\n");
        buf.freeze()
    }

    fn bookmark(&self, rev: i64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rev.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj =
            json!({"kind": self.ctx.def.kind, "apiVersion": self.ctx.def.api_version(), "metadata": meta});
        let line = json!({"type": "BOOKMARK", "object": obj});
        let mut v = serde_json::to_vec(&line).unwrap_or_default();
        v.push(b'\n');
        Bytes::from(v)
    }

    fn error(&self, err: &ApiError) -> Bytes {
        let mut v =
            serde_json::to_vec(&json!({"type": "ERROR", "object": err.to_status()})).unwrap_or_default();
        v.push(b'\n');
        Bytes::from(v)
    }
}

/// Decides what a live event looks like to a filtered watcher.
fn filtered(filter: &Filter, ev: &CacheEvent) -> Option<EventKind> {
    let now = filter.matches(&ev.object);
    let before = ev.prev.as_ref().is_some_and(|p| filter.matches(p));
    match ev.kind {
        EventKind::Added => now.then_some(EventKind::Added),
        EventKind::Deleted => (now || before).then_some(EventKind::Deleted),
        EventKind::Modified => match (before, now) {
            (true, true) => Some(EventKind::Modified),
            (false, true) => Some(EventKind::Added),
            (true, false) => Some(EventKind::Deleted),
            (false, false) => None,
        },
    }
}

/// Starts a watch and returns the streaming response.
pub(crate) async fn watch(ctx: Ctx) -> ApiResult<Response> {
    let filter = Filter::new(&ctx)?;
    let q = &ctx.query;
    let rv = q.resource_version.clone();
    let initial_events = match (q.send_initial_events, rv.as_deref()) {
        (Some(true), _) => true,
        (Some(false), _) => false,
        (None, None) | (None, Some("0")) => true,
        (None, Some(_)) => false,
    };
    let after = match rv.as_deref() {
        None | Some("0") => None,
        Some(r) => Some(parse_rv(r)?),
    };
    if initial_events && after.is_none() && rv.is_none() {
        sync_for_read(&ctx).await?;
    }
    if let Some(r) = after {
        let _ = ctx.server.cache.wait_for(r, Duration::from_secs(3)).await;
    }
    let sub = ctx
        .server
        .cache
        .subscribe(
            ctx.def.storage_resource,
            if initial_events { None } else { after },
        )
        .map_err(|WatchStartError::TooOld { requested, .. }| {
            ApiError::gone(format!("too old resource version: {requested}"))
        })?;
    let bookmarks = q.allow_watch_bookmarks;
    let announce_end = q.send_initial_events == Some(true);
    let timeout = q
        .timeout_seconds
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let include = match &ctx.output {
        Output::Table(i) => Some(i.clone()),
        _ => None,
    };
    let table = include.is_some();
    let cache = ctx.server.cache.clone();
    let resource = ctx.def.storage_resource;
    let enc = Encoder { ctx, include };
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = sub.revision;
        for obj in sub.initial.iter().filter(|o| filter.matches(o)) {
            if tx.send(Ok(enc.event("ADDED", obj))).await.is_err() {
                return;
            }
        }
        if announce_end && tx.send(Ok(enc.bookmark(sub.revision, true))).await.is_err() {
            return;
        }
        for ev in &sub.backlog {
            if let Some(kind) = filtered(&filter, ev)
                && tx.send(Ok(enc.event(kind.as_str(), &ev.object))).await.is_err()
            {
                return;
            }
            last = last.max(ev.revision);
        }
        let mut rx = sub.rx;
        let mut backlog: VecDeque<Arc<CacheEvent>> = VecDeque::new();
        let mut tick = tokio::time::interval(BOOKMARK_EVERY);
        tick.tick().await;
        loop {
            if let Some(ev) = backlog.pop_front() {
                if ev.revision <= last {
                    continue;
                }
                last = ev.revision;
                if let Some(kind) = filtered(&filter, &ev)
                    && tx.send(Ok(enc.event(kind.as_str(), &ev.object))).await.is_err()
                {
                    return;
                }
                continue;
            }
            let bytes = tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tick.tick(), if bookmarks => {
                    let rev = cache.revision();
                    if !rx.is_empty() || rev <= last { continue; }
                    enc.bookmark(rev, false)
                }
                r = rx.recv() => match r {
                    Ok(ev) => {
                        if ev.revision <= last { continue; }
                        last = ev.revision;
                        match filtered(&filter, &ev) {
                            Some(kind) => enc.event(kind.as_str(), &ev.object),
                            None => continue,
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Catch up from the cache's history; only a watcher
                        // that fell behind even that is dropped.
                        match cache.subscribe(resource, Some(last)) {
                            Ok(resumed) => {
                                rx = resumed.rx;
                                backlog = resumed.backlog.into();
                                continue;
                            }
                            Err(WatchStartError::TooOld { .. }) => {
                                tracing::info!("dropping a watcher that fell behind the watch cache's history");
                                let _ = tx.send(Ok(enc.error(&ApiError::gone("too old resource version: watcher fell behind")))).await;
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if tx.send(Ok(bytes)).await.is_err() {
                return;
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    let ct = if table {
        "application/json;as=Table;v=v1;g=meta.k8s.io"
    } else {
        "application/json"
    };
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok(resp)
}
