//! The gRPC probe: one `grpc.health.v1.Health/Check` call over plaintext
//! HTTP/2 to the pod, as kubelet makes it; SERVING passes, anything else
//! fails with kubelet's messages ("service unhealthy (responded with
//! \"NOT_SERVING\")"). The two tiny protobuf messages are encoded by hand
//! (field 1 of each), so no code generation is needed.

use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::action::Outcome;
use super::http::{io_error_text, join_host_port};

/// The health service's method path.
const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// Checks `service` (empty: the whole server) at `host:port`.
pub async fn probe(host: &str, port: u16, service: &str, timeout: Duration) -> Outcome {
    let addr = join_host_port(host, port);
    let tcp = match tokio::time::timeout(timeout, TcpStream::connect(&addr)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            return Outcome::Failure(format!(
                "timeout: failed to connect service {addr:?} within {timeout:?}: dial tcp {addr}: connect: {}",
                io_error_text(&e)
            ));
        }
        Err(_) => {
            return Outcome::Failure(format!(
                "timeout: failed to connect service {addr:?} within {timeout:?}"
            ));
        }
    };
    match tokio::time::timeout(timeout, check(tcp, &addr, service)).await {
        Err(_) => Outcome::Failure(format!("timeout: health rpc did not complete within {timeout:?}")),
        Ok(Err(e)) => Outcome::Failure(format!("error: health rpc probe failed: {e}")),
        Ok(Ok(Reply::Status(1))) => Outcome::Success("service is serving".to_string()),
        Ok(Ok(Reply::Status(n))) => {
            Outcome::Failure(format!("service unhealthy (responded with {:?})", status_name(n)))
        }
        Ok(Ok(Reply::Error(12, _))) => Outcome::Failure(
            "this server doesn't implement the grpc health protocol (grpc.health.v1.Health)".to_string(),
        ),
        Ok(Ok(Reply::Error(code, message))) => Outcome::Failure(format!(
            "error: health rpc probe failed: rpc error: code = {} desc = {message}",
            code_name(code)
        )),
    }
}

/// What the server answered.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    /// A HealthCheckResponse with this serving status.
    Status(u64),
    /// A gRPC error status (code, message).
    Error(u32, String),
}

async fn check(tcp: TcpStream, addr: &str, service: &str) -> Result<Reply, String> {
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(conn);
    let request = hyper::Request::post(format!("http://{addr}{CHECK_PATH}"))
        .header(hyper::header::CONTENT_TYPE, "application/grpc")
        .header(hyper::header::TE, "trailers")
        .header(hyper::header::USER_AGENT, super::http::USER_AGENT)
        .body(Full::new(Bytes::from(frame(&request_message(service)))))
        .map_err(|e| e.to_string())?;
    let result = async {
        let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
        if response.status() != hyper::StatusCode::OK {
            return Err(format!("HTTP status {}", response.status().as_u16()));
        }
        // A trailers-only answer carries grpc-status in the headers.
        let mut status = grpc_status(response.headers());
        let collected = response.into_body().collect().await.map_err(|e| e.to_string())?;
        if let Some(trailers) = collected.trailers() {
            status = status.or_else(|| grpc_status(trailers));
        }
        match status {
            Some((0, _)) | None => Ok(Reply::Status(response_status(&collected.to_bytes())?)),
            Some((code, message)) => Ok(Reply::Error(code, message)),
        }
    }
    .await;
    conn.abort();
    result
}

fn grpc_status(headers: &hyper::HeaderMap) -> Option<(u32, String)> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Some((code, message))
}

/// `HealthCheckRequest { service }`: field 1, length-delimited.
fn request_message(service: &str) -> Vec<u8> {
    if service.is_empty() {
        return Vec::new();
    }
    let mut out = vec![0x0a];
    put_varint(&mut out, service.len() as u64);
    out.extend_from_slice(service.as_bytes());
    out
}

/// A gRPC message frame: no compression, 4-byte big-endian length.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The serving status of a framed `HealthCheckResponse` (field 1, varint).
fn response_status(body: &[u8]) -> Result<u64, String> {
    let mut buf = body;
    if buf.remaining() < 5 {
        return Err("empty health response".to_string());
    }
    let compressed = buf.get_u8();
    let len = buf.get_u32() as usize;
    if compressed != 0 || buf.remaining() < len {
        return Err("malformed health response".to_string());
    }
    let mut msg = &buf[..len];
    let mut status = 0;
    while msg.has_remaining() {
        let key = get_varint(&mut msg)?;
        match (key >> 3, key & 7) {
            (1, 0) => status = get_varint(&mut msg)?,
            (_, 0) => {
                get_varint(&mut msg)?;
            }
            (_, 2) => {
                let n = usize::try_from(get_varint(&mut msg)?).map_err(|e| e.to_string())?;
                if msg.remaining() < n {
                    return Err("malformed health response".to_string());
                }
                msg.advance(n);
            }
            _ => return Err("malformed health response".to_string()),
        }
    }
    Ok(status)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(buf: &mut &[u8]) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        if !buf.has_remaining() {
            break;
        }
        let b = buf.get_u8();
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("malformed varint in health response".to_string())
}

fn status_name(n: u64) -> &'static str {
    match n {
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "UNKNOWN",
    }
}

fn code_name(code: u32) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    NAMES
        .get(code as usize)
        .map_or_else(|| format!("Code({code})"), |s| s.to_string())
}

#[cfg(test)]
mod tests;
