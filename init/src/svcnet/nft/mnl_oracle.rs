//! Test oracle: reads back the messages Debian's `nft --debug=mnl` prints, byte for byte.
//!
//! libmnl prints each message as rows: the header fields, the 4-byte extra header
//! (`nfgenmsg`), then every attribute as a `|len|flags|type|` row followed by its payload in
//! rows of 4 bytes (padding included). Concatenating the extra header, the rebuilt attribute
//! headers and the payload rows gives the exact bytes after the netlink header.

/// One message nft sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MnlMessage {
    /// Netlink message type.
    pub kind: u16,
    /// Everything after the 16-byte netlink header: `nfgenmsg` and attributes.
    pub payload: Vec<u8>,
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn hex_bytes(cell: &str) -> Vec<u8> {
    cell.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap_or_else(|e| panic!("hex byte {b:?}: {e}")))
        .collect()
}

/// Parses nft's `--debug=mnl` output.
pub fn parse(text: &str) -> Vec<MnlMessage> {
    let mut out: Vec<MnlMessage> = Vec::new();
    for raw in text.lines() {
        let line = strip_ansi(raw);
        let mut columns = line.split('\t');
        let (Some(left), Some(right)) = (columns.next(), columns.next()) else {
            continue;
        };
        let cells: Vec<&str> = left.split('|').map(str::trim).collect();
        let label = right.trim().trim_matches('|').trim();
        match label {
            "message length" => out.push(MnlMessage {
                kind: 0,
                payload: Vec::new(),
            }),
            "type | flags" => {
                let msg = out.last_mut().expect("a type row after a length row");
                msg.kind = cells[1].parse().expect("decimal message type");
            }
            "extra header" | "data" => {
                let msg = out.last_mut().expect("data after a header");
                msg.payload.extend(hex_bytes(cells[1]));
            }
            _ if label.starts_with("len |flags| type") => {
                let msg = out.last_mut().expect("an attribute after a header");
                let len: u16 = cells[1].parse().expect("decimal attribute length");
                let flags = cells[2];
                let mut kind: u16 = cells[3].parse().expect("decimal attribute type");
                if flags.starts_with('N') {
                    kind |= 0x8000;
                }
                if flags.ends_with('B') {
                    kind |= 0x4000;
                }
                msg.payload.extend_from_slice(&len.to_ne_bytes());
                msg.payload.extend_from_slice(&kind.to_ne_bytes());
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuilds_a_table_message() {
        let text = "----------------\t------------------\n\
|  0000000040  |\t| message length |\n\
| 02560 | R--- |\t|  type | flags  |\n\
|  0000000001  |\t| sequence number|\n\
|  0000000000  |\t|     port ID    |\n\
----------------\t------------------\n\
| 01 00 00 00  |\t|  extra header  |\n\
|\x1b[1;31m00010\x1b[0m|\x1b[1;32m--\x1b[0m|\x1b[1;34m00001\x1b[0m|\t|len |flags| type|\n\
| 62 61 74 6f  |\t|      data      |\t b a t o\n\
| 6e 00 00 00  |\t|      data      |\t n      \n\
|00008|N-|00002|\t|len |flags| type|\n";
        let msgs = parse(text);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].kind, 2560);
        let mut want = vec![1, 0, 0, 0];
        want.extend_from_slice(&10u16.to_ne_bytes());
        want.extend_from_slice(&1u16.to_ne_bytes());
        want.extend_from_slice(b"baton\0\0\0");
        want.extend_from_slice(&8u16.to_ne_bytes());
        want.extend_from_slice(&0x8002u16.to_ne_bytes());
        assert_eq!(msgs[0].payload, want);
    }
}
