//! The DNS load generator and the UDP echo baseline. The generator runs
//! closed-loop clients (each sends one A query over UDP and waits for its
//! answer before the next) against one target for a fixed time and
//! summarises what came back. It is run inside a pod's network namespace
//! (see [`super`]), so it builds its queries by hand and needs nothing but
//! sockets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;

use crate::stats::{LatencySummary, per_second};

/// How long one query may go unanswered before it counts as an error.
const QUERY_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a target gets to answer a first query.
const PROBE_FOR: Duration = Duration::from_secs(20);

/// One thing to send queries to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    /// What it is, for the report.
    pub label: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// A real DNS server (answers must be NOERROR with records) rather than an echo.
    pub dns: bool,
}

/// What the generator is asked to do (passed as JSON into the pod's netns).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadSpec {
    /// Targets, measured one after the other.
    pub targets: Vec<Target>,
    /// Names asked for, in turn.
    pub names: Vec<String>,
    /// Concurrent clients.
    pub clients: usize,
    /// Seconds per target.
    pub seconds: u64,
}

/// What one target did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadResult {
    /// The target.
    pub target: Target,
    /// Answered queries per second (good answers only).
    pub qps: f64,
    /// Good answers.
    pub ok: usize,
    /// Timeouts and wrong answers.
    pub errors: usize,
    /// Latency of the good answers.
    pub latency: Option<Latency>,
    /// Why the target was not measured (did not answer a first query).
    pub skipped: Option<String>,
}

/// Latency of the good answers in milliseconds ([`LatencySummary`] as it
/// travels back out of the pod's netns).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latency {
    /// Answers.
    pub count: usize,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl From<LatencySummary> for Latency {
    fn from(l: LatencySummary) -> Self {
        Latency {
            count: l.count,
            mean_ms: l.mean_ms,
            p50_ms: l.p50_ms,
            p99_ms: l.p99_ms,
            max_ms: l.max_ms,
        }
    }
}

/// A wire-format A query for `name` with id 0 (the id is set per send).
pub fn query(name: &str) -> Vec<u8> {
    // Header: id 0, RD set, one question.
    let mut q = vec![0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.trim_end_matches('.').split('.') {
        let bytes = label.as_bytes();
        q.push(u8::try_from(bytes.len().min(63)).unwrap_or(63));
        q.extend_from_slice(&bytes[..bytes.len().min(63)]);
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// True when `resp` answers query `id`: for a DNS target NOERROR with at
/// least one answer record, for an echo any reply with the id.
fn good(resp: &[u8], id: u16, dns: bool) -> bool {
    if resp.len() < 12 || resp[..2] != id.to_be_bytes() {
        return false;
    }
    !dns || (resp[3] & 0x0f == 0 && u16::from_be_bytes([resp[6], resp[7]]) > 0)
}

/// Runs every target of `spec` in turn.
pub async fn run(spec: &LoadSpec) -> Vec<LoadResult> {
    let queries: Arc<Vec<Vec<u8>>> = Arc::new(spec.names.iter().map(|n| query(n)).collect());
    let mut out = Vec::new();
    for t in &spec.targets {
        out.push(run_target(t, &queries, spec.clients.max(1), spec.seconds).await);
    }
    out
}

async fn run_target(t: &Target, queries: &Arc<Vec<Vec<u8>>>, clients: usize, seconds: u64) -> LoadResult {
    let mut result = LoadResult {
        target: t.clone(),
        qps: 0.0,
        ok: 0,
        errors: 0,
        latency: None,
        skipped: None,
    };
    // A first answer decides whether the target is there at all; cluster DNS
    // may only start listening once the node's bridge exists (the first pod).
    let probing = Instant::now();
    while let Err(why) = one(t, &queries[0], 7).await {
        if probing.elapsed() > PROBE_FOR {
            result.skipped = Some(why);
            return result;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut set = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (t, queries) = (t.clone(), queries.clone());
        set.spawn(async move { client(&t, &queries, c, deadline).await });
    }
    let mut samples = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok((s, e)) => {
                samples.extend(s);
                result.errors += e;
            }
            Err(_) => result.errors += 1,
        }
    }
    result.ok = samples.len();
    result.qps = per_second(samples.len(), start.elapsed());
    result.latency = LatencySummary::from_samples(&samples).map(Latency::from);
    result
}

async fn socket(to: SocketAddr) -> std::io::Result<UdpSocket> {
    let local: SocketAddr = if to.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let s = UdpSocket::bind(local).await?;
    s.connect(to).await?;
    Ok(s)
}

async fn one(t: &Target, q: &[u8], id: u16) -> Result<(), String> {
    let s = socket(t.addr).await.map_err(|e| e.to_string())?;
    let mut q = q.to_vec();
    q[..2].copy_from_slice(&id.to_be_bytes());
    s.send(&q).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(Duration::from_secs(3), s.recv(&mut buf)).await {
        Ok(Ok(n)) if good(&buf[..n], id, t.dns) => Ok(()),
        Ok(Ok(_)) => Err("the first answer was not a good one".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer to a first query within 3 s".into()),
    }
}

/// One closed-loop client: latencies of good answers and the error count.
async fn client(t: &Target, queries: &[Vec<u8>], first: usize, deadline: Instant) -> (Vec<Duration>, usize) {
    let mut samples = Vec::new();
    let mut errors = 0;
    let Ok(s) = socket(t.addr).await else {
        return (samples, 1);
    };
    let mut buf = vec![0u8; 4096];
    let mut id: u16 = u16::try_from(first % 64).unwrap_or(0) << 10;
    let mut i = first;
    while Instant::now() < deadline {
        id = id.wrapping_add(1);
        let mut q = queries[i % queries.len()].clone();
        i += 1;
        q[..2].copy_from_slice(&id.to_be_bytes());
        let sent = Instant::now();
        if s.send(&q).await.is_err() {
            errors += 1;
            continue;
        }
        let answered = tokio::time::timeout(QUERY_TIMEOUT, async {
            loop {
                let n = s.recv(&mut buf).await?;
                // A late answer to an earlier, timed-out query is skipped.
                if n >= 2 && buf[..2] == id.to_be_bytes() {
                    return Ok::<_, std::io::Error>(good(&buf[..n], id, t.dns));
                }
            }
        })
        .await;
        match answered {
            Ok(Ok(true)) => samples.push(sent.elapsed()),
            _ => errors += 1,
        }
    }
    (samples, errors)
}

/// A UDP echo on `addr` (port 0: any) that sends every datagram back with
/// the DNS "response" bit set: the baseline the DNS figures are divided by.
/// Returns the bound address; the task runs until aborted.
pub async fn echo(addr: SocketAddr) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let s = UdpSocket::bind(addr).await?;
    let bound = s.local_addr()?;
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = s.recv_from(&mut buf).await else {
                continue;
            };
            if n >= 3 {
                buf[2] |= 0x80;
            }
            let _ = s.send_to(&buf[..n], peer).await;
        }
    });
    Ok((bound, task))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_wire_format_a_questions() {
        let q = query("web.ns.svc.cluster.local.");
        assert_eq!(&q[12..16], b"\x03web");
        assert_eq!(&q[q.len() - 5..], &[0, 0, 1, 0, 1]);
        let mut resp = q.clone();
        resp[..2].copy_from_slice(&7u16.to_be_bytes());
        assert!(good(&resp, 7, false));
        assert!(!good(&resp, 7, true), "no answer records");
        resp[7] = 1;
        assert!(good(&resp, 7, true));
        resp[3] |= 3;
        assert!(!good(&resp, 7, true), "NXDOMAIN");
    }

    #[tokio::test]
    async fn echo_baseline_is_measured_on_loopback() {
        let (addr, task) = echo("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let spec = LoadSpec {
            targets: vec![Target {
                label: "echo".into(),
                addr,
                dns: false,
            }],
            names: vec!["a.b.svc.cluster.local".into()],
            clients: 2,
            seconds: 1,
        };
        let r = run(&spec).await;
        task.abort();
        assert_eq!(r.len(), 1);
        assert!(r[0].skipped.is_none());
        assert!(r[0].ok > 0 && r[0].qps > 0.0, "{:?}", r[0]);
    }
}
