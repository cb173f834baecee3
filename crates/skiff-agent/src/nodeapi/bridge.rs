//! Joining a client's WebSocket to containerd's SPDY connection:
//! [`channels`] translates the channel protocol (`v4`/`v5.channel.k8s.io`)
//! to one SPDY stream per channel; [`tunnel`] unwraps SPDY frames a client
//! tunnels in binary messages (port-forward).
//!
//! Must not: look at what runs in the container; it only moves bytes.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::spdy::{self, Frame, HeaderWriter};
use super::stream::StreamOpts;
use super::upgrade::Upgraded;

/// Channel numbers of the channel protocol.
const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
/// v5: `[255, channel]` closes the client's side of a channel.
const CLOSE: u8 = 255;

/// The SPDY streams opened for one exec/attach, with their channel numbers.
struct Streams {
    by_id: Vec<(u32, u8)>,
}

impl Streams {
    fn id(&self, channel: u8) -> Option<u32> {
        self.by_id.iter().find(|(_, c)| *c == channel).map(|(id, _)| *id)
    }

    fn channel(&self, id: u32) -> Option<u8> {
        self.by_id.iter().find(|(i, _)| *i == id).map(|(_, c)| *c)
    }
}

/// The SYN_STREAMs the streaming server expects for `opts` (the error stream
/// first, as kubectl opens them), and the stream table.
fn open(opts: &StreamOpts) -> (Vec<u8>, Streams) {
    let mut wanted = vec![(ERROR, "error")];
    if opts.stdin {
        wanted.push((STDIN, "stdin"));
    }
    if opts.stdout {
        wanted.push((STDOUT, "stdout"));
    }
    if opts.stderr && !opts.tty {
        wanted.push((STDERR, "stderr"));
    }
    if opts.tty {
        wanted.push((RESIZE, "resize"));
    }
    let mut headers = HeaderWriter::default();
    let mut frames = Vec::new();
    let mut by_id = Vec::new();
    for (i, (channel, kind)) in wanted.into_iter().enumerate() {
        let id = 2 * i as u32 + 1;
        frames.extend_from_slice(&headers.syn_stream(id, &[("streamtype", kind)]));
        by_id.push((id, channel));
    }
    (frames, Streams { by_id })
}

fn with_channel(channel: u8, data: &[u8]) -> Message {
    let mut msg = Vec::with_capacity(data.len() + 1);
    msg.push(channel);
    msg.extend_from_slice(data);
    Message::Binary(Bytes::from(msg))
}

/// Runs one exec/attach session until either side ends it.
pub(super) async fn channels(ws: WebSocket, up: Upgraded, opts: StreamOpts, v5: bool) {
    let (mut rd, mut wr) = up.stream.into_split();
    let (frames, streams) = open(&opts);
    let last_stream = streams.by_id.last().map_or(0, |(id, _)| *id);
    let (mut ws_tx, mut ws_rx) = ws.split();
    if wr.write_all(&frames).await.is_err() {
        return;
    }
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut stdin_open = opts.stdin;
    'session: loop {
        tokio::select! {
            read = rd.read_buf(&mut buf) => {
                if !matches!(read, Ok(n) if n > 0) {
                    break 'session;
                }
                loop {
                    let frame = match spdy::parse(&mut buf) {
                        Ok(Some(frame)) => frame,
                        Ok(None) => break,
                        Err(err) => {
                            tracing::debug!(%err, "node API: bad frame from the streaming server");
                            break 'session;
                        }
                    };
                    match frame {
                        Frame::Data { stream, data, .. } if !data.is_empty() => {
                            if let Some(channel) = streams.channel(stream)
                                && ws_tx.send(with_channel(channel, &data)).await.is_err()
                            {
                                break 'session;
                            }
                        }
                        Frame::Ping { id } if wr.write_all(&spdy::ping(id)).await.is_err() => break 'session,
                        Frame::GoAway => break 'session,
                        _ => {}
                    }
                }
            }
            msg = ws_rx.next() => {
                let data = match msg {
                    Some(Ok(Message::Binary(data))) => data,
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Text(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => {
                        let _ = wr.write_all(&spdy::goaway(last_stream)).await;
                        break 'session;
                    }
                };
                let Some((&channel, payload)) = data.split_first() else { continue };
                let frame = match channel {
                    STDIN | RESIZE if channel != STDIN || stdin_open => {
                        streams.id(channel).map(|id| spdy::data(id, payload, false))
                    }
                    CLOSE if v5 && payload.first() == Some(&STDIN) && stdin_open => {
                        stdin_open = false;
                        streams.id(STDIN).map(|id| spdy::data(id, &[], true))
                    }
                    _ => None,
                };
                if let Some(frame) = frame
                    && wr.write_all(&frame).await.is_err()
                {
                    break 'session;
                }
            }
        }
    }
    let close = CloseFrame {
        code: 1000,
        reason: "".into(),
    };
    let _ = ws_tx.send(Message::Close(Some(close))).await;
}

/// Passes SPDY frames tunnelled in binary messages to and from containerd.
pub(super) async fn tunnel(ws: WebSocket, up: Upgraded) {
    let (mut rd, mut wr) = up.stream.into_split();
    let (mut ws_tx, mut ws_rx) = ws.split();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            read = rd.read(&mut buf) => match read {
                Ok(n) if n > 0 => {
                    if ws_tx.send(Message::Binary(Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                        break;
                    }
                }
                _ => break,
            },
            msg = ws_rx.next() => match msg {
                Some(Ok(Message::Binary(data))) => {
                    if wr.write_all(&data).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Text(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            },
        }
    }
    let close = CloseFrame {
        code: 1000,
        reason: "".into(),
    };
    let _ = ws_tx.send(Message::Close(Some(close))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_follow_kubectl_order_and_tty_rules() {
        let opts = StreamOpts {
            command: vec!["sh".into()],
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
        };
        let (_, s) = open(&opts);
        assert_eq!(s.by_id, [(1, ERROR), (3, STDIN), (5, STDOUT), (7, STDERR)]);
        let tty = StreamOpts { tty: true, ..opts };
        let (_, s) = open(&tty);
        assert_eq!(s.by_id, [(1, ERROR), (3, STDIN), (5, STDOUT), (7, RESIZE)]);
        assert_eq!(s.id(RESIZE), Some(7));
        assert_eq!(s.channel(5), Some(STDOUT));
    }
}
