//! The HTTP GET of httpGet probes and hooks, as kubelet sends it: one
//! connection per probe (no keep-alive), `User-Agent: kube-probe/<version>`,
//! HTTPS without certificate verification, redirects followed (at most 10)
//! while they stay on the same host, a redirect elsewhere reported as a
//! warning, at most 10 KiB of body read. Owns only the wire exchange.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::action::Outcome;

/// `User-Agent` of every probe: kubelet sends `kube-probe/<major>.<minor>`.
pub const USER_AGENT: &str = "kube-probe/1.33";

/// Most redirects followed, as Go's HTTP client.
const MAX_REDIRECTS: usize = 10;

/// Most body bytes read for the outcome message.
const MAX_BODY: usize = 10 * 1024;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// TLS, certificate not verified (as kubelet's prober).
    Https,
}

/// One GET to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// The scheme.
    pub scheme: Scheme,
    /// Host to connect to (IP or name).
    pub host: String,
    /// Port to connect to.
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Extra headers (`Host` here replaces the request's host header).
    pub headers: Vec<(String, String)>,
}

impl HttpTarget {
    /// The URL as kubelet prints it in messages.
    pub fn url(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!(
            "{scheme}://{}{}",
            join_host_port(&self.host, self.port),
            self.path
        )
    }
}

/// `host:port`, with brackets around an IPv6 host.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An I/O error in Go's words where users know them ("connection refused").
pub fn io_error_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        std::io::ErrorKind::ConnectionReset => "connection reset by peer".to_string(),
        std::io::ErrorKind::HostUnreachable => "no route to host".to_string(),
        std::io::ErrorKind::NetworkUnreachable => "network is unreachable".to_string(),
        _ => e.to_string(),
    }
}

/// Runs an httpGet probe: 200–399 passes, anything else fails with
/// "HTTP probe failed with statuscode: N"; the whole exchange (redirects
/// included) must finish within `timeout`.
pub async fn probe(target: &HttpTarget, timeout: Duration) -> Outcome {
    let url = target.url();
    match tokio::time::timeout(timeout, follow(target.clone())).await {
        Err(_) => Outcome::Failure(format!(
            "Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
        Ok(Err(e)) => Outcome::Failure(e),
        Ok(Ok(reply)) => {
            if !(200..400).contains(&reply.status.as_u16()) {
                Outcome::Failure(format!(
                    "HTTP probe failed with statuscode: {}",
                    reply.status.as_u16()
                ))
            } else if reply.status.is_redirection() {
                Outcome::Warning(format!(
                    "Probe terminated redirects, Response body: {}",
                    reply.body
                ))
            } else {
                Outcome::Success(reply.body)
            }
        }
    }
}

/// The final answer of a GET.
#[derive(Debug)]
pub struct Reply {
    /// Its status.
    pub status: StatusCode,
    /// The start of its body, lossily decoded.
    pub body: String,
}

/// Sends the GET and follows same-host redirects; the error text is Go's
/// `Get "URL": ...` form.
pub async fn follow(mut target: HttpTarget) -> Result<Reply, String> {
    let first_host = target.host.clone();
    for _ in 0..=MAX_REDIRECTS {
        let (reply, location) = get_once(&target)
            .await
            .map_err(|e| format!("Get {:?}: {e}", target.url()))?;
        let Some(next) = location.and_then(|l| redirect_target(&target, &l)) else {
            return Ok(reply);
        };
        if next.host != first_host {
            return Ok(reply);
        }
        target = next;
    }
    Err(format!(
        "Get {:?}: stopped after {MAX_REDIRECTS} redirects",
        target.url()
    ))
}

/// Where a `Location` header points, relative to the current request.
fn redirect_target(current: &HttpTarget, location: &str) -> Option<HttpTarget> {
    let base = url::Url::parse(&current.url()).ok()?;
    let next = base.join(location).ok()?;
    let scheme = match next.scheme() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return None,
    };
    let host = next
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = next.port_or_known_default()?;
    let mut path = next.path().to_string();
    if let Some(q) = next.query() {
        path.push('?');
        path.push_str(q);
    }
    Some(HttpTarget {
        scheme,
        host,
        port,
        path,
        headers: current.headers.clone(),
    })
}

/// One request on a fresh connection: the reply and, for a 3xx, its `Location`.
async fn get_once(target: &HttpTarget) -> Result<(Reply, Option<String>), String> {
    let addr = join_host_port(&target.host, target.port);
    let tcp = TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("dial tcp {addr}: connect: {}", io_error_text(&e)))?;
    match target.scheme {
        Scheme::Http => exchange(tcp, target).await,
        Scheme::Https => {
            let name = ServerName::try_from(target.host.clone())
                .map_err(|e| format!("invalid TLS server name {:?}: {e}", target.host))?;
            let tls = tokio_rustls::TlsConnector::from(tls_config())
                .connect(name, tcp)
                .await
                .map_err(|e| format!("tls: {e}"))?;
            exchange(tls, target).await
        }
    }
}

async fn exchange<S>(io: S, target: &HttpTarget) -> Result<(Reply, Option<String>), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(conn);
    let mut builder = hyper::Request::get(target.path.as_str())
        .header(hyper::header::USER_AGENT, USER_AGENT)
        .header(hyper::header::ACCEPT, "*/*")
        .header(hyper::header::CONNECTION, "close");
    let mut host = join_host_port(&target.host, target.port);
    for (name, value) in &target.headers {
        if name.eq_ignore_ascii_case("host") {
            host.clone_from(value);
        } else {
            builder = builder.header(name.as_str(), value.as_str());
        }
    }
    let request = builder
        .header(hyper::header::HOST, host)
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("building the request: {e}"))?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let location = response
        .headers()
        .get(hyper::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .filter(|_| status.is_redirection())
        .map(str::to_string);
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while bytes.len() < MAX_BODY {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    bytes.extend_from_slice(data);
                }
            }
            // A body cut short still leaves a status to judge by.
            Some(Err(_)) | None => break,
        }
    }
    bytes.truncate(MAX_BODY);
    conn.abort();
    let reply = Reply {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    };
    Ok((reply, location))
}

/// TLS settings of the prober: ring, any certificate accepted.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = Arc::new(AcceptAnyCertificate(provider.clone()));
            let builder = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap_or_else(|_| rustls::ClientConfig::builder());
            Arc::new(
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(verifier)
                    .with_no_client_auth(),
            )
        })
        .clone()
}

/// Kubelet probes HTTPS endpoints without verifying their certificate
/// (`InsecureSkipVerify`); signatures are still checked by the provider.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
