//! Serves a tiny router over the real TLS stack on 127.0.0.1:0 and talks to
//! it with a rustls + hyper client (HTTP/1.1 and HTTP/2) and the real kubectl.

use std::path::Path;

use axum::extract::Extension;
use axum::routing::get;
use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use hyper::upgrade::OnUpgrade;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;

use super::*;
use crate::authn::agent_user;
use crate::kubeconfig::{self, Credentials};
use crate::pki::{Pki, serving_sans};

struct Running {
    addr: SocketAddr,
    pki: Pki,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn whoami(Extension(user): Extension<UserInfo>) -> String {
    format!("{} {}", user.name, user.groups.join(","))
}

/// Answers `Upgrade: echo` with 101 and echoes bytes on the upgraded stream.
async fn echo_upgrade(mut req: Request<Body>) -> Response<Body> {
    let on_upgrade = req.extensions_mut().remove::<OnUpgrade>();
    tokio::spawn(async move {
        let Some(on_upgrade) = on_upgrade else { return };
        let Ok(upgraded) = on_upgrade.await else { return };
        let mut io = TokioIo::new(upgraded);
        let mut buf = [0u8; 64];
        while let Ok(n) = io.read(&mut buf).await {
            if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(http::header::CONNECTION, "upgrade")
        .header(http::header::UPGRADE, "echo")
        .body(Body::empty())
        .unwrap()
}

async fn start() -> Running {
    install_ring_provider();
    let dir = tempfile::tempdir().unwrap();
    let sans = serving_sans("10.43.0.1".parse().unwrap(), &[], &[]).unwrap();
    let pki = Pki::load_or_create(dir.path(), &sans).unwrap();
    let tls = server_config(pki.ca_cert_pem(), pki.serving()).unwrap();
    let authn = Arc::new(Authenticator::new().with_token("agent-token", agent_user()));
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/whoami", get(whoami))
        .route("/api", get(whoami))
        .route("/echo", get(echo_upgrade));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(serve(listener, router, tls, authn, async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        pki,
        stop: Some(stop),
        done,
        _dir: dir,
    }
}

fn client_config(pki: &Pki, client: Option<&CertKey>, alpn: &[u8]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca_cert_pem().as_bytes()).unwrap())
        .unwrap();
    let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        Some(pair) => {
            let chain = vec![CertificateDer::from_pem_slice(pair.cert_pem.as_bytes()).unwrap()];
            let key = PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(config)
}

async fn tls_connect(
    run: &Running,
    client: Option<&CertKey>,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(run.addr).await.unwrap();
    let connector = TlsConnector::from(client_config(&run.pki, client, alpn));
    let name = ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

/// One GET over a fresh connection; returns status and body.
async fn get_once(
    run: &Running,
    client: Option<&CertKey>,
    alpn: &[u8],
    path: &str,
    token: Option<&str>,
) -> (StatusCode, String) {
    let tls = tls_connect(run, client, alpn).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn), "negotiated protocol");
    let mut req = Request::get(format!("https://localhost{path}"));
    if let Some(token) = token {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let req = req.body(Empty::<Bytes>::new()).unwrap();
    let io = TokioIo::new(tls);
    let resp = if alpn == b"h2" {
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    };
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn admin_certificate_authenticates_over_http2_and_http1() {
    let run = start().await;
    for alpn in [&b"h2"[..], b"http/1.1"] {
        let (status, body) = get_once(&run, Some(run.pki.admin()), alpn, "/whoami", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "system:admin system:masters,system:authenticated");
    }
}

#[tokio::test]
async fn no_credentials_get_401_status_except_on_public_paths() {
    let run = start().await;
    let (status, body) = get_once(&run, None, b"http/1.1", "/api", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let status_obj: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status_obj["kind"].as_str(), status_obj["code"].as_u64()),
        (Some("Status"), Some(401))
    );
    let (status, body) = get_once(&run, None, b"h2", "/healthz", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
}

#[tokio::test]
async fn bearer_token_authenticates_and_a_wrong_one_does_not() {
    let run = start().await;
    let (status, body) = get_once(&run, None, b"h2", "/whoami", Some("agent-token")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "system:skiff-agent system:nodes,system:authenticated");
    let (status, _) = get_once(&run, None, b"h2", "/whoami", Some("wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let run = start().await;
    let other_dir = tempfile::tempdir().unwrap();
    let other = Pki::load_or_create(other_dir.path(), &[]).unwrap();
    let tcp = tokio::net::TcpStream::connect(run.addr).await.unwrap();
    let mut config = (*client_config(&run.pki, Some(other.admin()), b"h2")).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = TlsConnector::from(Arc::new(config));
    let result = async {
        let mut tls = connector.connect(ServerName::try_from("localhost")?, tcp).await?;
        // TLS 1.3 reports a rejected client certificate on the first read.
        tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await?;
        let mut buf = [0u8; 16];
        let n = tls.read(&mut buf).await?;
        Ok::<usize, Box<dyn std::error::Error>>(n)
    }
    .await;
    assert!(
        matches!(result, Err(_) | Ok(0)),
        "handshake with a foreign client cert must fail: {result:?}"
    );
}

#[tokio::test]
async fn upgrades_pass_through_to_the_handler() {
    let run = start().await;
    let tls = tls_connect(&run, Some(run.pki.admin()), b"http/1.1").await;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn.with_upgrades());
    let req = Request::get("https://localhost/echo")
        .header(http::header::CONNECTION, "upgrade")
        .header(http::header::UPGRADE, "echo")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    let mut io = TokioIo::new(hyper::upgrade::on(resp).await.unwrap());
    io.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 5];
    io.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello");
}

#[tokio::test]
async fn shutdown_stops_accepting_and_returns() {
    let mut run = start().await;
    let _ = run.stop.take().unwrap().send(());
    tokio::time::timeout(DRAIN_TIMEOUT + Duration::from_secs(2), &mut run.done)
        .await
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(run.addr).await.is_err());
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Option<std::process::Output> {
    let kubectl = Path::new("/usr/bin/kubectl");
    if !kubectl.exists() {
        eprintln!("kubectl not installed; skipping kubectl checks");
        return None;
    }
    let out = std::process::Command::new(kubectl)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", kubeconfig.parent().unwrap())
        .output()
        .unwrap();
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_kubectl_uses_the_admin_kubeconfig() {
    let run = start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = format!("https://127.0.0.1:{}", run.addr.port());
    let admin = dir.path().join("admin.kubeconfig");
    kubeconfig::write(
        &admin,
        &server,
        run.pki.ca_cert_pem(),
        &Credentials::Certificate(run.pki.admin()),
    )
    .unwrap();
    let anon = dir.path().join("anon.kubeconfig");
    kubeconfig::write(
        &anon,
        &server,
        run.pki.ca_cert_pem(),
        &Credentials::Token("wrong"),
    )
    .unwrap();
    let (admin2, anon2) = (admin.clone(), anon.clone());
    let (ok, whoami, denied) = tokio::task::spawn_blocking(move || {
        (
            kubectl(&admin2, &["get", "--raw", "/healthz"]),
            kubectl(&admin2, &["get", "--raw", "/whoami"]),
            kubectl(&anon2, &["get", "--raw", "/api"]),
        )
    })
    .await
    .unwrap();
    let (Some(ok), Some(whoami), Some(denied)) = (ok, whoami, denied) else {
        return;
    };
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "ok");
    assert!(String::from_utf8_lossy(&whoami.stdout).starts_with("system:admin system:masters"));
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("Unauthorized"),
        "{denied:?}"
    );
}
