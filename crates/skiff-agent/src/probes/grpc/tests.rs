//! The gRPC probe against a small HTTP/2 health server on loopback.

#![allow(clippy::unwrap_used)]

use std::convert::Infallible;

use http_body_util::StreamBody;
use hyper::body::{Frame, Incoming};
use tokio::net::TcpListener;

use super::*;

/// Answers Check: "" → SERVING, "down" → NOT_SERVING, "nope" → Unimplemented.
async fn server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: hyper::Request<Incoming>| async move {
                    assert_eq!(req.uri().path(), CHECK_PATH);
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    let service = String::from_utf8_lossy(body.get(7..).unwrap_or_default()).to_string();
                    let mut trailers = hyper::HeaderMap::new();
                    let mut frames = Vec::new();
                    match service.as_str() {
                        "nope" => {
                            trailers.insert("grpc-status", "12".parse().unwrap());
                        }
                        name => {
                            let status = if name == "down" { 2 } else { 1 };
                            frames.push(Frame::data(Bytes::from(frame(&[0x08, status]))));
                            trailers.insert("grpc-status", "0".parse().unwrap());
                        }
                    }
                    frames.push(Frame::trailers(trailers));
                    let body =
                        StreamBody::new(futures::stream::iter(frames.into_iter().map(Ok::<_, Infallible>)));
                    Ok::<_, Infallible>(
                        hyper::Response::builder()
                            .header("content-type", "application/grpc")
                            .body(body)
                            .unwrap(),
                    )
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    port
}

const T: Duration = Duration::from_secs(2);

#[tokio::test]
async fn serving_passes_and_other_answers_fail_with_kubelets_messages() {
    let port = server().await;
    assert!(probe("127.0.0.1", port, "", T).await.passed());
    assert_eq!(
        probe("127.0.0.1", port, "down", T).await,
        Outcome::Failure("service unhealthy (responded with \"NOT_SERVING\")".into())
    );
    assert_eq!(
        probe("127.0.0.1", port, "nope", T).await,
        Outcome::Failure(
            "this server doesn't implement the grpc health protocol (grpc.health.v1.Health)".into()
        )
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Outcome::Failure(msg) = probe("127.0.0.1", closed, "", T).await else {
        panic!("a closed port must fail")
    };
    assert!(
        msg.starts_with("timeout: failed to connect service") && msg.contains("connection refused"),
        "{msg}"
    );
}

#[test]
fn messages_encode_and_decode_field_one() {
    assert_eq!(request_message(""), Vec::<u8>::new());
    assert_eq!(request_message("db"), vec![0x0a, 2, b'd', b'b']);
    assert_eq!(frame(&[1, 2]), vec![0, 0, 0, 0, 2, 1, 2]);
    assert_eq!(response_status(&frame(&[0x08, 2])), Ok(2));
    assert_eq!(response_status(&frame(&[])), Ok(0), "an empty message is UNKNOWN");
    assert!(response_status(&[0, 0, 0, 0, 9, 8]).is_err());
}
