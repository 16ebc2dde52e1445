//! HTTP/2 written by hand, for clients that break the rules on purpose: frames (a 9-byte head,
//! RFC 9113 §4.1), header blocks from HPACK's static table and plain literals (RFC 7541), and
//! a reader that reports what the server sent back.

use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::sync::mpsc;

/// What a client sends first.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const ACK: u8 = 0x1;

/// GOAWAY and RST_STREAM codes.
pub const REFUSED_STREAM: u32 = 0x7;
pub const CANCEL: u32 = 0x8;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// Appends one frame to `out`.
pub fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("length");
    assert!(len < 1 << 24, "a frame holds less than 16 MiB");
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
}

/// The preface and an empty SETTINGS frame.
pub fn start() -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    frame(&mut out, SETTINGS, 0, 0, &[]);
    out
}

/// The header block of `GET https://authority/`: `:method GET`, `:scheme https`, `:path /`
/// from the static table, `:authority` as a literal with indexing on the static name (0x41).
pub fn get_block(authority: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x87, 0x84, 0x41];
    string(&mut block, authority.as_bytes());
    block
}

/// A header field as a literal without indexing and with a new name (RFC 7541 §6.2.2).
pub fn literal(name: &str, value: &[u8]) -> Vec<u8> {
    let mut out = vec![0x00];
    string(&mut out, name.as_bytes());
    string(&mut out, value);
    out
}

/// A string literal: its length as an integer with a 7-bit prefix (no Huffman), then the bytes.
fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut len = bytes.len();
    if len < 127 {
        out.push(u8::try_from(len).expect("small"));
    } else {
        out.push(127);
        len -= 127;
        while len >= 128 {
            out.push(u8::try_from(len % 128).expect("7 bits") | 0x80);
            len /= 128;
        }
        out.push(u8::try_from(len).expect("7 bits"));
    }
    out.extend_from_slice(bytes);
}

/// What the server did, as the reader saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A GOAWAY: the last stream processed, the code, the debug data.
    GoAway {
        last: u32,
        code: u32,
        debug: Vec<u8>,
    },
    /// The acknowledgement of our PING carrying these 8 bytes.
    Pong([u8; 8]),
    /// A response head on a stream.
    Headers(u32),
    /// A stream reset by the server with this code.
    Reset(u32, u32),
    /// The connection ended (end of stream or an error).
    Closed(String),
}

/// The largest frame the reader accepts (we never raise SETTINGS_MAX_FRAME_SIZE).
const MAX_FRAME: usize = 16 * 1024;

/// Reads frames from `io` until it ends, reporting the ones that matter to `events`.
pub async fn read_frames<R: AsyncRead + Unpin>(mut io: R, events: mpsc::UnboundedSender<Event>) {
    let mut head = [0u8; 9];
    let mut payload = vec![0u8; MAX_FRAME];
    loop {
        if let Err(e) = io.read_exact(&mut head).await {
            let _ = events.send(Event::Closed(e.to_string()));
            return;
        }
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        if len > MAX_FRAME {
            let _ = events.send(Event::Closed(format!("a frame of {len} bytes")));
            return;
        }
        let body = &mut payload[..len];
        if let Err(e) = io.read_exact(body).await {
            let _ = events.send(Event::Closed(e.to_string()));
            return;
        }
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let event = match head[3] {
            GOAWAY if len >= 8 => Event::GoAway {
                last: u32::from_be_bytes([body[0], body[1], body[2], body[3]]) & 0x7fff_ffff,
                code: u32::from_be_bytes([body[4], body[5], body[6], body[7]]),
                debug: body[8..].to_vec(),
            },
            PING if head[4] & ACK != 0 && len == 8 => {
                Event::Pong(body[..8].try_into().expect("8 bytes"))
            }
            HEADERS => Event::Headers(stream),
            RST_STREAM if len == 4 => Event::Reset(
                stream,
                u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
            ),
            _ => continue,
        };
        if events.send(event).is_err() {
            return;
        }
    }
}
