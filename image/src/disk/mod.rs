//! The byte formats of a baton image and the assembly of the image file.
//!
//! A card is an MBR ([`mbr`], shared with the init and the QEMU runner) and four partitions placed by [`layout`]: p1 FAT32 boot, p2 the
//! second boot slot, p3 the FAT32 `BATON-CFG` config partition ([`fat`]), p4 the ext4 data
//! partition ([`ext4`], made by mke2fs). The initramfs on the boot partition is a gzip-compressed
//! newc archive ([`cpio`]). [`image`] writes the file (sparse) and reads one back for
//! `baton image inspect` and the QEMU runner.
//!
//! Everything is deterministic: timestamps, volume ids and UUIDs are inputs, never the clock or
//! a random source, so the same inputs give the same bytes.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use baton::disk::{fat, image, layout};
//! use std::path::Path;
//!
//! let sizes = layout::PartitionSizes { boot: 256 << 20, boot_b: 256 << 20, config: 64 << 20, data: 256 << 20 };
//! let layout = layout::ImageLayout::new(&sizes, layout::TotalSize::PowerOfTwo)?;
//! let mut img = image::ImageWriter::create(Path::new("baton.img"), layout, 0x6261_746f)?;
//! let mut config = fat::FatDir::new();
//! config.add_file("services/README.txt", b"Drop service files here.\n".to_vec())?;
//! let opts = fat::FatOptions {
//!     size: layout.config.size,
//!     label: "BATON-CFG".into(),
//!     volume_id: 0x1234_5678,
//!     mtime: 1_700_000_000,
//!     hidden_sectors: layout.config.start_lba(),
//! };
//! img.write_fat32(image::Partition::Config, &opts, &config)?;
//! img.finish()?;
//! # Ok(())
//! # }
//! ```

pub mod cpio;
pub mod ext4;
pub mod fat;
pub mod image;
pub mod layout;
pub mod region;

/// The partition table, from `baton-spec` (re-exported for the integration tests).
pub use baton_spec::mbr;

#[cfg(test)]
mod host_tools;
