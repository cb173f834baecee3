//! The node API against a real containerd (skiff-testkit's `LocalNode`) and
//! real containers created here through CRI with the kubelet labels: logs
//! (plain, tail, timestamps, previous, follow to the container's exit), exec
//! over WebSocket v5 (stdout, exit code in the error channel, stdin with its
//! v5 close), and client-certificate checks. TLS material comes from the API
//! server's PKI, as `skiff server` hands it out. Skips where containers
//! cannot run.

#![allow(clippy::unwrap_used, clippy::panic)] // tests may unwrap

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ContainerState, ContainerStatusRequest, CreateContainerRequest,
    ImageSpec, LinuxPodSandboxConfig, LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxMetadata, RunPodSandboxRequest, StartContainerRequest,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use skiff_agent::nodeapi::{self, NodeApiTls};
use skiff_agent::{CriClient, labels};
use skiff_apiserver::handlers::node_proxy::{NODE_PROXY_CLIENT_NAME, node_serving_cert};
use skiff_apiserver::pki::{CertKey, Pki};
use skiff_testkit::node::{LocalNode, skip_reason};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const IMAGE: &str = "skiff.local/busybox:1";

struct Fixture {
    addr: SocketAddr,
    ca: String,
    client: CertKey,
    other: CertKey,
}

/// Runs the node API on a free port with certificates from a fresh PKI.
async fn start_node_api(cri: CriClient, dir: &std::path::Path) -> Fixture {
    rustls::crypto::ring::default_provider().install_default().ok();
    let pki = Pki::load_or_create(dir, &[]).unwrap();
    let serving = node_serving_cert(&pki, "e2e-node", &[LOCALHOST]).unwrap();
    let tls = NodeApiTls::new(serving.cert_pem, serving.key_pem, pki.ca_cert_pem());
    let listener = tokio::net::TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(nodeapi::serve_on(listener, cri, tls));
    Fixture {
        addr,
        ca: pki.ca_cert_pem().to_string(),
        client: pki.issue_client(NODE_PROXY_CLIENT_NAME, &[]).unwrap(),
        other: pki
            .issue_client("system:node:intruder", &["system:nodes".into()])
            .unwrap(),
    }
}

impl Fixture {
    async fn tls(&self, cert: Option<&CertKey>) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(self.ca.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        let mut config = match cert {
            Some(ck) => {
                let chain = CertificateDer::pem_slice_iter(ck.cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
                let key = PrivateKeyDer::from_pem_slice(ck.key_pem.as_bytes()).unwrap();
                builder.with_client_auth_cert(chain, key).unwrap()
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::IpAddress(LOCALHOST.into()), tcp)
            .await
            .unwrap()
    }

    /// GET `path` as `cert`; the status and the whole body.
    async fn get_as(&self, cert: &CertKey, path: &str) -> (u16, String) {
        let io = TokioIo::new(self.tls(Some(cert)).await);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        let req = http::Request::get(path)
            .header("host", "127.0.0.1")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let code = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (code, String::from_utf8_lossy(&body).into_owned())
    }

    async fn get(&self, path: &str) -> (u16, String) {
        self.get_as(&self.client, path).await
    }

    /// Runs an exec over WebSocket v5: sends `stdin` (then closes it), returns
    /// (stdout, stderr, error-channel Status).
    async fn exec_ws(
        &self,
        query: &str,
        input: Option<ExecInput<'_>>,
    ) -> (String, String, serde_json::Value) {
        let tls = self.tls(Some(&self.client)).await;
        let mut req = format!("wss://127.0.0.1/exec/default/logger/shell?{query}")
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("sec-websocket-protocol", "v5.channel.k8s.io".parse().unwrap());
        let (mut ws, resp) = tokio_tungstenite::client_async(req, tls).await.unwrap();
        assert_eq!(
            resp.headers().get("sec-websocket-protocol").unwrap(),
            "v5.channel.k8s.io"
        );
        match input {
            Some(ExecInput::Stdin(data)) => {
                let mut msg = vec![0u8];
                msg.extend_from_slice(data);
                ws.send(Message::Binary(msg.into())).await.unwrap();
                ws.send(Message::Binary(vec![255u8, 0].into())).await.unwrap();
            }
            Some(ExecInput::Resize(size)) => {
                let mut msg = vec![4u8];
                msg.extend_from_slice(size.as_bytes());
                ws.send(Message::Binary(msg.into())).await.unwrap();
            }
            None => {}
        }
        let (mut out, mut err, mut status) = (Vec::new(), Vec::new(), Vec::new());
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Ok(Some(msg)) = tokio::time::timeout_at(deadline.into(), ws.next()).await {
            match msg {
                Ok(Message::Binary(b)) if !b.is_empty() => match b[0] {
                    1 => out.extend_from_slice(&b[1..]),
                    2 => err.extend_from_slice(&b[1..]),
                    3 => status.extend_from_slice(&b[1..]),
                    _ => {}
                },
                Ok(Message::Close(_)) | Err(_) => break,
                _ => {}
            }
        }
        let status = serde_json::from_slice(&status).unwrap_or(serde_json::Value::Null);
        (
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
            status,
        )
    }
}

/// What an exec test sends: stdin (then its v5 close) or a terminal size.
enum ExecInput<'a> {
    Stdin(&'a [u8]),
    Resize(&'a str),
}

fn labels_of(container: Option<&str>) -> HashMap<String, String> {
    let mut l = HashMap::from([
        (labels::POD_NAME.to_string(), "logger".to_string()),
        (labels::POD_NAMESPACE.to_string(), "default".to_string()),
        (labels::POD_UID.to_string(), "uid-logger".to_string()),
    ]);
    if let Some(c) = container {
        l.insert(labels::CONTAINER_NAME.to_string(), c.to_string());
    }
    l
}

fn sandbox_config(log_dir: &std::path::Path) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "logger".into(),
            uid: "uid-logger".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        log_directory: log_dir.display().to_string(),
        labels: labels_of(None),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Node as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Creates and starts container `name` (attempt `attempt`) running `script`.
async fn run_container(
    cri: &CriClient,
    sandbox: &str,
    config: &PodSandboxConfig,
    name: &str,
    attempt: u32,
    script: &str,
) -> String {
    let req = CreateContainerRequest {
        pod_sandbox_id: sandbox.to_string(),
        config: Some(ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt,
            }),
            image: Some(ImageSpec {
                image: IMAGE.into(),
                ..Default::default()
            }),
            command: vec!["sh".into(), "-c".into(), script.into()],
            log_path: format!("{name}/{attempt}.log"),
            labels: labels_of(Some(name)),
            ..Default::default()
        }),
        sandbox_config: Some(config.clone()),
    };
    let id = cri
        .runtime
        .clone()
        .create_container(req)
        .await
        .unwrap()
        .into_inner()
        .container_id;
    cri.runtime
        .clone()
        .start_container(StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap();
    id
}

async fn wait_exited(cri: &CriClient, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = cri
            .runtime
            .clone()
            .container_status(ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap();
        if status.state == ContainerState::ContainerExited as i32 {
            return;
        }
        assert!(Instant::now() < deadline, "container {id} did not exit");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn logs_exec_and_client_certificates_against_real_containers() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipping: {reason}");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("skiff-nodeapi-")
        .tempdir()
        .unwrap();
    let node = LocalNode::start(dir.path()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let cri = CriClient::connect(node.socket()).await.unwrap();
        let api = start_node_api(cri.clone(), dir.path()).await;
        let log_dir = dir.path().join("logs/default_logger_uid-logger");
        std::fs::create_dir_all(&log_dir).unwrap();
        let config = sandbox_config(&log_dir);
        let sandbox = cri
            .runtime
            .clone()
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .pod_sandbox_id;

        // First instance prints three lines and exits; the second runs a few seconds.
        let first = run_container(&cri, &sandbox, &config, "app", 0, "echo one; echo two; echo three").await;
        wait_exited(&cri, &first).await;
        let (code, body) = api.get("/containerLogs/default/logger/app").await;
        assert_eq!((code, body.as_str()), (200, "one\ntwo\nthree\n"));
        let (_, tail) = api.get("/containerLogs/default/logger/app?tailLines=1").await;
        assert_eq!(tail, "three\n");
        let (_, stamped) = api.get("/containerLogs/default/logger/app?timestamps=true&limitBytes=200").await;
        let first_line = stamped.lines().next().unwrap();
        let (ts, msg) = first_line.split_once(' ').unwrap();
        assert_eq!(msg, "one");
        assert!(ts.parse::<jiff::Timestamp>().is_ok(), "timestamp {ts:?}");
        let (_, limited) = api.get("/containerLogs/default/logger/app?limitBytes=5").await;
        assert_eq!(limited, "one\nt");

        run_container(
            &cri,
            &sandbox,
            &config,
            "app",
            1,
            "echo again; for i in 0 1 2; do sleep 1; echo tick$i; done",
        )
        .await;
        let started = Instant::now();
        let (code, followed) = api.get("/containerLogs/default/logger/app?follow=true").await;
        assert_eq!(code, 200);
        assert_eq!(followed, "again\ntick0\ntick1\ntick2\n");
        assert!(started.elapsed() >= Duration::from_secs(1), "follow waited for the container");
        let (_, previous) = api.get("/containerLogs/default/logger/app?previous=true&tailLines=2").await;
        assert_eq!(previous, "two\nthree\n");
        let (code, missing) = api.get("/containerLogs/default/logger/nope").await;
        assert_eq!(code, 400, "{missing}");

        // exec over WebSocket v5 in a long-running container.
        run_container(&cri, &sandbox, &config, "shell", 0, "sleep 1000").await;
        let (out, _, status) = api
            .exec_ws(
                "command=sh&command=-c&command=echo+hi%3B+echo+oops+%3E%262%3B+exit+3&stdout=true&stderr=true",
                None,
            )
            .await;
        assert_eq!(out, "hi\n");
        assert_eq!(status["reason"], "NonZeroExitCode", "{status}");
        assert_eq!(status["details"]["causes"][0]["message"], "3", "{status}");
        let (out, _, status) = api
            .exec_ws(
                "command=cat&stdin=true&stdout=true&stderr=true",
                Some(ExecInput::Stdin(b"from stdin\n")),
            )
            .await;
        assert_eq!(out, "from stdin\n");
        assert_eq!(status["status"], "Success", "{status}");

        // A terminal: the resize channel reaches the exec's tty.
        let (out, _, status) = api
            .exec_ws(
                "command=sh&command=-c&command=sleep+1%3B+stty+size&stdin=true&stdout=true&tty=true",
                Some(ExecInput::Resize(r#"{"Width":100,"Height":40}"#)),
            )
            .await;
        assert_eq!(out.trim(), "40 100", "{status}");

        // Only the API server (or system:masters) gets in.
        let (code, _) = api.get_as(&api.other, "/containerLogs/default/logger/app").await;
        assert_eq!(code, 403);
        let tcp = tokio::net::TcpStream::connect(api.addr).await.unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(api.ca.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let anonymous = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let refused = async {
            let mut tls = tokio_rustls::TlsConnector::from(Arc::new(anonymous))
                .connect(ServerName::IpAddress(LOCALHOST.into()), tcp)
                .await?;
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            tls.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await?;
            let mut buf = [0u8; 64];
            let n = tls.read(&mut buf).await?;
            Ok::<usize, std::io::Error>(n)
        }
        .await;
        assert!(!matches!(refused, Ok(n) if n > 0), "a client without a certificate was served");
    });
    drop(rt);
    drop(node);
}
