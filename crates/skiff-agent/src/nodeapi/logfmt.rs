//! The CRI container log format (`<RFC3339Nano> <stream> <P|F> <message>`,
//! one record per line, `P` records joined with what follows them) and the
//! options of a `containerLogs` request.
//!
//! Pure: no I/O, so every rule here is unit tested.

use jiff::Timestamp;

/// Options of `GET /containerLogs` (upstream `PodLogOptions`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<usize>,
    pub since: Option<Timestamp>,
    pub limit_bytes: Option<u64>,
}

fn flag(v: &str) -> bool {
    matches!(v, "true" | "1" | "True" | "TRUE")
}

impl LogOptions {
    /// Parses the query string; `now` is the reference of `sinceSeconds`.
    pub fn parse(query: Option<&str>, now: Timestamp) -> Result<LogOptions, String> {
        let mut o = LogOptions::default();
        let Some(query) = query else { return Ok(o) };
        for (k, v) in url_pairs(query) {
            match k.as_str() {
                "follow" => o.follow = flag(&v),
                "previous" => o.previous = flag(&v),
                "timestamps" => o.timestamps = flag(&v),
                "tailLines" => {
                    let n: i64 = v.parse().map_err(|_| format!("invalid tailLines {v:?}"))?;
                    o.tail_lines = Some(usize::try_from(n.max(0)).unwrap_or(0));
                }
                "limitBytes" => {
                    let n: u64 = v.parse().map_err(|_| format!("invalid limitBytes {v:?}"))?;
                    o.limit_bytes = Some(n);
                }
                "sinceSeconds" => {
                    let n: i64 = v.parse().map_err(|_| format!("invalid sinceSeconds {v:?}"))?;
                    let since = now
                        .checked_sub(jiff::SignedDuration::from_secs(n.max(0)))
                        .map_err(|e| e.to_string())?;
                    o.since = Some(since);
                }
                "sinceTime" => {
                    let t: Timestamp = v.parse().map_err(|_| format!("invalid sinceTime {v:?}"))?;
                    o.since = Some(t);
                }
                _ => {}
            }
        }
        Ok(o)
    }
}

/// Decoded `key=value` pairs of a query string.
fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Percent-decoding (with `+` as space) of one query component.
pub(super) fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One complete log line (partial records joined).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct LogLine {
    /// The record's time as written (RFC 3339, nanoseconds).
    pub time: String,
    /// The message, with its newline when the line was complete.
    pub message: Vec<u8>,
}

impl LogLine {
    /// The line as the client gets it, with or without its timestamp.
    pub fn render(&self, timestamps: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.message.len() + 32);
        if timestamps {
            out.extend_from_slice(self.time.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(&self.message);
        out
    }

    /// True when the line was written before `since`.
    pub fn before(&self, since: Timestamp) -> bool {
        self.time.parse::<Timestamp>().is_ok_and(|t| t < since)
    }
}

/// Incremental parser: feed it bytes as they are appended to the file.
#[derive(Debug, Default)]
pub(super) struct LogParser {
    pending: Vec<u8>,
    partial: Option<LogLine>,
}

impl LogParser {
    /// Parses every complete record in `bytes` (plus what was left over).
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<LogLine> {
        self.pending.extend_from_slice(bytes);
        let mut lines = Vec::new();
        let mut start = 0;
        while let Some(nl) = self.pending[start..].iter().position(|b| *b == b'\n') {
            let record = &self.pending[start..start + nl];
            start += nl + 1;
            if let Some(line) = join_record(&mut self.partial, record) {
                lines.push(line);
            }
        }
        self.pending.drain(..start);
        lines
    }
}

/// Adds one record to `partial`; returns the line once it is complete.
fn join_record(partial: &mut Option<LogLine>, record: &[u8]) -> Option<LogLine> {
    let mut parts = record.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?.to_string();
    let _stream = parts.next()?;
    let tag = parts.next()?;
    let message = parts.next().unwrap_or_default();
    let line = partial.get_or_insert_with(|| LogLine {
        time,
        message: Vec::new(),
    });
    line.message.extend_from_slice(message);
    if tag.first() == Some(&b'P') {
        return None;
    }
    let mut line = partial.take()?;
    line.message.push(b'\n');
    Some(line)
}

/// Applies `since` and `tailLines` to the lines read at the start.
pub(super) fn select(lines: Vec<LogLine>, opts: &LogOptions) -> Vec<LogLine> {
    let mut lines: Vec<LogLine> = match opts.since {
        Some(since) => lines.into_iter().filter(|l| !l.before(since)).collect(),
        None => lines,
    };
    if let Some(n) = opts.tail_lines
        && lines.len() > n
    {
        lines.drain(..lines.len() - n);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_records_are_joined_and_timestamps_rendered() {
        let mut p = LogParser::default();
        let first = p.feed(b"2024-01-01T00:00:00.000000001Z stdout P hel");
        assert!(first.is_empty());
        let lines = p.feed(
            b"\n2024-01-01T00:00:00.000000002Z stdout F lo\n2024-01-01T00:00:01Z stderr F oops\n2024-01-01T00:00:02Z stdout F tail",
        );
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].render(false), b"hello\n");
        assert_eq!(lines[1].render(true), b"2024-01-01T00:00:01Z oops\n");
        let rest = p.feed(b"\n");
        assert_eq!(rest[0].render(false), b"tail\n");
    }

    #[test]
    fn tail_and_since_select_lines() {
        let mut p = LogParser::default();
        let lines = p.feed(
            b"2024-01-01T00:00:00Z stdout F a\n2024-01-01T00:00:10Z stdout F b\n2024-01-01T00:00:20Z stdout F c\n",
        );
        let now: Timestamp = "2024-01-01T00:00:25Z".parse().unwrap();
        let tail = LogOptions::parse(Some("tailLines=2"), now).unwrap();
        let got: Vec<Vec<u8>> = select(lines.clone(), &tail)
            .iter()
            .map(|l| l.render(false))
            .collect();
        assert_eq!(got, [b"b\n".to_vec(), b"c\n".to_vec()]);
        let since = LogOptions::parse(Some("sinceSeconds=20&timestamps=true"), now).unwrap();
        assert!(since.timestamps);
        let got = select(lines, &since);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].message, b"b\n");
    }

    #[test]
    fn options_parse_upstream_names() {
        let now = Timestamp::UNIX_EPOCH;
        let o = LogOptions::parse(
            Some("follow=true&previous=1&limitBytes=10&sinceTime=2024-01-01T00%3A00%3A00Z"),
            now,
        )
        .unwrap();
        assert!(o.follow && o.previous);
        assert_eq!(o.limit_bytes, Some(10));
        assert_eq!(o.since, Some("2024-01-01T00:00:00Z".parse().unwrap()));
        assert!(LogOptions::parse(Some("tailLines=x"), now).is_err());
    }

    #[test]
    fn decode_handles_percent_and_plus() {
        assert_eq!(decode("a%20b+c"), "a b c");
        assert_eq!(decode("100%"), "100%");
    }
}
