//! The DNS server itself: UDP and TCP listeners, request decoding, cluster
//! answers from [`crate::answer`], forwarding of other names to upstream
//! resolvers, and truncation of UDP answers that do not fit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::Name;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::answer::{Zone, answer};
use crate::chase::chase;
use crate::config::{DnsConfig, DnsError, without_self};
use crate::lookup::{Lookup, Stores};

/// The UDP payload size answered to clients without EDNS.
const PLAIN_UDP_MAX: usize = 512;
/// The largest UDP payload we send to EDNS clients (the DNS flag day value).
const EDNS_UDP_MAX: u16 = 1232;

/// What a request handler needs.
struct Ctx {
    zone: Zone,
    lookup: Arc<dyn Lookup + Send + Sync>,
    upstreams: Vec<SocketAddr>,
}

/// Serves cluster DNS from the API's Services and EndpointSlices until an
/// error; answers start once both watches have listed everything.
pub async fn serve(client: kube::Client, cfg: DnsConfig) -> Result<(), DnsError> {
    let (services, sw) = reflector::store::<Service>();
    let (slices, ew) = reflector::store::<EndpointSlice>();
    let svc_rf = reflector::reflector(sw, watcher::watcher(Api::all(client.clone()), Default::default()))
        .default_backoff()
        .for_each(|_| std::future::ready(()));
    let eps_rf = reflector::reflector(ew, watcher::watcher(Api::all(client), Default::default()))
        .default_backoff()
        .for_each(|_| std::future::ready(()));
    let stores = Stores { services, slices };
    let ready = stores.clone();
    let serving = async move {
        let _ = ready.services.wait_until_ready().await;
        let _ = ready.slices.wait_until_ready().await;
        serve_lookup(Arc::new(stores), cfg).await
    };
    tokio::select! {
        r = serving => r,
        _ = svc_rf => Ok(()),
        _ = eps_rf => Ok(()),
    }
}

/// Serves DNS from any [`Lookup`] (used by [`serve`], tests and the benchmark).
pub async fn serve_lookup(lookup: Arc<dyn Lookup + Send + Sync>, cfg: DnsConfig) -> Result<(), DnsError> {
    let domain = cfg.cluster_domain.trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty() || Name::from_ascii(format!("{domain}.")).is_err() {
        return Err(DnsError::Domain(cfg.cluster_domain));
    }
    let ctx = Arc::new(Ctx {
        zone: Zone { domain, ttl: cfg.ttl },
        lookup,
        upstreams: without_self(&cfg.upstreams, &cfg.listen, &[]),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for addr in cfg.listen {
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|source| DnsError::Bind { addr, source })?;
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|source| DnsError::Bind { addr, source })?;
        tracing::info!(%addr, "cluster DNS listening (UDP and TCP)");
        tasks.spawn(udp_loop(Arc::new(udp), ctx.clone()));
        tasks.spawn(tcp_loop(tcp, ctx.clone()));
    }
    match tasks.join_next().await {
        Some(Ok(r)) => r,
        Some(Err(e)) => Err(DnsError::Io(std::io::Error::other(e))),
        None => Ok(()),
    }
}

async fn udp_loop(sock: Arc<UdpSocket>, ctx: Arc<Ctx>) -> Result<(), DnsError> {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(v) => v,
            // ICMP errors surface here on some systems; keep serving.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => continue,
            Err(e) => return Err(e.into()),
        };
        let req = buf[..n].to_vec();
        let (sock, ctx) = (sock.clone(), ctx.clone());
        tokio::spawn(async move {
            if let Some(resp) = handle(&ctx, &req, false).await {
                let _ = sock.send_to(&resp, peer).await;
            }
        });
    }
}

async fn tcp_loop(listener: TcpListener, ctx: Arc<Ctx>) -> Result<(), DnsError> {
    loop {
        let (stream, _) = listener.accept().await?;
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let _ = tcp_conn(stream, &ctx).await;
        });
    }
}

/// One TCP connection: length-prefixed messages until the client closes or
/// stays idle for 10 s.
async fn tcp_conn(mut stream: TcpStream, ctx: &Ctx) -> std::io::Result<()> {
    loop {
        let Ok(len) = tokio::time::timeout(Duration::from_secs(10), stream.read_u16()).await else {
            return Ok(());
        };
        let mut req = vec![0u8; usize::from(len?)];
        stream.read_exact(&mut req).await?;
        if let Some(resp) = handle(ctx, &req, true).await {
            let Ok(len) = u16::try_from(resp.len()) else {
                continue;
            };
            stream.write_u16(len).await?;
            stream.write_all(&resp).await?;
        }
    }
}

/// Answers one wire-format request; `None` when it cannot even be parsed.
async fn handle(ctx: &Ctx, req: &[u8], tcp: bool) -> Option<Vec<u8>> {
    let msg = Message::from_vec(req).ok()?;
    if msg.metadata.message_type != MessageType::Query {
        return None;
    }
    let max = if tcp {
        usize::from(u16::MAX)
    } else {
        msg.edns.as_ref().map_or(PLAIN_UDP_MAX, |e| {
            usize::from(e.max_payload().clamp(512, EDNS_UDP_MAX))
        })
    };
    let mut resp = Message::response(msg.metadata.id, msg.metadata.op_code);
    resp.metadata.recursion_desired = msg.metadata.recursion_desired;
    resp.metadata.recursion_available = true;
    resp.add_queries(msg.queries.iter().cloned());
    if msg.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_UDP_MAX);
        resp.set_edns(edns);
    }
    let q = match (msg.metadata.op_code, msg.queries.as_slice()) {
        (OpCode::Query, [q]) => q,
        (OpCode::Query, _) => return encode(resp.clone_with_code(ResponseCode::FormErr), max),
        _ => return encode(resp.clone_with_code(ResponseCode::NotImp), max),
    };
    match answer(&ctx.zone, ctx.lookup.as_ref(), q.name(), q.query_type()) {
        Some(mut a) => {
            chase(
                &ctx.zone,
                ctx.lookup.as_ref(),
                &ctx.upstreams,
                q.query_type(),
                &mut a,
            )
            .await;
            resp.metadata.authoritative = true;
            resp.metadata.response_code = a.rcode;
            resp.add_answers(a.answers)
                .add_authorities(a.authorities)
                .add_additionals(a.additionals);
            encode(resp, max)
        }
        None => match crate::forward::forward(&ctx.upstreams, req, tcp).await {
            Some(bytes) => Some(bytes),
            None => encode(resp.clone_with_code(ResponseCode::ServFail), max),
        },
    }
}

trait WithCode {
    fn clone_with_code(&self, code: ResponseCode) -> Message;
}

impl WithCode for Message {
    fn clone_with_code(&self, code: ResponseCode) -> Message {
        let mut m = self.clone();
        m.metadata.response_code = code;
        m
    }
}

/// Encodes `resp`, sending only the header and question with TC set when it
/// is bigger than `max` (the client retries over TCP).
fn encode(resp: Message, max: usize) -> Option<Vec<u8>> {
    let bytes = resp.to_vec().ok()?;
    if bytes.len() <= max {
        return Some(bytes);
    }
    resp.truncate().to_vec().ok()
}
