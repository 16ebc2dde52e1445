//! The initramfs: a cpio archive in the "newc" format (magic `070701`), gzip-compressed, which the
//! kernel unpacks into its root file system before it starts our init.
//!
//! Entries are kept sorted by path, so every parent directory comes before what it holds (a path
//! sorts before its own extensions) and the output does not depend on the order of `add_*` calls.
//! Every entry is owned by root and carries the same mtime; inode numbers count up from 1 in
//! output order.

use std::collections::BTreeMap;
use std::io::{self, Write};

/// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFBLK: u32 = 0o060_000;

/// Mode given to parent directories that are added implicitly.
const PARENT_MODE: u32 = 0o755;

/// Failures building or writing an archive.
#[derive(Debug, thiserror::Error)]
pub enum CpioError {
    /// The path is empty, absolute after trimming, or has `.`/`..` components.
    #[error("invalid initramfs path {0:?}: use a relative path without '.' or '..' components")]
    InvalidPath(String),
    /// Something other than a directory is already at this path or in the way of it.
    #[error("initramfs path {0:?} already exists")]
    Exists(String),
    /// An entry does not fit the format's 32-bit size field.
    #[error("initramfs entry {path:?} is {size} bytes, more than newc can hold")]
    TooLarge {
        /// The entry's path.
        path: String,
        /// Its size.
        size: u64,
    },
    /// Writing or compressing the archive failed.
    #[error("writing the initramfs archive: {0}")]
    Write(#[from] io::Error),
}

/// What an archive entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpioNode {
    /// A directory.
    Dir,
    /// A regular file and its contents.
    File(Vec<u8>),
    /// A symbolic link to the target path.
    Symlink(String),
    /// A character device node (major, minor).
    CharDevice(u32, u32),
    /// A block device node (major, minor).
    BlockDevice(u32, u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// Permission bits only (e.g. 0o755); the type bits come from the node.
    mode: u32,
    node: CpioNode,
}

/// An archive being assembled in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpioArchive {
    mtime: u32,
    entries: BTreeMap<String, Entry>,
}

impl CpioArchive {
    /// An empty archive whose entries all carry `mtime` (seconds since the epoch, e.g. `SOURCE_DATE_EPOCH`).
    pub fn new(mtime: u32) -> Self {
        Self {
            mtime,
            entries: BTreeMap::new(),
        }
    }

    /// Adds a directory with permission bits `mode`; parents are added with mode 0755. Adding a
    /// directory that exists (for instance as an implicit parent) sets its mode.
    pub fn add_dir(&mut self, path: &str, mode: u32) -> Result<(), CpioError> {
        let path = self.prepare(path)?;
        match self.entries.get_mut(&path) {
            Some(Entry {
                node: CpioNode::Dir,
                mode: m,
            }) => {
                *m = mode & 0o7777;
                Ok(())
            }
            Some(_) => Err(CpioError::Exists(path)),
            None => self.insert(path, mode, CpioNode::Dir),
        }
    }

    /// Adds a regular file with permission bits `mode` (e.g. 0o755 for the init binary).
    pub fn add_file(
        &mut self,
        path: &str,
        mode: u32,
        contents: impl Into<Vec<u8>>,
    ) -> Result<(), CpioError> {
        let contents = contents.into();
        if u32::try_from(contents.len()).is_err() {
            return Err(CpioError::TooLarge {
                path: path.to_owned(),
                size: contents.len() as u64,
            });
        }
        let path = self.prepare(path)?;
        self.insert(path, mode, CpioNode::File(contents))
    }

    /// Adds a symbolic link at `path` pointing to `target`.
    pub fn add_symlink(&mut self, path: &str, target: &str) -> Result<(), CpioError> {
        let path = self.prepare(path)?;
        self.insert(path, 0o777, CpioNode::Symlink(target.to_owned()))
    }

    /// Adds a device node (`CpioNode::CharDevice` or `CpioNode::BlockDevice`) or any other node.
    pub fn add_node(&mut self, path: &str, mode: u32, node: CpioNode) -> Result<(), CpioError> {
        if node == CpioNode::Dir {
            return self.add_dir(path, mode);
        }
        let path = self.prepare(path)?;
        self.insert(path, mode, node)
    }

    /// Writes the uncompressed newc archive, ending with the `TRAILER!!!` entry.
    pub fn write_newc<W: Write>(&self, mut out: W) -> Result<W, CpioError> {
        let mut offset = 0u64;
        for (n, (path, entry)) in self.entries.iter().enumerate() {
            let (kind, data, rdev): (u32, &[u8], (u32, u32)) = match &entry.node {
                CpioNode::Dir => (S_IFDIR, &[], (0, 0)),
                CpioNode::File(d) => (S_IFREG, d, (0, 0)),
                CpioNode::Symlink(t) => (S_IFLNK, t.as_bytes(), (0, 0)),
                CpioNode::CharDevice(ma, mi) => (S_IFCHR, &[], (*ma, *mi)),
                CpioNode::BlockDevice(ma, mi) => (S_IFBLK, &[], (*ma, *mi)),
            };
            let header = Header {
                ino: n as u32 + 1,
                mode: kind | entry.mode,
                nlink: if kind == S_IFDIR { 2 } else { 1 },
                mtime: self.mtime,
                rdev,
            };
            offset = header.write(&mut out, offset, path, data)?;
        }
        let trailer = Header {
            ino: 0,
            mode: 0,
            nlink: 1,
            mtime: 0,
            rdev: (0, 0),
        };
        trailer.write(&mut out, offset, "TRAILER!!!", &[])?;
        out.flush()?;
        Ok(out)
    }

    /// Writes the archive gzip-compressed (best compression, pure Rust); the gzip header carries
    /// no file name and a zero mtime, so the bytes depend only on the entries.
    pub fn write_gzip<W: Write>(&self, out: W) -> Result<W, CpioError> {
        let gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(out, flate2::Compression::best());
        Ok(self.write_newc(gz)?.finish()?)
    }

    /// Normalizes `path` and adds its missing parent directories.
    fn prepare(&mut self, path: &str) -> Result<String, CpioError> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        if parts.is_empty() || parts.iter().any(|p| *p == "." || *p == "..") {
            return Err(CpioError::InvalidPath(path.to_owned()));
        }
        for i in 1..parts.len() {
            let parent = parts[..i].join("/");
            match self.entries.get(&parent) {
                Some(Entry {
                    node: CpioNode::Dir,
                    ..
                }) => {}
                Some(_) => return Err(CpioError::Exists(parent)),
                None => self.insert(parent, PARENT_MODE, CpioNode::Dir)?,
            }
        }
        Ok(parts.join("/"))
    }

    fn insert(&mut self, path: String, mode: u32, node: CpioNode) -> Result<(), CpioError> {
        if self.entries.contains_key(&path) {
            return Err(CpioError::Exists(path));
        }
        self.entries.insert(
            path,
            Entry {
                mode: mode & 0o7777,
                node,
            },
        );
        Ok(())
    }
}

/// The fields of one newc header that vary between our entries.
struct Header {
    ino: u32,
    mode: u32,
    nlink: u32,
    mtime: u32,
    rdev: (u32, u32),
}

impl Header {
    /// Writes header, name and data with their padding at stream offset `offset`; returns the new offset.
    fn write<W: Write>(
        &self,
        out: &mut W,
        offset: u64,
        name: &str,
        data: &[u8],
    ) -> io::Result<u64> {
        let name_size = name.len() + 1;
        // Thirteen 8-digit hex fields after the magic, in this order:
        let fields = [
            self.ino,          // c_ino
            self.mode,         // c_mode: type and permission bits
            0,                 // c_uid: root
            0,                 // c_gid: root
            self.nlink,        // c_nlink
            self.mtime,        // c_mtime
            data.len() as u32, // c_filesize (checked against u32 when added)
            0,                 // c_devmajor: device of the archived file, irrelevant here
            0,                 // c_devminor
            self.rdev.0,       // c_rdevmajor: for device nodes
            self.rdev.1,       // c_rdevminor
            name_size as u32,  // c_namesize, including the NUL
            0,                 // c_check: only used by the "070702" crc format
        ];
        let mut head = String::with_capacity(110);
        head.push_str("070701");
        for f in fields {
            head.push_str(&format!("{f:08X}"));
        }
        out.write_all(head.as_bytes())?;
        out.write_all(name.as_bytes())?;
        out.write_all(&[0])?;
        // The name ends padded to 4 bytes (counted from the header's start), and so does the data.
        let after_name = offset + 110 + name_size as u64;
        out.write_all(&[0; 3][..pad4(after_name)])?;
        out.write_all(data)?;
        let after_data = after_name + pad4(after_name) as u64 + data.len() as u64;
        out.write_all(&[0; 3][..pad4(after_data)])?;
        Ok(after_data + pad4(after_data) as u64)
    }
}

/// Bytes needed to reach the next multiple of 4.
fn pad4(at: u64) -> usize {
    ((4 - at % 4) % 4) as usize
}

#[cfg(test)]
mod tests;
