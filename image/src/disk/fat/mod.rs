//! FAT32: the boot partitions and the `BATON-CFG` config partition.
//!
//! The writer lays out a whole file system from an in-memory tree in one pass: directories and
//! files are given contiguous cluster runs in a fixed order (a directory's entries sorted by name,
//! depth first), so the same tree, label, volume id and timestamp always give the same bytes.
//! The geometry follows mkfs.fat: 512-byte sectors, 32 reserved sectors (padded so the data area
//! starts on a cluster boundary), two FATs, the cluster size Microsoft's format picks for the
//! partition size. Reading goes through the `fatfs` crate, an implementation independent of ours.

mod dirent;
mod geometry;
mod read;
mod write;

use std::collections::BTreeMap;

pub use read::{list_files, read_file, volume_label, FatEntry};
pub use write::write_fat32;

/// Failures building, writing or reading a FAT file system.
#[derive(Debug, thiserror::Error)]
pub enum FatError {
    /// A path component is not a valid FAT long file name.
    #[error("invalid FAT file name {name:?} in {path:?}: {reason}")]
    InvalidName {
        /// The full path that was being added.
        path: String,
        /// The offending component.
        name: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// Two entries of one directory differ only in letter case, or a file is in the way of a directory.
    #[error("{path:?} already exists in the FAT tree (names are case-insensitive)")]
    Exists {
        /// The path that clashed.
        path: String,
    },
    /// The volume label is not 1-11 printable ASCII characters.
    #[error(
        "invalid FAT volume label {0:?}: use 1 to 11 characters from A-Z, 0-9, space, - and _"
    )]
    InvalidLabel(String),
    /// The partition is too small or too large for FAT32.
    #[error("a {size}-byte partition cannot hold FAT32: {reason}")]
    BadSize {
        /// Partition size in bytes.
        size: u64,
        /// What does not fit.
        reason: &'static str,
    },
    /// The files do not fit in the partition.
    #[error("the FAT tree needs {needed} clusters of {cluster_size} bytes, the partition has {available}")]
    Full {
        /// Clusters the tree needs.
        needed: u64,
        /// Clusters the partition has.
        available: u64,
        /// Bytes per cluster.
        cluster_size: u64,
    },
    /// A directory has more entries than FAT allows (65536 32-byte slots).
    #[error("FAT directory {path:?} has too many entries")]
    DirectoryTooLarge {
        /// The directory's path.
        path: String,
    },
    /// A file is larger than FAT's 4 GiB - 1 limit.
    #[error("FAT file {path:?} is {size} bytes, more than FAT32 can hold")]
    FileTooLarge {
        /// The file's path.
        path: String,
        /// Its size.
        size: u64,
    },
    /// Reading a file system (through the fatfs crate) failed.
    #[error("reading FAT {what}: {source}")]
    Read {
        /// What was being read (a path, or "file system").
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Writing the file system to its target failed.
    #[error("writing the FAT file system: {0}")]
    Write(#[source] std::io::Error),
}

/// Parameters of a FAT32 file system that are not its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatOptions {
    /// Size of the partition in bytes (a multiple of 512).
    pub size: u64,
    /// Volume label, e.g. `BATON-CFG`; at most 11 characters, upper case.
    pub label: String,
    /// Volume serial number (shown by Linux as the file system UUID `XXXX-XXXX`).
    pub volume_id: u32,
    /// Timestamp for every entry, seconds since the Unix epoch (e.g. `SOURCE_DATE_EPOCH`), taken as UTC.
    pub mtime: i64,
    /// Sectors before the partition on its disk (its start LBA), recorded in the boot sector.
    pub hidden_sectors: u32,
}

/// A node of the tree: a file's bytes or a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FatNode {
    /// A regular file with its contents.
    File(Vec<u8>),
    /// A directory.
    Dir(FatDir),
}

/// A directory of the in-memory tree the writer lays out; its entries are kept sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FatDir {
    entries: BTreeMap<String, FatNode>,
}

impl FatDir {
    /// An empty directory (use it as the root).
    pub fn new() -> Self {
        Self::default()
    }

    /// The entries of this directory, by name.
    pub fn entries(&self) -> &BTreeMap<String, FatNode> {
        &self.entries
    }

    /// Adds a file at `path` (`/`-separated, relative to this directory), creating missing parents.
    pub fn add_file(&mut self, path: &str, contents: impl Into<Vec<u8>>) -> Result<(), FatError> {
        let contents = contents.into();
        if contents.len() as u64 > u64::from(u32::MAX) {
            return Err(FatError::FileTooLarge {
                path: path.to_owned(),
                size: contents.len() as u64,
            });
        }
        let (parent, name) = self.parent_of(path)?;
        parent.insert(path, name, FatNode::File(contents))
    }

    /// Adds an (empty) directory at `path`, creating missing parents; an existing directory is kept.
    pub fn add_dir(&mut self, path: &str) -> Result<(), FatError> {
        let (parent, name) = self.parent_of(path)?;
        match parent.entries.get(&name) {
            Some(FatNode::Dir(_)) => Ok(()),
            _ => parent.insert(path, name, FatNode::Dir(FatDir::new())),
        }
    }

    /// The directory that holds the last component of `path` (created as needed) and that component.
    fn parent_of(&mut self, path: &str) -> Result<(&mut FatDir, String), FatError> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let Some((last, dirs)) = parts.split_last() else {
            return Err(FatError::InvalidName {
                path: path.to_owned(),
                name: String::new(),
                reason: "the path is empty",
            });
        };
        for name in &parts {
            dirent::validate_long_name(name).map_err(|reason| FatError::InvalidName {
                path: path.to_owned(),
                name: (*name).to_owned(),
                reason,
            })?;
        }
        let mut dir = self;
        for name in dirs {
            if !dir.entries.contains_key(*name) {
                dir.insert(path, (*name).to_owned(), FatNode::Dir(FatDir::new()))?;
            }
            dir = match dir.entries.get_mut(*name) {
                Some(FatNode::Dir(d)) => d,
                _ => {
                    return Err(FatError::Exists {
                        path: path.to_owned(),
                    })
                }
            };
        }
        Ok((dir, (*last).to_owned()))
    }

    fn insert(&mut self, path: &str, name: String, node: FatNode) -> Result<(), FatError> {
        let lower = name.to_lowercase();
        if self.entries.keys().any(|k| k.to_lowercase() == lower) {
            return Err(FatError::Exists {
                path: path.to_owned(),
            });
        }
        self.entries.insert(name, node);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
