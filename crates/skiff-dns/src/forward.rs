//! Talking to upstream resolvers: forwarding a client's query as it is
//! (UDP, then TCP when a TCP client got a truncated answer), and resolving a
//! name of our own asking (the target of an ExternalName CNAME).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one upstream gets to answer a forwarded query.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// Sends `req` as it is to each upstream in turn; the first answer wins.
/// A truncated UDP answer to a TCP client is fetched again over TCP.
pub async fn forward(upstreams: &[SocketAddr], req: &[u8], tcp: bool) -> Option<Vec<u8>> {
    for up in upstreams {
        let got = tokio::time::timeout(UPSTREAM_TIMEOUT, forward_udp(*up, req)).await;
        if let Ok(Ok(resp)) = got {
            let truncated = resp.get(2).is_some_and(|b| b & 0x02 != 0);
            if tcp
                && truncated
                && let Ok(Ok(full)) = tokio::time::timeout(UPSTREAM_TIMEOUT, forward_tcp(*up, req)).await
            {
                return Some(full);
            }
            return Some(resp);
        }
        tracing::debug!(upstream = %up, "upstream resolver did not answer");
    }
    None
}

/// Asks the upstreams for `name`/`qtype` (recursion desired); the parsed
/// answer, fetched over TCP when the UDP one was truncated.
pub async fn resolve(upstreams: &[SocketAddr], name: &Name, qtype: RecordType) -> Option<Message> {
    let mut m = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name.clone(), qtype));
    let req = m.to_vec().ok()?;
    let bytes = forward(upstreams, &req, true).await?;
    Message::from_vec(&bytes).ok()
}

async fn forward_udp(up: SocketAddr, req: &[u8]) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = if up.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(up).await?;
    sock.send(req).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).await?;
        // Only the answer to this query's id counts.
        if n >= 2 && req.len() >= 2 && buf[..2] == req[..2] {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn forward_tcp(up: SocketAddr, req: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(up).await?;
    let len = u16::try_from(req.len()).map_err(std::io::Error::other)?;
    s.write_u16(len).await?;
    s.write_all(req).await?;
    let n = s.read_u16().await?;
    let mut buf = vec![0u8; usize::from(n)];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}
