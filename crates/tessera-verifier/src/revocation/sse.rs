//! A minimal Server-Sent Events reader for the revocation stream.

/// A minimal `text/event-stream` reader: collects `data:` lines per event
/// and yields each event's data at its blank line. Lines end with CRLF, LF
/// or a bare CR, as the SSE specification allows. Comments (heartbeats) and
/// other fields are skipped; the caller counts any bytes as liveness.
#[derive(Default)]
pub(super) struct SseParser {
    line: Vec<u8>,
    data: String,
    /// The last byte ended a line with CR: an LF right after it belongs to
    /// that line end.
    after_cr: bool,
}

/// The events' data the stream reader yields for `chunks`, fed in order
/// (for fuzzing: a stream cut anywhere must read the same).
#[doc(hidden)]
pub fn sse_events(chunks: &[&[u8]]) -> Vec<String> {
    let mut parser = SseParser::default();
    chunks.iter().flat_map(|chunk| parser.feed(chunk)).collect()
}

/// Longest event line accepted; longer lines are dropped.
const MAX_SSE_LINE: usize = 64 * 1024;

impl SseParser {
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
            if b == b'\n' && after_cr {
                continue;
            }
            if b != b'\n' && b != b'\r' {
                if self.line.len() < MAX_SSE_LINE {
                    self.line.push(b);
                }
                continue;
            }
            if self.line.is_empty() {
                if !self.data.is_empty() {
                    out.push(std::mem::take(&mut self.data));
                }
            } else if let Some(rest) = self.line.strip_prefix(b"data:") {
                let rest = rest.strip_prefix(b" ").unwrap_or(rest);
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(&String::from_utf8_lossy(rest));
            }
            self.line.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_parser_splits_events_across_chunks() {
        let mut parser = SseParser::default();
        assert!(parser.feed(b": heartbeat\n\nid: 1\nevent: revo").is_empty());
        let got = parser.feed(b"cation\ndata: {\"a\":1}\r\n\r\ndata: x\ndata: y\n\n");
        assert_eq!(got, vec!["{\"a\":1}".to_owned(), "x\ny".to_owned()]);
    }

    #[test]
    fn sse_lines_may_end_with_a_bare_cr() {
        let mut parser = SseParser::default();
        assert_eq!(
            parser.feed(b"data: a\r\rdata: b\r\n\r\ndata: c\n\n"),
            vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]
        );
        // A CRLF split across chunks is one line end, not two.
        assert!(parser.feed(b"data: x\r").is_empty());
        assert_eq!(parser.feed(b"\ndata: y\r\n\r\n"), vec!["x\ny".to_owned()]);
    }
}
