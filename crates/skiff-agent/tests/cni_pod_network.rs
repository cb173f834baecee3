//! The agent's CNI config with a real containerd: pods get distinct IPs from
//! the node's podCIDR, reach each other over them, and a hostPort answers on
//! the node. Uses its own containerd, conf dir and bridge (removed at the end).

#![allow(clippy::unwrap_used)]

#[path = "probes_fixture/mod.rs"]
mod fixture;

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use fixture::Node;

const HTTPD: &str =
    "mkdir -p /www && echo served-by-$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET / from 127.0.0.1:port with a plain socket, retrying until `deadline`.
fn get_local(port: u16, deadline: Instant) -> String {
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })();
        match attempt {
            Ok(body) if body.contains("200") => return body,
            other if Instant::now() > deadline => panic!("hostPort {port} never answered: {other:?}"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_get_distinct_ips_reach_each_other_and_host_ports_map() {
    let Some(node) = Node::start("10.199.41.0/24").await else {
        return;
    };
    let cidr: ipnet::Ipv4Net = "10.199.41.0/24".parse().unwrap();

    let a_cfg = node.sandbox_config("pod-a", &[]);
    let (a, a_ip) = node.run_sandbox(&a_cfg).await;
    node.run_container(&a, &a_cfg, "web", &["sh", "-c", HTTPD]).await;

    let host_port = free_port();
    let b_cfg = node.sandbox_config("pod-b", &[(80, i32::from(host_port))]);
    let (b, b_ip) = node.run_sandbox(&b_cfg).await;
    let b_web = node.run_container(&b, &b_cfg, "web", &["sh", "-c", HTTPD]).await;

    let (a_ip4, b_ip4): (Ipv4Addr, Ipv4Addr) = (a_ip.parse().unwrap(), b_ip.parse().unwrap());
    assert_ne!(a_ip4, b_ip4, "two pods share an IP");
    for ip in [a_ip4, b_ip4] {
        assert!(cidr.contains(&ip), "{ip} is outside the podCIDR {cidr}");
        assert_ne!(ip, Ipv4Addr::new(10, 199, 41, 1), "a pod got the gateway address");
    }

    // Pod B fetches pod A's page over A's pod IP.
    // (busybox-static's wget crashes in its service lookup: talk HTTP with nc.)
    let get = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {a_ip} 80");
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let (code, out) = node.exec(&b_web, &["sh", "-c", &get]).await;
        if code == 0 && out.contains("200") {
            break out;
        }
        assert!(
            Instant::now() < deadline,
            "pod B cannot reach pod A at {a_ip}: {code} {out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(page.ends_with("served-by-pod-a\n"), "{page}");

    // The hostPort of pod B answers on the node's loopback.
    let reply =
        tokio::task::spawn_blocking(move || get_local(host_port, Instant::now() + Duration::from_secs(10)))
            .await
            .unwrap();
    assert!(reply.ends_with("served-by-pod-b\n"), "{reply}");
}
