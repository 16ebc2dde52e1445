//! Limits on what images may take of the data partition, and the free-space guard that enforces the
//! reserve while blobs and layers are written.
//!
//! The store shares its file system with the state and the logs, so it always leaves
//! [`StoreLimits::min_available`] bytes available: writers estimate what is left from `statvfs`
//! (`f_bavail * f_frsize`, the space an unprivileged writer may still use), subtract what they wrote
//! since, and read `statvfs` again every [`RECHECK_BYTES`] so that others' writes are seen too.

use std::io;
use std::path::{Path, PathBuf};

/// Written bytes between two `statvfs` reads.
pub const RECHECK_BYTES: u64 = 16 << 20;

/// How much of its file system the image store may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Largest unpacked size of one image, all its layers together, counted as the file system would
    /// roughly charge it: file contents rounded up to 4 KiB blocks plus one block per entry.
    pub max_image_bytes: u64,
    /// Bytes the store always leaves available on its file system: a blob or layer whose writing
    /// would take available space below this is stopped.
    pub min_available: u64,
    /// Most entries (files, directories, links, whiteouts...) one layer may hold.
    pub max_layer_entries: u64,
}

impl StoreLimits {
    /// 8 GiB per image, 64 MiB kept free, a million entries per layer.
    pub const DEFAULT: StoreLimits = StoreLimits {
        max_image_bytes: 8 << 30,
        min_available: 64 << 20,
        max_layer_entries: 1 << 20,
    };
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits::DEFAULT
    }
}

/// Why a write was stopped by [`FreeSpace::charge`].
#[derive(Debug)]
pub(crate) enum SpaceError {
    /// `statvfs` failed.
    Statvfs(PathBuf, io::Error),
    /// The write would take available space below the reserve.
    Low {
        /// Estimated bytes available before the write.
        available: u64,
    },
}

/// Tracks the space available on a file system while writing to it.
#[derive(Debug)]
pub(crate) struct FreeSpace {
    path: PathBuf,
    min_available: u64,
    /// Available bytes at the last `statvfs`.
    available: u64,
    /// Bytes charged since then.
    since_check: u64,
}

impl FreeSpace {
    /// Reads the space available on the file system holding `path`.
    pub(crate) fn new(path: &Path, min_available: u64) -> io::Result<FreeSpace> {
        Ok(FreeSpace {
            path: path.to_owned(),
            min_available,
            available: available(path)?,
            since_check: 0,
        })
    }

    /// The reserve this guard keeps.
    pub(crate) fn min_available(&self) -> u64 {
        self.min_available
    }

    /// Whether `bytes` more would fit above the reserve, as things stand (nothing is recorded).
    pub(crate) fn fits(&self, bytes: u64) -> Result<(), SpaceError> {
        let left = self.available.saturating_sub(self.since_check);
        if left < self.min_available.saturating_add(bytes) {
            return Err(SpaceError::Low { available: left });
        }
        Ok(())
    }

    /// Records that `bytes` more are about to be written; reads `statvfs` again when
    /// [`RECHECK_BYTES`] were charged since the last read. Refuses when what is left would go below
    /// the reserve.
    pub(crate) fn charge(&mut self, bytes: u64) -> Result<(), SpaceError> {
        if self.since_check >= RECHECK_BYTES {
            self.available =
                available(&self.path).map_err(|e| SpaceError::Statvfs(self.path.clone(), e))?;
            self.since_check = 0;
        }
        self.fits(bytes)?;
        self.since_check += bytes;
        Ok(())
    }
}

/// Bytes an unprivileged writer may still use on the file system holding `path`.
fn available(path: &Path) -> io::Result<u64> {
    let stat = rustix::fs::statvfs(path)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_until_the_reserve_and_reads_statvfs_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(available(dir.path()).expect("statvfs") > 0);
        // A reserve larger than any disk refuses the first byte.
        let mut space = FreeSpace::new(dir.path(), u64::MAX / 2).expect("statvfs");
        assert!(matches!(space.charge(1), Err(SpaceError::Low { .. })));
        let mut space = FreeSpace::new(dir.path(), 0).expect("statvfs");
        space.charge(RECHECK_BYTES).expect("16 MiB fits");
        space.charge(1).expect("statvfs again");
        assert_eq!(space.since_check, 1, "the count restarts at each statvfs");
    }
}
