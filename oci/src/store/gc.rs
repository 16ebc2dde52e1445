//! Garbage collection: drop refs not kept, then blobs and unpacked layers no kept ref reaches.
//!
//! Safe against a concurrent import or prepare (in this or another process): GC holds the store lock
//! exclusively, imports and prepares hold it shared for their whole run (see `lock.rs`), so GC sees
//! either none of an import's blobs or all of them with the ref that reaches them. Refs are removed
//! (and their directory synced) before any blob, so a power cut during GC never leaves a ref pointing at
//! a missing blob. A container still running from layers of an image whose ref is not kept loses its
//! lower dirs: callers keep the refs of every image they run.

use super::{io_error, read_dir, remove_any, sync_dir, Result, Store};
use crate::digest::Digest;
use std::collections::BTreeSet;
use std::fs;

/// What a GC removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Refs removed (their names).
    pub removed_refs: Vec<String>,
    /// Blobs removed.
    pub removed_blobs: Vec<Digest>,
    /// Unpacked layers removed (their diff ids).
    pub removed_layers: Vec<Digest>,
    /// Bytes of blobs freed (unpacked layers not counted).
    pub freed_bytes: u64,
}

impl Store {
    /// Keeps the refs named in `keep` and everything they reach; removes every other ref, blob and
    /// unpacked layer. Names in `keep` that are not in the store are ignored.
    pub fn gc(&self, keep: &[&str]) -> Result<GcReport> {
        let _lock = self.lock_exclusive()?;
        let mut report = GcReport::default();
        let mut live_blobs = BTreeSet::new();
        let mut live_layers = BTreeSet::new();
        for (name, manifest_digest) in self.refs()? {
            if !keep.contains(&name.as_str()) {
                continue;
            }
            let (manifest, config) = self.closure(&manifest_digest)?;
            live_blobs.insert(manifest_digest);
            live_blobs.insert(manifest.config.digest);
            live_blobs.extend(manifest.layers.into_iter().map(|l| l.digest));
            live_layers.extend(config.rootfs.diff_ids);
        }
        for (name, path) in self.ref_files()? {
            if !keep.contains(&name.as_str()) {
                fs::remove_file(&path).map_err(io_error("remove ref", &path))?;
                report.removed_refs.push(name);
            }
        }
        sync_dir(&self.root.join("refs"))?;
        for path in read_dir(&self.root.join("blobs/sha256"))? {
            let digest = file_digest(&path);
            if digest.as_ref().is_some_and(|d| live_blobs.contains(d)) {
                continue;
            }
            let size = fs::symlink_metadata(&path).map(|m| m.len()).unwrap_or(0);
            remove_any(&path)?;
            report.freed_bytes += size;
            report.removed_blobs.extend(digest);
        }
        for path in read_dir(&self.layers_dir())? {
            let digest = file_digest(&path);
            if digest.as_ref().is_some_and(|d| live_layers.contains(d)) {
                continue;
            }
            remove_any(&path)?;
            report.removed_layers.extend(digest);
        }
        Ok(report)
    }
}

fn file_digest(path: &std::path::Path) -> Option<Digest> {
    let name = path.file_name()?.to_str()?;
    Digest::from_hex(name).ok()
}
