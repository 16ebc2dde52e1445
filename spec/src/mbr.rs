//! The card's partition table as the image builder writes it and the init and the QEMU runner
//! read it: the master boot record in sector 0. The partition numbers are in
//! [`crate::build_info::partition`].
//!
//! Sector 0 layout: boot code (0-439, never run by the Pi boot ROM or UEFI, left zero), disk
//! signature (440-443, little-endian; Linux shows it as the `PARTUUID` prefix), two reserved
//! bytes, four 16-byte partition entries from 446, boot signature `55 AA` at 510. An entry is:
//! status (1, 0x80 = active), CHS of the first sector (3), type (1), CHS of the last sector (3),
//! LBA of the first sector (4, little-endian), number of sectors (4, little-endian).
//!
//! Only LBA addressing matters to anything that reads our cards; the CHS fields are filled in the
//! way fdisk does for LBA-only disks so no tool flags them.
//!
//! Two ways in: [`Mbr::parse`] is strict and builds the whole table (the builder and
//! `baton image inspect`); [`entry`], [`entries`], [`grow_target`] and [`set_length`] work on the
//! raw sector and touch nothing but what they name (the init, which rewrites one entry in place,
//! and the QEMU runner, which only needs partition 1).

use std::io::{self, Read, Seek, SeekFrom, Write};

/// Bytes per sector; every LBA in an MBR counts these.
pub const SECTOR_SIZE: u64 = 512;
/// Partitions end on a 4 MiB boundary (good for SD card erase blocks).
pub const ALIGN_SECTORS: u64 = 4 * 1024 * 1024 / SECTOR_SIZE;

/// Partition type: FAT32 addressed by LBA (what the Pi firmware looks for).
pub const TYPE_FAT32_LBA: u8 = 0x0c;
/// Partition type: Linux native file system.
pub const TYPE_LINUX: u8 = 0x83;

/// Offset of the disk signature.
const DISK_ID_AT: usize = 440;
/// Offset of the first partition entry.
const ENTRIES_AT: usize = 446;
/// Bytes per partition entry.
const ENTRY_LEN: usize = 16;
/// The boot signature at 510..512.
const BOOT_SIGNATURE: [u8; 2] = [0x55, 0xaa];

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

    /// One past the last sector.
    pub fn end_lba(&self) -> u64 {
        u64::from(self.start_lba) + u64::from(self.sectors)
    }

    /// The 16 bytes of the entry.
    fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut e = [0u8; ENTRY_LEN];
        e[0] = if self.bootable { 0x80 } else { 0x00 };
        e[1..4].copy_from_slice(&chs(u64::from(self.start_lba)));
        e[4] = self.kind;
        e[5..8].copy_from_slice(&chs(self.end_lba().saturating_sub(1)));
        e[8..12].copy_from_slice(&self.start_lba.to_le_bytes());
        e[12..16].copy_from_slice(&self.sectors.to_le_bytes());
        e
    }

    /// The status byte and the fields of a 16-byte entry, whatever they hold.
    fn decode(e: &[u8]) -> (u8, Self) {
        let le = |i: usize| u32::from_le_bytes([e[i], e[i + 1], e[i + 2], e[i + 3]]);
        let part = Self {
            bootable: e[0] == 0x80,
            kind: e[4],
            start_lba: le(8),
            sectors: le(12),
        };
        (e[0], part)
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
    /// The 512 bytes of sector 0: zero boot code, the disk signature, the entries (empty slots
    /// all zero) and the boot signature.
    pub fn to_bytes(&self) -> [u8; 512] {
        let mut s = [0u8; 512];
        s[DISK_ID_AT..DISK_ID_AT + 4].copy_from_slice(&self.disk_id.to_le_bytes());
        for (i, p) in self.partitions.iter().enumerate() {
            if let Some(p) = p {
                let at = ENTRIES_AT + ENTRY_LEN * i;
                s[at..at + ENTRY_LEN].copy_from_slice(&p.encode());
            }
        }
        s[510..512].copy_from_slice(&BOOT_SIGNATURE);
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

    /// Parses sector 0 strictly: an entry with a non-zero type must have a valid status byte and
    /// a non-zero start and length.
    pub fn parse(s: &[u8; 512]) -> Result<Self, MbrError> {
        let disk_id = disk_id(s)?;
        let mut partitions = [None; 4];
        for (i, slot) in partitions.iter_mut().enumerate() {
            let at = ENTRIES_AT + ENTRY_LEN * i;
            let (status, part) = MbrPartition::decode(&s[at..at + ENTRY_LEN]);
            if part.kind == 0 {
                continue;
            }
            let bad = |reason| MbrError::BadEntry {
                index: i + 1,
                reason,
            };
            if status != 0x00 && status != 0x80 {
                return Err(bad("status byte is neither 0x00 nor 0x80"));
            }
            if part.start_lba == 0 || part.sectors == 0 {
                return Err(bad("start or length is zero"));
            }
            *slot = Some(part);
        }
        Ok(Self {
            disk_id,
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

/// The disk signature of `sector0`, if it carries the MBR boot signature.
pub fn disk_id(sector0: &[u8; 512]) -> Result<u32, MbrError> {
    if sector0[510..512] != BOOT_SIGNATURE {
        return Err(MbrError::NoSignature([sector0[510], sector0[511]]));
    }
    let d = &sector0[DISK_ID_AT..DISK_ID_AT + 4];
    Ok(u32::from_le_bytes([d[0], d[1], d[2], d[3]]))
}

/// Offset of entry `number` (1-4) in sector 0.
fn entry_offset(number: u32) -> Option<usize> {
    let index = usize::try_from(number.checked_sub(1)?).ok()?;
    (index < 4).then_some(ENTRIES_AT + index * ENTRY_LEN)
}

/// Entry `number` (1-4) of `sector0`, if it is in use (non-zero type and length). Lenient: the
/// boot signature and the status byte are not checked.
pub fn entry(sector0: &[u8; 512], number: u32) -> Option<MbrPartition> {
    let at = entry_offset(number)?;
    let (_, part) = MbrPartition::decode(&sector0[at..at + ENTRY_LEN]);
    (part.kind != 0 && part.sectors != 0).then_some(part)
}

/// The entries of `sector0` in use, with their numbers (1-4), in order; as lenient as [`entry`].
pub fn entries(sector0: &[u8; 512]) -> impl Iterator<Item = (u32, MbrPartition)> + '_ {
    (1..=4).filter_map(|n| entry(sector0, n).map(|part| (n, part)))
}

/// The new length of partition `number` if it should grow to fill a disk of `disk_sectors`:
/// only the partition that ends last may grow, its new end is the disk's end aligned down to
/// [`ALIGN_SECTORS`] (and within the MBR's 32-bit limit), and it grows only if that gains at
/// least one alignment unit. `None` means leave it alone.
pub fn grow_target(sector0: &[u8; 512], number: u32, disk_sectors: u64) -> Option<u32> {
    let part = entry(sector0, number)?;
    let last_end = entries(sector0).map(|(_, e)| e.end_lba()).max()?;
    if part.end_lba() != last_end {
        return None;
    }
    let limit = disk_sectors.min(u64::from(u32::MAX));
    let new_end = limit / ALIGN_SECTORS * ALIGN_SECTORS;
    if new_end < part.end_lba() + ALIGN_SECTORS {
        return None;
    }
    u32::try_from(new_end - u64::from(part.start_lba)).ok()
}

/// Sets the length of entry `number` to `sectors`, with a matching CHS end address; no other
/// byte of `sector0` changes. Does nothing if the entry is not in use.
pub fn set_length(sector0: &mut [u8; 512], number: u32, sectors: u32) {
    let (Some(at), Some(part)) = (entry_offset(number), entry(sector0, number)) else {
        return;
    };
    let last = (u64::from(part.start_lba) + u64::from(sectors)).saturating_sub(1);
    sector0[at + 5..at + 8].copy_from_slice(&chs(last));
    sector0[at + 12..at + 16].copy_from_slice(&sectors.to_le_bytes());
}

/// The CHS address of `lba` in the 255-head, 63-sector geometry every tool assumes for LBA
/// disks; addresses beyond cylinder 1023 saturate to 1023/254/63, as fdisk writes them.
pub fn chs(lba: u64) -> [u8; 3] {
    const HEADS: u64 = 255;
    const SECTORS: u64 = 63;
    let cylinder = lba / (HEADS * SECTORS);
    if cylinder > 1023 {
        return [0xfe, 0xff, 0xff];
    }
    let head = (lba / SECTORS) % HEADS;
    let sector = lba % SECTORS + 1;
    // Byte 1: head (< 255). Byte 2: sector (<= 63) in bits 0-5, cylinder bits 8-9 in bits 6-7.
    // Byte 3: cylinder bits 0-7.
    [
        head as u8,
        (sector as u8) | (((cylinder >> 8) as u8) << 6),
        (cylinder & 0xff) as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u32 = 2048; // sectors

    /// An inactive entry.
    fn part(kind: u8, start_lba: u32, sectors: u32) -> Option<MbrPartition> {
        Some(MbrPartition {
            bootable: false,
            kind,
            start_lba,
            sectors,
        })
    }

    fn sample() -> Mbr {
        let boot = MbrPartition {
            bootable: true,
            kind: TYPE_FAT32_LBA,
            start_lba: 8192,
            sectors: 8192,
        };
        Mbr {
            disk_id: 0x1234_abcd,
            partitions: [Some(boot), None, part(TYPE_LINUX, 16384, 20_000_000), None],
        }
    }

    /// Like the builder's layout: boot A, boot B, config, data; data ends at 1 GiB.
    fn image() -> [u8; 512] {
        Mbr {
            disk_id: 0xB470_0001,
            partitions: [
                part(0x0c, 4 * MIB, 256 * MIB),
                part(0x0c, 260 * MIB, 256 * MIB),
                part(0x0c, 516 * MIB, 64 * MIB),
                part(0x83, 580 * MIB, 444 * MIB),
            ],
        }
        .to_bytes()
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
        // Nothing but the signature, the entries and the boot signature is written.
        assert!(b[..440].iter().chain(&b[444..446]).all(|&x| x == 0));
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
        assert!(matches!(disk_id(&b), Err(MbrError::NoSignature([0x55, 0]))));
        assert_eq!(disk_id(&sample().to_bytes()).ok(), Some(0x1234_abcd));
    }

    #[test]
    fn parse_rejects_unusable_entries_that_the_lenient_reader_passes_over() {
        let mut b = sample().to_bytes();
        b[446] = 0x01;
        assert!(matches!(
            Mbr::parse(&b),
            Err(MbrError::BadEntry { index: 1, .. })
        ));
        assert_eq!(entry(&b, 1).map(|p| p.start_lba), Some(8192));

        let mut b = sample().to_bytes();
        b[478 + 12..478 + 16].fill(0);
        assert!(matches!(
            Mbr::parse(&b),
            Err(MbrError::BadEntry { index: 3, .. })
        ));
        assert_eq!(entry(&b, 3), None);
    }

    #[test]
    fn reads_and_writes_through_io_traits() {
        let mut disk = io::Cursor::new(vec![0xffu8; 2048]);
        sample().write_to(&mut disk).expect("write");
        assert_eq!(disk.get_ref()[512..], [0xffu8; 1536]);
        assert_eq!(Mbr::read_from(&mut disk).expect("read"), sample());
        let short = Mbr::read_from(&mut io::Cursor::new(vec![0u8; 100]));
        assert!(matches!(
            short,
            Err(MbrError::Io {
                action: "reading",
                ..
            })
        ));
    }

    /// Writes only the type, start and length of entry `slot` (0-3), as some tools do.
    fn put(sector: &mut [u8; 512], slot: usize, kind: u8, lba: u32, sectors: u32) {
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
        put(&mut s, 0, 0x0c, 2048, 131072);
        put(&mut s, 3, 0x83, 400000, 1000);
        assert!(disk_id(&s).is_ok());
        let parts: Vec<_> = entries(&s)
            .map(|(n, p)| (n, p.kind, p.offset(), p.size()))
            .collect();
        assert_eq!(
            parts,
            [
                (1, 0x0c, 2048 * 512, 131072 * 512),
                (4, 0x83, 400000 * 512, 1000 * 512),
            ]
        );
    }

    #[test]
    fn a_sector_without_boot_signature_is_no_table() {
        let mut s = [0u8; 512];
        put(&mut s, 0, 0x0c, 2048, 100);
        assert!(matches!(disk_id(&s), Err(MbrError::NoSignature([0, 0]))));
    }

    #[test]
    fn grows_the_last_partition_to_the_aligned_end() {
        // A "16 GB" card that is not a multiple of 4 MiB.
        let disk = 31_116_288u64;
        let new = grow_target(&image(), 4, disk).expect("grows");
        let end = u64::from(580 * MIB) + u64::from(new);
        assert_eq!(end % ALIGN_SECTORS, 0);
        assert!(end <= disk && disk - end < ALIGN_SECTORS);
    }

    #[test]
    fn leaves_a_disk_that_is_already_full_alone() {
        assert_eq!(grow_target(&image(), 4, u64::from(1024 * MIB)), None);
        // Less than one alignment unit to gain.
        assert_eq!(
            grow_target(&image(), 4, u64::from(1024 * MIB + 3 * MIB)),
            None
        );
        // Only the partition that ends last may grow.
        assert_eq!(grow_target(&image(), 3, 31_116_288), None);
        // Unused entries never grow.
        let mut s = image();
        s[446 + 48..446 + 64].fill(0);
        assert_eq!(grow_target(&s, 4, 31_116_288), None);
    }

    #[test]
    fn caps_at_the_mbr_limit() {
        let new = grow_target(&image(), 4, 10 * (1u64 << 32)).expect("grows");
        let end = u64::from(580 * MIB) + u64::from(new);
        assert!(end <= u64::from(u32::MAX));
        assert_eq!(end % ALIGN_SECTORS, 0);
    }

    #[test]
    fn rewrites_exactly_the_length_and_chs_end() {
        let before = image();
        let mut after = before;
        set_length(&mut after, 4, 0x0100_0000);
        let changed: Vec<usize> = (0..512).filter(|&i| before[i] != after[i]).collect();
        // Entry 4 starts at 494: CHS end is 499..502, length 506..510.
        assert!(changed
            .iter()
            .all(|i| (499..502).contains(i) || (506..510).contains(i)));
        assert_eq!(&after[499..502], &[0xFE, 0xFF, 0xFF]);
        assert_eq!(&after[506..510], &[0x00, 0x00, 0x00, 0x01]);
        assert_eq!(entry(&after, 4).map(|e| e.sectors), Some(0x0100_0000));
    }

    #[test]
    fn chs_matches_known_values() {
        assert_eq!(chs(0), [0, 1, 0]);
        assert_eq!(chs(2048), [32, 33, 0]);
        // The last addressable CHS sector and the first beyond it.
        assert_eq!(chs(1024 * 255 * 63 - 1), [254, 0xFF, 0xFF]);
        assert_eq!(chs(1024 * 255 * 63), [0xFE, 0xFF, 0xFF]);
    }
}
