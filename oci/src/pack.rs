//! Writing an oci-archive from files and a runtime config, without docker, byte for byte the same
//! for the same input: entries sorted, parents added, times fixed at 0, no user or host names.
//!
//! The image has one gzip layer. Host files are streamed into the layer; the compressed layer is held
//! in memory (packed images are small service binaries).

use crate::digest::{Digest, HashingWriter};
use crate::model::{
    Descriptor, ImageConfig, Index, Manifest, Platform, RootFs, ANNOTATION_REF_NAME,
    MEDIA_TYPE_CONFIG, MEDIA_TYPE_INDEX, MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_MANIFEST,
};
use crate::prepare::RuntimeConfig;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use tar::{EntryType, Header};

/// Errors from packing an image.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// An entry's path in the image is not usable.
    #[error("image path {path:?}: {reason}")]
    Path {
        /// The path.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// A host file could not be read.
    #[error("reading {path} for image path {image_path:?}: {source}")]
    Read {
        /// The host file.
        path: PathBuf,
        /// Where it goes in the image.
        image_path: String,
        /// The error.
        source: io::Error,
    },
    /// Writing the archive failed.
    #[error("writing the oci-archive: {0}")]
    Write(#[source] io::Error),
}

/// What an entry of the image is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contents {
    /// A file with these bytes.
    Bytes(Vec<u8>),
    /// A file copied from this host path.
    HostFile(PathBuf),
    /// A directory.
    Directory,
    /// A symlink to this target.
    Symlink(String),
}

/// One file, directory or symlink of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackEntry {
    /// Path inside the image (`/web` or `web`; `..` is refused).
    pub path: String,
    /// What it is.
    pub contents: Contents,
    /// Permission bits (`0o755`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

impl PackEntry {
    /// A file owned by root with the given bytes.
    pub fn bytes(path: &str, bytes: impl Into<Vec<u8>>, mode: u32) -> PackEntry {
        PackEntry::new(path, Contents::Bytes(bytes.into()), mode)
    }

    /// A file owned by root copied from the host.
    pub fn host_file(path: &str, host: impl Into<PathBuf>, mode: u32) -> PackEntry {
        PackEntry::new(path, Contents::HostFile(host.into()), mode)
    }

    /// A directory owned by root.
    pub fn directory(path: &str, mode: u32) -> PackEntry {
        PackEntry::new(path, Contents::Directory, mode)
    }

    /// A symlink owned by root.
    pub fn symlink(path: &str, target: &str) -> PackEntry {
        PackEntry::new(path, Contents::Symlink(target.to_owned()), 0o777)
    }

    fn new(path: &str, contents: Contents, mode: u32) -> PackEntry {
        PackEntry {
            path: path.to_owned(),
            contents,
            mode,
            uid: 0,
            gid: 0,
        }
    }
}

/// What to pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackSpec {
    /// The files; parent directories are added (0755, root) when not listed.
    pub entries: Vec<PackEntry>,
    /// Entrypoint, cmd, env, working dir, user, exposed ports.
    pub config: RuntimeConfig,
    /// The platform written into the config and index (linux/arm64 for boards).
    pub platform: Platform,
    /// The tag recorded as `org.opencontainers.image.ref.name`, if any.
    pub tag: Option<String>,
}

/// Writes `spec` as an oci-archive to `out` and returns the manifest digest.
pub fn oci_archive(spec: &PackSpec, out: impl Write) -> Result<Digest, PackError> {
    let entries = normalize(&spec.entries)?;
    let (layer, diff_id) = layer(&entries)?;
    let config = ImageConfig {
        architecture: spec.platform.architecture.clone(),
        os: spec.platform.os.clone(),
        variant: spec.platform.variant.clone(),
        config: Some(spec.config.to_container_config()),
        rootfs: RootFs {
            kind: "layers".to_owned(),
            diff_ids: vec![diff_id],
        },
    };
    let config = json(&config)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_MANIFEST.to_owned()),
        config: descriptor(MEDIA_TYPE_CONFIG, &config),
        layers: vec![descriptor(MEDIA_TYPE_LAYER_GZIP, &layer)],
    };
    let manifest = json(&manifest)?;
    let mut manifest_descriptor = descriptor(MEDIA_TYPE_MANIFEST, &manifest);
    manifest_descriptor.platform = Some(spec.platform.clone());
    if let Some(tag) = &spec.tag {
        manifest_descriptor
            .annotations
            .insert(ANNOTATION_REF_NAME.to_owned(), tag.clone());
    }
    let manifest_digest = manifest_descriptor.digest.clone();
    let index = json(&Index {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_INDEX.to_owned()),
        manifests: vec![manifest_descriptor],
    })?;

    let mut archive = tar::Builder::new(out);
    let mut add = |path: &str, kind: EntryType, bytes: &[u8]| {
        let mut header = header(
            kind,
            if kind == EntryType::Directory {
                0o755
            } else {
                0o644
            },
            0,
            0,
        );
        header.set_size(bytes.len() as u64);
        archive.append_data(&mut header, path, bytes)
    };
    add(
        "oci-layout",
        EntryType::Regular,
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .and_then(|()| add("index.json", EntryType::Regular, &index))
    .and_then(|()| add("blobs", EntryType::Directory, &[]))
    .and_then(|()| add("blobs/sha256", EntryType::Directory, &[]))
    .map_err(PackError::Write)?;
    let mut blobs = [config, layer, manifest];
    blobs.sort_by_key(|b| Digest::of(b));
    for blob in &blobs {
        let path = format!("blobs/sha256/{}", Digest::of(blob).hex());
        add(&path, EntryType::Regular, blob).map_err(PackError::Write)?;
    }
    archive
        .into_inner()
        .and_then(|mut out| out.flush())
        .map_err(PackError::Write)?;
    Ok(manifest_digest)
}

/// Entries by normalized path, parents added.
fn normalize(entries: &[PackEntry]) -> Result<BTreeMap<String, PackEntry>, PackError> {
    let mut out = BTreeMap::new();
    for entry in entries {
        let bad = |reason| PackError::Path {
            path: entry.path.clone(),
            reason,
        };
        let mut parts = Vec::new();
        for component in Path::new(&entry.path).components() {
            match component {
                Component::Normal(part) => {
                    parts.push(part.to_str().ok_or_else(|| bad("not UTF-8"))?)
                }
                Component::RootDir | Component::CurDir => {}
                _ => return Err(bad("`..` is not allowed")),
            }
        }
        if parts.is_empty() {
            return Err(bad("names no file"));
        }
        for depth in 1..parts.len() {
            out.entry(parts[..depth].join("/"))
                .or_insert_with(|| PackEntry::directory("", 0o755));
        }
        let path = parts.join("/");
        if out
            .get(&path)
            .is_some_and(|e: &PackEntry| !e.path.is_empty())
        {
            return Err(bad("listed twice"));
        }
        out.insert(path, entry.clone());
    }
    Ok(out)
}

/// The gzip layer and its diff id.
fn layer(entries: &BTreeMap<String, PackEntry>) -> Result<(Vec<u8>, Digest), PackError> {
    let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut builder = tar::Builder::new(HashingWriter::new(gzip));
    for (path, entry) in entries {
        let kind = match entry.contents {
            Contents::Bytes(_) | Contents::HostFile(_) => EntryType::Regular,
            Contents::Directory => EntryType::Directory,
            Contents::Symlink(_) => EntryType::Symlink,
        };
        let mut header = header(kind, entry.mode, entry.uid, entry.gid);
        let written = match &entry.contents {
            Contents::Bytes(bytes) => {
                header.set_size(bytes.len() as u64);
                builder.append_data(&mut header, path, bytes.as_slice())
            }
            Contents::HostFile(host) => {
                let read_error = |source| PackError::Read {
                    path: host.clone(),
                    image_path: entry.path.clone(),
                    source,
                };
                let file = File::open(host).map_err(read_error)?;
                header.set_size(file.metadata().map_err(read_error)?.len());
                builder.append_data(&mut header, path, file)
            }
            Contents::Directory => builder.append_data(&mut header, path, io::empty()),
            Contents::Symlink(target) => builder.append_link(&mut header, path, target),
        };
        written.map_err(PackError::Write)?;
    }
    let hashing = builder.into_inner().map_err(PackError::Write)?;
    let (diff_id, _, gzip) = hashing.finish();
    let layer = gzip.finish().map_err(PackError::Write)?;
    Ok((layer, diff_id))
}

fn header(kind: EntryType, mode: u32, uid: u32, gid: u32) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode & 0o7777);
    header.set_uid(uid.into());
    header.set_gid(gid.into());
    header.set_mtime(0);
    header.set_size(0);
    header
}

fn json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, PackError> {
    serde_json::to_vec(value).map_err(|e| PackError::Write(io::Error::other(e)))
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.to_owned(),
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
        platform: None,
        annotations: BTreeMap::new(),
    }
}
