//! API discovery: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/<group>` and
//! `/apis/<group>/<version>`, in the legacy form and, for `/api` and `/apis`,
//! the aggregated `apidiscovery.k8s.io/v2` form kubectl asks for first.
//!
//! Owns: the discovery documents (built once from the [`Registry`] when the
//! router is made, kept as serialised bytes) and the Accept negotiation
//! between the two forms. Must not: serve resources themselves.

pub(crate) mod resources;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use ring::digest;
use serde_json::{Value, json};
use skiff_api::registry::Registry;
use skiff_api::status::ApiError;

/// The Kubernetes minor version skiff's API corresponds to.
pub const KUBE_MINOR: &str = "33";

/// The `gitVersion` skiff reports on `/version`.
pub const GIT_VERSION: &str = "v1.33.0+skiff";

/// Content type of the aggregated discovery document (the response echoes it).
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// A document serialised once, with its strong ETag.
struct Doc {
    body: Bytes,
    etag: String,
}

impl Doc {
    fn new(value: &Value) -> Doc {
        let body = Bytes::from(serde_json::to_vec(value).unwrap_or_default());
        let sum = digest::digest(&digest::SHA256, &body);
        let etag = format!("\"{}\"", hex(&sum.as_ref()[..16]));
        Doc { body, etag }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Every discovery document, built once per router.
struct Docs {
    version: Doc,
    core_aggregated: Doc,
    apis_aggregated: Doc,
    apis_legacy: Doc,
    /// `/apis/<group>` documents by group.
    groups: HashMap<String, Doc>,
    /// `APIResourceList`s by (group, version); the core group is `""`.
    resource_lists: HashMap<(String, String), Doc>,
    core_versions: Vec<String>,
}

impl Docs {
    fn build(registry: &Registry) -> Docs {
        let mut groups = HashMap::new();
        let mut resource_lists = HashMap::new();
        let mut core_versions = Vec::new();
        for (group, versions) in registry.groups() {
            if group.is_empty() {
                core_versions = versions.iter().map(|v| v.to_string()).collect();
            } else {
                let mut doc = resources::api_group(group, &versions);
                if let Value::Object(map) = &mut doc {
                    let mut full = serde_json::Map::new();
                    full.insert("kind".into(), json!("APIGroup"));
                    full.insert("apiVersion".into(), json!("v1"));
                    full.append(map);
                    doc = Value::Object(full);
                }
                groups.insert(group.to_string(), Doc::new(&doc));
            }
            for version in versions {
                let list = resources::legacy_resource_list(registry, group, version);
                resource_lists.insert((group.to_string(), version.to_string()), Doc::new(&list));
            }
        }
        Docs {
            version: Doc::new(&version_info()),
            core_aggregated: Doc::new(&resources::aggregated_list(registry, true)),
            apis_aggregated: Doc::new(&resources::aggregated_list(registry, false)),
            apis_legacy: Doc::new(&resources::api_group_list(registry)),
            groups,
            resource_lists,
            core_versions,
        }
    }
}

/// The `/version` document (`version.Info`).
pub fn version_info() -> Value {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    json!({
        "major": "1",
        "minor": KUBE_MINOR,
        "emulationMajor": "1",
        "emulationMinor": KUBE_MINOR,
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": option_env!("SKIFF_GIT_COMMIT").unwrap_or("unknown"),
        "gitTreeState": "clean",
        "buildDate": option_env!("SKIFF_BUILD_DATE").unwrap_or("1970-01-01T00:00:00Z"),
        "goVersion": concat!("rust (skiff ", env!("CARGO_PKG_VERSION"), ")"),
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, arch),
    })
}

/// The discovery router: `/version`, `/api`, `/api/v1`, `/apis`,
/// `/apis/{group}` and `/apis/{group}/{version}`.
pub fn router(registry: Arc<Registry>) -> Router {
    let docs = Arc::new(Docs::build(&registry));
    Router::new()
        .route("/version", get(version))
        .route("/version/", get(version))
        .route("/api", get(core_root))
        .route("/api/", get(core_root))
        .route("/api/{version}", get(core_version))
        .route("/apis", get(apis_root))
        .route("/apis/", get(apis_root))
        .route("/apis/{group}", get(group_root))
        .route("/apis/{group}/{version}", get(group_version))
        .with_state(docs)
}

/// Which form of discovery a request's Accept header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryForm {
    /// `APIVersions` / `APIGroupList` (plain `application/json`).
    Legacy,
    /// `apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`.
    Aggregated,
}

/// Picks the first form the client accepts, in the order it lists them.
/// Protobuf and other media types skiff does not serve are skipped; a header
/// naming nothing servable gets the legacy JSON form.
pub fn negotiate(headers: &HeaderMap) -> DiscoveryForm {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>();
    for entry in accept.iter().flat_map(|v| v.split(',')) {
        let mut parts = entry.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut params: HashMap<String, String> = HashMap::new();
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                params.insert(
                    k.trim().to_ascii_lowercase(),
                    v.trim().trim_matches('"').to_string(),
                );
            }
        }
        if params
            .get("q")
            .is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q <= 0.0))
        {
            continue;
        }
        let json_like = matches!(media.as_str(), "application/json" | "application/*" | "*/*");
        if !json_like {
            continue;
        }
        match (params.get("g"), params.get("v"), params.get("as")) {
            (None, None, None) => return DiscoveryForm::Legacy,
            (Some(g), Some(v), Some(a))
                if media == "application/json"
                    && g == "apidiscovery.k8s.io"
                    && v == "v2"
                    && a == "APIGroupDiscoveryList" =>
            {
                return DiscoveryForm::Aggregated;
            }
            _ => continue,
        }
    }
    DiscoveryForm::Legacy
}

fn respond(doc: &Doc, content_type: &'static str, headers: &HeaderMap) -> Response {
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == doc.etag));
    let mut resp = if not_modified {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(Body::from(doc.body.clone()))
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    if let Ok(etag) = HeaderValue::from_str(&doc.etag) {
        h.insert(header::ETAG, etag);
    }
    resp
}

fn json_response(body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Upstream's 404 for a path nothing serves.
fn not_found() -> Response {
    let err = ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    );
    let mut resp = json_response(serde_json::to_vec(&err.to_status()).unwrap_or_default());
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp
}

async fn version(State(docs): State<Arc<Docs>>, headers: HeaderMap) -> Response {
    respond(&docs.version, "application/json", &headers)
}

async fn core_root(State(docs): State<Arc<Docs>>, headers: HeaderMap) -> Response {
    if negotiate(&headers) == DiscoveryForm::Aggregated {
        return respond(&docs.core_aggregated, AGGREGATED_CONTENT_TYPE, &headers);
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:6443");
    let body = json!({
        "kind": "APIVersions",
        "versions": docs.core_versions,
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
    });
    json_response(serde_json::to_vec(&body).unwrap_or_default())
}

async fn core_version(
    State(docs): State<Arc<Docs>>,
    Path(version): Path<String>,
    headers: HeaderMap,
) -> Response {
    match docs.resource_lists.get(&(String::new(), version)) {
        Some(doc) => respond(doc, "application/json", &headers),
        None => not_found(),
    }
}

async fn apis_root(State(docs): State<Arc<Docs>>, headers: HeaderMap) -> Response {
    match negotiate(&headers) {
        DiscoveryForm::Aggregated => respond(&docs.apis_aggregated, AGGREGATED_CONTENT_TYPE, &headers),
        DiscoveryForm::Legacy => respond(&docs.apis_legacy, "application/json", &headers),
    }
}

async fn group_root(
    State(docs): State<Arc<Docs>>,
    Path(group): Path<String>,
    headers: HeaderMap,
) -> Response {
    match docs.groups.get(&group) {
        Some(doc) => respond(doc, "application/json", &headers),
        None => not_found(),
    }
}

async fn group_version(
    State(docs): State<Arc<Docs>>,
    Path((group, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if group.is_empty() {
        return not_found();
    }
    match docs.resource_lists.get(&(group, version)) {
        Some(doc) => respond(doc, "application/json", &headers),
        None => not_found(),
    }
}
