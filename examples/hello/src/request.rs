//! Reading a request's head (request line and headers) within bounds, and the answers that go
//! with it: `GET /headers` echoes the headers, and a head that is too large gets 431 or 414.
//!
//! Header names are lowercased and values trimmed; the order is the order received. Bytes that
//! are not UTF-8 are replaced (this is a test service; it must not fail on them).

use std::io::{BufRead, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// The most headers a request may have.
pub const MAX_HEADERS: usize = 100;
/// The most bytes all header lines together may take (each with its line end; the empty line
/// that ends the head does not count).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most bytes the request line may take.
pub const MAX_REQUEST_LINE: usize = 8 * 1024;

pub struct Request {
    pub method: String,
    pub target: String,
    /// (lowercased name, trimmed value), in the order received.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// Every value of header `name` (lowercase), in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body of `GET /headers`: one `name: value` line per header.
    pub fn headers_text(&self) -> String {
        self.headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}\n"))
            .collect()
    }
}

#[derive(Debug)]
pub enum HeadError {
    /// The connection closed before a request line arrived: nothing to answer.
    Closed,
    Io(std::io::Error),
    /// The answer's status line and the reason, e.g. ("431 Request Header Fields Too Large", ..).
    Refused(&'static str, String),
}

impl From<std::io::Error> for HeadError {
    fn from(e: std::io::Error) -> Self {
        HeadError::Io(e)
    }
}

const TOO_LARGE: &str = "431 Request Header Fields Too Large";

/// Reads one line of at most `limit` bytes (its line end included). `Ok(None)` when more than
/// `limit` bytes came without a line end; an empty vector at end of stream.
fn read_line(reader: &mut impl BufRead, limit: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    reader
        .by_ref()
        .take(limit as u64 + 1)
        .read_until(b'\n', &mut line)?;
    Ok((line.len() <= limit).then_some(line))
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Reads the request line and the headers, up to and including the empty line that ends them
/// (or the end of the stream).
pub fn read_head(reader: &mut impl BufRead) -> Result<Request, HeadError> {
    let line = read_line(reader, MAX_REQUEST_LINE)?.ok_or_else(|| {
        HeadError::Refused(
            "414 URI Too Long",
            format!("request line longer than {MAX_REQUEST_LINE} bytes"),
        )
    })?;
    if line.is_empty() {
        return Err(HeadError::Closed);
    }
    let line = String::from_utf8_lossy(trim_line_end(&line)).into_owned();
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();

    let mut headers = Vec::new();
    let mut used = 0;
    loop {
        // Room for the empty line that ends the head, which does not count.
        let room = (MAX_HEADER_BYTES - used).max(2);
        let too_large = || {
            HeadError::Refused(
                TOO_LARGE,
                format!("headers longer than {MAX_HEADER_BYTES} bytes in total"),
            )
        };
        let raw = read_line(reader, room)?.ok_or_else(too_large)?;
        let content = trim_line_end(&raw);
        if content.is_empty() {
            break;
        }
        used += raw.len();
        if used > MAX_HEADER_BYTES {
            return Err(too_large());
        }
        if headers.len() == MAX_HEADERS {
            return Err(HeadError::Refused(
                TOO_LARGE,
                format!("more than {MAX_HEADERS} headers"),
            ));
        }
        let text = String::from_utf8_lossy(content);
        let (name, value) = text
            .split_once(':')
            .filter(|(n, _)| !n.is_empty() && !n.contains([' ', '\t']))
            .ok_or_else(|| {
                HeadError::Refused(
                    "400 Bad Request",
                    format!("header line {} is not `name: value`", headers.len() + 1),
                )
            })?;
        headers.push((
            name.to_ascii_lowercase(),
            value.trim_matches([' ', '\t']).to_string(),
        ));
    }
    Ok(Request {
        method,
        target,
        headers,
    })
}

/// Writes a whole plain-text answer and closes the connection.
pub fn answer(stream: &mut TcpStream, status: &str, body: &[u8]) -> std::io::Result<()> {
    let mut answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(body);
    // One write: the stream is unbuffered.
    stream.write_all(&answer)
}

/// Closes our side, then reads (and drops) what the peer still sends, bounded in bytes and
/// time: closing with unread data would make the kernel reset the connection, and the peer
/// could lose the answer just written.
pub fn linger_close(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut sink = [0u8; 16 * 1024];
    let mut left = 4usize << 20;
    let mut s = stream;
    while left > 0 {
        match s.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_server;

    #[test]
    fn headers_are_echoed_lowercased_in_order() {
        let port = test_server::start();
        let (code, body) = test_server::get(
            port,
            "/headers",
            "Host: t\r\nX-Second:  two \r\nx-second: again\r\nACCEPT: */*\r\nEmpty:\r\n",
        );
        assert_eq!(code, 200);
        assert_eq!(
            body,
            "host: t\nx-second: two\nx-second: again\naccept: */*\nempty: \n"
        );
    }

    #[test]
    fn at_most_100_headers() {
        let port = test_server::start();
        let headers = |n: usize| {
            (0..n)
                .map(|i| format!("X-H{i}: {i}\r\n"))
                .collect::<String>()
        };
        let (code, body) = test_server::get(port, "/headers", &headers(MAX_HEADERS));
        assert_eq!(code, 200);
        assert_eq!(body.lines().count(), MAX_HEADERS);
        assert_eq!(body.lines().last(), Some("x-h99: 99"));
        let (code, body) = test_server::get(port, "/headers", &headers(MAX_HEADERS + 1));
        assert_eq!((code, body.as_str()), (431, "more than 100 headers\n"));
        // Every route is bounded, not only /headers.
        let (code, _) = test_server::get(port, "/healthz", &headers(MAX_HEADERS + 1));
        assert_eq!(code, 431);
    }

    #[test]
    fn at_most_16_kib_of_headers() {
        let port = test_server::start();
        // One header line of exactly `len` bytes with its CRLF.
        let line = |len: usize| format!("X-Pad: {}\r\n", "p".repeat(len - "X-Pad: \r\n".len()));
        let (code, body) = test_server::get(port, "/headers", &line(MAX_HEADER_BYTES));
        assert_eq!(code, 200);
        assert_eq!(body.len(), MAX_HEADER_BYTES - 1, "CRLF echoed as LF");
        let (code, _) = test_server::get(port, "/headers", &line(MAX_HEADER_BYTES + 1));
        assert_eq!(code, 431);
        // Spread over many lines, the total counts.
        let two = format!(
            "{}{}",
            line(MAX_HEADER_BYTES / 2),
            line(MAX_HEADER_BYTES / 2 + 1)
        );
        let (code, _) = test_server::get(port, "/headers", &two);
        assert_eq!(code, 431);
        // A line that never ends is refused as well, without waiting for the end.
        let endless = format!("X-Pad: {}", "p".repeat(MAX_HEADER_BYTES * 4));
        let (code, _) = test_server::get(port, "/headers", &endless);
        assert_eq!(code, 431);
    }

    #[test]
    fn malformed_heads_are_refused() {
        let port = test_server::start();
        let (code, body) = test_server::get(port, "/headers", "no colon here\r\n");
        assert_eq!(
            (code, body.as_str()),
            (400, "header line 1 is not `name: value`\n")
        );
        let (code, _) = test_server::get(port, "/headers", "Bad Name: x\r\n");
        assert_eq!(code, 400);
        let long = format!("/{}", "a".repeat(MAX_REQUEST_LINE));
        let (code, _) = test_server::get(port, &long, "");
        assert_eq!(code, 414);
    }

    #[test]
    fn values_finds_every_value() {
        let mut reader = &b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\na: 3\r\n\r\nrest"[..];
        let request = read_head(&mut reader).expect("head");
        assert_eq!(request.values("a").collect::<Vec<_>>(), ["1", "3"]);
        assert_eq!(reader, b"rest", "reads no further than the head");
    }
}
