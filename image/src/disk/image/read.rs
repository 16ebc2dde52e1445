//! Reading an image back: its partition table, and what is on each partition.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use baton_spec::mbr::{Mbr, MbrPartition};

use super::ImageError;
use crate::disk::ext4;
use crate::disk::fat::{self, FatEntry};
use crate::disk::region::Region;

/// What `read_image` found in an image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageContents {
    /// Size of the image file in bytes.
    pub size: u64,
    /// The MBR disk signature.
    pub disk_id: u32,
    /// The non-empty partition entries, in table order.
    pub partitions: Vec<PartitionInfo>,
}

/// One partition and what is on it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionInfo {
    /// 1-based partition number.
    pub number: usize,
    /// The MBR entry.
    pub entry: MbrPartition,
    /// The file system found on it.
    pub filesystem: Filesystem,
}

/// A file system recognised on a partition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Filesystem {
    /// FAT, with its label and every file and directory.
    Fat {
        /// Volume label.
        label: String,
        /// Its files and directories.
        files: Vec<FatEntry>,
    },
    /// ext2/3/4 (recognised by the superblock magic).
    Ext4 {
        /// Volume label.
        label: String,
        /// File system UUID.
        uuid: String,
    },
    /// Nothing we recognise (for example an empty second boot slot).
    Unknown,
}

/// Reads the MBR of the image at `path` and identifies each partition's file system.
pub fn read_image(path: &Path) -> Result<ImageContents, ImageError> {
    let io = |action| {
        move |source| ImageError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    };
    let mut file = File::open(path).map_err(io("opening"))?;
    let size = file.metadata().map_err(io("reading the size of"))?.len();
    let mbr = Mbr::read_from(&mut file).map_err(|source| ImageError::Mbr {
        path: path.to_owned(),
        source,
    })?;
    let mut partitions = Vec::new();
    for (i, entry) in mbr.partitions.iter().enumerate() {
        let Some(entry) = entry else { continue };
        let filesystem = identify(&file, entry).map_err(io("reading"))?;
        partitions.push(PartitionInfo {
            number: i + 1,
            entry: *entry,
            filesystem,
        });
    }
    Ok(ImageContents {
        size,
        disk_id: mbr.disk_id,
        partitions,
    })
}

/// Reads one file from a FAT partition of the image (e.g. the kernel from partition 1).
pub fn read_partition_file(
    path: &Path,
    partition: usize,
    file: &str,
) -> Result<Vec<u8>, ImageError> {
    let io = |action| {
        move |source| ImageError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    };
    let mut f = File::open(path).map_err(io("opening"))?;
    let mbr = Mbr::read_from(&mut f).map_err(|source| ImageError::Mbr {
        path: path.to_owned(),
        source,
    })?;
    let entry = partition
        .checked_sub(1)
        .and_then(|i| mbr.partitions.get(i).copied().flatten())
        .ok_or_else(|| ImageError::NoPartition {
            path: path.to_owned(),
            partition,
        })?;
    let region = Region::new(&f, entry.offset(), entry.size()).map_err(io("seeking in"))?;
    fat::read_file(region, file).map_err(|source| ImageError::Fat {
        path: path.to_owned(),
        partition,
        source,
    })
}

/// Works out which file system is on a partition.
fn identify(file: &File, entry: &MbrPartition) -> io::Result<Filesystem> {
    let region = || Region::new(file, entry.offset(), entry.size());
    if let (Ok(label), Ok(files)) = (fat::volume_label(region()?), fat::list_files(region()?)) {
        return Ok(Filesystem::Fat { label, files });
    }
    // The ext superblock: 1024 bytes in; magic 0xEF53 at +56, UUID at +104, label at +120.
    let mut sb = [0u8; 136];
    let mut r = region()?;
    r.seek(SeekFrom::Start(1024))?;
    if r.read_exact(&mut sb).is_ok() && sb[56..58] == [0x53, 0xef] {
        let label = &sb[120..136];
        let end = label.iter().position(|b| *b == 0).unwrap_or(label.len());
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&sb[104..120]);
        return Ok(Filesystem::Ext4 {
            label: String::from_utf8_lossy(&label[..end]).into_owned(),
            uuid: ext4::uuid_text(&uuid),
        });
    }
    Ok(Filesystem::Unknown)
}
