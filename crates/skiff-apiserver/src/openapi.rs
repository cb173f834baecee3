//! OpenAPI documents: Swagger 2.0 at `/openapi/v2`, the OpenAPI 3.0 index at
//! `/openapi/v3` and one OpenAPI 3.0 document per group/version at
//! `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`.
//!
//! Owns: assembling documents from [`schemas`] and [`paths`] (v2 also as
//! gnostic protobuf, see [`proto`], which is what client-go asks for), and caching
//! them. Each document is generated on its first request (never at
//! start-up), serialised once to bytes with a content hash used as ETag and
//! as the `hash` of the v3 index, and served from memory afterwards.
//!
//! Must not: serve resources or discovery.

mod enums;
#[cfg(test)]
mod kubectl_tests;
mod params;
mod paths;
mod proto;
mod render;
mod schemas;
#[cfg(test)]
mod tests;
mod types;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use ring::digest;
use serde_json::{Map, Value, json};
use skiff_api::registry::{Registry, ResourceDef};
use skiff_api::status::ApiError;

use crate::discovery::GIT_VERSION;
use schemas::Flavor;

/// A generated document: its bytes and content hash.
struct Cached {
    body: Bytes,
    hash: String,
}

impl Cached {
    fn new(doc: &Value) -> Cached {
        let body = Bytes::from(serde_json::to_vec(doc).unwrap_or_default());
        let sum = digest::digest(&digest::SHA512, &body);
        let hash = sum.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        Cached { body, hash }
    }
}

/// The lazily built documents of one registry.
struct Documents {
    registry: Arc<Registry>,
    v2: OnceLock<Cached>,
    /// The v2 document as gnostic protobuf.
    v2_proto: OnceLock<Cached>,
    /// v3 documents by index path (`api/v1`, `apis/apps/v1`).
    v3: BTreeMap<String, (String, String, OnceLock<Cached>)>,
}

impl Documents {
    fn new(registry: Arc<Registry>) -> Documents {
        let mut v3 = BTreeMap::new();
        for (group, versions) in registry.groups() {
            for version in versions {
                v3.insert(
                    index_path(group, version),
                    (group.to_string(), version.to_string(), OnceLock::new()),
                );
            }
        }
        Documents {
            registry,
            v2: OnceLock::new(),
            v2_proto: OnceLock::new(),
            v3,
        }
    }

    fn group_versions(&self) -> Vec<(String, String)> {
        self.v3.values().map(|(g, v, _)| (g.clone(), v.clone())).collect()
    }

    fn v2_value(&self) -> Value {
        let resources: Vec<&ResourceDef> = self.registry.all().iter().collect();
        document(&resources, &self.group_versions(), Flavor::V2)
    }

    fn v2(&self) -> &Cached {
        self.v2.get_or_init(|| Cached::new(&self.v2_value()))
    }

    /// Built from a fresh document rather than the cached JSON, so a client
    /// that only asks for protobuf (kubectl) costs one cached copy, not two.
    fn v2_proto(&self) -> &Cached {
        self.v2_proto.get_or_init(|| {
            let body = Bytes::from(proto::encode_document(&self.v2_value()));
            let sum = digest::digest(&digest::SHA512, &body);
            Cached {
                body,
                hash: sum.as_ref().iter().map(|b| format!("{b:02X}")).collect(),
            }
        })
    }

    fn v3(&self, path: &str) -> Option<&Cached> {
        let (group, version, cell) = self.v3.get(path)?;
        Some(cell.get_or_init(|| {
            let resources: Vec<&ResourceDef> = self.registry.in_group_version(group, version).collect();
            Cached::new(&document(&resources, &self.group_versions(), Flavor::V3))
        }))
    }
}

/// `api/v1` or `apis/<group>/<version>`: a document's key in the v3 index.
fn index_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// One whole document for `resources` in the given dialect.
fn document(resources: &[&ResourceDef], group_versions: &[(String, String)], flavor: Flavor) -> Value {
    let defs = schemas::build(resources, group_versions, flavor);
    let paths = paths::build(resources, &defs, flavor);
    let definitions: Map<String, Value> = defs.schemas.into_iter().collect();
    let info = json!({"title": "Kubernetes", "version": GIT_VERSION});
    let bearer = json!({
        "BearerToken": {
            "type": "apiKey",
            "description": "Bearer Token authentication",
            "name": "authorization",
            "in": "header",
        }
    });
    match flavor {
        Flavor::V2 => json!({
            "swagger": "2.0",
            "info": info,
            "paths": paths,
            "definitions": definitions,
            "securityDefinitions": bearer,
            "security": [{"BearerToken": []}],
        }),
        Flavor::V3 => json!({
            "openapi": "3.0.0",
            "info": info,
            "paths": paths,
            "components": {"schemas": definitions, "securitySchemes": bearer},
        }),
    }
}

/// The OpenAPI router: `/openapi/v2`, `/openapi/v3` and `/openapi/v3/{*path}`.
pub fn router(registry: Arc<Registry>) -> Router {
    let docs = Arc::new(Documents::new(registry));
    Router::new()
        .route("/openapi/v2", get(v2))
        .route("/openapi/v3", get(v3_index))
        .route("/openapi/v3/", get(v3_index))
        .route("/openapi/v3/{*path}", get(v3_document))
        .with_state(docs)
}

/// Runs document generation off the async workers (it is CPU-bound, once).
async fn generate<F>(docs: &Arc<Documents>, f: F) -> Result<Bytes, Response>
where
    F: FnOnce(&Documents) -> Option<Bytes> + Send + 'static,
{
    let docs = Arc::clone(docs);
    match tokio::task::spawn_blocking(move || f(&docs)).await {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(not_found()),
        Err(e) => Err(error(&ApiError::internal(format!(
            "generating OpenAPI document: {e}"
        )))),
    }
}

/// The protobuf media types client-go asks `/openapi/v2` for.
const V2_PROTOBUF: [&str; 2] = [
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
];

/// Whether a protobuf type comes before JSON in the Accept header.
fn v2_protobuf_accepted(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for entry in accept.split(',') {
        let media = entry.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if V2_PROTOBUF.contains(&media.as_str()) {
            return true;
        }
        if matches!(media.as_str(), "application/json" | "*/*" | "application/*") {
            return false;
        }
    }
    false
}

async fn v2(State(docs): State<Arc<Documents>>, headers: HeaderMap) -> Response {
    let protobuf = v2_protobuf_accepted(&headers);
    let built = generate(&docs, move |d| {
        let c = if protobuf { d.v2_proto() } else { d.v2() };
        Some(Bytes::from(c.hash.clone()))
    })
    .await;
    let hash = match built {
        Ok(h) => String::from_utf8_lossy(&h).into_owned(),
        Err(resp) => return resp,
    };
    let body = if protobuf {
        docs.v2_proto().body.clone()
    } else {
        docs.v2().body.clone()
    };
    let mut resp = cached_response(body, &hash, &headers, "no-cache, private");
    if protobuf {
        // The `@` form is not a valid media type to Go's parser: always answer the dotted one.
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(V2_PROTOBUF[1]));
    }
    resp
}

async fn v3_index(State(docs): State<Arc<Documents>>) -> Response {
    let index = generate(&docs, |d| {
        let mut paths = Map::new();
        for key in d.v3.keys() {
            if let Some(doc) = d.v3(key) {
                let url = format!("/openapi/v3/{key}?hash={}", doc.hash);
                paths.insert(key.clone(), json!({"serverRelativeURL": url}));
            }
        }
        serde_json::to_vec(&json!({"paths": paths})).ok().map(Bytes::from)
    })
    .await;
    match index {
        Ok(body) => {
            let mut resp = Response::new(Body::from(body));
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        Err(resp) => resp,
    }
}

#[derive(serde::Deserialize)]
struct HashQuery {
    hash: Option<String>,
}

async fn v3_document(
    State(docs): State<Arc<Documents>>,
    Path(path): Path<String>,
    Query(query): Query<HashQuery>,
    headers: HeaderMap,
) -> Response {
    let key = path.trim_matches('/').to_string();
    let lookup = key.clone();
    let hash = match generate(&docs, move |d| d.v3(&lookup).map(|c| Bytes::from(c.hash.clone()))).await {
        Ok(h) => String::from_utf8_lossy(&h).into_owned(),
        Err(resp) => return resp,
    };
    match query.hash {
        Some(asked) if asked != hash => {
            // A stale hash: send the client to the current document, as upstream does.
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
            if let Ok(loc) = HeaderValue::from_str(&format!("/openapi/v3/{key}?hash={hash}")) {
                resp.headers_mut().insert(header::LOCATION, loc);
            }
            resp
        }
        asked => {
            let cache = if asked.is_some() {
                "public, immutable"
            } else {
                "no-cache, private"
            };
            let body = docs.v3(&key).map(|c| c.body.clone()).unwrap_or_default();
            cached_response(body, &hash, &headers, cache)
        }
    }
}

fn cached_response(body: Bytes, hash: &str, headers: &HeaderMap, cache_control: &'static str) -> Response {
    let etag = format!("\"{hash}\"");
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut resp = if fresh {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(Body::from(body))
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    resp
}

fn error(err: &ApiError) -> Response {
    let mut resp = Response::new(Body::from(
        serde_json::to_vec(&err.to_status()).unwrap_or_default(),
    ));
    *resp.status_mut() = StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn not_found() -> Response {
    error(&ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    ))
}
