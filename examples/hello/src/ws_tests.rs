//! The WebSocket echo over a real loopback socket, with a tiny client that masks its frames.

use super::*;
use crate::test_server;
use crate::ws_frame::{BINARY, CLOSE, PING, PONG, TEXT};
use std::io::Read;

/// RFC 6455 section 1.3; the same value as Python's hashlib and base64 give.
#[test]
fn accept_key_of_the_rfc_example() {
    assert_eq!(
        accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn base64_pads() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}

/// Sends a masked frame with the given first byte and payload.
fn send(s: &mut TcpStream, first: u8, payload: &[u8]) {
    let key = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut frame = vec![first];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    s.write_all(&frame).expect("sending a frame");
}

/// Reads one unmasked frame: (opcode, payload).
fn receive(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).expect("reading a frame head");
    assert_eq!(head[0] & 0x80, 0x80, "not final");
    assert_eq!(head[1] & 0x80, 0, "a server frame must not be masked");
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).expect("length");
            usize::from(u16::from_be_bytes(b))
        }
        127 => panic!("unexpectedly long frame"),
        n => usize::from(n),
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).expect("payload");
    (head[0] & 0x0f, payload)
}

/// Connects and completes the handshake, checking the accept key.
fn open(port: u16) -> TcpStream {
    let mut s = test_server::connect(port);
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    write!(
        s,
        "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .expect("handshake");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("reading the 101");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).expect("utf-8 head");
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(
        head.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{head}"
    );
    s
}

fn assert_closed(s: &mut TcpStream) {
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("reading to the end");
    assert!(rest.is_empty(), "more after close: {rest:?}");
}

#[test]
fn echoes_text_and_binary_answers_ping_and_echoes_close() {
    let port = test_server::start();
    let mut s = open(port);
    send(&mut s, 0x80 | TEXT, "héllo".as_bytes());
    assert_eq!(receive(&mut s), (TEXT, "héllo".as_bytes().to_vec()));
    let big: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
    send(&mut s, 0x80 | BINARY, &big);
    assert_eq!(receive(&mut s), (BINARY, big));
    send(&mut s, 0x80 | PING, b"are you there");
    assert_eq!(receive(&mut s), (PONG, b"are you there".to_vec()));
    send(&mut s, 0x80 | CLOSE, &1000u16.to_be_bytes());
    assert_eq!(receive(&mut s), (CLOSE, 1000u16.to_be_bytes().to_vec()));
    assert_closed(&mut s);
}

#[test]
fn an_oversized_frame_gets_close_1009() {
    let port = test_server::start();
    let mut s = open(port);
    // Only the head: it declares one byte more than allowed, and the server must not wait
    // for (or allocate) the payload before refusing.
    let mut head = vec![0x80 | BINARY, 0x80 | 127];
    head.extend_from_slice(&(MAX_PAYLOAD + 1).to_be_bytes());
    s.write_all(&head).expect("sending the head");
    let (op, payload) = receive(&mut s);
    assert_eq!(op, CLOSE);
    assert_eq!(payload[..2], 1009u16.to_be_bytes());
    assert_closed(&mut s);
}

#[test]
fn a_fragmented_message_gets_close_1003() {
    let port = test_server::start();
    let mut s = open(port);
    send(&mut s, TEXT, b"part one");
    let (op, payload) = receive(&mut s);
    assert_eq!(op, CLOSE);
    assert_eq!(payload[..2], 1003u16.to_be_bytes());
}

#[test]
fn bad_handshakes_are_refused() {
    let port = test_server::start();
    let base = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let (code, _) = test_server::get(port, "/ws", &format!("{base}{key}"));
    assert_eq!(code, 426, "no version");
    let v = "Sec-WebSocket-Version: 13\r\n";
    let (code, body) = test_server::get(port, "/ws", &format!("{base}{v}"));
    assert_eq!(code, 400, "no key: {body}");
    let (code, body) = test_server::get(port, "/ws", &format!("Connection: Upgrade\r\n{v}{key}"));
    assert_eq!(code, 400, "no upgrade: {body}");
    let (code, body) = test_server::get(port, "/ws", &format!("Upgrade: websocket\r\n{v}{key}"));
    assert_eq!(code, 400, "no connection: {body}");
}
