//! One run of a probe or hook action against a container, as kubelet's
//! prober does it: `exec` through CRI ExecSync, `tcpSocket` as a connect
//! within the timeout, `httpGet` through [`super::http`]. Owns the outcome
//! messages users read in events ("HTTP probe failed with statuscode: 500",
//! "dial tcp 10.42.0.5:80: connect: connection refused"). Keeps no state.

use std::time::Duration;

use k8s_cri::v1::ExecSyncRequest;
use k8s_openapi::api::core::v1::{ContainerPort, ExecAction, HTTPGetAction, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::http::{self, HttpTarget, Scheme};
use crate::CriClient;

/// What one probe run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The check passed; the text is the output kept for logs.
    Success(String),
    /// Passed with a remark (an HTTP redirect to another host was not followed).
    Warning(String),
    /// The check failed: the message after "Liveness probe failed: ".
    Failure(String),
    /// The probe could not be run at all (bad port name, runtime error):
    /// kubelet keeps the previous result and reports "probe errored".
    Error(String),
}

impl Outcome {
    /// True for results that count as a success.
    pub fn passed(&self) -> bool {
        matches!(self, Outcome::Success(_) | Outcome::Warning(_))
    }
}

/// Where an action runs: the container and its pod's network identity.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The CRI connection.
    pub cri: &'a CriClient,
    /// The CRI container id (exec runs in it).
    pub container_id: &'a str,
    /// The pod IP: the default host of httpGet and tcpSocket.
    pub pod_ip: Option<&'a str>,
    /// The container's declared ports, for named ports.
    pub ports: &'a [ContainerPort],
}

/// Runs `command` in the container with ExecSync; a non-zero exit is a
/// failure whose message is the command's output.
pub async fn exec(target: Target<'_>, action: &ExecAction, timeout: Duration) -> Outcome {
    let cmd = action.command.clone().unwrap_or_default();
    if cmd.is_empty() {
        return Outcome::Error("exec probe has no command".to_string());
    }
    let shown = cmd.join(" ");
    let mut request = tonic::Request::new(ExecSyncRequest {
        container_id: target.container_id.to_string(),
        cmd,
        timeout: timeout.as_secs().max(1) as i64,
    });
    // The runtime enforces `timeout`; the gRPC deadline only guards a stuck runtime.
    request.set_timeout(timeout + Duration::from_secs(5));
    match target.cri.runtime.clone().exec_sync(request).await {
        Ok(reply) => {
            let reply = reply.into_inner();
            let mut output = String::from_utf8_lossy(&reply.stdout).into_owned();
            output.push_str(&String::from_utf8_lossy(&reply.stderr));
            if reply.exit_code == 0 {
                Outcome::Success(output)
            } else {
                Outcome::Failure(output)
            }
        }
        Err(status) if is_timeout(&status) => Outcome::Failure(format!("command {shown:?} timed out")),
        Err(status) => Outcome::Error(format!("exec {shown:?}: {}", status.message())),
    }
}

fn is_timeout(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::DeadlineExceeded
        || status.message().contains("deadline exceeded")
        || status.message().contains("timeout")
}

/// Connects to the port; success once the connection is open.
pub async fn tcp(target: Target<'_>, action: &TCPSocketAction, timeout: Duration) -> Outcome {
    let port = match resolve_port(&action.port, target.ports) {
        Ok(port) => port,
        Err(e) => return Outcome::Error(e),
    };
    let Some(host) = action.host.as_deref().filter(|h| !h.is_empty()).or(target.pod_ip) else {
        return Outcome::Error("tcp probe: the pod has no IP yet".to_string());
    };
    let addr = http::join_host_port(host, port);
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(_stream)) => Outcome::Success(String::new()),
        Ok(Err(e)) => Outcome::Failure(format!("dial tcp {addr}: connect: {}", http::io_error_text(&e))),
        Err(_) => Outcome::Failure(format!("dial tcp {addr}: i/o timeout")),
    }
}

/// Sends the GET; 200–399 passes, anything else fails.
pub async fn http_get(target: Target<'_>, action: &HTTPGetAction, timeout: Duration) -> Outcome {
    match http_target(target, action) {
        Ok(req) => http::probe(&req, timeout).await,
        Err(e) => Outcome::Error(e),
    }
}

/// The request an httpGet action describes: host defaults to the pod IP,
/// path to `/`, scheme to HTTP; named ports resolve against the container.
pub fn http_target(target: Target<'_>, action: &HTTPGetAction) -> Result<HttpTarget, String> {
    let port = resolve_port(&action.port, target.ports)?;
    let host = action
        .host
        .as_deref()
        .filter(|h| !h.is_empty())
        .or(target.pod_ip)
        .ok_or_else(|| "http probe: the pod has no IP yet".to_string())?;
    let scheme = match action.scheme.as_deref() {
        Some(s) if s.eq_ignore_ascii_case("https") => Scheme::Https,
        _ => Scheme::Http,
    };
    let mut path = action.path.clone().unwrap_or_default();
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let headers = action
        .http_headers
        .iter()
        .flatten()
        .map(|h| (h.name.clone(), h.value.clone()))
        .collect();
    Ok(HttpTarget {
        scheme,
        host: host.to_string(),
        port,
        path,
        headers,
    })
}

/// A port number, or the number of the container port with that name.
pub fn resolve_port(port: &IntOrString, ports: &[ContainerPort]) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("invalid port number: {n}")),
        IntOrString::String(name) => {
            if let Ok(n) = name.parse::<u16>() {
                return Ok(n);
            }
            ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .ok_or_else(|| format!("port {name} not found"))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn named(name: &str, port: i32) -> ContainerPort {
        ContainerPort {
            name: Some(name.to_string()),
            container_port: port,
            ..ContainerPort::default()
        }
    }

    #[test]
    fn ports_resolve_by_number_or_by_container_port_name() {
        let ports = [named("http", 8080), named("metrics", 9090)];
        assert_eq!(resolve_port(&IntOrString::Int(80), &ports), Ok(80));
        assert_eq!(
            resolve_port(&IntOrString::String("metrics".into()), &ports),
            Ok(9090)
        );
        assert_eq!(
            resolve_port(&IntOrString::String("8081".into()), &ports),
            Ok(8081)
        );
        assert_eq!(
            resolve_port(&IntOrString::String("grpc".into()), &ports),
            Err("port grpc not found".to_string())
        );
        assert!(resolve_port(&IntOrString::Int(0), &ports).is_err());
        assert!(resolve_port(&IntOrString::Int(70000), &ports).is_err());
    }
}
