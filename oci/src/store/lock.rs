//! The store lock: flock(2) on `<root>/lock`.
//!
//! The GC rule: imports and prepares hold the lock shared for their whole run, GC and open-time
//! recovery hold it exclusive. So GC never runs while an import has written blobs that no ref reaches
//! yet, and an import never sees its blobs vanish. Each acquisition opens the file anew, because flock
//! locks belong to an open file description and handles in one process must not share one.

use super::{io_error, Result, Store};
use rustix::fs::FlockOperation;
use std::fs::{File, OpenOptions};

/// A held store lock; released when dropped (the file is closed).
#[derive(Debug)]
pub(crate) struct StoreLock {
    _file: File,
}

impl Store {
    fn lock_file(&self) -> Result<File> {
        let path = self.root.join("lock");
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_error("open lock file", &path))
    }

    fn lock(&self, operation: FlockOperation) -> Result<StoreLock> {
        let file = self.lock_file()?;
        let path = self.root.join("lock");
        rustix::fs::flock(&file, operation).map_err(|e| io_error("lock", &path)(e.into()))?;
        Ok(StoreLock { _file: file })
    }

    /// Shared: imports and prepares.
    pub(crate) fn lock_shared(&self) -> Result<StoreLock> {
        self.lock(FlockOperation::LockShared)
    }

    /// Exclusive: GC.
    pub(crate) fn lock_exclusive(&self) -> Result<StoreLock> {
        self.lock(FlockOperation::LockExclusive)
    }

    /// Exclusive if nobody else holds the lock; `None` if someone does.
    pub(crate) fn try_lock_exclusive(&self) -> Result<Option<StoreLock>> {
        let file = self.lock_file()?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(StoreLock { _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(io_error("lock", &self.root.join("lock"))(e.into())),
        }
    }
}
