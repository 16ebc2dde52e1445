//! The content-addressed image store on the data partition.
//!
//! Layout under the store root (e.g. `/data/images`):
//! ```text
//! lock                   flock(2)ed: shared by imports and prepares, exclusive for GC and recovery
//! blobs/sha256/<hex>     verified blobs (manifests, configs, compressed layers)
//! refs/<escaped name>    "sha256:<hex>\n": the manifest digest an image name points at
//! layers/<hex>/          unpacked layers, keyed by diff id, used as overlayfs lower dirs
//! tmp/                   temp files and half-unpacked layers; emptied at open
//! ```
//! Crash safety: every blob and ref is written to `tmp/`, fsynced and renamed into place, then its
//! directory is fsynced; a layer is unpacked under `tmp/`, its file system synced, then renamed. A ref is
//! written only after every blob it reaches is in place, and GC removes refs before blobs, so at no
//! moment does a ref point at a missing blob. Whatever a power cut leaves in `tmp/` is removed at open,
//! and refs that do not parse or whose blobs are missing (which the rules above prevent, but a damaged
//! card may not) are dropped and reported by [`Store::recovery`].
//!
//! Space: the store shares its file system with the state and the logs, so blob writes and layer
//! unpacking stop before available space goes below [`StoreLimits::min_available`], and one image's
//! layers may take at most [`StoreLimits::max_image_bytes`] unpacked (see `space.rs` and the
//! unpacker's budget). Layer blobs are checked against their digest before they are unpacked.

mod blobs;
mod gc;
mod lock;
mod refs;
pub(crate) mod space;

pub use gc::GcReport;
pub use refs::{escape_ref, unescape_ref};
pub use space::StoreLimits;

use crate::digest::{Digest, DigestError};
use crate::model::Platform;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest JSON document (manifest, index, config) the store reads into memory.
pub const MAX_JSON_BYTES: u64 = 4 << 20;

/// Errors from the image store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system operation failed.
    #[error("image store: {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A blob's content does not hash to the digest it was announced with.
    #[error("blob {expected}: content hashes to {actual} ({size} bytes): corrupt or wrong blob")]
    DigestMismatch {
        /// The digest the blob was announced with.
        expected: Digest,
        /// What its content hashes to.
        actual: Digest,
        /// Bytes read.
        size: u64,
    },
    /// A blob's size differs from the size it was announced with.
    #[error("blob {digest}: expected {expected} bytes, found {actual}")]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// The announced size.
        expected: u64,
        /// The real size (or, while streaming, at least this much).
        actual: u64,
    },
    /// A blob is not in the store.
    #[error("blob {digest} is missing from the image store at {root}")]
    MissingBlob {
        /// The blob.
        digest: Digest,
        /// The store root.
        root: PathBuf,
    },
    /// No ref of this name.
    #[error("no image named {name:?} in the image store at {root}")]
    MissingRef {
        /// The image name.
        name: String,
        /// The store root.
        root: PathBuf,
    },
    /// A ref file does not hold a digest.
    #[error("ref {name:?} in the image store: {source}")]
    BadRef {
        /// The image name.
        name: String,
        /// Why.
        source: DigestError,
    },
    /// A JSON blob does not parse as what it should be.
    #[error("blob {digest}: not a valid {what}: {source}")]
    Json {
        /// The blob.
        digest: Digest,
        /// What it should be (manifest, config, index).
        what: &'static str,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A JSON blob is too large to read.
    #[error("blob {digest}: {size} bytes is too large for a {what} (limit {MAX_JSON_BYTES})")]
    TooLarge {
        /// The blob.
        digest: Digest,
        /// What it should be.
        what: &'static str,
        /// Its size.
        size: u64,
    },
    /// A manifest's layers and its config's diff ids disagree.
    #[error("manifest {manifest}: {layers} layers but its config lists {diff_ids} diff ids")]
    LayerCount {
        /// The manifest.
        manifest: Digest,
        /// Layers in the manifest.
        layers: usize,
        /// Diff ids in the config.
        diff_ids: usize,
    },
    /// A layer's media type is not one baton can unpack.
    #[error("manifest {manifest}: layer {layer} has unsupported media type {media_type:?}")]
    LayerType {
        /// The manifest.
        manifest: Digest,
        /// The layer blob.
        layer: Digest,
        /// Its media type.
        media_type: String,
    },
    /// Writing a blob would take the store's file system below the space it always leaves free.
    #[error(
        "image store at {root}: stopped writing {what} after {written} bytes: its file system has \
         {available} bytes available and the store always leaves {min_available} free"
    )]
    NoSpace {
        /// The store root.
        root: PathBuf,
        /// What was being written (`blob sha256:...`).
        what: String,
        /// Bytes written when it was stopped (removed since).
        written: u64,
        /// Bytes available (estimated) when it was stopped.
        available: u64,
        /// The reserve ([`StoreLimits::min_available`]).
        min_available: u64,
    },
}

/// Shorthand for store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

/// What [`Store::open`] repaired after an unclean shutdown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Temp files and half-unpacked layers removed from `tmp/`.
    pub removed_temp: Vec<PathBuf>,
    /// Refs dropped, with the reason.
    pub dropped_refs: Vec<(String, String)>,
    /// Whether recovery ran (it is skipped while another handle is importing or collecting).
    pub ran: bool,
}

/// An image store rooted at a directory.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    platform: Platform,
    recovery: Recovery,
    limits: StoreLimits,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// Opens (creating if needed) the store at `root`, for linux/arm64 images, and recovers from an
    /// unclean shutdown: see the module docs. The limits are [`StoreLimits::default`]; change them
    /// with [`Store::with_limits`] or [`Store::set_limits`].
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        Store::open_for(root, Platform::linux_arm64())
    }

    /// Like [`Store::open`], for images of another platform (tests and tools on other hosts).
    pub fn open_for(root: impl Into<PathBuf>, platform: Platform) -> Result<Store> {
        let mut store = Store {
            root: root.into(),
            platform,
            recovery: Recovery::default(),
            limits: StoreLimits::default(),
        };
        for dir in ["blobs/sha256", "refs", "layers", "tmp"] {
            let path = store.root.join(dir);
            fs::create_dir_all(&path).map_err(io_error("create directory", &path))?;
        }
        if let Some(_lock) = store.try_lock_exclusive()? {
            store.recovery = store.recover()?;
        }
        Ok(store)
    }

    /// The same store, with these limits on what images may take (see [`StoreLimits`]).
    pub fn with_limits(mut self, limits: StoreLimits) -> Store {
        self.limits = limits;
        self
    }

    /// Sets the limits on what images may take; the next import, pull or prepare uses them.
    pub fn set_limits(&mut self, limits: StoreLimits) {
        self.limits = limits;
    }

    /// The limits in force ([`StoreLimits::default`] unless set).
    pub fn limits(&self) -> StoreLimits {
        self.limits
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The platform images must be for.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// What opening the store repaired.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    pub(crate) fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    /// A fresh path under `tmp/` (same file system as everything else, so renames are atomic).
    pub(crate) fn temp_path(&self, kind: &str) -> PathBuf {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.root
            .join("tmp")
            .join(format!("{kind}-{}-{n}", std::process::id()))
    }

    fn recover(&self) -> Result<Recovery> {
        let mut recovery = Recovery {
            ran: true,
            ..Recovery::default()
        };
        let tmp = self.root.join("tmp");
        for entry in read_dir(&tmp)? {
            remove_any(&entry)?;
            recovery.removed_temp.push(entry);
        }
        for (name, ref_path) in self.ref_files()? {
            let problem = match self.read_ref_file(&name, &ref_path) {
                Ok(digest) => self.closure(&digest).err().map(|e| e.to_string()),
                Err(e) => Some(e.to_string()),
            };
            if let Some(reason) = problem {
                fs::remove_file(&ref_path).map_err(io_error("remove broken ref", &ref_path))?;
                recovery.dropped_refs.push((name, reason));
            }
        }
        if !recovery.dropped_refs.is_empty() {
            sync_dir(&self.root.join("refs"))?;
        }
        Ok(recovery)
    }
}

pub(crate) fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error("read directory", dir))? {
        paths.push(entry.map_err(io_error("read directory", dir))?.path());
    }
    paths.sort();
    Ok(paths)
}

pub(crate) fn remove_any(path: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(path).map_err(io_error("inspect", path))?;
    if meta.is_dir() {
        fs::remove_dir_all(path).map_err(io_error("remove directory", path))
    } else {
        fs::remove_file(path).map_err(io_error("remove file", path))
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("sync directory", dir))
}
