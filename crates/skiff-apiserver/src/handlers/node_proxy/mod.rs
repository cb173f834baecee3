//! `pods/log`, `pods/exec`, `pods/attach` and `pods/portforward`: checks the
//! pod as upstream's registry does (container valid, pod on a node, container
//! started), finds its node's InternalIP and node API port
//! (`status.daemonEndpoints.kubeletEndpoint.Port`) and proxies the request
//! there with the API server's client certificate ([`NodeProxy`]).
//! Logs stream back as `text/plain`; exec/attach/portforward are upgrade
//! requests (WebSocket or SPDY) whose upgraded connections are joined byte
//! for byte, so the protocol is whatever client and agent agree on.
//!
//! Must not: speak the streaming protocols itself (the agent does).

#![allow(clippy::result_large_err)] // ApiError is the API-facing error.

mod client;

use axum::body::Body;
use axum::response::Response;
use http::{Extensions, HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use skiff_api::status::ApiError;

pub use client::{NODE_PROXY_CLIENT_NAME, NodeProxy, NodeProxyError, node_serving_cert};

use super::Ctx;
use crate::errors::ApiResult;

/// The kubelet's default port, when a node does not report its own.
const DEFAULT_NODE_API_PORT: u16 = 10250;
/// Request headers passed on to the agent for an upgrade.
const UPGRADE_HEADERS: [&str; 6] = [
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "x-stream-protocol-version",
];

/// `GET pods/{name}/log`.
pub(crate) async fn log(ctx: Ctx, query: Option<&str>, ext: &Extensions) -> ApiResult<Response> {
    let proxy = proxy_of(ext)?;
    let pod = pod_of(&ctx)?;
    let container = container_of(&ctx, &pod, query)?;
    let (ip, port) = node_endpoint(&ctx, &pod)?;
    if !flag(query, "previous") {
        check_started(&pod, &container)?;
    }
    let path = format!(
        "/containerLogs/{}/{}/{}",
        enc(ctx.namespace().unwrap_or_default()),
        enc(ctx.name()),
        enc(&container)
    );
    let req = http::Request::builder()
        .method(Method::GET)
        .uri(with_query(path, query))
        .header(http::header::HOST, ip.to_string())
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let resp = proxy.send(ip, port, req).await?;
    if !resp.status().is_success() {
        return Err(agent_error(resp).await);
    }
    let mut out = Response::new(Body::new(resp.into_body()));
    out.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    Ok(out)
}

/// `GET|POST pods/{name}/exec|attach|portforward` (upgrade requests).
pub(crate) async fn stream(
    ctx: Ctx,
    method: Method,
    query: Option<&str>,
    mut ext: Extensions,
) -> ApiResult<Response> {
    let proxy = proxy_of(&ext)?;
    let sub = ctx.path.subresource.clone().unwrap_or_default();
    let pod = pod_of(&ctx)?;
    let ns = enc(ctx.namespace().unwrap_or_default());
    let name = enc(ctx.name());
    let (path, (ip, port)) = if sub == "portforward" {
        (format!("/portForward/{ns}/{name}"), node_endpoint(&ctx, &pod)?)
    } else {
        let container = container_of(&ctx, &pod, query)?;
        let endpoint = node_endpoint(&ctx, &pod)?;
        let phase = pod["status"]["phase"].as_str().unwrap_or_default();
        if phase == "Succeeded" || phase == "Failed" {
            return Err(ApiError::bad_request(format!(
                "cannot {sub} into a container in a completed pod; current phase is {phase}"
            )));
        }
        check_started(&pod, &container)?;
        (format!("/{sub}/{ns}/{name}/{}", enc(&container)), endpoint)
    };
    let Some(client_upgrade) = ext.remove::<hyper::upgrade::OnUpgrade>() else {
        return Err(ApiError::bad_request("Upgrade request required"));
    };
    let mut builder = http::Request::builder()
        .method(method)
        .uri(with_query(path, query))
        .header(http::header::HOST, ip.to_string());
    for name in UPGRADE_HEADERS {
        for value in ctx.headers.get_all(name) {
            builder = builder.header(name, value);
        }
    }
    let req = builder
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut resp = proxy.send(ip, port, req).await?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(agent_error(resp).await);
    }
    let agent_upgrade = hyper::upgrade::on(&mut resp);
    tokio::spawn(async move {
        match tokio::try_join!(client_upgrade, agent_upgrade) {
            Ok((client, agent)) => {
                let mut client = TokioIo::new(client);
                let mut agent = TokioIo::new(agent);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut agent).await;
            }
            Err(err) => tracing::debug!(%err, "node proxy: upgrade failed"),
        }
    });
    let mut out = Response::new(Body::empty());
    *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    copy_headers(resp.headers(), out.headers_mut());
    Ok(out)
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if name != http::header::CONTENT_LENGTH && name != http::header::DATE {
            to.append(name, value.clone());
        }
    }
}

fn proxy_of(ext: &Extensions) -> ApiResult<NodeProxy> {
    ext.get::<NodeProxy>().cloned().ok_or_else(|| {
        ApiError::new(
            503,
            "ServiceUnavailable",
            "this server does not proxy to node agents",
        )
    })
}

fn pod_of(ctx: &Ctx) -> ApiResult<Value> {
    ctx.server
        .cache
        .get(&ctx.key())
        .map(|o| o.value())
        .ok_or_else(|| ApiError::not_found(ctx.def.plural, ctx.def.group, ctx.name()))
}

/// The value of query parameter `key`, decoded.
fn param(query: Option<&str>, key: &str) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn flag(query: Option<&str>, key: &str) -> bool {
    param(query, key).is_some_and(|v| matches!(v.as_str(), "true" | "1" | "True"))
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn with_query(path: String, query: Option<&str>) -> String {
    match query {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path,
    }
}

/// Names of every container of the pod (init and ephemeral ones too).
fn container_names(pod: &Value) -> Vec<String> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| pod["spec"][k].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

/// The `container` parameter, checked, or the only container of the pod.
fn container_of(ctx: &Ctx, pod: &Value, query: Option<&str>) -> ApiResult<String> {
    let name = ctx.name();
    let all = container_names(pod);
    match param(query, "container").filter(|c| !c.is_empty()) {
        Some(c) if all.contains(&c) => Ok(c),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None => {
            let main: Vec<String> = pod["spec"]["containers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect();
            match main.as_slice() {
                [only] => Ok(only.clone()),
                _ => Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    main.join(" ")
                ))),
            }
        }
    }
}

/// 400 while the container is waiting to start, as the kubelet says it.
fn check_started(pod: &Value, container: &str) -> ApiResult<()> {
    let statuses = [
        "initContainerStatuses",
        "containerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .flat_map(|k| pod["status"][k].as_array().cloned().unwrap_or_default());
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    for status in statuses {
        if status["name"].as_str() != Some(container) {
            continue;
        }
        if let Some(waiting) = status["state"]["waiting"].as_object() {
            let reason = waiting
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("ContainerCreating");
            return Err(ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{pod_name}\" is waiting to start: {reason}"
            )));
        }
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "container \"{container}\" in pod \"{pod_name}\" is waiting to start: ContainerCreating"
    )))
}

/// The InternalIP (else first address) and node API port of the pod's node.
fn node_endpoint(ctx: &Ctx, pod: &Value) -> ApiResult<(std::net::IpAddr, u16)> {
    let pod_name = ctx.name();
    let node_name = pod["spec"]["nodeName"].as_str().unwrap_or_default();
    if node_name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {pod_name} does not have a host assigned"
        )));
    }
    let nodes = ctx
        .server
        .registry
        .find("", "v1", "nodes")
        .ok_or_else(|| ApiError::internal("nodes are not served"))?;
    let node = ctx
        .server
        .cache
        .get(&nodes.key(None, node_name))
        .ok_or_else(|| ApiError::not_found("nodes", "", node_name))?;
    let node = &node.value();
    let addresses = node["status"]["addresses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let pick = |ty: Option<&str>| {
        addresses
            .iter()
            .filter(|a| ty.is_none_or(|t| a["type"].as_str() == Some(t)))
            .find_map(|a| a["address"].as_str()?.parse::<std::net::IpAddr>().ok())
    };
    let ip = pick(Some("InternalIP"))
        .or_else(|| pick(None))
        .ok_or_else(|| ApiError::bad_request(format!("node {node_name} has no address")))?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .unwrap_or(DEFAULT_NODE_API_PORT);
    Ok((ip, port))
}

/// The agent's error answer as an API error (its Status when it sent one).
async fn agent_error(resp: http::Response<Incoming>) -> ApiError {
    let code = resp.status().as_u16();
    let body = match resp.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return ApiError::internal(format!("reading the node's answer: {e}")),
    };
    match serde_json::from_slice::<Value>(&body) {
        Ok(status) if status["kind"] == "Status" => {
            let reason = status["reason"].as_str().unwrap_or("InternalError");
            let message = status["message"].as_str().unwrap_or_default();
            ApiError::new(code, reason, message)
        }
        _ => ApiError::new(
            code,
            if code == 400 {
                "BadRequest"
            } else {
                "InternalError"
            },
            String::from_utf8_lossy(&body).trim().to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_waiting_container_is_refused_with_the_kubelet_message() {
        let pod = json!({
            "metadata": {"name": "p"},
            "status": {"containerStatuses": [
                {"name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}},
                {"name": "d", "state": {"running": {}}},
            ]},
        });
        let err = check_started(&pod, "c").unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(
            err.message,
            "container \"c\" in pod \"p\" is waiting to start: ContainerCreating"
        );
        assert!(check_started(&pod, "d").is_ok());
    }

    #[test]
    fn init_and_main_container_names_are_valid() {
        let pod = json!({"spec": {
            "initContainers": [{"name": "init"}],
            "containers": [{"name": "a"}, {"name": "b"}],
        }});
        assert_eq!(container_names(&pod), ["init", "a", "b"]);
        assert!(flag(Some("follow=true&previous=1"), "previous"));
        assert_eq!(
            param(Some("container=a%2Db"), "container").as_deref(),
            Some("a-b")
        );
    }
}
