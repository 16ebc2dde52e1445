//! The parts of an MBR the init reads and rewrites: partition entries and the grow decision.
//!
//! Sector 0 layout: bootstrap code (0-439), disk signature (440-443), two reserved bytes, four
//! 16-byte partition entries from 446, boot signature `55 AA` at 510. An entry is:
//! status (1), CHS of the first sector (3), type (1), CHS of the last sector (3),
//! LBA of the first sector (4, little-endian), number of sectors (4, little-endian).

/// Sector size the MBR counts in.
pub const SECTOR: u64 = 512;
/// Partitions end on a 4 MiB boundary (good for SD card erase blocks).
pub const ALIGN_SECTORS: u64 = 4 * 1024 * 1024 / SECTOR;
/// Offset of the first partition entry.
const ENTRIES: usize = 446;

/// One partition entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Partition type byte (0x83 Linux, 0x0c FAT32 LBA, ...).
    pub kind: u8,
    /// First sector.
    pub start: u32,
    /// Length in sectors.
    pub sectors: u32,
}

impl Entry {
    /// One past the last sector.
    pub fn end(&self) -> u64 {
        u64::from(self.start) + u64::from(self.sectors)
    }
}

fn offset(number: u32) -> Option<usize> {
    let index = usize::try_from(number.checked_sub(1)?).ok()?;
    (index < 4).then_some(ENTRIES + index * 16)
}

/// Entry `number` (1-4) of `sector0`, if it is in use.
pub fn entry(sector0: &[u8; 512], number: u32) -> Option<Entry> {
    let at = offset(number)?;
    let e = &sector0[at..at + 16];
    let le = |i: usize| u32::from_le_bytes([e[i], e[i + 1], e[i + 2], e[i + 3]]);
    let entry = Entry {
        kind: e[4],
        start: le(8),
        sectors: le(12),
    };
    (entry.kind != 0 && entry.sectors != 0).then_some(entry)
}

/// The new length of partition `number` if it should grow to fill a disk of `disk_sectors`:
/// only the partition that ends last may grow, its new end is the disk's end aligned down to
/// [`ALIGN_SECTORS`] (and within the MBR's 32-bit limit), and it grows only if that gains at
/// least one alignment unit. `None` means leave it alone.
pub fn grow_target(sector0: &[u8; 512], number: u32, disk_sectors: u64) -> Option<u32> {
    let part = entry(sector0, number)?;
    let last_end = (1..=4)
        .filter_map(|n| entry(sector0, n))
        .map(|e| e.end())
        .max()?;
    if part.end() != last_end {
        return None;
    }
    let limit = disk_sectors.min(u64::from(u32::MAX));
    let new_end = limit / ALIGN_SECTORS * ALIGN_SECTORS;
    if new_end < part.end() + ALIGN_SECTORS {
        return None;
    }
    u32::try_from(new_end - u64::from(part.start)).ok()
}

/// Sets the length of entry `number` to `sectors`, with a matching CHS end address.
pub fn set_length(sector0: &mut [u8; 512], number: u32, sectors: u32) {
    let (Some(at), Some(part)) = (offset(number), entry(sector0, number)) else {
        return;
    };
    let last = u64::from(part.start) + u64::from(sectors) - 1;
    sector0[at + 5..at + 8].copy_from_slice(&chs(last));
    sector0[at + 12..at + 16].copy_from_slice(&sectors.to_le_bytes());
}

/// The CHS address of `lba` for the usual 255-head, 63-sector geometry; addresses beyond
/// cylinder 1023 are written as 1023/254/63, as every partitioning tool does.
pub fn chs(lba: u64) -> [u8; 3] {
    const HEADS: u64 = 255;
    const SECTORS: u64 = 63;
    let cylinder = lba / (HEADS * SECTORS);
    if cylinder > 1023 {
        return [0xFE, 0xFF, 0xFF];
    }
    let head = (lba / SECTORS) % HEADS;
    let sector = lba % SECTORS + 1;
    // Each value is bounded above (head < 255, sector <= 63, cylinder <= 1023).
    [
        head as u8,
        (sector as u8) | (((cylinder >> 8) as u8) << 6),
        (cylinder & 0xFF) as u8,
    ]
}

/// Test helper: a sector 0 with `signature` and `(number, kind, start, sectors)` entries.
#[cfg(test)]
pub fn build(signature: u32, entries: &[(u32, u8, u32, u32)]) -> [u8; 512] {
    let mut s = [0u8; 512];
    s[440..444].copy_from_slice(&signature.to_le_bytes());
    for &(number, kind, start, sectors) in entries {
        let at = offset(number).expect("entry 1-4");
        s[at + 1..at + 4].copy_from_slice(&chs(u64::from(start)));
        s[at + 4] = kind;
        s[at + 5..at + 8].copy_from_slice(&chs(u64::from(start) + u64::from(sectors) - 1));
        s[at + 8..at + 12].copy_from_slice(&start.to_le_bytes());
        s[at + 12..at + 16].copy_from_slice(&sectors.to_le_bytes());
    }
    s[510] = 0x55;
    s[511] = 0xAA;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u32 = 2048; // sectors

    fn image() -> [u8; 512] {
        // Like the builder's layout: boot A, boot B, config, data; data ends at 1 GiB.
        build(
            0xB470_0001,
            &[
                (1, 0x0c, 4 * MIB, 256 * MIB),
                (2, 0x0c, 260 * MIB, 256 * MIB),
                (3, 0x0c, 516 * MIB, 64 * MIB),
                (4, 0x83, 580 * MIB, 444 * MIB),
            ],
        )
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
