//! Base64url without padding (RFC 7515 section 2), strict: only `A-Z a-z 0-9 - _`, no `=`,
//! no `+` or `/`, no whitespace, and the unused low bits of the last character must be zero, so
//! every byte string has exactly one accepted spelling (a token cannot be altered into another
//! spelling that still verifies).

/// Why a part did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum B64Error {
    /// A character outside the base64url alphabet (padding, `+`, `/`, whitespace, ...).
    BadChar,
    /// A length no encoding produces (1 more than a multiple of 4).
    BadLength,
    /// The last character carries bits that no encoder sets.
    NonCanonical,
    /// The decoded bytes would exceed the caller's bound.
    TooLong,
}

fn value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

/// Decodes `text`, refusing anything that would decode to more than `max` bytes before
/// allocating for it.
pub fn decode(text: &str, max: usize) -> Result<Vec<u8>, B64Error> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 == 1 {
        return Err(B64Error::BadLength);
    }
    let out_len = bytes.len() / 4 * 3 + (bytes.len() % 4).saturating_sub(1);
    if out_len > max {
        return Err(B64Error::TooLong);
    }
    let mut out = Vec::with_capacity(out_len);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = (acc << 6) | value(c).ok_or(B64Error::BadChar)?;
        }
        match chunk.len() {
            4 => out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]),
            3 => {
                // 18 bits: 16 of data, the last 2 must be zero.
                if acc & 0b11 != 0 {
                    return Err(B64Error::NonCanonical);
                }
                out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]);
            }
            _ => {
                // 12 bits: 8 of data, the last 4 must be zero.
                if acc & 0b1111 != 0 {
                    return Err(B64Error::NonCanonical);
                }
                out.push((acc >> 4) as u8);
            }
        }
    }
    Ok(out)
}

/// Encodes `data`, unpadded (tests sign tokens with it; signed assertions will).
pub fn encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let acc = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((acc >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}
