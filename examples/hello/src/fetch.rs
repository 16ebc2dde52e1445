//! `GET /fetch?url=http://HOST:PORT/PATH`: the service calls another one itself, so tests can
//! show which services may reach which.
//!
//! The host is a name resolved with the standard library's resolver (in a container: its
//! `/etc/resolv.conf`) or an IPv4 literal; the port defaults to 80. The request is a plain
//! `GET /PATH HTTP/1.0` with a `Host` header. Connecting may take at most [`CONNECT_TIMEOUT`],
//! the whole exchange (resolving included) at most [`TOTAL_TIMEOUT`] (or `&wait=SECONDS`). Only `http://`, no
//! redirects, and at most [`MAX_BODY`] bytes of body. A failure is one line saying what went
//! wrong, e.g. `connect to web:8080 refused`, `cannot resolve web`, `upstream answered 404`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longest time a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest time the whole fetch may take, unless the request asks for another (`wait=`).
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest `wait=` (in seconds) a request may ask for (a service woken from zero answers
/// once it started).
pub const MAX_WAIT_SECS: u64 = 60;
/// Largest upstream body passed on.
pub const MAX_BODY: usize = 64 * 1024;
/// Largest upstream header block read.
const MAX_HEAD: usize = 16 * 1024;

/// Where to fetch from, parsed from the `url` query parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or IPv4 literal.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Path and query sent upstream, starting with `/`.
    pub path: String,
}

impl Target {
    /// `host:port`, as failures name the upstream.
    fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Decodes `%XX` escapes (and `+` as a space, as in forms); a malformed escape is kept as is.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How long a `/fetch` request may take in all: `wait=SECONDS` (1 to [`MAX_WAIT_SECS`]), or
/// [`TOTAL_TIMEOUT`].
pub fn parse_wait(query: &str) -> Result<Duration, String> {
    let Some(value) = query.split('&').find_map(|p| p.strip_prefix("wait=")) else {
        return Ok(TOTAL_TIMEOUT);
    };
    match value.parse::<u64>() {
        Ok(n) if (1..=MAX_WAIT_SECS).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(format!(
            "wait must be a number of seconds from 1 to {MAX_WAIT_SECS}"
        )),
    }
}

/// The target named by the query string of a `/fetch` request (`url=...`, other parameters
/// ignored), or a one-line reason it is unusable.
pub fn parse_query(query: &str) -> Result<Target, String> {
    let url = query
        .split('&')
        .find_map(|p| p.strip_prefix("url="))
        .ok_or("missing url parameter")?;
    parse_url(&percent_decode(url))
}

/// Parses `http://HOST[:PORT][/PATH]`.
pub fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// URLs are supported, not {url:?}"))?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("bad port {p:?} in {url:?}"))?,
        ),
        None => (authority, 80),
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if host.is_empty() || !host.chars().all(valid) {
        return Err(format!("bad host {host:?} in {url:?}"));
    }
    if path.chars().any(|c| c.is_control() || c == ' ') {
        return Err(format!("bad path {path:?} in {url:?}"));
    }
    Ok(Target {
        host: host.to_string(),
        port,
        path: path.to_string(),
    })
}

/// Time left before `deadline`, or the "timed out" failure.
fn left(deadline: Instant) -> Result<Duration, String> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| "timed out".to_string())
}

/// Resolves the host on a helper thread, so a slow resolver cannot outlast the deadline.
fn resolve(target: &Target, deadline: Instant) -> Result<Vec<SocketAddr>, String> {
    let (tx, rx) = mpsc::channel();
    let (host, port) = (target.host.clone(), target.port);
    std::thread::Builder::new()
        .spawn(move || {
            let _ = tx.send(
                (host.as_str(), port)
                    .to_socket_addrs()
                    .map(|a| a.filter(SocketAddr::is_ipv4).collect::<Vec<_>>()),
            );
        })
        .map_err(|e| format!("cannot start a resolver thread: {e}"))?;
    match rx.recv_timeout(left(deadline)?) {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(_) => Err(format!("cannot resolve {}", target.host)),
        Err(_) => Err(format!("timed out resolving {}", target.host)),
    }
}

/// Connects to the first address that accepts.
fn connect(target: &Target, deadline: Instant) -> Result<TcpStream, String> {
    let mut last = String::new();
    for addr in resolve(target, deadline)? {
        match TcpStream::connect_timeout(&addr, left(deadline)?.min(CONNECT_TIMEOUT)) {
            Ok(s) => return Ok(s),
            Err(e) => {
                let how = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => "refused".to_string(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                        "timed out".to_string()
                    }
                    _ => format!("failed: {e}"),
                };
                last = format!("connect to {} {how}", target.authority());
            }
        }
    }
    Err(last)
}

/// Fetches `target` within `total` and returns the body of a 200 answer, or a one-line reason.
pub fn fetch(target: &Target, total: Duration) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + total;
    let mut stream = connect(target, deadline)?;
    let io = |what: &str, e: std::io::Error| match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => "timed out".to_string(),
        _ => format!("{what} {}: {e}", target.authority()),
    };
    stream
        .set_write_timeout(Some(left(deadline)?))
        .map_err(|e| io("configuring the connection to", e))?;
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: hello\r\n\r\n",
        target.path,
        target.authority()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| io("sending to", e))?;

    let limit = MAX_HEAD + MAX_BODY;
    let mut response = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        stream
            .set_read_timeout(Some(left(deadline)?))
            .map_err(|e| io("configuring the connection to", e))?;
        let n = stream.read(&mut buf).map_err(|e| io("reading from", e))?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
        if let Some(done) = complete(&response) {
            response.truncate(done);
            break;
        }
        if response.len() > limit {
            break;
        }
    }
    parse_response(&response, target)
}

/// The length of a complete response with a `Content-Length`, once it has all arrived.
fn complete(response: &[u8]) -> Option<usize> {
    let head_end = find(response, b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&response[..head_end]);
    let length: usize = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())
            .flatten()
    })?;
    let total = head_end.checked_add(length)?;
    (response.len() >= total).then_some(total)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The body of a 200 response, or why not.
fn parse_response(response: &[u8], target: &Target) -> Result<Vec<u8>, String> {
    let Some(at) = find(response, b"\r\n\r\n") else {
        return Err(if response.is_empty() {
            format!("upstream {} closed without answering", target.authority())
        } else {
            format!("upstream {} sent no complete header", target.authority())
        });
    };
    let head = String::from_utf8_lossy(&response[..at]);
    let status_line = head.lines().next().unwrap_or("");
    let mut parts = status_line.split_whitespace();
    let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !version.starts_with("HTTP/") || code.len() != 3 || code.parse::<u16>().is_err() {
        return Err(format!(
            "upstream {} sent a bad status line {status_line:?}",
            target.authority()
        ));
    }
    if code != "200" {
        return Err(format!("upstream answered {code}"));
    }
    let body = &response[at + 4..];
    if body.len() > MAX_BODY {
        return Err(format!("upstream body larger than {MAX_BODY} bytes"));
    }
    Ok(body.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_is_bounded_and_defaults_to_the_total_timeout() {
        assert_eq!(parse_wait("url=http://a/"), Ok(TOTAL_TIMEOUT));
        assert_eq!(
            parse_wait("url=http://a/&wait=40"),
            Ok(Duration::from_secs(40))
        );
        assert!(parse_wait("wait=0").is_err());
        assert!(parse_wait("wait=61").is_err());
        assert!(parse_wait("wait=x").is_err());
    }

    #[test]
    fn urls_are_percent_decoded_and_parsed() {
        let t = parse_query("url=http%3A%2F%2Fweb%3A8080%2Fhealthz").unwrap();
        assert_eq!(
            t,
            Target {
                host: "web".into(),
                port: 8080,
                path: "/healthz".into()
            }
        );
        let t = parse_query("x=1&url=http://10.88.0.2").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("10.88.0.2", 80, "/")
        );
        assert_eq!(percent_decode("a%2fb%zz%4"), "a/b%zz%4");
        assert!(parse_query("uri=http://web/")
            .unwrap_err()
            .contains("missing"));
        assert!(parse_url("https://web/")
            .unwrap_err()
            .contains("only http://"));
        assert!(parse_url("http://web:99999/")
            .unwrap_err()
            .contains("bad port"));
        assert!(parse_url("http://we b/").unwrap_err().contains("bad host"));
        assert!(parse_url("http://:80/").unwrap_err().contains("bad host"));
    }

    #[test]
    fn responses_give_the_body_of_200_only() {
        let t = parse_url("http://web:8080/").unwrap();
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi\n";
        assert_eq!(complete(ok), Some(ok.len()));
        assert_eq!(complete(&ok[..ok.len() - 1]), None);
        assert_eq!(parse_response(ok, &t).unwrap(), b"hi\n");
        let missing = b"HTTP/1.0 404 Not Found\r\n\r\nnope";
        assert_eq!(
            parse_response(missing, &t).unwrap_err(),
            "upstream answered 404"
        );
        assert!(parse_response(b"", &t).unwrap_err().contains("closed"));
        assert!(parse_response(b"SSH-2.0\r\n\r\n", &t)
            .unwrap_err()
            .contains("bad status line"));
        let mut big = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        big.resize(big.len() + MAX_BODY + 1, b'x');
        assert!(parse_response(&big, &t).unwrap_err().contains("larger"));
    }
}
