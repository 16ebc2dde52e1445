//! Plain clients of the front door for the tests, written against the protocols (the real
//! tools, curl above all, are used where a test runs them): an HTTP/1.1 request on a fresh
//! connection and a WebSocket (RFC 6455) echo exchange.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// An answer read whole: the status, the head's lines and the body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The head, lowercased.
    pub head: String,
    /// The body.
    pub body: String,
}

impl Answer {
    /// The value of header `name` (lowercase), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    }
}

/// `GET path` with `Host: host` (and `extra` header lines) on a new connection to `addr`,
/// read to its end; `None` when the connection fails or the answer is not HTTP.
pub fn get(addr: SocketAddr, host: &str, path: &str, extra: &[&str]) -> Option<Answer> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for line in extra {
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).ok()?;
    parse(&bytes)
}

fn parse(bytes: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(Answer {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
    })
}

/// Opens a WebSocket to `path` at `addr` for `host`, sends each of `messages` as a masked
/// text frame and returns the texts echoed back; an error says which step failed.
pub fn websocket_echo(
    addr: SocketAddr,
    host: &str,
    path: &str,
    messages: &[&str],
) -> Result<Vec<String>, String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let handshake = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(handshake.as_bytes())
        .map_err(|e| format!("handshake: {e}"))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            other => return Err(format!("reading the answer's head: {other:?}")),
        }
        if head.len() > 16 * 1024 {
            return Err("an answer head over 16 KiB".into());
        }
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    if !head.starts_with("http/1.1 101") {
        return Err(format!("no protocol switch: {head}"));
    }
    // RFC 6455 §1.3: the accept key of the sample key.
    if !head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=") {
        return Err(format!("a wrong accept key: {head}"));
    }
    let mut echoed = Vec::new();
    for (n, message) in messages.iter().enumerate() {
        let mask = [0x12, 0x34, 0x56, (n & 0xff) as u8];
        let payload = message.as_bytes();
        if payload.len() > 125 {
            return Err("this client sends short frames only".into());
        }
        let mut frame = vec![0x81, 0x80 | payload.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        stream.write_all(&frame).map_err(|e| format!("send: {e}"))?;
        let mut header = [0u8; 2];
        stream
            .read_exact(&mut header)
            .map_err(|e| format!("echo header: {e}"))?;
        if header[0] != 0x81 || header[1] & 0x80 != 0 || usize::from(header[1]) > 125 {
            return Err(format!("not an unmasked short text frame: {header:?}"));
        }
        let mut body = vec![0u8; usize::from(header[1])];
        stream
            .read_exact(&mut body)
            .map_err(|e| format!("echo body: {e}"))?;
        echoed.push(String::from_utf8_lossy(&body).into_owned());
    }
    Ok(echoed)
}

/// The boards' addresses on the station's segment, by name, as mDNS announces them (as a
/// laptop on the LAN finds them): waits until `count` boards of `cluster` answer.
pub fn board_addresses(
    station: &baton_qemu::station::Station,
    cluster: &str,
    count: usize,
    limit: Duration,
) -> std::collections::BTreeMap<String, std::net::Ipv4Addr> {
    crate::wait_until(&format!("{count} boards to answer mDNS"), limit, || {
        let found = station
            .run(|| baton::boards::discover(Duration::from_secs(3), Some(cluster)))
            .expect("entering the station")
            .ok()?;
        let map: std::collections::BTreeMap<String, std::net::Ipv4Addr> = found
            .iter()
            .filter_map(|b| Some((b.board.clone(), *b.addresses.first()?)))
            .collect();
        (map.len() == count).then_some(map)
    })
}
