//! Assembling an image file from its MBR and partition contents, and reading one back.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use baton_spec::mbr::{MbrError, SECTOR_SIZE};

use super::ext4::{self, Ext4Error, Ext4Options};
use super::fat::{self, FatDir, FatError, FatOptions};
use super::layout::{Extent, ImageLayout};
use super::region::Region;

mod read;

pub use read::{read_image, read_partition_file, Filesystem, ImageContents, PartitionInfo};

/// Failures writing or reading an image file.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Creating, sizing, writing or reading the image file failed.
    #[error("{action} image {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The image file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The partition table could not be written or read.
    #[error("image {path}: {source}")]
    Mbr {
        /// The image file.
        path: PathBuf,
        /// The underlying error.
        source: MbrError,
    },
    /// A FAT partition could not be written or read.
    #[error("image {path}, partition {partition}: {source}")]
    Fat {
        /// The image file.
        path: PathBuf,
        /// 1-based partition number.
        partition: usize,
        /// The underlying error.
        source: FatError,
    },
    /// The ext4 partition could not be made.
    #[error("image {path}: {source}")]
    Ext4 {
        /// The image file.
        path: PathBuf,
        /// The underlying error.
        source: Ext4Error,
    },
    /// File system options disagree with the partition they are written to.
    #[error(
        "image {path}, partition {partition}: {what} is {given}, the partition needs {expected}"
    )]
    Mismatch {
        /// The image file.
        path: PathBuf,
        /// 1-based partition number.
        partition: usize,
        /// Which option.
        what: &'static str,
        /// The value given.
        given: u64,
        /// The value the layout implies.
        expected: u64,
    },
    /// The image has no such partition.
    #[error("image {path} has no partition {partition}")]
    NoPartition {
        /// The image file.
        path: PathBuf,
        /// 1-based partition number asked for.
        partition: usize,
    },
}

/// The partitions of a baton image, in MBR order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// p1: FAT32 boot.
    Boot = 1,
    /// p2: second boot slot.
    BootB = 2,
    /// p3: FAT32 config (`BATON-CFG`).
    Config = 3,
    /// p4: ext4 data.
    Data = 4,
}

impl Partition {
    /// 1-based partition number.
    pub fn number(self) -> usize {
        self as usize
    }
}

/// An image file being written: created at its full size (sparse), MBR in place; partitions are
/// then filled one by one. Unwritten bytes read as zeros and take no disk space.
#[derive(Debug)]
pub struct ImageWriter {
    file: File,
    path: PathBuf,
    layout: ImageLayout,
}

impl ImageWriter {
    /// Creates (or replaces) the image at `path` with `layout` and writes its MBR.
    pub fn create(path: &Path, layout: ImageLayout, disk_id: u32) -> Result<Self, ImageError> {
        let io = |action| {
            move |source| ImageError::Io {
                action,
                path: path.to_owned(),
                source,
            }
        };
        let mut file = File::create(path).map_err(io("creating"))?;
        file.set_len(layout.total_size).map_err(io("sizing"))?;
        layout
            .mbr(disk_id)
            .write_to(&mut file)
            .map_err(|source| ImageError::Mbr {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self {
            file,
            path: path.to_owned(),
            layout,
        })
    }

    /// The layout the image was created with.
    pub fn layout(&self) -> &ImageLayout {
        &self.layout
    }

    /// A `Write + Seek` window on one partition, for any other writer.
    pub fn partition(&mut self, p: Partition) -> Result<Region<&mut File>, ImageError> {
        let e = self.extent(p);
        let path = &self.path;
        Region::new(&mut self.file, e.offset, e.size).map_err(|source| ImageError::Io {
            action: "seeking in",
            path: path.clone(),
            source,
        })
    }

    /// Writes a FAT32 file system holding `tree` into partition `p`; `opts.size` must be the
    /// partition's size and `opts.hidden_sectors` its first sector.
    pub fn write_fat32(
        &mut self,
        p: Partition,
        opts: &FatOptions,
        tree: &FatDir,
    ) -> Result<(), ImageError> {
        let e = self.extent(p);
        self.check(p, "the FAT size", opts.size, e.size)?;
        self.check(
            p,
            "hidden_sectors",
            opts.hidden_sectors.into(),
            e.offset / SECTOR_SIZE,
        )?;
        let path = self.path.clone();
        let mut region = self.partition(p)?;
        fat::write_fat32(&mut region, opts, tree).map_err(|source| ImageError::Fat {
            path,
            partition: p.number(),
            source,
        })
    }

    /// Makes the ext4 file system in the data partition with mke2fs; `opts.size` must be its size.
    pub fn make_ext4(&mut self, opts: &Ext4Options) -> Result<(), ImageError> {
        let e = self.extent(Partition::Data);
        self.check(Partition::Data, "the ext4 size", opts.size, e.size)?;
        self.file
            .flush()
            .map_err(|source| self.io("flushing", source))?;
        ext4::make_ext4(&self.path, e.offset, opts).map_err(|source| ImageError::Ext4 {
            path: self.path.clone(),
            source,
        })
    }

    /// Copies `src` (at most the partition's size) into partition `p`, seeking over all-zero blocks.
    pub fn copy_into(&mut self, p: Partition, src: &mut impl Read) -> Result<(), ImageError> {
        let path = self.path.clone();
        let mut region = self.partition(p)?;
        copy_sparse(src, &mut region).map_err(|source| ImageError::Io {
            action: "copying a partition into",
            path,
            source,
        })
    }

    /// Flushes everything to disk.
    pub fn finish(self) -> Result<(), ImageError> {
        self.file
            .sync_all()
            .map_err(|source| self.io("syncing", source))
    }

    fn extent(&self, p: Partition) -> Extent {
        self.layout.extents()[p.number() - 1]
    }

    fn check(
        &self,
        p: Partition,
        what: &'static str,
        given: u64,
        expected: u64,
    ) -> Result<(), ImageError> {
        if given == expected {
            return Ok(());
        }
        Err(ImageError::Mismatch {
            path: self.path.clone(),
            partition: p.number(),
            what,
            given,
            expected,
        })
    }

    fn io(&self, action: &'static str, source: io::Error) -> ImageError {
        ImageError::Io {
            action,
            path: self.path.clone(),
            source,
        }
    }
}

/// Copies `src` to `dst`, seeking over 64 KiB blocks that are all zero (the target reads as zeros).
fn copy_sparse(src: &mut impl Read, dst: &mut (impl Write + Seek)) -> io::Result<()> {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match src.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            return dst.flush();
        }
        if buf[..filled].iter().all(|b| *b == 0) {
            dst.seek(SeekFrom::Current(filled as i64))?;
        } else {
            dst.write_all(&buf[..filled])?;
        }
    }
}

#[cfg(test)]
mod tests;
