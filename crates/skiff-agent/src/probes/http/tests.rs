//! The prober's HTTP GET against a small loopback server with canned answers.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// Serves canned answers by path; records each request head it got.
async fn server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let log = log.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = conn.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                log.lock().unwrap().push(head);
                let answer = match path.as_str() {
                    "/ok" => "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine".to_string(),
                    "/fail" => "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n".to_string(),
                    "/redirect" => "HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Length: 0\r\n\r\n".to_string(),
                    "/away" => "HTTP/1.1 302 Found\r\nLocation: http://localhost:1/x\r\nContent-Length: 5\r\n\r\nmoved"
                        .to_string(),
                    "/loop" => "HTTP/1.1 301 Moved\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n".to_string(),
                    "/slow" => {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        return;
                    }
                    _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string(),
                };
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    });
    (port, seen)
}

fn target(port: u16, path: &str) -> HttpTarget {
    HttpTarget {
        scheme: Scheme::Http,
        host: "127.0.0.1".to_string(),
        port,
        path: path.to_string(),
        headers: Vec::new(),
    }
}

const T: Duration = Duration::from_secs(2);

#[tokio::test]
async fn status_200_to_399_passes_and_others_fail_with_the_status_code() {
    let (port, _) = server().await;
    assert_eq!(
        probe(&target(port, "/ok"), T).await,
        Outcome::Success("fine".into())
    );
    assert_eq!(
        probe(&target(port, "/fail"), T).await,
        Outcome::Failure("HTTP probe failed with statuscode: 500".into())
    );
    assert_eq!(
        probe(&target(port, "/missing"), T).await,
        Outcome::Failure("HTTP probe failed with statuscode: 404".into())
    );
}

#[tokio::test]
async fn same_host_redirects_are_followed_and_others_are_a_warning() {
    let (port, seen) = server().await;
    assert_eq!(
        probe(&target(port, "/redirect"), T).await,
        Outcome::Success("fine".into())
    );
    assert_eq!(seen.lock().unwrap().len(), 2, "the redirect was followed");
    assert_eq!(
        probe(&target(port, "/away"), T).await,
        Outcome::Warning("Probe terminated redirects, Response body: moved".into())
    );
    let Outcome::Failure(msg) = probe(&target(port, "/loop"), T).await else {
        panic!("a redirect loop must fail")
    };
    assert!(msg.ends_with("stopped after 10 redirects"), "{msg}");
}

#[tokio::test]
async fn headers_user_agent_and_host_override_are_sent() {
    let (port, seen) = server().await;
    let mut t = target(port, "/ok");
    t.headers = vec![
        ("X-Probe".into(), "yes".into()),
        ("Host".into(), "app.example".into()),
    ];
    assert!(probe(&t, T).await.passed());
    let head = seen.lock().unwrap()[0].to_ascii_lowercase();
    assert!(head.starts_with("get /ok http/1.1\r\n"), "{head}");
    assert!(head.contains("user-agent: kube-probe/1.33"), "{head}");
    assert!(head.contains("x-probe: yes"), "{head}");
    assert!(head.contains("host: app.example"), "{head}");
}

#[tokio::test]
async fn refused_connections_and_timeouts_fail_with_go_style_messages() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    assert_eq!(
        probe(&target(port, "/"), T).await,
        Outcome::Failure(format!(
            "Get \"http://127.0.0.1:{port}/\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        ))
    );
    let (port, _) = server().await;
    let started = std::time::Instant::now();
    let Outcome::Failure(msg) = probe(&target(port, "/slow"), Duration::from_millis(300)).await else {
        panic!("a slow answer must fail")
    };
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(msg.contains("context deadline exceeded"), "{msg}");
}

#[tokio::test]
async fn https_is_probed_without_verifying_the_certificate() {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    let certified = rcgen::generate_simple_self_signed(vec!["pod.invalid".to_string()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.unwrap();
        let mut buf = [0u8; 2048];
        let _ = tls.read(&mut buf).await.unwrap();
        tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure")
            .await
            .unwrap();
        tls.shutdown().await.unwrap();
    });
    let mut t = target(port, "/");
    t.scheme = Scheme::Https;
    assert_eq!(probe(&t, T).await, Outcome::Success("secure".into()));
}
