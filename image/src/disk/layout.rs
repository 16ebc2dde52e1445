//! Where the four partitions of a baton image go.

use baton_spec::mbr::{Mbr, MbrPartition, ALIGN_SECTORS, SECTOR_SIZE, TYPE_FAT32_LBA, TYPE_LINUX};

/// Every partition starts and (except the last, which may end early) is sized on this boundary:
/// SD cards erase in blocks of up to 4 MiB. The init grows the data partition on the same boundary.
pub const ALIGNMENT: u64 = ALIGN_SECTORS * SECTOR_SIZE;

/// Failures computing a layout.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// A partition was given size 0.
    #[error("the {0} partition has size 0")]
    EmptyPartition(&'static str),
    /// The requested total size is smaller than the partitions need.
    #[error("an image of {requested} bytes cannot hold partitions that need {needed} bytes")]
    TooSmall {
        /// Requested total.
        requested: u64,
        /// What the partitions need.
        needed: u64,
    },
    /// The image would be larger than an MBR can describe (2 TiB).
    #[error("an image of {0} bytes is larger than an MBR can address")]
    TooLarge(u64),
}

/// Requested sizes of the four partitions, in bytes; each is rounded up to [`ALIGNMENT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionSizes {
    /// p1: FAT32 boot partition (firmware, kernel, DTBs, initramfs).
    pub boot: u64,
    /// p2: the second boot slot for A/B updates.
    pub boot_b: u64,
    /// p3: FAT32 `BATON-CFG` config partition.
    pub config: u64,
    /// p4: ext4 data partition; its minimum size (it grows to fill a larger image).
    pub data: u64,
}

/// How large the image file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotalSize {
    /// Just large enough for the partitions.
    Minimal,
    /// The minimal size rounded up to a power of two (QEMU's raspi3b needs that for an SD card).
    PowerOfTwo,
    /// Exactly this many bytes (at least the minimal size, a multiple of 512).
    Exact(u64),
}

/// A byte range of the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Extent {
    /// Offset of the first byte.
    pub offset: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Extent {
    /// First sector, as the MBR records it.
    pub fn start_lba(&self) -> u32 {
        // Bounded by `ImageLayout::new`, which refuses images an MBR cannot address.
        (self.offset / SECTOR_SIZE) as u32
    }
}

/// The computed offsets and sizes of the four partitions and of the whole image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLayout {
    /// p1, FAT32 boot.
    pub boot: Extent,
    /// p2, second boot slot.
    pub boot_b: Extent,
    /// p3, FAT32 config.
    pub config: Extent,
    /// p4, ext4 data; runs to the last aligned byte of the image.
    pub data: Extent,
    /// Size of the image file.
    pub total_size: u64,
}

impl ImageLayout {
    /// Lays the partitions out back to back from 4 MiB; the data partition takes whatever room
    /// a larger total size leaves (rounded down to the alignment).
    pub fn new(sizes: &PartitionSizes, total: TotalSize) -> Result<Self, LayoutError> {
        let mut next = ALIGNMENT;
        let mut place = |name, size: u64| {
            if size == 0 {
                return Err(LayoutError::EmptyPartition(name));
            }
            let e = Extent {
                offset: next,
                size: size.next_multiple_of(ALIGNMENT),
            };
            next += e.size;
            Ok(e)
        };
        let boot = place("boot", sizes.boot)?;
        let boot_b = place("second boot slot", sizes.boot_b)?;
        let config = place("config", sizes.config)?;
        let mut data = place("data", sizes.data)?;
        let needed = next;
        let total_size = match total {
            TotalSize::Minimal => needed,
            TotalSize::PowerOfTwo => needed.next_power_of_two(),
            TotalSize::Exact(n) if n < needed || n % SECTOR_SIZE != 0 => {
                return Err(LayoutError::TooSmall {
                    requested: n,
                    needed,
                })
            }
            TotalSize::Exact(n) => n,
        };
        if total_size / SECTOR_SIZE > u64::from(u32::MAX) {
            return Err(LayoutError::TooLarge(total_size));
        }
        data.size = (total_size - data.offset) / ALIGNMENT * ALIGNMENT;
        Ok(Self {
            boot,
            boot_b,
            config,
            data,
            total_size,
        })
    }

    /// The partitions in MBR order (p1..p4).
    pub fn extents(&self) -> [Extent; 4] {
        [self.boot, self.boot_b, self.config, self.data]
    }

    /// The MBR describing this layout: three FAT32 partitions (p1 marked active) and a Linux one.
    pub fn mbr(&self, disk_id: u32) -> Mbr {
        let entry = |e: &Extent, kind, bootable| {
            Some(MbrPartition {
                bootable,
                kind,
                start_lba: e.start_lba(),
                sectors: (e.size / SECTOR_SIZE) as u32,
            })
        };
        Mbr {
            disk_id,
            partitions: [
                entry(&self.boot, TYPE_FAT32_LBA, true),
                entry(&self.boot_b, TYPE_FAT32_LBA, false),
                entry(&self.config, TYPE_FAT32_LBA, false),
                entry(&self.data, TYPE_LINUX, false),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn sizes() -> PartitionSizes {
        PartitionSizes {
            boot: 100 * MIB,
            boot_b: 100 * MIB,
            config: 33 * MIB,
            data: 64 * MIB,
        }
    }

    #[test]
    fn partitions_are_aligned_and_back_to_back() {
        let l = ImageLayout::new(&sizes(), TotalSize::Minimal).expect("layout");
        assert_eq!(
            l.boot,
            Extent {
                offset: 4 * MIB,
                size: 100 * MIB
            }
        );
        assert_eq!(
            l.boot_b,
            Extent {
                offset: 104 * MIB,
                size: 100 * MIB
            }
        );
        assert_eq!(
            l.config,
            Extent {
                offset: 204 * MIB,
                size: 36 * MIB
            }
        );
        assert_eq!(
            l.data,
            Extent {
                offset: 240 * MIB,
                size: 64 * MIB
            }
        );
        assert_eq!(l.total_size, 304 * MIB);
    }

    #[test]
    fn power_of_two_grows_the_data_partition() {
        let l = ImageLayout::new(&sizes(), TotalSize::PowerOfTwo).expect("layout");
        assert_eq!(l.total_size, 512 * MIB);
        assert_eq!(l.data.offset + l.data.size, 512 * MIB);
    }

    #[test]
    fn exact_sizes_are_checked() {
        let odd = ImageLayout::new(&sizes(), TotalSize::Exact(400 * MIB + 512)).expect("layout");
        assert_eq!(odd.data.size, 160 * MIB);
        assert!(matches!(
            ImageLayout::new(&sizes(), TotalSize::Exact(300 * MIB)),
            Err(LayoutError::TooSmall { .. })
        ));
        let mut zero = sizes();
        zero.boot_b = 0;
        assert!(matches!(
            ImageLayout::new(&zero, TotalSize::Minimal),
            Err(LayoutError::EmptyPartition(_))
        ));
    }

    #[test]
    fn mbr_matches_the_layout() {
        let l = ImageLayout::new(&sizes(), TotalSize::Minimal).expect("layout");
        let mbr = l.mbr(7);
        let p4 = mbr.partitions[3].expect("p4");
        assert_eq!(
            (p4.kind, p4.offset(), p4.size()),
            (TYPE_LINUX, 240 * MIB, 64 * MIB)
        );
        assert!(mbr.partitions[0].expect("p1").bootable);
    }
}
