//! One streaming pass over an image archive: blobs into the store, small JSON files into memory.

use super::{ImportError, ImportRequest};
use crate::digest::Digest;
use crate::store::MAX_JSON_BYTES;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path};
use tar::EntryType;

/// What one pass over an archive found.
#[derive(Debug, Default)]
pub(crate) struct Ingested {
    /// Small files read into memory, by archive path.
    pub small: BTreeMap<String, Vec<u8>>,
    /// Files streamed into the store, by archive path.
    pub blobs: BTreeMap<String, (Digest, u64)>,
    /// Symbolic and hard links, archive path to the archive path they point at.
    pub links: BTreeMap<String, String>,
}

impl Ingested {
    /// The blob stored for an archive path, following links (docker archives link duplicate layers).
    pub fn blob(&self, path: &str) -> Option<&(Digest, u64)> {
        let mut path = path.to_owned();
        for _ in 0..8 {
            if let Some(blob) = self.blobs.get(&path) {
                return Some(blob);
            }
            path = self.links.get(&path)?.clone();
        }
        None
    }
}

/// Reads the archive at `job.source.path`: files named in `small` into memory, `blobs/sha256/<hex>`
/// into the store verified against their names, and other files for which `keep` says so into the
/// store under whatever they hash to.
pub(crate) fn ingest(
    job: &ImportRequest<'_>,
    small: &[&str],
    keep: fn(&str) -> bool,
) -> Result<Ingested, ImportError> {
    let path = &job.source.path;
    let file = File::open(path).map_err(job.io_error(path))?;
    let mut archive = tar::Archive::new(BufReader::with_capacity(128 << 10, file));
    let mut found = Ingested::default();
    for entry in archive.entries().map_err(job.io_error(path))? {
        let mut entry = entry.map_err(job.io_error(path))?;
        let raw = entry.path().map_err(job.io_error(path))?.into_owned();
        let name = normalize(&raw).ok_or_else(|| ImportError::Entry {
            image: job.image.clone(),
            entry: raw.display().to_string(),
            reason: "absolute path or `..` in an image archive".to_owned(),
        })?;
        let entry_error = |reason: String| ImportError::Entry {
            image: job.image.clone(),
            entry: name.clone(),
            reason,
        };
        match entry.header().entry_type() {
            EntryType::Regular | EntryType::Continuous => {}
            EntryType::Symlink | EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(job.io_error(path))?
                    .ok_or_else(|| entry_error("link without a target".to_owned()))?;
                let base = if entry.header().entry_type() == EntryType::Symlink {
                    Path::new(&name)
                        .parent()
                        .unwrap_or(Path::new(""))
                        .join(target)
                } else {
                    target.into_owned()
                };
                if let Some(target) = normalize(&base) {
                    found.links.insert(name, target);
                }
                continue;
            }
            _ => continue,
        }
        let size = entry.size();
        if small.contains(&name.as_str()) {
            if size > MAX_JSON_BYTES {
                return Err(entry_error(format!("{size} bytes is too large")));
            }
            let mut bytes = Vec::with_capacity(size as usize);
            (&mut entry)
                .take(MAX_JSON_BYTES)
                .read_to_end(&mut bytes)
                .map_err(job.io_error(path))?;
            found.small.insert(name, bytes);
        } else if let Some(rest) = name.strip_prefix("blobs/") {
            let (algorithm, hex) = rest.split_once('/').unwrap_or((rest, ""));
            if algorithm != "sha256" {
                return Err(entry_error(format!(
                    "digest algorithm {algorithm:?} is not supported (only sha256)"
                )));
            }
            let digest = Digest::from_hex(hex)
                .map_err(|_| entry_error("blob name is not a sha256 digest".to_owned()))?;
            let stored = job
                .store
                .write_blob(&mut entry, Some(&digest), Some(size))
                .map_err(job.store_error())?;
            found.blobs.insert(name, stored);
        } else if keep(&name) {
            let stored = job
                .store
                .write_blob(&mut entry, None, Some(size))
                .map_err(job.store_error())?;
            found.blobs.insert(name, stored);
        }
    }
    Ok(found)
}

/// An archive path as `a/b/c` (no `./`, no trailing `/`), or `None` if absolute or with `..`.
pub(crate) fn normalize(path: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}
