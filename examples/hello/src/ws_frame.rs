//! WebSocket frames (RFC 6455 section 5) as the server side sees them: frames read from a
//! client must be masked; frames written are not. Payloads are bounded by the caller.

use std::io::{Read, Write};

pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// Close codes this server sends.
pub const PROTOCOL_ERROR: u16 = 1002;
pub const UNSUPPORTED: u16 = 1003;
pub const INVALID_DATA: u16 = 1007;
pub const TOO_BIG: u16 = 1009;

pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// Why a frame could not be read: the connection failed, or the frame breaks a rule and the
/// connection must be closed with this code and reason.
#[derive(Debug)]
pub enum FrameError {
    Io(std::io::Error),
    Close(u16, String),
}

impl From<std::io::Error> for FrameError {
    fn from(e: std::io::Error) -> Self {
        FrameError::Io(e)
    }
}

fn violation(code: u16, reason: impl Into<String>) -> FrameError {
    FrameError::Close(code, reason.into())
}

/// Reads one masked frame of at most `max_payload` bytes; the payload is checked against the
/// bound before any of it is read or allocated.
pub fn read_frame(from: &mut impl Read, max_payload: u64) -> Result<Frame, FrameError> {
    let mut head = [0u8; 2];
    from.read_exact(&mut head)?;
    let fin = head[0] & 0x80 != 0;
    let opcode = head[0] & 0x0f;
    if head[0] & 0x70 != 0 {
        return Err(violation(PROTOCOL_ERROR, "reserved bits set"));
    }
    if head[1] & 0x80 == 0 {
        return Err(violation(PROTOCOL_ERROR, "client frame not masked"));
    }
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            from.read_exact(&mut b)?;
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            from.read_exact(&mut b)?;
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    if opcode >= CLOSE && (len > 125 || !fin) {
        return Err(violation(
            PROTOCOL_ERROR,
            "control frame fragmented or over 125 bytes",
        ));
    }
    if len > max_payload {
        return Err(violation(
            TOO_BIG,
            format!("frame of {len} bytes, more than {max_payload}"),
        ));
    }
    let mut mask = [0u8; 4];
    from.read_exact(&mut mask)?;
    // The bound above keeps this allocation within max_payload.
    let mut payload = vec![0u8; len as usize];
    from.read_exact(&mut payload)?;
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    Ok(Frame {
        fin,
        opcode,
        payload,
    })
}

/// The bytes of an unmasked, final frame.
pub fn encode(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// Writes a close frame with `code` and `reason` (cut to fit a control frame).
pub fn write_close(to: &mut impl Write, code: u16, reason: &str) -> std::io::Result<()> {
    let mut payload = code.to_be_bytes().to_vec();
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    to.write_all(&encode(CLOSE, &payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame: masked with a fixed key.
    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = encode(first & 0x0f, payload);
        frame[0] = first;
        let at = frame.len() - payload.len();
        frame[1] |= 0x80;
        let key = [1u8, 2, 3, 4];
        let masked: Vec<u8> = payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect();
        frame.truncate(at);
        frame.extend_from_slice(&key);
        frame.extend_from_slice(&masked);
        frame
    }

    #[test]
    fn frames_of_each_length_form_round_trip() {
        for len in [0usize, 125, 126, 65535, 65536] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let bytes = masked(0x80 | BINARY, &payload);
            let frame = read_frame(&mut bytes.as_slice(), 1 << 20).expect("frame");
            assert!(frame.fin);
            assert_eq!(frame.opcode, BINARY);
            assert_eq!(frame.payload, payload, "length {len}");
        }
    }

    #[test]
    fn rule_breaking_frames_are_refused() {
        let code = |bytes: Vec<u8>| match read_frame(&mut bytes.as_slice(), 100) {
            Err(FrameError::Close(code, _)) => code,
            Err(FrameError::Io(e)) => panic!("io error {e}"),
            Ok(_) => panic!("accepted"),
        };
        assert_eq!(code(encode(TEXT, b"unmasked")), PROTOCOL_ERROR);
        assert_eq!(code(masked(0x80 | 0x40 | TEXT, b"rsv")), PROTOCOL_ERROR);
        assert_eq!(code(masked(PING, b"fragmented ping")), PROTOCOL_ERROR);
        assert_eq!(code(masked(0x80 | BINARY, &[0; 101])), TOO_BIG);
        // A huge declared length is refused from the head alone.
        let mut head = vec![0x80 | BINARY, 0x80 | 127];
        head.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(code(head), TOO_BIG);
    }
}
