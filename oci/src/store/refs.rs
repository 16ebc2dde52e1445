//! Refs: `refs/<escaped name>` holds the manifest digest an image name points at.

use super::{io_error, read_dir, sync_dir, Result, Store, StoreError};
use crate::digest::Digest;
use crate::model::{Compression, ImageConfig, Manifest};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Escapes an image name into a single file name: bytes outside `[A-Za-z0-9._-]` (and a leading `.`)
/// become `%XX`, so `/`, `:` and `..` can never leave `refs/`.
pub fn escape_ref(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, byte) in name.bytes().enumerate() {
        let plain =
            byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_') || byte == b'.' && i > 0;
        if plain {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Reverses [`escape_ref`]; `None` if `escaped` is not something it produced.
pub fn unescape_ref(escaped: &str) -> Option<String> {
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = escaped.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let name = String::from_utf8(out).ok()?;
    (escape_ref(&name) == escaped).then_some(name)
}

impl Store {
    fn ref_path(&self, name: &str) -> PathBuf {
        self.root.join("refs").join(escape_ref(name))
    }

    /// Points `name` at a manifest, atomically. The manifest, its config and all its layers must
    /// already be in the store (with the sizes the manifest announces).
    pub fn set_ref(&self, name: &str, manifest: &Digest) -> Result<()> {
        self.closure(manifest)?;
        let temp = self.temp_path("ref");
        let target = self.ref_path(name);
        let write = || -> io::Result<()> {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            writeln!(file, "{manifest}")?;
            file.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&temp);
            return Err(io_error("write ref", &temp)(e));
        }
        fs::rename(&temp, &target).map_err(io_error("move ref into place", &target))?;
        sync_dir(&self.root.join("refs"))
    }

    /// The manifest digest `name` points at.
    pub fn get_ref(&self, name: &str) -> Result<Digest> {
        self.read_ref_file(name, &self.ref_path(name))
    }

    /// Every image name in the store with its manifest digest, sorted by name. Refs that do not parse
    /// are left out (open-time recovery drops them).
    pub fn refs(&self) -> Result<Vec<(String, Digest)>> {
        let mut refs = Vec::new();
        for (name, path) in self.ref_files()? {
            if let Ok(digest) = self.read_ref_file(&name, &path) {
                refs.push((name, digest));
            }
        }
        Ok(refs)
    }

    /// Removes a ref; `false` if there was none. Its blobs stay until the next GC.
    pub fn remove_ref(&self, name: &str) -> Result<bool> {
        let path = self.ref_path(name);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.root.join("refs")).map(|()| true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error("remove ref", &path)(e)),
        }
    }

    /// Ref files with their unescaped names; files whose names are not escaped names are included
    /// under their raw name so recovery can drop them.
    pub(super) fn ref_files(&self) -> Result<Vec<(String, PathBuf)>> {
        let mut files = Vec::new();
        for path in read_dir(&self.root.join("refs"))? {
            let raw = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push((unescape_ref(&raw).unwrap_or(raw), path));
        }
        Ok(files)
    }

    pub(super) fn read_ref_file(&self, name: &str, path: &Path) -> Result<Digest> {
        let text = fs::read_to_string(path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::MissingRef {
                    name: name.to_owned(),
                    root: self.root.clone(),
                }
            } else {
                io_error("read ref", path)(e)
            }
        })?;
        Digest::parse(text.trim_end()).map_err(|source| StoreError::BadRef {
            name: name.to_owned(),
            source,
        })
    }

    /// Reads a manifest and its config and checks that every blob they name is present with its size
    /// and that the layers are ones baton can unpack.
    pub(crate) fn closure(&self, manifest_digest: &Digest) -> Result<(Manifest, ImageConfig)> {
        let manifest: Manifest = self.read_json(manifest_digest, "image manifest")?;
        self.check_blob(&manifest.config)?;
        let config: ImageConfig = self.read_json(&manifest.config.digest, "image config")?;
        if manifest.layers.len() != config.rootfs.diff_ids.len() {
            return Err(StoreError::LayerCount {
                manifest: manifest_digest.clone(),
                layers: manifest.layers.len(),
                diff_ids: config.rootfs.diff_ids.len(),
            });
        }
        for layer in &manifest.layers {
            if Compression::of_media_type(&layer.media_type).is_none() {
                return Err(StoreError::LayerType {
                    manifest: manifest_digest.clone(),
                    layer: layer.digest.clone(),
                    media_type: layer.media_type.clone(),
                });
            }
            self.check_blob(layer)?;
        }
        Ok((manifest, config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_names_in_one_file_and_round_trips() {
        for name in [
            "oci-archive:images/web.tar",
            "../../etc/passwd",
            ".hidden",
            "registry.lan:5000/a/b@sha256:00",
            "plain",
        ] {
            let escaped = escape_ref(name);
            assert!(
                !escaped.contains('/') && !escaped.starts_with('.'),
                "{escaped}"
            );
            assert_eq!(unescape_ref(&escaped).as_deref(), Some(name));
        }
        assert_eq!(escape_ref("a/b:c"), "a%2Fb%3Ac");
        assert_eq!(unescape_ref("a%2fb"), None);
        assert_eq!(unescape_ref("a%2"), None);
    }
}
