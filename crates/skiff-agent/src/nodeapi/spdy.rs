//! The little of SPDY/3.1 the node API speaks as a client of containerd's
//! streaming server: writing SYN_STREAM, data (with FIN), PING and GOAWAY
//! frames, and reading the frames the server sends back.
//!
//! Header blocks are zlib streams shared by the whole connection. We write
//! ours as stored (uncompressed) deflate blocks ending in a sync flush, which
//! every zlib reader accepts; we never need the server's header values (its SYN_REPLY only
//! confirms a stream), so we skip them instead of inflating them.
//!
//! Pure framing: no I/O.

use bytes::{Buf, Bytes, BytesMut};

/// FLAG_FIN: the sender closes its side of the stream.
pub(super) const FLAG_FIN: u8 = 0x01;
const VERSION: u16 = 3;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
/// Largest payload of one frame (24-bit length).
const MAX_PAYLOAD: usize = 0x00ff_ffff;

/// A frame received from the server.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Frame {
    /// Stream data; `fin` closes the server's side of the stream.
    Data { stream: u32, fin: bool, data: Bytes },
    /// The server accepted a stream.
    SynReply { stream: u32, fin: bool },
    /// The server reset a stream.
    Reset { stream: u32, status: u32 },
    /// A ping to echo.
    Ping { id: u32 },
    /// The server is closing the connection.
    GoAway,
    /// Anything else (SETTINGS, WINDOW_UPDATE, HEADERS, ...), ignored.
    Other,
}

/// A malformed frame.
#[derive(Debug, thiserror::Error)]
#[error("SPDY protocol error: {0}")]
pub(super) struct SpdyError(String);

/// Takes one whole frame off the front of `buf`, if there is one.
pub(super) fn parse(buf: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
    if buf.len() < 8 {
        return Ok(None);
    }
    let flags = buf[4];
    let len = (usize::from(buf[5]) << 16) | (usize::from(buf[6]) << 8) | usize::from(buf[7]);
    if buf.len() < 8 + len {
        return Ok(None);
    }
    let head = buf.split_to(8);
    let mut payload = buf.split_to(len).freeze();
    if head[0] & 0x80 == 0 {
        let stream = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        return Ok(Some(Frame::Data {
            stream,
            fin: flags & FLAG_FIN != 0,
            data: payload,
        }));
    }
    let version = u16::from_be_bytes([head[0] & 0x7f, head[1]]);
    if version != VERSION {
        return Err(SpdyError(format!("unsupported version {version}")));
    }
    let kind = u16::from_be_bytes([head[2], head[3]]);
    let need = |n: usize| {
        if len < n {
            Err(SpdyError(format!("control frame {kind} too short")))
        } else {
            Ok(())
        }
    };
    Ok(Some(match kind {
        SYN_REPLY => {
            need(4)?;
            Frame::SynReply {
                stream: payload.get_u32() & 0x7fff_ffff,
                fin: flags & FLAG_FIN != 0,
            }
        }
        RST_STREAM => {
            need(8)?;
            Frame::Reset {
                stream: payload.get_u32() & 0x7fff_ffff,
                status: payload.get_u32(),
            }
        }
        PING => {
            need(4)?;
            Frame::Ping {
                id: payload.get_u32(),
            }
        }
        GOAWAY => Frame::GoAway,
        _ => Frame::Other,
    }))
}

fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.push(flags);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(payload);
    out
}

/// Data frames carrying `data` on `stream` (split at the frame size limit);
/// with `fin` the last one closes our side of the stream.
pub(super) fn data(stream: u32, data: &[u8], fin: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 8);
    let mut chunks: Vec<&[u8]> = data.chunks(MAX_PAYLOAD).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
        out.push(if fin && i == last { FLAG_FIN } else { 0 });
        out.extend_from_slice(&(chunk.len() as u32).to_be_bytes()[1..]);
        out.extend_from_slice(chunk);
    }
    out
}

/// The echo of a PING.
pub(super) fn ping(id: u32) -> Vec<u8> {
    control(PING, 0, &id.to_be_bytes())
}

/// GOAWAY: we open no more streams.
pub(super) fn goaway(last_stream: u32) -> Vec<u8> {
    let mut payload = last_stream.to_be_bytes().to_vec();
    payload.extend_from_slice(&0u32.to_be_bytes());
    control(GOAWAY, 0, &payload)
}

/// Writes header blocks into the connection's zlib stream.
#[derive(Debug, Default)]
pub(super) struct HeaderWriter {
    started: bool,
}

impl HeaderWriter {
    /// A SYN_STREAM opening `stream` with `headers` (names lower case).
    pub fn syn_stream(&mut self, stream: u32, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut payload = Vec::new();
        payload.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
        payload.extend_from_slice(&0u32.to_be_bytes()); // associated-to stream
        payload.extend_from_slice(&[0, 0]); // priority, slot
        payload.extend_from_slice(&self.block(headers));
        control(SYN_STREAM, 0, &payload)
    }

    /// The zlib bytes of one header block: stored deflate blocks, never final.
    fn block(&mut self, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut raw = Vec::new();
        raw.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        for (name, value) in headers {
            for s in [name, value] {
                raw.extend_from_slice(&(s.len() as u32).to_be_bytes());
                raw.extend_from_slice(s.as_bytes());
            }
        }
        let mut out = Vec::new();
        if !self.started {
            // CMF: deflate, 32 KiB window; FLG: no dictionary, check bits.
            out.extend_from_slice(&[0x78, 0x01]);
            self.started = true;
        }
        for chunk in raw.chunks(usize::from(u16::MAX)) {
            let len = chunk.len() as u16;
            out.push(0x00); // BFINAL=0, BTYPE=00 (stored), padded to the byte
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
            out.extend_from_slice(chunk);
        }
        // An empty stored block (a zlib sync flush): readers hand out what
        // they hold only at such a block, so without it the server's reader
        // would wait for more input past the end of the frame.
        out.extend_from_slice(&[0x00, 0x00, 0x00, 0xff, 0xff]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_frames_round_trip() {
        let mut buf = BytesMut::from(&data(5, b"hello", true)[..]);
        buf.extend_from_slice(&data(3, b"", false));
        assert_eq!(
            parse(&mut buf).unwrap(),
            Some(Frame::Data {
                stream: 5,
                fin: true,
                data: Bytes::from_static(b"hello")
            })
        );
        assert_eq!(
            parse(&mut buf).unwrap(),
            Some(Frame::Data {
                stream: 3,
                fin: false,
                data: Bytes::new()
            })
        );
        assert_eq!(parse(&mut buf).unwrap(), None);
    }

    #[test]
    fn control_frames_parse_and_partial_input_waits() {
        let ping_frame = ping(7);
        let mut buf = BytesMut::from(&ping_frame[..5]);
        assert_eq!(parse(&mut buf).unwrap(), None);
        buf.extend_from_slice(&ping_frame[5..]);
        assert_eq!(parse(&mut buf).unwrap(), Some(Frame::Ping { id: 7 }));
        let reply = control(SYN_REPLY, 0, &[0, 0, 0, 1, 0x78, 0x9c]);
        let mut buf = BytesMut::from(&reply[..]);
        assert_eq!(
            parse(&mut buf).unwrap(),
            Some(Frame::SynReply {
                stream: 1,
                fin: false
            })
        );
    }

    #[test]
    fn header_blocks_are_stored_zlib_with_one_header() {
        let mut w = HeaderWriter::default();
        let first = w.syn_stream(1, &[("streamtype", "error")]);
        // 8 control header + 10 stream fields, then the zlib header.
        assert_eq!(&first[18..20], &[0x78, 0x01]);
        assert_eq!(first[20], 0x00);
        let raw_len = 4 + 4 + "streamtype".len() + 4 + "error".len();
        assert_eq!(u16::from_le_bytes([first[21], first[22]]) as usize, raw_len);
        assert_eq!(&first[first.len() - 5..], &[0x00, 0x00, 0x00, 0xff, 0xff]);
        let second = w.syn_stream(3, &[("streamtype", "stdout")]);
        assert_eq!(second[18], 0x00, "the zlib header is written once per connection");
        assert_eq!((0x78u32 * 256 + 0x01) % 31, 0);
    }
}
