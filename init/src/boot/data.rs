//! The ext4 data partition: grow it to fill the card on first boot, mount it at `/data`, and
//! grow the mounted file system to fill the partition.
//!
//! The two grows are decided separately, so an interrupted first boot finishes on the next:
//! the MBR entry grows when it ends well before the disk does; the file system grows when it
//! is smaller than the partition the kernel knows.

use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use baton_spec::build_info::partition;
use baton_spec::mbr;

use crate::board::context::Ctx;
use crate::board::quota;
use crate::board::status::DataPartition;
use crate::board::sys::MsFlags;
use crate::boot::disk::{self, BootDisk};
use crate::boot::mounts;

/// Where the data partition is mounted.
pub const MOUNT_POINT: &str = "/data";

/// The group and user that alone may use the blocks ext4 keeps in reserve, besides processes
/// with `CAP_SYS_RESOURCE` (PID 1 and the runtime helper, never a container): an id no board
/// account has and no service's user namespace maps (their ranges start at 131,072).
pub const RESERVE_ID: u32 = 131_071;

/// Mount options: project quotas enforced (`resources.disk`) and the reserve kept from every
/// container (ext4 reserves 2 % of the partition, set by the builder).
fn options(quotas: bool) -> String {
    let reserve = format!("resuid={RESERVE_ID},resgid={RESERVE_ID}");
    if quotas {
        format!("prjquota,{reserve}")
    } else {
        reserve
    }
}

/// Errors preparing the data partition.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The boot disk has no data partition.
    #[error("boot disk /dev/{disk} has no data partition (number {number})")]
    Missing {
        /// Disk name.
        disk: String,
        /// Partition number looked for.
        number: u32,
    },
    /// Reading or writing the partition table failed.
    #[error("cannot grow the data partition in the partition table of {device}: {source}")]
    Table {
        /// Disk device.
        device: String,
        /// Cause.
        source: io::Error,
    },
    /// The kernel refused the new partition size.
    #[error("kernel refused the new size of partition {number} on {device}: {source}")]
    Kernel {
        /// Disk device.
        device: String,
        /// Partition number.
        number: u32,
        /// Cause.
        source: io::Error,
    },
    /// Mounting failed.
    #[error(transparent)]
    Mount(#[from] mounts::Error),
    /// The file system's superblock could not be read.
    #[error("cannot read the ext4 superblock of {device}: {source}")]
    Superblock {
        /// Partition device.
        device: String,
        /// Cause.
        source: io::Error,
    },
    /// Online resize failed.
    #[error("cannot grow the ext4 file system on {device} to {blocks} blocks: {source}")]
    Resize {
        /// Partition device.
        device: String,
        /// Requested size.
        blocks: u64,
        /// Cause.
        source: io::Error,
    },
}

/// Grows (if needed) and mounts the data partition of `disk`. Problems with growing are
/// reported and the partition is mounted as it is; the error means `/data` is not mounted.
pub fn prepare(ctx: &Ctx, disk: &BootDisk) -> Result<DataPartition, Error> {
    let number = partition::DATA;
    let device = disk.partition(number).ok_or_else(|| Error::Missing {
        disk: disk.name.clone(),
        number,
    })?;
    let part_name = disk.partitions.get(&number).cloned().unwrap_or_default();
    let sysfs_bytes = disk::read_u64(&ctx.path(format!("/sys/class/block/{part_name}/size")))
        .map(|s| s * mbr::SECTOR_SIZE);

    let mut part_bytes = sysfs_bytes;
    let mut grown = false;
    match grow_partition(ctx, disk, number) {
        Ok(Some(bytes)) => {
            ctx.say(format_args!(
                "data: grew partition {device} to {} MiB",
                bytes >> 20
            ));
            part_bytes = Some(bytes);
            grown = true;
        }
        Ok(None) => {}
        Err(e) => ctx.report(e),
    }

    let flags = MsFlags::MS_NOATIME | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    // A card made before project quotas refuses `prjquota`: mount it without, and say so.
    let with_quotas = Some(options(true));
    if let Err(e) = mounts::mount_device_with(
        ctx,
        &device,
        MOUNT_POINT,
        "ext4",
        flags,
        with_quotas.as_deref(),
    ) {
        ctx.say(format_args!(
            "data: {e}; mounting {device} without project quotas"
        ));
        let without = options(false);
        mounts::mount_device_with(ctx, &device, MOUNT_POINT, "ext4", flags, Some(&without))?;
    }
    let (disk_quotas, disk_quotas_missing) = match quota::probe(&ctx.path(MOUNT_POINT)) {
        Ok(()) => (true, None),
        Err(e) => {
            ctx.say(format_args!("data: resources.disk cannot be enforced: {e}"));
            (false, Some(e.to_string()))
        }
    };

    let mut size_bytes = 0;
    match superblock(&ctx.path(&device)) {
        Ok(sb) => {
            size_bytes = sb.bytes();
            match part_bytes {
                Some(part) if part >= size_bytes + mbr::ALIGN_SECTORS * mbr::SECTOR_SIZE => {
                    let blocks = part / sb.block_size;
                    match ctx.sys.resize_ext4(&ctx.path(MOUNT_POINT), blocks) {
                        Ok(()) => {
                            size_bytes = blocks * sb.block_size;
                            grown = true;
                            ctx.say(format_args!(
                                "data: grew file system on {device} to {} MiB",
                                size_bytes >> 20
                            ));
                        }
                        Err(source) => ctx.report(Error::Resize {
                            device: device.clone(),
                            blocks,
                            source,
                        }),
                    }
                }
                _ => {}
            }
        }
        Err(source) => ctx.report(Error::Superblock {
            device: device.clone(),
            source,
        }),
    }
    Ok(DataPartition {
        device,
        size_bytes,
        grown,
        disk_quotas,
        disk_quotas_missing,
    })
}

/// Rewrites the MBR entry and tells the kernel, if the partition should grow. Returns the new
/// partition size in bytes.
fn grow_partition(ctx: &Ctx, disk: &BootDisk, number: u32) -> Result<Option<u64>, Error> {
    let device = disk.device();
    let table_err = |source| Error::Table {
        device: device.clone(),
        source,
    };
    let Some(disk_sectors) =
        disk::read_u64(&ctx.path(format!("/sys/class/block/{}/size", disk.name)))
    else {
        return Ok(None);
    };
    let path = ctx.path(&device);
    let mut sector0 = disk::read_sector0(&path).map_err(table_err)?;
    let Some(new_len) = mbr::grow_target(&sector0, number, disk_sectors) else {
        return Ok(None);
    };
    let start = mbr::entry(&sector0, number).map_or(0, |e| e.start_lba);
    mbr::set_length(&mut sector0, number, new_len);
    let mut file = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(table_err)?;
    file.write_all(&sector0).map_err(table_err)?;
    file.sync_all().map_err(table_err)?;
    drop(file);
    let (start, length) = (
        u64::from(start) * mbr::SECTOR_SIZE,
        u64::from(new_len) * mbr::SECTOR_SIZE,
    );
    ctx.sys
        .resize_partition(&path, number, start, length)
        .map_err(|source| Error::Kernel {
            device: device.clone(),
            number,
            source,
        })?;
    Ok(Some(length))
}

/// The size fields of an ext4 superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superblock {
    /// Blocks in the file system.
    pub blocks: u64,
    /// Bytes per block.
    pub block_size: u64,
}

impl Superblock {
    /// Size of the file system in bytes.
    pub fn bytes(&self) -> u64 {
        self.blocks * self.block_size
    }
}

/// Reads the superblock at byte 1024 of `device`.
pub fn superblock(device: &Path) -> io::Result<Superblock> {
    let mut file = std::fs::File::open(device)?;
    file.seek(SeekFrom::Start(1024))?;
    let mut sb = [0u8; 1024];
    file.read_exact(&mut sb)?;
    parse_superblock(&sb)
}

/// Parses the size fields of a superblock (`s_blocks_count_lo` at 0x04, `s_log_block_size`
/// at 0x18, `s_magic` at 0x38, `s_feature_incompat` at 0x60, `s_blocks_count_hi` at 0x150).
pub fn parse_superblock(sb: &[u8; 1024]) -> io::Result<Superblock> {
    let u32_at = |i: usize| u32::from_le_bytes([sb[i], sb[i + 1], sb[i + 2], sb[i + 3]]);
    if sb[0x38..0x3A] != [0x53, 0xEF] {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not ext4"));
    }
    let log = u32_at(0x18);
    if log > 6 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad block size"));
    }
    const INCOMPAT_64BIT: u32 = 0x80;
    let hi = if u32_at(0x60) & INCOMPAT_64BIT != 0 {
        u64::from(u32_at(0x150))
    } else {
        0
    };
    Ok(Superblock {
        blocks: (hi << 32) | u64::from(u32_at(0x04)),
        block_size: 1024 << log,
    })
}

/// Test helper: a superblock with `blocks` blocks of 4 KiB.
#[cfg(test)]
pub fn build_superblock(blocks: u64) -> [u8; 1024] {
    let mut sb = [0u8; 1024];
    sb[0x04..0x08].copy_from_slice(&((blocks & 0xFFFF_FFFF) as u32).to_le_bytes());
    sb[0x18..0x1C].copy_from_slice(&2u32.to_le_bytes());
    sb[0x38..0x3A].copy_from_slice(&[0x53, 0xEF]);
    sb[0x60..0x64].copy_from_slice(&0x80u32.to_le_bytes());
    sb[0x150..0x154].copy_from_slice(&((blocks >> 32) as u32).to_le_bytes());
    sb
}

#[cfg(test)]
#[path = "data_tests.rs"]
mod tests;
