//! Classic pcap files (the format `tcpdump -r` and Wireshark read) of Ethernet frames.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// Largest frame length recorded whole.
const SNAPLEN: u32 = 65535;
/// Link type 1: Ethernet.
const LINKTYPE_ETHERNET: u32 = 1;

/// Writes a pcap stream: the file header on creation, then one record per frame.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the 24-byte file header (little-endian, microsecond timestamps).
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // magic
        h.extend_from_slice(&2u16.to_le_bytes()); // version major
        h.extend_from_slice(&4u16.to_le_bytes()); // version minor
        h.extend_from_slice(&0i32.to_le_bytes()); // time zone offset
        h.extend_from_slice(&0u32.to_le_bytes()); // timestamp accuracy
        h.extend_from_slice(&SNAPLEN.to_le_bytes());
        h.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out })
    }

    /// Appends one frame seen at `at`.
    pub fn write_frame(&mut self, at: SystemTime, frame: &[u8]) -> io::Result<()> {
        let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let kept = &frame[..frame.len().min(SNAPLEN as usize)];
        let mut r = Vec::with_capacity(16 + kept.len());
        r.extend_from_slice(&(since.as_secs() as u32).to_le_bytes());
        r.extend_from_slice(&since.subsec_micros().to_le_bytes());
        r.extend_from_slice(&(kept.len() as u32).to_le_bytes());
        r.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        r.extend_from_slice(kept);
        self.out.write_all(&r)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn writes_header_and_records() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let at = UNIX_EPOCH + Duration::new(1_700_000_000, 250_000_000);
        w.write_frame(at, &[0xff; 14]).unwrap();
        let bytes = w.out;
        assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(&bytes[20..24], &[1, 0, 0, 0]);
        let rec = &bytes[24..];
        assert_eq!(&rec[0..4], &1_700_000_000u32.to_le_bytes());
        assert_eq!(&rec[4..8], &250_000u32.to_le_bytes());
        assert_eq!(&rec[8..12], &14u32.to_le_bytes());
        assert_eq!(&rec[12..16], &14u32.to_le_bytes());
        assert_eq!(rec.len(), 16 + 14);
    }
}
