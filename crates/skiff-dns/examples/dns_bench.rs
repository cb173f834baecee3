//! DNS queries per second and latency percentiles of `skiff_dns` answering
//! from 1,000 Services (in memory, no API server), queried over UDP on
//! 127.0.0.1 by concurrent clients. Usage:
//! `cargo run -p skiff-dns --example dns_bench -- [services] [clients] [seconds]`.

#![allow(clippy::unwrap_used)] // a benchmark tool: setup failures end it

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use k8s_openapi::api::core::v1::Service;
use skiff_dns::lookup::Fixed;
use skiff_dns::{DnsConfig, serve_lookup};
use tokio::net::UdpSocket;

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (n, clients, secs) = (
        args.first().copied().unwrap_or(1000),
        args.get(1).copied().unwrap_or(16),
        args.get(2).copied().unwrap_or(10),
    );
    let services = (0..n)
        .map(|i| {
            let v = serde_json::json!({"metadata": {"name": format!("svc-{i}"), "namespace": "bench"},
                "spec": {"clusterIP": format!("10.43.{}.{}", i / 250, i % 250 + 1),
                         "ports": [{"name": "http", "port": 80}]}});
            Arc::new(serde_json::from_value::<Service>(v).unwrap())
        })
        .collect();
    let lookup = Arc::new(Fixed {
        services,
        slices: Vec::new(),
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cfg = DnsConfig {
        listen: vec![addr],
        upstreams: Vec::new(),
        ..DnsConfig::default()
    };
    tokio::spawn(serve_lookup(lookup, cfg));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let deadline = Instant::now() + Duration::from_secs(secs as u64);
    let mut tasks = Vec::new();
    for c in 0..clients {
        tasks.push(tokio::spawn(async move {
            let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            s.connect(addr).await.unwrap();
            let mut lat = Vec::new();
            let mut buf = vec![0u8; 4096];
            let mut i = c;
            while Instant::now() < deadline {
                let name = format!("svc-{}.bench.svc.cluster.local.", i % n);
                i += clients;
                let mut m = Message::new((i % 65536) as u16, MessageType::Query, OpCode::Query);
                m.add_query(Query::query(Name::from_ascii(&name).unwrap(), RecordType::A));
                let t = Instant::now();
                s.send(&m.to_vec().unwrap()).await.unwrap();
                if tokio::time::timeout(Duration::from_secs(1), s.recv(&mut buf))
                    .await
                    .is_ok()
                {
                    lat.push(t.elapsed());
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "services={n} clients={clients} seconds={secs} queries={} qps={:.0} p50={:?} p99={:?}",
        all.len(),
        all.len() as f64 / secs as f64,
        pct(0.5),
        pct(0.99)
    );
}
