//! The HTTP/1.1 upgrade to containerd's streaming server: the URL a CRI
//! Exec/Attach/PortForward call returned is dialled (plain HTTP on loopback,
//! as the containerd config sets it up), asked to switch to SPDY/3.1 and the
//! raw connection is handed back.
//!
//! Must not: interpret the upgraded bytes.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::HttpError;

const MAX_HEAD: usize = 16 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An upgraded connection and the server's 101 response headers.
pub(super) struct Upgraded {
    pub stream: TcpStream,
    pub headers: Vec<(String, String)>,
}

impl Upgraded {
    /// The first value of response header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `(host:port, path)` of an `http://` URL.
fn split_url(url: &str) -> Result<(&str, &str), HttpError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| HttpError::internal(format!("unsupported streaming URL {url:?}")))?;
    Ok(match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    })
}

/// Dials `url` and upgrades to SPDY/3.1 offering `protocols` in
/// `X-Stream-Protocol-Version`.
pub(super) async fn spdy(url: &str, protocols: &[String]) -> Result<Upgraded, HttpError> {
    let (authority, path) = split_url(url)?;
    let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(authority))
        .await
        .map_err(|_| {
            HttpError::internal(format!(
                "connecting to the streaming server {authority}: timed out"
            ))
        })?
        .map_err(|e| HttpError::internal(format!("connecting to the streaming server {authority}: {e}")))?;
    let _ = stream.set_nodelay(true);
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nContent-Length: 0\r\n"
    );
    for p in protocols {
        req.push_str(&format!("X-Stream-Protocol-Version: {p}\r\n"));
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| HttpError::internal(format!("streaming server: {e}")))?;
    let head = read_head(&mut stream).await?;
    let (code, headers) = parse_head(&head)?;
    if code != 101 {
        let mut body = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut body))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(0);
        let msg = String::from_utf8_lossy(&body[..n]).trim().to_string();
        return Err(HttpError::internal(format!(
            "streaming server refused the upgrade ({code}): {msg}"
        )));
    }
    Ok(Upgraded { stream, headers })
}

/// Reads the response head byte by byte so nothing after it is consumed.
async fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, HttpError> {
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err(HttpError::internal("streaming server: response head too large"));
        }
        let b = stream
            .read_u8()
            .await
            .map_err(|e| HttpError::internal(format!("streaming server: {e}")))?;
        head.push(b);
    }
    Ok(head)
}

/// The status code and headers of a response head.
fn parse_head(head: &[u8]) -> Result<(u16, Vec<(String, String)>), HttpError> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let code = status
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| HttpError::internal(format!("streaming server: bad status line {status:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok((code, headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_heads_parse() {
        let (a, p) = split_url("http://127.0.0.1:4242/exec/abc").unwrap();
        assert_eq!((a, p), ("127.0.0.1:4242", "/exec/abc"));
        assert!(split_url("https://x/y").is_err());
        let (code, headers) = parse_head(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n",
        )
        .unwrap();
        assert_eq!(code, 101);
        assert_eq!(
            headers[1],
            ("X-Stream-Protocol-Version".into(), "v4.channel.k8s.io".into())
        );
    }
}
