//! exec, attach and port-forward: the CRI call that yields a URL on
//! containerd's streaming server, then the client's stream joined to it.
//!
//! containerd 1.6 serves SPDY (`v4.channel.k8s.io` for exec/attach,
//! `portforward.k8s.io`). Clients come as:
//! - SPDY (kubectl's fallback): upgraded to containerd with the same protocol
//!   offers and the bytes passed through untouched;
//! - WebSocket `v5.channel.k8s.io`/`v4.channel.k8s.io` (kubectl 1.30+): each
//!   message's first byte is the channel (0 stdin, 1 stdout, 2 stderr, 3 error,
//!   4 resize; v5's 255 closes a channel) and is translated to a SPDY stream
//!   ([`super::bridge`]);
//! - WebSocket `SPDY/3.1+portforward.k8s.io`: SPDY frames tunnelled in binary
//!   messages, unwrapped and passed through.

use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_cri::v1::{AttachRequest, ExecRequest, PortForwardRequest};

use super::bridge;
use super::logfmt::decode;
use super::upgrade::{self, Upgraded};
use super::{HttpError, NodeApi, lookup};

/// The exec/attach stream protocol containerd speaks.
const V4: &str = "v4.channel.k8s.io";
/// WebSocket stream protocols accepted for exec/attach, preferred first.
const WS_CHANNEL_PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", V4];
/// The port-forward protocol, and its WebSocket-tunnelled form.
const PORT_FORWARD: &str = "portforward.k8s.io";
const WS_PORT_FORWARD: &str = "SPDY/3.1+portforward.k8s.io";

/// Query options of exec and attach.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct StreamOpts {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl StreamOpts {
    /// Parses upstream's names (`stdin`/`stdout`/`stderr`, as the API takes
    /// them) and the kubelet's (`input`/`output`/`error`).
    pub fn parse(query: Option<&str>) -> StreamOpts {
        let mut o = StreamOpts::default();
        for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (decode(k), decode(v));
            let on = matches!(v.as_str(), "1" | "true" | "True" | "TRUE");
            match k.as_str() {
                "command" => o.command.push(v),
                "stdin" | "input" => o.stdin = on,
                "stdout" | "output" => o.stdout = on,
                "stderr" | "error" => o.stderr = on,
                "tty" => o.tty = on,
                _ => {}
            }
        }
        o
    }
}

enum Client {
    Spdy(Vec<String>),
    WebSocket(Vec<String>),
}

/// What kind of streaming client this is, with the protocols it offers.
fn client_kind(headers: &HeaderMap) -> Result<Client, HttpError> {
    let upgrade = headers
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let list = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()
    };
    if upgrade == "websocket" {
        Ok(Client::WebSocket(list("sec-websocket-protocol")))
    } else if upgrade.starts_with("spdy/") {
        Ok(Client::Spdy(list("x-stream-protocol-version")))
    } else {
        Err(HttpError::bad_request("Upgrade request required"))
    }
}

/// `GET|POST /exec/{ns}/{pod}/{container}`.
pub(super) async fn exec(
    State(api): State<NodeApi>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    let opts = StreamOpts::parse(req.uri().query());
    let url = async {
        if opts.command.is_empty() {
            return Err(HttpError::bad_request(
                "you must specify at least one command for the container",
            ));
        }
        let found = lookup::container(&api.cri, &ns, &pod, &container, false).await?;
        let reply = api
            .cri
            .runtime
            .clone()
            .exec(ExecRequest {
                container_id: found.id,
                cmd: opts.command.clone(),
                tty: opts.tty,
                stdin: opts.stdin,
                stdout: opts.stdout,
                stderr: opts.stderr && !opts.tty,
            })
            .await
            .map_err(runtime_error)?;
        Ok::<String, HttpError>(reply.into_inner().url)
    };
    match url.await {
        Ok(url) => channel_stream(req, url, opts).await,
        Err(e) => e.into_response(),
    }
}

/// `GET|POST /attach/{ns}/{pod}/{container}`.
pub(super) async fn attach(
    State(api): State<NodeApi>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    let opts = StreamOpts::parse(req.uri().query());
    let url = async {
        let found = lookup::container(&api.cri, &ns, &pod, &container, false).await?;
        let reply = api
            .cri
            .runtime
            .clone()
            .attach(AttachRequest {
                container_id: found.id,
                stdin: opts.stdin,
                tty: opts.tty,
                stdout: opts.stdout,
                stderr: opts.stderr && !opts.tty,
            })
            .await
            .map_err(runtime_error)?;
        Ok::<String, HttpError>(reply.into_inner().url)
    };
    match url.await {
        Ok(url) => channel_stream(req, url, opts).await,
        Err(e) => e.into_response(),
    }
}

/// `GET|POST /portForward/{ns}/{pod}`.
pub(super) async fn port_forward(
    State(api): State<NodeApi>,
    Path((ns, pod)): Path<(String, String)>,
    req: Request,
) -> Response {
    let ports: Vec<i32> = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|p| p.strip_prefix("port="))
        .filter_map(|p| p.parse::<i32>().ok())
        .collect();
    let url = async {
        let sandbox = lookup::sandbox(&api.cri, &ns, &pod).await?;
        let reply = api
            .cri
            .runtime
            .clone()
            .port_forward(PortForwardRequest {
                pod_sandbox_id: sandbox,
                port: ports,
            })
            .await
            .map_err(runtime_error)?;
        Ok::<String, HttpError>(reply.into_inner().url)
    };
    let url = match url.await {
        Ok(url) => url,
        Err(e) => return e.into_response(),
    };
    let result = match client_kind(req.headers()) {
        Ok(Client::Spdy(protocols)) => passthrough(req, &url, &protocols).await,
        Ok(Client::WebSocket(offered)) if offered.iter().any(|p| p == WS_PORT_FORWARD) => {
            match upgrade::spdy(&url, &[PORT_FORWARD.to_string()]).await {
                Ok(up) => websocket(req, WS_PORT_FORWARD, move |ws| bridge::tunnel(ws, up)).await,
                Err(e) => Err(e),
            }
        }
        Ok(Client::WebSocket(_)) => Err(HttpError::bad_request(format!(
            "unsupported WebSocket protocol: port-forward needs {WS_PORT_FORWARD}"
        ))),
        Err(e) => Err(e),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

fn runtime_error(status: tonic::Status) -> HttpError {
    match status.code() {
        tonic::Code::NotFound | tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition => {
            HttpError::bad_request(status.message().to_string())
        }
        _ => HttpError::internal(format!("container runtime: {}", status.message())),
    }
}

/// Joins an exec/attach client to the streaming URL `url`.
async fn channel_stream(req: Request, url: String, opts: StreamOpts) -> Response {
    let result = match client_kind(req.headers()) {
        Ok(Client::Spdy(protocols)) => passthrough(req, &url, &protocols).await,
        Ok(Client::WebSocket(offered)) => {
            let chosen = WS_CHANNEL_PROTOCOLS
                .into_iter()
                .find(|p| offered.iter().any(|o| o == p));
            match chosen {
                None => Err(HttpError::bad_request(format!(
                    "unsupported WebSocket protocols {offered:?}: supported are {WS_CHANNEL_PROTOCOLS:?}"
                ))),
                Some(chosen) => match upgrade::spdy(&url, &[V4.to_string()]).await {
                    Ok(up) => {
                        let v5 = chosen != V4;
                        websocket(req, chosen, move |ws| bridge::channels(ws, up, opts, v5)).await
                    }
                    Err(e) => Err(e),
                },
            }
        }
        Err(e) => Err(e),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Accepts the client's WebSocket with `protocol` and runs `run` on it.
async fn websocket<F, Fut>(req: Request, protocol: &'static str, run: F) -> Result<Response, HttpError>
where
    F: FnOnce(axum::extract::ws::WebSocket) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (mut parts, _body) = req.into_parts();
    let ws = WebSocketUpgrade::from_request_parts(&mut parts, &())
        .await
        .map_err(|e| HttpError::bad_request(format!("WebSocket upgrade: {}", e.body_text())))?;
    Ok(ws
        .protocols([protocol])
        .max_message_size(64 << 20)
        .on_upgrade(run)
        .into_response())
}

/// Upgrades to containerd offering the client's SPDY protocols, answers the
/// client's upgrade with containerd's choice and joins the two connections.
async fn passthrough(mut req: Request, url: &str, protocols: &[String]) -> Result<Response, HttpError> {
    let up: Upgraded = upgrade::spdy(url, protocols).await?;
    let chosen = up
        .header("X-Stream-Protocol-Version")
        .unwrap_or_default()
        .to_string();
    let on_upgrade = hyper::upgrade::on(&mut req);
    let mut backend = up.stream;
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(client) => {
                let mut client = TokioIo::new(client);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
            }
            Err(err) => tracing::debug!(%err, "node API: client upgrade failed"),
        }
    });
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("Upgrade"),
    );
    h.insert(http::header::UPGRADE, http::HeaderValue::from_static("SPDY/3.1"));
    if let Ok(v) = http::HeaderValue::from_str(&chosen) {
        h.insert("X-Stream-Protocol-Version", v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_take_both_spellings() {
        let o = StreamOpts::parse(Some(
            "command=sh&command=-c&command=echo+hi%3B+exit+3&stdin=true&stdout=1&tty=1",
        ));
        assert_eq!(o.command, ["sh", "-c", "echo hi; exit 3"]);
        assert!(o.stdin && o.stdout && o.tty && !o.stderr);
        let k = StreamOpts::parse(Some("input=1&output=1&error=1"));
        assert!(k.stdin && k.stdout && k.stderr);
    }

    #[test]
    fn clients_are_told_apart_by_upgrade() {
        let mut h = HeaderMap::new();
        h.insert("upgrade", "websocket".parse().unwrap());
        h.insert(
            "sec-websocket-protocol",
            "v5.channel.k8s.io, v4.channel.k8s.io".parse().unwrap(),
        );
        assert!(matches!(client_kind(&h), Ok(Client::WebSocket(p)) if p.len() == 2));
        let mut s = HeaderMap::new();
        s.insert("upgrade", "SPDY/3.1".parse().unwrap());
        s.append("x-stream-protocol-version", "v4.channel.k8s.io".parse().unwrap());
        s.append("x-stream-protocol-version", "v3.channel.k8s.io".parse().unwrap());
        assert!(matches!(client_kind(&s), Ok(Client::Spdy(p)) if p.len() == 2));
        assert!(client_kind(&HeaderMap::new()).is_err());
    }
}
