//! Request dispatch for resource URLs: parses the path and query, finds the
//! resource in the registry and calls the handler of the verb.
//!
//! Must not: render errors itself (that is [`crate::errors`]) or hold state.

#![allow(clippy::result_large_err)] // ApiError is the API-facing error; handlers move it on unchanged.

mod create;
mod csr;
mod delete;
mod eviction;
mod list;
pub mod node_proxy;
mod patch;
mod pods;
mod read;
mod scale;
mod update;
mod watch;
mod write;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{HeaderMap, Method};
use serde_json::Value;
use skiff_api::registry::ResourceDef;
use skiff_api::status::ApiError;

use crate::errors::{ApiResult, error_response};
use crate::negotiate::{self, Output};
use crate::request::{Query, ResourcePath, parse_path};
use crate::server::ApiServer;
use crate::strategy::Target;

/// Everything a verb handler needs about one request.
pub(crate) struct Ctx {
    pub server: Arc<ApiServer>,
    pub def: ResourceDef,
    pub path: ResourcePath,
    pub query: Query,
    pub headers: HeaderMap,
    pub output: Output,
}

impl Ctx {
    /// The namespace of the request for namespaced resources.
    pub fn namespace(&self) -> Option<&str> {
        if self.def.namespaced {
            self.path.namespace.as_deref()
        } else {
            None
        }
    }

    /// The object name in the URL.
    pub fn name(&self) -> &str {
        self.path.name.as_deref().unwrap_or_default()
    }

    /// The store key of the named object.
    pub fn key(&self) -> String {
        self.def.key(self.namespace(), self.name())
    }

    /// `fieldManager`, or upstream's default derived from the User-Agent.
    pub fn field_manager(&self) -> String {
        if let Some(m) = &self.query.field_manager {
            return m.clone();
        }
        let ua = self
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown");
        ua.split('/').next().unwrap_or("unknown").to_string()
    }
}

/// Serves one request under `/api/...` or `/apis/...`.
pub async fn handle(server: Arc<ApiServer>, req: Request) -> Response {
    match dispatch(server, req).await {
        Ok(resp) => resp,
        Err(e) => error_response(&e),
    }
}

fn not_found() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

async fn dispatch(server: Arc<ApiServer>, req: Request) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let path = parse_path(parts.uri.path()).ok_or_else(not_found)?;
    let def = server
        .registry
        .find(&path.group, &path.version, &path.plural)
        .cloned()
        .ok_or_else(not_found)?;
    if !def.namespaced && path.namespace.is_some() {
        return Err(not_found());
    }
    if let Some(sub) = &path.subresource
        && !def.has_subresource(sub)
    {
        return Err(not_found());
    }
    if def.namespaced && path.namespace.is_none() && (path.name.is_some() || parts.method != Method::GET) {
        return Err(not_found());
    }
    let query = Query::parse(parts.uri.query())?;
    let output = negotiate::output_from_headers(&parts.headers, query.include_object.as_deref());
    let ctx = Ctx {
        server,
        def,
        path,
        query,
        headers: parts.headers,
        output,
    };
    let method = parts.method;
    let sub = ctx.path.subresource.clone();
    let has_name = ctx.path.name.is_some();
    match (sub.as_deref(), has_name, &method) {
        (None, false, &Method::GET) if ctx.query.watch || ctx.path.legacy_watch => watch::watch(ctx).await,
        (None, true, &Method::GET) if ctx.query.watch || ctx.path.legacy_watch => watch::watch(ctx).await,
        (None, false, &Method::GET) => list::list(ctx).await,
        (None, true, &Method::GET) => read::get(ctx, Target::Main).await,
        (None, false, &Method::POST) if csr::is_csr(&ctx.def) => {
            csr::create(ctx, body, &parts.extensions).await
        }
        (None, false, &Method::POST) => create::create(ctx, body).await,
        (None, true, &Method::PUT) => update::put(ctx, body, Target::Main).await,
        (None, true, &Method::PATCH) => patch::patch(ctx, body, Target::Main).await,
        (None, true, &Method::DELETE) => delete::delete(ctx, body).await,
        (None, false, &Method::DELETE) => delete::delete_collection(ctx, body).await,
        (Some("status"), true, &Method::GET) => read::get(ctx, Target::Status).await,
        (Some("status"), true, &Method::PUT) => update::put(ctx, body, Target::Status).await,
        (Some("status"), true, &Method::PATCH) => patch::patch(ctx, body, Target::Status).await,
        (Some("approval"), true, &Method::GET) => read::get(ctx, Target::Main).await,
        (Some("approval"), true, &Method::PUT) => csr::approval(ctx, body).await,
        (Some("scale"), true, &Method::GET) => scale::get(ctx).await,
        (Some("scale"), true, &Method::PUT) => scale::put(ctx, body).await,
        (Some("scale"), true, &Method::PATCH) => scale::patch(ctx, body).await,
        (Some("binding"), true, &Method::POST) => pods::binding(ctx, body).await,
        (Some("eviction"), true, &Method::POST) => pods::eviction(ctx, body).await,
        (Some("token"), true, &Method::POST) => {
            crate::serviceaccount_token::request::create(ctx, body, &parts.extensions).await
        }
        (Some("log"), true, &Method::GET) => node_proxy::log(ctx, parts.uri.query(), &parts.extensions).await,
        (Some("exec" | "attach" | "portforward"), true, &Method::GET | &Method::POST) => {
            node_proxy::stream(ctx, method, parts.uri.query(), parts.extensions).await
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method})"
        ))),
    }
}

/// Reads and decodes an object body of a create/update.
pub(crate) async fn read_object(ctx: &Ctx, body: Body) -> ApiResult<Value> {
    let ty = negotiate::body_type(&ctx.headers)?;
    let bytes = negotiate::read_body(body).await?;
    negotiate::decode_object(&bytes, ty)
}

/// Creates an object on behalf of the server itself (bootstrap); an existing
/// object is left as it is.
pub(crate) async fn create_internal(
    server: Arc<ApiServer>,
    group: &str,
    version: &str,
    plural: &str,
    namespace: Option<&str>,
    obj: Value,
) -> ApiResult<()> {
    let def = server
        .registry
        .find(group, version, plural)
        .cloned()
        .ok_or_else(|| ApiError::internal(format!("unknown resource {plural}")))?;
    let path = ResourcePath {
        group: group.into(),
        version: version.into(),
        namespace: namespace.map(str::to_string),
        plural: plural.into(),
        ..Default::default()
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::USER_AGENT,
        http::HeaderValue::from_static("skiff-apiserver"),
    );
    let ctx = Ctx {
        server,
        def,
        path,
        query: Query::default(),
        headers,
        output: Output::Json,
    };
    let mut w = write::Warnings::new();
    let obj = write::check_body(&ctx, obj, &mut w)?;
    match write::create_object(&ctx, obj).await {
        Ok(_) => Ok(()),
        Err(e) if e.reason == "AlreadyExists" => Ok(()),
        Err(e) => Err(e),
    }
}
