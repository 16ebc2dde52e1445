//! The master boot record: the first 512 bytes of the card, which the Pi boot ROM reads to find the
//! FAT boot partition. Only LBA addressing matters to anything that reads our cards; the CHS fields
//! are filled in the way fdisk does for LBA-only disks so no tool flags them.

use std::io::{self, Read, Seek, SeekFrom, Write};

/// Bytes per sector; every LBA in an MBR counts these.
pub const SECTOR_SIZE: u64 = 512;

/// Partition type: FAT32 addressed by LBA (what the Pi firmware looks for).
pub const TYPE_FAT32_LBA: u8 = 0x0c;
/// Partition type: Linux native file system.
pub const TYPE_LINUX: u8 = 0x83;

/// Failures writing or parsing an MBR.
#[derive(Debug, thiserror::Error)]
pub enum MbrError {
    /// The sector does not end in 0x55 0xAA.
    #[error("no MBR boot signature (0x55AA) at bytes 510..512, found {0:02x?}")]
    NoSignature([u8; 2]),
    /// An entry has a non-zero type but is unusable.
    #[error("MBR partition {index}: {reason}")]
    BadEntry {
        /// 1-based partition number.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Reading or writing sector 0 failed.
    #[error("{action} the MBR: {source}")]
    Io {
        /// "reading" or "writing".
        action: &'static str,
        /// The underlying error.
        source: io::Error,
    },
}

/// One primary partition entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MbrPartition {
    /// Marked active (boot flag 0x80).
    pub bootable: bool,
    /// Partition type byte, e.g. [`TYPE_FAT32_LBA`].
    pub kind: u8,
    /// First sector.
    pub start_lba: u32,
    /// Length in sectors.
    pub sectors: u32,
}

impl MbrPartition {
    /// Byte offset of the partition on the disk.
    pub fn offset(&self) -> u64 {
        u64::from(self.start_lba) * SECTOR_SIZE
    }

    /// Size of the partition in bytes.
    pub fn size(&self) -> u64 {
        u64::from(self.sectors) * SECTOR_SIZE
    }
}

/// A whole MBR: the disk signature and the four primary slots.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mbr {
    /// 32-bit disk identifier; Linux shows it as the `PARTUUID` prefix (`<disk_id>-01`).
    pub disk_id: u32,
    /// The four primary entries; `None` is an empty slot.
    pub partitions: [Option<MbrPartition>; 4],
}

impl Mbr {
    /// The 512 bytes of sector 0.
    pub fn to_bytes(&self) -> [u8; 512] {
        let mut s = [0u8; 512];
        // 0..440: boot code. The Pi boot ROM and UEFI never run it; left zero.
        // 440..444: disk signature, little endian.
        s[440..444].copy_from_slice(&self.disk_id.to_le_bytes());
        // 444..446: "copy protected" marker; zero.
        // 446..510: four 16-byte partition entries.
        for (i, p) in self.partitions.iter().enumerate() {
            if let Some(p) = p {
                let e = &mut s[446 + 16 * i..446 + 16 * (i + 1)];
                // +0: status, 0x80 = active.
                e[0] = if p.bootable { 0x80 } else { 0x00 };
                // +1..4: CHS of the first sector.
                e[1..4].copy_from_slice(&chs(p.start_lba));
                // +4: partition type.
                e[4] = p.kind;
                // +5..8: CHS of the last sector.
                e[5..8].copy_from_slice(&chs(p.start_lba + p.sectors.saturating_sub(1)));
                // +8..12: first sector (LBA), little endian.
                e[8..12].copy_from_slice(&p.start_lba.to_le_bytes());
                // +12..16: number of sectors, little endian.
                e[12..16].copy_from_slice(&p.sectors.to_le_bytes());
            }
        }
        // 510..512: boot signature.
        s[510] = 0x55;
        s[511] = 0xaa;
        s
    }

    /// Writes sector 0 at the start of `out`.
    pub fn write_to<W: Write + Seek>(&self, out: &mut W) -> Result<(), MbrError> {
        let io = |source| MbrError::Io {
            action: "writing",
            source,
        };
        out.seek(SeekFrom::Start(0)).map_err(io)?;
        out.write_all(&self.to_bytes()).map_err(io)
    }

    /// Parses sector 0.
    pub fn parse(s: &[u8; 512]) -> Result<Self, MbrError> {
        if s[510..512] != [0x55, 0xaa] {
            return Err(MbrError::NoSignature([s[510], s[511]]));
        }
        let mut partitions = [None; 4];
        for (i, slot) in partitions.iter_mut().enumerate() {
            let e = &s[446 + 16 * i..446 + 16 * (i + 1)];
            let kind = e[4];
            if kind == 0 {
                continue;
            }
            let bad = |reason| MbrError::BadEntry {
                index: i + 1,
                reason,
            };
            let bootable = match e[0] {
                0x00 => false,
                0x80 => true,
                _ => return Err(bad("status byte is neither 0x00 nor 0x80")),
            };
            let start_lba = u32::from_le_bytes([e[8], e[9], e[10], e[11]]);
            let sectors = u32::from_le_bytes([e[12], e[13], e[14], e[15]]);
            if start_lba == 0 || sectors == 0 {
                return Err(bad("start or length is zero"));
            }
            *slot = Some(MbrPartition {
                bootable,
                kind,
                start_lba,
                sectors,
            });
        }
        Ok(Self {
            disk_id: u32::from_le_bytes([s[440], s[441], s[442], s[443]]),
            partitions,
        })
    }

    /// Reads and parses sector 0 of `input`.
    pub fn read_from<R: Read + Seek>(input: &mut R) -> Result<Self, MbrError> {
        let io = |source| MbrError::Io {
            action: "reading",
            source,
        };
        let mut s = [0u8; 512];
        input.seek(SeekFrom::Start(0)).map_err(io)?;
        input.read_exact(&mut s).map_err(io)?;
        Self::parse(&s)
    }
}

/// CHS address of `lba` in the 255-head, 63-sector geometry every tool assumes for LBA disks;
/// addresses beyond cylinder 1023 saturate to 1023/254/63, as fdisk writes them.
fn chs(lba: u32) -> [u8; 3] {
    const HEADS: u32 = 255;
    const SECTORS: u32 = 63;
    let cylinder = lba / (HEADS * SECTORS);
    if cylinder > 1023 {
        return [0xfe, 0xff, 0xff];
    }
    let head = (lba / SECTORS) % HEADS;
    let sector = lba % SECTORS + 1;
    // Byte 1: head. Byte 2: sector in bits 0-5, cylinder bits 8-9 in bits 6-7. Byte 3: cylinder bits 0-7.
    [
        head as u8,
        (sector as u8) | (((cylinder >> 8) as u8) << 6),
        cylinder as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Mbr {
        Mbr {
            disk_id: 0x1234_abcd,
            partitions: [
                Some(MbrPartition {
                    bootable: true,
                    kind: TYPE_FAT32_LBA,
                    start_lba: 8192,
                    sectors: 8192,
                }),
                None,
                Some(MbrPartition {
                    bootable: false,
                    kind: TYPE_LINUX,
                    start_lba: 16384,
                    sectors: 20_000_000,
                }),
                None,
            ],
        }
    }

    #[test]
    fn writes_known_bytes() {
        let b = sample().to_bytes();
        assert_eq!(&b[440..444], &[0xcd, 0xab, 0x34, 0x12]);
        // Entry 1: active, CHS 0/130/3 to 1/5/4, type 0x0c, LBA 8192, 8192 sectors.
        assert_eq!(
            &b[446..462],
            &[0x80, 130, 3, 0, 0x0c, 5, 4, 1, 0, 0x20, 0, 0, 0, 0x20, 0, 0]
        );
        // Entry 2 empty.
        assert_eq!(&b[462..478], &[0u8; 16]);
        // Entry 3 ends beyond cylinder 1023: saturated end CHS.
        assert_eq!(&b[478 + 5..478 + 8], &[0xfe, 0xff, 0xff]);
        assert_eq!(&b[510..], &[0x55, 0xaa]);
    }

    #[test]
    fn parse_round_trips() {
        let m = sample();
        assert_eq!(Mbr::parse(&m.to_bytes()).expect("parse"), m);
    }

    #[test]
    fn parse_rejects_missing_signature() {
        let mut b = sample().to_bytes();
        b[511] = 0;
        assert!(matches!(Mbr::parse(&b), Err(MbrError::NoSignature(_))));
    }
}
