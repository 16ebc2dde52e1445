//! `GET /ws`: a WebSocket echo (RFC 6455). The handshake checks `Upgrade: websocket`, a
//! `Connection` that names `upgrade`, `Sec-WebSocket-Version: 13` and a `Sec-WebSocket-Key`
//! (24 base64 characters, as 16 random bytes encode), else answers 400 (426 for another
//! version). Then text and binary messages are echoed, pings answered with pongs, and a close
//! frame is echoed before the connection closes.
//!
//! Bounds and refusals: a frame's payload is at most 1 MiB (else close 1009); fragmented
//! messages are not supported (close 1003); text that is not UTF-8 gets close 1007; other
//! protocol errors close 1002. A connection idle for 5 minutes is dropped.

use crate::request::Request;
use crate::ws_frame::{self, FrameError};
use sha1::{Digest, Sha1};
use std::io::{BufRead, Write};
use std::net::TcpStream;
use std::time::Duration;

pub const MAX_PAYLOAD: u64 = 1 << 20;
const IDLE: Duration = Duration::from_secs(300);
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `Sec-WebSocket-Accept` for a client's key.
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    base64(&sha.finalize())
}

/// The key of a valid upgrade request, or the refusal's status and reason.
pub fn check_upgrade(request: &Request) -> Result<&str, (&'static str, String)> {
    let bad = |why: &str| ("400 Bad Request", format!("{why}\n"));
    let has_token = |name: &str, token: &str| {
        request
            .values(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if request.method != "GET" {
        return Err(bad("a WebSocket upgrade must be a GET"));
    }
    if !has_token("upgrade", "websocket") {
        return Err(bad("missing Upgrade: websocket"));
    }
    if !has_token("connection", "upgrade") {
        return Err(bad("Connection must name upgrade"));
    }
    if request.values("sec-websocket-version").next() != Some("13") {
        return Err((
            "426 Upgrade Required",
            "Sec-WebSocket-Version must be 13\n".to_string(),
        ));
    }
    let key = request.values("sec-websocket-key").next().unwrap_or("");
    let base64_char = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/';
    if key.len() != 24 || !key.ends_with("==") || !key[..22].chars().all(base64_char) {
        return Err(bad("Sec-WebSocket-Key must be 16 bytes in base64"));
    }
    Ok(key)
}

/// Answers the handshake and echoes until the client closes, breaks a rule or goes idle.
/// `reader` is the buffered side of `stream` (it may already hold the first frames).
pub fn serve(
    request: &Request,
    reader: &mut impl BufRead,
    stream: &mut TcpStream,
) -> std::io::Result<()> {
    let key = match check_upgrade(request) {
        Ok(key) => key,
        Err((status, reason)) => {
            println!("hello: GET /ws -> {status}");
            return crate::request::answer(stream, status, reason.as_bytes());
        }
    };
    println!("hello: GET /ws -> 101 Switching Protocols");
    stream.write_all(
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            accept_key(key)
        )
        .as_bytes(),
    )?;
    stream.set_read_timeout(Some(IDLE))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let outcome = echo(reader, stream);
    crate::request::linger_close(stream);
    outcome
}

fn echo(reader: &mut impl BufRead, stream: &mut TcpStream) -> std::io::Result<()> {
    loop {
        let frame = match ws_frame::read_frame(reader, MAX_PAYLOAD) {
            Ok(frame) => frame,
            // A client that just goes away ends the echo; that is no error of ours.
            Err(FrameError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                println!("hello: /ws client left without a close frame");
                return Ok(());
            }
            Err(FrameError::Io(e)) => return Err(e),
            Err(FrameError::Close(code, reason)) => {
                println!("hello: /ws closing with {code}: {reason}");
                return ws_frame::write_close(stream, code, &reason);
            }
        };
        let refuse = |stream: &mut TcpStream, code, reason: &str| {
            println!("hello: /ws closing with {code}: {reason}");
            ws_frame::write_close(stream, code, reason)
        };
        match frame.opcode {
            ws_frame::TEXT | ws_frame::BINARY | ws_frame::CONTINUATION if !frame.fin => {
                return refuse(stream, ws_frame::UNSUPPORTED, "fragmented messages");
            }
            ws_frame::CONTINUATION => {
                return refuse(stream, ws_frame::PROTOCOL_ERROR, "continuation of nothing");
            }
            ws_frame::TEXT if std::str::from_utf8(&frame.payload).is_err() => {
                return refuse(stream, ws_frame::INVALID_DATA, "text is not UTF-8");
            }
            op @ (ws_frame::TEXT | ws_frame::BINARY) => {
                stream.write_all(&ws_frame::encode(op, &frame.payload))?;
            }
            ws_frame::PING => {
                stream.write_all(&ws_frame::encode(ws_frame::PONG, &frame.payload))?
            }
            ws_frame::PONG => {}
            ws_frame::CLOSE if frame.payload.len() == 1 => {
                return refuse(stream, ws_frame::PROTOCOL_ERROR, "close payload of 1 byte");
            }
            ws_frame::CLOSE => {
                return stream.write_all(&ws_frame::encode(ws_frame::CLOSE, &frame.payload));
            }
            op => return refuse(stream, ws_frame::PROTOCOL_ERROR, &format!("opcode {op}")),
        }
    }
}

#[cfg(test)]
#[path = "ws_tests.rs"]
mod tests;
