//! Where the parts of a FAT32 file system go, and its boot sector and FSInfo sector.

use super::{FatError, FatOptions};

/// Bytes per sector.
pub const SECTOR: u64 = 512;
/// Minimum reserved sectors (boot sector, FSInfo, backups at 6 and 7, room to spare), as mkfs.fat.
const MIN_RESERVED: u64 = 32;
/// Number of FAT copies.
pub const FATS: u64 = 2;
/// The fewest clusters a volume can have and still be FAT32 (fewer is read as FAT16).
const MIN_CLUSTERS: u64 = 65_525;
/// The most clusters FAT32 can address.
const MAX_CLUSTERS: u64 = 0x0fff_fff5 - 2;
/// Sector of the FSInfo structure, and of the backup boot sector.
const FSINFO_SECTOR: u16 = 1;
const BACKUP_BOOT_SECTOR: u16 = 6;

/// The computed layout of one FAT32 volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Total sectors.
    pub sectors: u64,
    /// Sectors per cluster.
    pub sectors_per_cluster: u64,
    /// Reserved sectors before the first FAT.
    pub reserved: u64,
    /// Sectors per FAT copy.
    pub fat_sectors: u64,
    /// Clusters in the data area (numbered from 2).
    pub clusters: u64,
}

impl Geometry {
    /// The layout mkfs.fat would choose for a partition of `size` bytes.
    pub fn for_size(size: u64) -> Result<Self, FatError> {
        let bad = |reason| FatError::BadSize { size, reason };
        if size % SECTOR != 0 {
            return Err(bad("not a multiple of 512 bytes"));
        }
        let sectors = size / SECTOR;
        if sectors > u64::from(u32::MAX) {
            return Err(bad("more than 2^32 sectors"));
        }
        // Microsoft's cluster sizes for FAT32, which mkfs.fat copies.
        let mib = size >> 20;
        let sectors_per_cluster = match mib {
            0..=260 => 1,
            261..=8192 => 8,
            8193..=16384 => 16,
            16385..=32768 => 32,
            _ => 64,
        };
        // Grow the FAT until it has an entry for every cluster left beside it; pad the reserved
        // area so the data area starts on a cluster boundary, as mkfs.fat aligns it.
        // Start from the smallest FAT that could do: entries for (data sectors / cluster size) + 2.
        let mut fat_sectors = ((sectors.saturating_sub(MIN_RESERVED) + 2 * sectors_per_cluster)
            * 4)
        .div_ceil(SECTOR * sectors_per_cluster + FATS * 4)
        .max(1);
        loop {
            let reserved = aligned_reserved(fat_sectors, sectors_per_cluster);
            let data = sectors
                .checked_sub(reserved + FATS * fat_sectors)
                .ok_or_else(|| bad("no room for the FATs"))?;
            let clusters = data / sectors_per_cluster;
            let needed = ((clusters + 2) * 4).div_ceil(SECTOR);
            if needed <= fat_sectors {
                if clusters < MIN_CLUSTERS {
                    return Err(bad("fewer than 65525 clusters (make it at least 33 MiB)"));
                }
                if clusters > MAX_CLUSTERS {
                    return Err(bad("more clusters than FAT32 can address"));
                }
                return Ok(Self {
                    sectors,
                    sectors_per_cluster,
                    reserved,
                    fat_sectors,
                    clusters,
                });
            }
            fat_sectors = needed;
        }
    }

    /// Bytes per cluster.
    pub fn cluster_size(&self) -> u64 {
        self.sectors_per_cluster * SECTOR
    }

    /// Byte offset of FAT copy `n` (0 or 1).
    pub fn fat_offset(&self, n: u64) -> u64 {
        (self.reserved + n * self.fat_sectors) * SECTOR
    }

    /// Byte offset of cluster `c` (2 is the first).
    pub fn cluster_offset(&self, c: u32) -> u64 {
        (self.reserved + FATS * self.fat_sectors) * SECTOR
            + (u64::from(c) - 2) * self.cluster_size()
    }

    /// The boot sector (also written as the backup at sector 6).
    pub fn boot_sector(&self, opts: &FatOptions, label: &[u8; 11]) -> [u8; 512] {
        let mut s = [0u8; 512];
        // 0..3: jump over the parameter block to the boot code at 0x5a.
        s[0..3].copy_from_slice(&[0xeb, 0x58, 0x90]);
        // 3..11: OEM name.
        s[3..11].copy_from_slice(b"BATON   ");
        // 11..13: bytes per sector. 13: sectors per cluster. 14..16: reserved sectors. 16: FAT count.
        s[11..13].copy_from_slice(&(SECTOR as u16).to_le_bytes());
        s[13] = self.sectors_per_cluster as u8;
        s[14..16].copy_from_slice(&(self.reserved as u16).to_le_bytes());
        s[16] = FATS as u8;
        // 17..19: root entries and 19..21: 16-bit sector count, both 0 on FAT32. 21: media (fixed disk).
        s[21] = 0xf8;
        // 22..24: 16-bit FAT size, 0 on FAT32. 24..26, 26..28: sectors per track and heads (nominal).
        s[24..26].copy_from_slice(&32u16.to_le_bytes());
        s[26..28].copy_from_slice(&64u16.to_le_bytes());
        // 28..32: hidden sectors (partition start). 32..36: total sectors. 36..40: sectors per FAT.
        s[28..32].copy_from_slice(&opts.hidden_sectors.to_le_bytes());
        s[32..36].copy_from_slice(&(self.sectors as u32).to_le_bytes());
        s[36..40].copy_from_slice(&(self.fat_sectors as u32).to_le_bytes());
        // 40..42: flags (0: FATs mirrored). 42..44: version 0.0. 44..48: root directory cluster.
        s[44..48].copy_from_slice(&2u32.to_le_bytes());
        // 48..50: FSInfo sector. 50..52: backup boot sector. 52..64: reserved.
        s[48..50].copy_from_slice(&FSINFO_SECTOR.to_le_bytes());
        s[50..52].copy_from_slice(&BACKUP_BOOT_SECTOR.to_le_bytes());
        // 64: drive number. 66: extended boot signature. 67..71: volume id. 71..82: label. 82..90: type.
        s[64] = 0x80;
        s[66] = 0x29;
        s[67..71].copy_from_slice(&opts.volume_id.to_le_bytes());
        s[71..82].copy_from_slice(label);
        s[82..90].copy_from_slice(b"FAT32   ");
        // 90..: boot code: if a PC ever boots this, halt forever (hlt; jmp $-1).
        s[90..93].copy_from_slice(&[0xf4, 0xeb, 0xfd]);
        s[510] = 0x55;
        s[511] = 0xaa;
        s
    }

    /// The FSInfo sector: free-cluster count and where the next free cluster is.
    pub fn fsinfo_sector(&self, used_clusters: u64) -> [u8; 512] {
        let mut s = [0u8; 512];
        let free = self.clusters - used_clusters;
        let next_free = if free == 0 {
            u32::MAX
        } else {
            (2 + used_clusters) as u32
        };
        // 0..4 and 484..488: signatures. 488..492: free clusters. 492..496: next free. 508..512: trailer.
        s[0..4].copy_from_slice(&0x4161_5252u32.to_le_bytes());
        s[484..488].copy_from_slice(&0x6141_7272u32.to_le_bytes());
        s[488..492].copy_from_slice(&(free as u32).to_le_bytes());
        s[492..496].copy_from_slice(&next_free.to_le_bytes());
        s[508..512].copy_from_slice(&0xaa55_0000u32.to_le_bytes());
        s
    }
}

/// Reserved sectors for a given FAT size, padded so `reserved + 2 * fat_sectors` is a multiple of
/// the cluster size.
fn aligned_reserved(fat_sectors: u64, sectors_per_cluster: u64) -> u64 {
    let unaligned = MIN_RESERVED + FATS * fat_sectors;
    MIN_RESERVED + unaligned.next_multiple_of(sectors_per_cluster) - unaligned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_partitions_use_512_byte_clusters() {
        let g = Geometry::for_size(64 << 20).expect("64 MiB");
        assert_eq!(g.sectors_per_cluster, 1);
        assert!(g.clusters >= MIN_CLUSTERS);
        assert!((g.clusters + 2) * 4 <= g.fat_sectors * SECTOR);
        // One sector less of FAT would leave more clusters than it can describe (mkfs.fat picks 1009).
        let f = g.fat_sectors - 1;
        let clusters = g.sectors - g.reserved - FATS * f;
        assert!((clusters + 2) * 4 > f * SECTOR);
        assert_eq!(g.fat_sectors, 1009);
        // The FATs and the data area fill the partition (less than one cluster left over).
        let used = g.reserved + FATS * g.fat_sectors + g.clusters * g.sectors_per_cluster;
        assert!(g.sectors - used < g.sectors_per_cluster.max(1) + 1);
    }

    #[test]
    fn large_partitions_align_the_data_area() {
        let g = Geometry::for_size(1 << 30).expect("1 GiB");
        assert_eq!(g.sectors_per_cluster, 8);
        assert_eq!((g.reserved + FATS * g.fat_sectors) % 8, 0);
        assert!(g.reserved >= MIN_RESERVED);
    }

    #[test]
    fn too_small_is_an_error() {
        assert!(matches!(
            Geometry::for_size(16 << 20),
            Err(FatError::BadSize { .. })
        ));
    }
}
