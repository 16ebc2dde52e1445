//! What an image's layers may take while they are unpacked: the image's cap and the store's reserve.
//!
//! Every entry is charged before it is written, as a file system would roughly charge it: one 4 KiB
//! block per entry of any kind (so millions of empty files or directories count), plus the contents
//! the entry declares rounded up to whole blocks (only regular files' are written, but all are
//! decompressed). Directories created on the way to an entry count as entries.
//! A layer's cost is kept on its directory (the `trusted.baton.unpacked` xattr, which an image cannot
//! set: the unpacker only copies `user.*` and `security.capability` from tars), so layers unpacked by an
//! earlier prepare still count against the image.

use crate::digest::Digest;
use crate::store::space::{FreeSpace, SpaceError};
use crate::store::{io_error, Store, StoreError, StoreLimits};
use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::UnpackError;

/// The block every entry costs, and the unit file contents are rounded up to.
pub(crate) const BLOCK: u64 = 4096;

/// The xattr on a layer directory holding what unpacking it cost, in decimal bytes.
const COST_XATTR: &str = "trusted.baton.unpacked";

/// `bytes` rounded up to whole blocks.
pub(crate) fn blocks(bytes: u64) -> u64 {
    bytes.div_ceil(BLOCK).saturating_mul(BLOCK)
}

/// What one image's layers may still take; shared by the layers one prepare unpacks.
#[derive(Debug)]
pub(crate) struct Budget {
    limits: StoreLimits,
    root: PathBuf,
    space: FreeSpace,
    /// Bytes the image's layers take so far (unpacked earlier, or charged now).
    image_bytes: u64,
}

/// Why a charge was refused; turned into an [`UnpackError`] naming the layer.
#[derive(Debug)]
pub(crate) enum Over {
    Image,
    Space(SpaceError),
}

impl Budget {
    /// A budget for unpacking into the store at `root` (the file system whose space is guarded).
    pub(crate) fn new(root: &Path, limits: StoreLimits) -> Result<Budget, StoreError> {
        let space = FreeSpace::new(root, limits.min_available)
            .map_err(io_error("check free space of", root))?;
        Ok(Budget {
            limits,
            root: root.to_owned(),
            space,
            image_bytes: 0,
        })
    }

    /// The budget for an image of these layers, already charged with those unpacked in the store.
    pub(crate) fn for_image(store: &Store, diff_ids: &[Digest]) -> Result<Budget, StoreError> {
        let mut budget = Budget::new(store.root(), store.limits())?;
        let mut seen = HashSet::new();
        for diff_id in diff_ids {
            let dir = store.layers_dir().join(diff_id.hex());
            if seen.insert(diff_id) && dir.is_dir() {
                budget.image_bytes = budget.image_bytes.saturating_add(layer_cost(&dir)?);
            }
        }
        Ok(budget)
    }

    /// The limits charged against.
    pub(crate) fn limits(&self) -> StoreLimits {
        self.limits
    }

    /// Records that `bytes` more are about to be written.
    pub(crate) fn charge(&mut self, bytes: u64) -> Result<(), Over> {
        let total = self.image_bytes.saturating_add(bytes);
        if total > self.limits.max_image_bytes {
            return Err(Over::Image);
        }
        self.space.charge(bytes).map_err(Over::Space)?;
        self.image_bytes = total;
        Ok(())
    }

    /// The error for a refused charge, naming the layer and what it had written.
    pub(crate) fn error(&self, over: Over, layer: &Digest, written: u64) -> UnpackError {
        match over {
            Over::Image => UnpackError::ImageTooLarge {
                layer: layer.clone(),
                written,
                image: self.image_bytes,
                limit: self.limits.max_image_bytes,
            },
            Over::Space(SpaceError::Low { available }) => UnpackError::NoSpace {
                layer: layer.clone(),
                written,
                root: self.root.clone(),
                available,
                min_available: self.space.min_available(),
            },
            Over::Space(SpaceError::Statvfs(path, source)) => UnpackError::Io {
                layer: layer.clone(),
                entry: String::new(),
                action: "check free space of",
                path,
                source,
            },
        }
    }
}

/// Records on a freshly unpacked layer directory what it cost.
pub(crate) fn record_cost(dir: &Path, bytes: u64) -> Result<(), StoreError> {
    rustix::fs::lsetxattr(
        dir,
        COST_XATTR,
        bytes.to_string().as_bytes(),
        rustix::fs::XattrFlags::empty(),
    )
    .map_err(|e| io_error("record the unpacked size of", dir)(e.into()))
}

/// What an unpacked layer cost: the recorded value, or for a layer unpacked before costs were
/// recorded, a walk of its tree (then recorded, if the file system lets us).
pub(crate) fn layer_cost(dir: &Path) -> Result<u64, StoreError> {
    let mut value = [0u8; 24];
    if let Ok(n) = rustix::fs::lgetxattr(dir, COST_XATTR, &mut value) {
        let parsed = std::str::from_utf8(&value[..n])
            .ok()
            .and_then(|text| text.parse::<u64>().ok());
        if let Some(bytes) = parsed {
            return Ok(bytes);
        }
    }
    let bytes = measure(dir).map_err(io_error("measure the unpacked layer", dir))?;
    let _ = record_cost(dir, bytes);
    Ok(bytes)
}

/// The cost of a tree by the unpacker's rules (hard-linked contents counted once).
fn measure(dir: &Path) -> io::Result<u64> {
    let mut total = 0u64;
    let mut linked = HashSet::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        for entry in fs::read_dir(&current)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            total = total.saturating_add(BLOCK);
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() && (meta.nlink() == 1 || linked.insert(meta.ino())) {
                total = total.saturating_add(blocks(meta.len()));
            }
        }
    }
    Ok(total)
}
