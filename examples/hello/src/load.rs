//! Load for network benchmarks: `GET /bytes?n=N` answers N bytes, and `GET
//! /load?n=K&url=URL` fetches URL K times, one after another, and answers
//! `requests=K bytes=B ms=T`, timed inside the container so that nothing outside it (the
//! host's port forwards, QEMU's user network) is in the number.
//!
//! `/bytes` streams its body in [`CHUNK`]-sized writes, so any N costs the same memory. `/load`
//! resolves the URL's host once, before the clock starts, then makes K plain `GET` requests
//! (a new connection each, HTTP/1.0), counting each body's bytes without keeping them. It
//! answers 502 with one line naming the request and what went wrong if any request fails: a
//! refused or timed-out connection, a status other than 200, a body shorter than its
//! `Content-Length`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::fetch::{self, Target, CONNECT_TIMEOUT};

/// Size of each write of a `/bytes` body and of each read of a `/load` body.
pub const CHUNK: usize = 64 * 1024;
/// Longest a single read or write of one `/load` request may block.
const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest header block of an upstream answer.
const MAX_HEAD: usize = 16 * 1024;
/// Most requests one `/load` makes.
pub const MAX_REQUESTS: u64 = 100_000;

/// A `/load` request: how many fetches of what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Load {
    /// Number of requests, one after another.
    pub requests: u64,
    /// What each request fetches.
    pub target: Target,
}

/// What one `/load` did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Requests made (all answered 200).
    pub requests: u64,
    /// Body bytes received over all requests.
    pub bytes: u64,
    /// Time from the first connect to the last body byte, in milliseconds.
    pub ms: f64,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "requests={} bytes={} ms={:.3}",
            self.requests, self.bytes, self.ms
        )
    }
}

/// The N of a `/bytes` query (`n=N`), or a one-line reason.
pub fn parse_bytes_query(query: &str) -> Result<u64, String> {
    let n = query
        .split('&')
        .find_map(|p| p.strip_prefix("n="))
        .ok_or("missing n parameter")?;
    n.parse().map_err(|_| format!("bad byte count {n:?}"))
}

/// Parses the query of a `/load` request: `n=K&url=URL`, where `url` comes last and takes the
/// rest of the string (so the URL's own query needs no escaping), percent-decoded.
pub fn parse_load_query(query: &str) -> Result<Load, String> {
    let at = if query.starts_with("url=") {
        0
    } else {
        query.find("&url=").ok_or("missing url parameter")? + 1
    };
    let (params, url) = (&query[..at], &query[at + "url=".len()..]);
    let n = params
        .split('&')
        .find_map(|p| p.strip_prefix("n="))
        .ok_or("missing n parameter")?;
    let requests: u64 = n.parse().map_err(|_| format!("bad request count {n:?}"))?;
    if requests == 0 || requests > MAX_REQUESTS {
        return Err(format!(
            "request count {requests} is not between 1 and {MAX_REQUESTS}"
        ));
    }
    let target = fetch::parse_url(&fetch::percent_decode(url))?;
    Ok(Load { requests, target })
}

/// Writes a complete `200` answer whose body is `n` bytes, in [`CHUNK`]-sized writes.
pub fn send_bytes(out: &mut impl Write, n: u64) -> std::io::Result<()> {
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n"
    )?;
    let chunk: Vec<u8> = (0..CHUNK).map(|i| b'a' + (i % 26) as u8).collect();
    let mut left = n;
    while left > 0 {
        let k = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
        out.write_all(&chunk[..k])?;
        left -= k as u64;
    }
    out.flush()
}

/// Makes the requests of `load`, one after another, and says how long they took.
pub fn run(load: &Load) -> Result<Outcome, String> {
    let target = &load.target;
    let addr = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", target.host))?
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| format!("cannot resolve {}", target.host))?;
    let mut buf = vec![0u8; CHUNK];
    let mut bytes = 0;
    let started = Instant::now();
    for i in 1..=load.requests {
        bytes += fetch_counting(target, addr, &mut buf)
            .map_err(|e| format!("request {i} of {}: {e}", load.requests))?;
    }
    Ok(Outcome {
        requests: load.requests,
        bytes,
        ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// One `GET` of `target` at `addr`: the number of body bytes of its 200 answer.
fn fetch_counting(target: &Target, addr: SocketAddr, buf: &mut [u8]) -> Result<u64, String> {
    let authority = format!("{}:{}", target.host, target.port);
    let io = |what: &str, e: std::io::Error| match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            format!("{what} {authority} timed out")
        }
        std::io::ErrorKind::ConnectionRefused => format!("{what} {authority} refused"),
        _ => format!("{what} {authority} failed: {e}"),
    };
    let mut stream =
        TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|e| io("connect to", e))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(|e| io("configuring the connection to", e))?;
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: hello-load\r\n\r\n",
        target.path
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| io("sending to", e))?;
    count_body(&mut stream, buf).map_err(|e| match e {
        BodyError::Io(e) => io("reading from", e),
        BodyError::Answer(reason) => format!("upstream {authority} {reason}"),
    })
}

/// Why an answer could not be counted.
#[derive(Debug)]
enum BodyError {
    /// Reading failed.
    Io(std::io::Error),
    /// The answer was not a complete 200.
    Answer(String),
}

/// Reads one HTTP answer from `from`: the number of body bytes of a 200 (up to its
/// `Content-Length`, or to the end of the stream without one).
fn count_body(from: &mut impl Read, buf: &mut [u8]) -> Result<u64, BodyError> {
    let mut head = Vec::new();
    let (head_end, mut body) = loop {
        let n = from.read(buf).map_err(BodyError::Io)?;
        if n == 0 {
            return Err(BodyError::Answer(if head.is_empty() {
                "closed without answering".to_string()
            } else {
                "sent no complete header".to_string()
            }));
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break (at + 4, (head.len() - at - 4) as u64);
        }
        if head.len() > MAX_HEAD {
            return Err(BodyError::Answer("sent an oversized header".to_string()));
        }
    };
    let text = String::from_utf8_lossy(&head[..head_end]);
    let status = text.lines().next().unwrap_or("");
    match status.split_whitespace().nth(1) {
        Some("200") => {}
        Some(code) if status.starts_with("HTTP/") => {
            return Err(BodyError::Answer(format!("answered {code}")))
        }
        _ => {
            return Err(BodyError::Answer(format!(
                "sent a bad status line {status:?}"
            )))
        }
    }
    let length: Option<u64> = text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())
            .flatten()
    });
    while length.is_none_or(|want| body < want) {
        let n = from.read(buf).map_err(BodyError::Io)?;
        if n == 0 {
            break;
        }
        body += n as u64;
    }
    match length {
        Some(want) if body < want => Err(BodyError::Answer(format!(
            "closed after {body} of {want} body bytes"
        ))),
        Some(want) => Ok(want),
        None => Ok(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_queries_take_the_url_last_and_whole() {
        let l = parse_load_query("n=3&url=http://server:8080/bytes?n=64&x=1").unwrap();
        assert_eq!(l.requests, 3);
        assert_eq!(
            (
                l.target.host.as_str(),
                l.target.port,
                l.target.path.as_str()
            ),
            ("server", 8080, "/bytes?n=64&x=1")
        );
        let l = parse_load_query("url=http%3A%2F%2F10.0.2.15%3A8090%2Fbytes%3Fn%3D1&n=2");
        assert!(
            l.unwrap_err().contains("missing n"),
            "n after url is part of the url"
        );
        let l = parse_load_query("n=2&url=http%3A%2F%2F10.0.2.15%3A8090%2F").unwrap();
        assert_eq!((l.target.host.as_str(), l.target.port), ("10.0.2.15", 8090));
        assert!(parse_load_query("n=2").unwrap_err().contains("missing url"));
        assert!(parse_load_query("n=2&xurl=http://a/")
            .unwrap_err()
            .contains("missing url"));
        assert!(parse_load_query("n=0&url=http://a/")
            .unwrap_err()
            .contains("between"));
        assert!(parse_load_query("n=x&url=http://a/")
            .unwrap_err()
            .contains("bad request count"));
        assert!(parse_load_query("n=1&url=ftp://a/")
            .unwrap_err()
            .contains("only http://"));
    }

    #[test]
    fn bytes_answers_carry_exactly_n_bytes() {
        assert_eq!(parse_bytes_query("n=70000"), Ok(70000));
        assert!(parse_bytes_query("n=-1").unwrap_err().contains("bad"));
        assert!(parse_bytes_query("m=1").unwrap_err().contains("missing"));
        for n in [0u64, 1, CHUNK as u64, 3 * CHUNK as u64 + 7] {
            let mut out = Vec::new();
            send_bytes(&mut out, n).unwrap();
            let mut buf = vec![0; 1000];
            assert_eq!(count_body(&mut out.as_slice(), &mut buf).unwrap(), n);
            let at = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            assert_eq!(out.len() - at - 4, n as usize);
        }
    }

    #[test]
    fn answers_that_are_not_a_whole_200_are_failures() {
        let mut buf = vec![0; 16];
        let count = |text: &[u8], buf: &mut [u8]| match count_body(&mut &text[..], buf) {
            Ok(n) => Ok(n),
            Err(BodyError::Answer(r)) => Err(r),
            Err(BodyError::Io(e)) => Err(e.to_string()),
        };
        assert_eq!(
            count(b"HTTP/1.0 404 Not Found\r\n\r\nnope", &mut buf),
            Err("answered 404".into())
        );
        assert_eq!(
            count(
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
                &mut buf
            ),
            Err("closed after 5 of 10 body bytes".into())
        );
        assert_eq!(
            count(b"HTTP/1.1 200 OK\r\n\r\nno length, to the end", &mut buf),
            Ok(21)
        );
        assert!(count(b"", &mut buf).unwrap_err().contains("closed"));
        assert!(count(b"SSH-2.0\r\n\r\n", &mut buf)
            .unwrap_err()
            .contains("bad status"));
    }

    #[test]
    fn a_load_against_a_local_server_counts_every_byte() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for _ in 0..3 {
                let (mut s, _) = listener.accept().unwrap();
                let mut req = [0u8; 1024];
                let _ = s.read(&mut req).unwrap();
                send_bytes(&mut s, 100_000).unwrap();
            }
        });
        let load =
            parse_load_query(&format!("n=3&url=http://127.0.0.1:{port}/bytes?n=100000")).unwrap();
        let outcome = run(&load).unwrap();
        assert_eq!((outcome.requests, outcome.bytes), (3, 300_000));
        assert!(outcome
            .to_string()
            .starts_with("requests=3 bytes=300000 ms="));
        server.join().unwrap();
        let err = run(&load).unwrap_err();
        assert!(err.starts_with("request 1 of 3: connect to"), "{err}");
    }
}
