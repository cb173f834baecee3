//! `GET /containerLogs/{ns}/{pod}/{container}`: a container's log file
//! (containerd writes it in the CRI format) decoded to the plain text
//! `kubectl logs` prints, with tail/since/timestamps/limitBytes, `previous`
//! (the instance before the newest) and `follow` (tail the file until the
//! container has exited and the file is drained, or the client goes away).
//!
//! Must not: write to the log file (rotation is the runtime's side).

use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::Uri;
use jiff::Timestamp;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::logfmt::{LogLine, LogOptions, LogParser, select};
use super::{HttpError, NodeApi, lookup};
use crate::cri::CriClient;

/// How often a followed log looks for new bytes.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// How often a followed log asks the runtime whether the container still runs.
const STATE_POLL: Duration = Duration::from_millis(500);
const READ_CHUNK: usize = 64 * 1024;

/// The handler of `GET /containerLogs/{ns}/{pod}/{container}`.
pub(super) async fn container_logs(
    State(api): State<NodeApi>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    uri: Uri,
) -> Response {
    match logs(api, &ns, &pod, &container, uri.query()).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn logs(
    api: NodeApi,
    ns: &str,
    pod: &str,
    container: &str,
    query: Option<&str>,
) -> Result<Response, HttpError> {
    let opts = LogOptions::parse(query, Timestamp::now()).map_err(HttpError::bad_request)?;
    let found = lookup::container(&api.cri, ns, pod, container, opts.previous).await?;
    let mut file = match tokio::fs::File::open(&found.log_path).await {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(HttpError::internal(format!("reading {}: {e}", found.log_path))),
    };
    let mut parser = LogParser::default();
    let mut initial = Vec::new();
    if let Some(f) = file.as_mut() {
        f.read_to_end(&mut initial)
            .await
            .map_err(|e| HttpError::internal(format!("reading {}: {e}", found.log_path)))?;
    }
    let lines = select(parser.feed(&initial), &opts);
    let mut out = Output::new(&opts);
    let mut first = Vec::new();
    for line in &lines {
        if !out.push(line, &mut first) {
            break;
        }
    }
    if !opts.follow || out.full() {
        return Ok(text(Body::from(first)));
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    if !first.is_empty() && tx.send(Bytes::from(first)).await.is_err() {
        return Err(HttpError::internal("client went away"));
    }
    let follow = Follow {
        cri: api.cri.clone(),
        id: found.id,
        path: found.log_path,
        file,
        parser,
        out,
        since: opts.since,
    };
    tokio::spawn(follow.run(tx));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, std::io::Error>(b), rx))
    });
    Ok(text(Body::from_stream(stream)))
}

fn text(body: Body) -> Response {
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    resp
}

/// Renders lines and enforces `limitBytes`.
struct Output {
    timestamps: bool,
    remaining: Option<u64>,
}

impl Output {
    fn new(opts: &LogOptions) -> Output {
        Output {
            timestamps: opts.timestamps,
            remaining: opts.limit_bytes,
        }
    }

    /// Appends `line` to `buf`; false once the byte limit is reached.
    fn push(&mut self, line: &LogLine, buf: &mut Vec<u8>) -> bool {
        let rendered = line.render(self.timestamps);
        match self.remaining.as_mut() {
            None => {
                buf.extend_from_slice(&rendered);
                true
            }
            Some(left) => {
                let take = usize::try_from(*left).unwrap_or(usize::MAX).min(rendered.len());
                buf.extend_from_slice(&rendered[..take]);
                *left -= take as u64;
                *left > 0
            }
        }
    }

    fn full(&self) -> bool {
        self.remaining == Some(0)
    }
}

/// A followed log: the rest of the file as it grows.
struct Follow {
    cri: CriClient,
    id: String,
    path: String,
    file: Option<tokio::fs::File>,
    parser: LogParser,
    out: Output,
    since: Option<Timestamp>,
}

impl Follow {
    async fn run(mut self, tx: mpsc::Sender<Bytes>) {
        let mut last_state_check = Instant::now();
        let mut exited = false;
        loop {
            let chunk = self.read_more().await;
            if !chunk.is_empty() {
                let mut buf = Vec::new();
                let mut more = true;
                for line in self.parser.feed(&chunk) {
                    if self.since.is_some_and(|s| line.before(s)) {
                        continue;
                    }
                    if !self.out.push(&line, &mut buf) {
                        more = false;
                        break;
                    }
                }
                if !buf.is_empty() && tx.send(Bytes::from(buf)).await.is_err() {
                    return;
                }
                if !more {
                    return;
                }
                continue;
            }
            if exited {
                return;
            }
            if tx.is_closed() {
                return;
            }
            if last_state_check.elapsed() >= STATE_POLL {
                last_state_check = Instant::now();
                // One more read after the container is gone drains the file.
                exited = !lookup::is_running(&self.cri, &self.id).await;
                if exited {
                    continue;
                }
            }
            tokio::time::sleep(FOLLOW_POLL).await;
        }
    }

    /// Whatever was appended since the last read (opens the file once it exists).
    async fn read_more(&mut self) -> Vec<u8> {
        if self.file.is_none() {
            self.file = tokio::fs::File::open(&self.path).await.ok();
        }
        let mut buf = Vec::new();
        if let Some(f) = self.file.as_mut() {
            let mut chunk = vec![0u8; READ_CHUNK];
            loop {
                match f.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                if buf.len() >= READ_CHUNK * 4 {
                    break;
                }
            }
        }
        buf
    }
}
