//! The four primary entries of an MBR partition table: just enough to find a partition's bytes.

/// Size of a sector as the MBR counts them.
pub const SECTOR: u64 = 512;

/// One used primary partition entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// Partition number, 1 to 4 (as in `/dev/vda1`).
    pub number: u8,
    /// Partition type byte (0x0c is FAT32 with LBA, 0x83 is Linux).
    pub kind: u8,
    /// Offset of the first byte from the start of the disk.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
}

/// Parses the partition table of a 512-byte MBR sector. Returns `None` when the boot signature
/// (0x55 0xAA at offset 510) is missing; otherwise the used entries (type byte not 0), in order.
pub fn parse(sector: &[u8; 512]) -> Option<Vec<Partition>> {
    if sector[510..512] != [0x55, 0xAA] {
        return None;
    }
    let mut parts = Vec::new();
    for (i, entry) in sector[446..510].chunks_exact(16).enumerate() {
        // Each 16-byte entry: status, CHS start (3), type, CHS end (3), LBA start (4), sectors (4).
        let kind = entry[4];
        let lba = u32::from_le_bytes([entry[8], entry[9], entry[10], entry[11]]);
        let sectors = u32::from_le_bytes([entry[12], entry[13], entry[14], entry[15]]);
        if kind == 0 || sectors == 0 {
            continue;
        }
        parts.push(Partition {
            number: (i + 1) as u8,
            kind,
            start: u64::from(lba) * SECTOR,
            len: u64::from(sectors) * SECTOR,
        });
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sector: &mut [u8; 512], slot: usize, kind: u8, lba: u32, sectors: u32) {
        let e = &mut sector[446 + 16 * slot..446 + 16 * (slot + 1)];
        e[4] = kind;
        e[8..12].copy_from_slice(&lba.to_le_bytes());
        e[12..16].copy_from_slice(&sectors.to_le_bytes());
    }

    #[test]
    fn reads_used_entries_in_bytes() {
        let mut s = [0u8; 512];
        s[510] = 0x55;
        s[511] = 0xAA;
        entry(&mut s, 0, 0x0c, 2048, 131072);
        entry(&mut s, 3, 0x83, 400000, 1000);
        let parts = parse(&s).unwrap();
        assert_eq!(
            parts,
            vec![
                Partition {
                    number: 1,
                    kind: 0x0c,
                    start: 2048 * 512,
                    len: 131072 * 512
                },
                Partition {
                    number: 4,
                    kind: 0x83,
                    start: 400000 * 512,
                    len: 1000 * 512
                },
            ]
        );
    }

    #[test]
    fn rejects_missing_signature() {
        let mut s = [0u8; 512];
        entry(&mut s, 0, 0x0c, 2048, 100);
        assert_eq!(parse(&s), None);
    }
}
