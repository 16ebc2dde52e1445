//! Baking OCI images into the data partition: `baton image build --image REF=ARCHIVE`.
//!
//! Each archive (an oci-archive or a `docker save` tar on the host) is imported into a
//! [`baton_oci::Store`] staged in a temporary directory, under the text the board's init looks
//! the image up by: the [`ImageSource`] display of the registry reference a spec names (so
//! `registry.lan/web:2` is stored as `registry.lan/web:2`, `hello` as
//! `docker.io/library/hello:latest`). The store's import verifies every digest and refuses an
//! image that is not linux/arm64. Only blobs and refs are staged: layers are unpacked on the
//! board on first use, because a builder that is not root could not give unpacked files their
//! owners.
//!
//! The staged tree (`images/` = the store) is copied into the ext4 data partition by
//! `mke2fs -d`; the ext4 writer makes every copied inode root-owned with fixed times and
//! permissions, so the bytes do not depend on who builds or when.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use baton_oci::model::Manifest;
use baton_oci::{ImportError, Source, SourceKind, Store, StoreError};
use baton_spec::service::{ImageReference, ImageSource};
use serde::{Deserialize, Serialize};

/// Where the store goes in the data partition (the init's `/data/images`).
pub const STORE_DIR: &str = "images";

/// Largest JSON file read from an archive to find the image's name.
const MAX_JSON: u64 = 4 << 20;

/// Failures baking images; each names the archive or the argument.
#[derive(Debug, thiserror::Error)]
pub enum BakeError {
    /// `--image` is not `REF=ARCHIVE` or `ARCHIVE`.
    #[error("--image {arg:?}: {reason}")]
    Argument {
        /// The argument as given.
        arg: String,
        /// What is wrong.
        reason: String,
    },
    /// Two `--image` arguments store the same reference.
    #[error("--image: {reference} is given twice ({first} and {second})")]
    Duplicate {
        /// The stored reference.
        reference: String,
        /// The first archive.
        first: PathBuf,
        /// The second archive.
        second: PathBuf,
    },
    /// The archive cannot be read or is not an image archive.
    #[error("image archive {path}: {reason}")]
    Archive {
        /// The archive.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The archive does not name exactly one image, and no REF was given.
    #[error("image archive {path}: {found}; use --image REF={path} to say which reference it is stored under")]
    Unnamed {
        /// The archive.
        path: PathBuf,
        /// What names it carries.
        found: String,
    },
    /// The import refused the image (wrong platform, digest mismatch, truncated).
    #[error("image archive {path}: {error}")]
    Import {
        /// The archive.
        path: PathBuf,
        /// Why (kept out of the error's source chain, which would repeat it).
        error: Box<ImportError>,
    },
    /// The reference pins a digest the archive's image does not have.
    #[error("image archive {path}: {reference} pins {wanted}, but the archive's linux/arm64 manifest is {found}")]
    DigestPin {
        /// The archive.
        path: PathBuf,
        /// The reference.
        reference: String,
        /// The digest in the reference.
        wanted: String,
        /// The manifest digest of the imported image.
        found: String,
    },
    /// The staged store could not be made or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file of the staged store could not be read or changed.
    #[error("staging the image store: {action} {path}: {error}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The cause (kept out of the source chain, which would repeat it).
        error: std::io::Error,
    },
}

/// One `--image` argument: an archive and, optionally, the reference to store it under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageArg {
    /// The registry reference specs use; `None` takes the name the archive carries.
    pub reference: Option<ImageReference>,
    /// The archive on the host.
    pub archive: PathBuf,
}

impl ImageArg {
    /// Parses `REF=ARCHIVE` or `ARCHIVE`. REF must be a registry reference (what a spec's
    /// `image` names); the first `=` separates it from the path.
    pub fn parse(text: &str) -> Result<ImageArg, BakeError> {
        let bad = |reason: String| BakeError::Argument {
            arg: text.to_string(),
            reason,
        };
        let Some((reference, archive)) = text.split_once('=') else {
            if text.is_empty() {
                return Err(bad("expected REF=ARCHIVE or ARCHIVE".to_string()));
            }
            return Ok(ImageArg {
                reference: None,
                archive: PathBuf::from(text),
            });
        };
        if archive.is_empty() {
            return Err(bad("no archive after '='".to_string()));
        }
        let reference = registry_reference(reference).map_err(bad)?;
        Ok(ImageArg {
            reference: Some(reference),
            archive: PathBuf::from(archive),
        })
    }
}

/// Parses `text` as a spec would, accepting only registry references.
fn registry_reference(text: &str) -> Result<ImageReference, String> {
    match ImageSource::parse(text) {
        Ok(ImageSource::Registry(r)) => Ok(r),
        Ok(other) => Err(format!(
            "{other} is an archive source, which the board imports from the config partition \
             itself; REF must be a registry reference such as registry.lan/web:2"
        )),
        Err(e) => Err(format!("{text:?} is not a registry reference: {e}")),
    }
}

/// An image in the staged store, as `baton image inspect` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BakedImage {
    /// The ref text (the [`ImageSource`] display the init looks up).
    pub reference: String,
    /// The manifest digest.
    pub digest: String,
    /// Bytes of the manifest, config and (compressed) layers.
    pub size: u64,
}

/// A store staged in a temporary directory, ready for `mke2fs -d`; removed when dropped.
#[derive(Debug)]
pub struct StagedStore {
    dir: tempfile::TempDir,
    /// The images in it, sorted by reference.
    pub images: Vec<BakedImage>,
    /// Bytes of all files in the store.
    pub bytes: u64,
}

impl StagedStore {
    /// The tree to copy into the data partition's root (it holds [`STORE_DIR`]).
    pub fn tree(&self) -> &Path {
        self.dir.path()
    }
}

/// Imports every archive into a fresh store; `None` when there are none.
pub fn stage(args: &[ImageArg]) -> Result<Option<StagedStore>, BakeError> {
    if args.is_empty() {
        return Ok(None);
    }
    let dir = tempfile::tempdir().map_err(|error| BakeError::Io {
        action: "creating a temporary directory for",
        path: STORE_DIR.into(),
        error,
    })?;
    let store = Store::open(dir.path().join(STORE_DIR))?;
    let mut seen: Vec<(String, PathBuf)> = Vec::new();
    let mut images = Vec::new();
    for arg in args {
        let archive = &arg.archive;
        let contents = TarContents::read(archive)?;
        let kind = contents.kind(archive)?;
        let reference = match &arg.reference {
            Some(r) => r.clone(),
            None => contents.reference(archive, kind)?,
        };
        let name = ImageSource::Registry(reference.clone()).to_string();
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
            return Err(BakeError::Duplicate {
                reference: name,
                first: first.clone(),
                second: archive.clone(),
            });
        }
        let source = Source {
            kind,
            path: archive.clone(),
            tag: None,
        };
        let imported = store
            .import(&source, &name)
            .map_err(|error| BakeError::Import {
                path: archive.clone(),
                error: Box::new(error),
            })?;
        let digest = imported.manifest.to_string();
        if let Some(wanted) = reference.digest.as_ref().filter(|d| **d != digest) {
            return Err(BakeError::DigestPin {
                path: archive.clone(),
                reference: name,
                wanted: wanted.clone(),
                found: digest,
            });
        }
        images.push(BakedImage {
            size: image_size(&store, &imported.manifest)?,
            reference: name.clone(),
            digest,
        });
        seen.push((name, archive.clone()));
    }
    drop(store);
    images.sort_by(|a, b| a.reference.cmp(&b.reference));
    let bytes = normalize_tree(dir.path())?;
    Ok(Some(StagedStore { dir, images, bytes }))
}

/// Bytes of the manifest, its config and its layers.
fn image_size(store: &Store, manifest: &baton_oci::Digest) -> Result<u64, BakeError> {
    let path = store.blob_path(manifest);
    let io = |action| {
        let path = path.clone();
        move |error| BakeError::Io {
            action,
            path,
            error,
        }
    };
    let bytes = fs::read(&path).map_err(io("reading"))?;
    let parsed: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| io("parsing")(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    let layers: u64 = parsed.layers.iter().map(|l| l.size).sum();
    Ok(bytes.len() as u64 + parsed.config.size + layers)
}

/// Sets directories to 0755 and files to 0644 (the builder's umask must not show) and
/// returns the bytes of all files.
fn normalize_tree(dir: &Path) -> Result<u64, BakeError> {
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |error| BakeError::Io {
            action,
            path,
            error,
        }
    };
    let mut total = 0;
    for entry in fs::read_dir(dir).map_err(io("reading directory", dir))? {
        let path = entry.map_err(io("reading directory", dir))?.path();
        let meta = fs::symlink_metadata(&path).map_err(io("reading", &path))?;
        let mode = if meta.is_dir() {
            total += normalize_tree(&path)?;
            0o755
        } else {
            total += meta.len();
            0o644
        };
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .map_err(io("setting permissions of", &path))?;
    }
    Ok(total)
}

/// What is read of an archive: its entry names and its small top-level JSON files.
#[derive(Debug, Default)]
struct TarContents {
    /// Every entry's name, without a leading `./`.
    names: BTreeSet<String>,
    /// `index.json` and `manifest.json`, when present.
    json: std::collections::BTreeMap<String, Vec<u8>>,
}

impl TarContents {
    /// Reads the tar at `path` once, keeping only names and the JSON files.
    fn read(path: &Path) -> Result<TarContents, BakeError> {
        let bad = |reason: String| BakeError::Archive {
            path: path.to_path_buf(),
            reason,
        };
        let file = fs::File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
        let mut archive = tar::Archive::new(file);
        let mut out = TarContents::default();
        let entries = archive
            .entries()
            .map_err(|e| bad(format!("not a tar archive: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad(format!("not a readable tar archive: {e}")))?;
            let name = entry
                .path()
                .map_err(|e| bad(format!("bad entry name: {e}")))?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            if matches!(name.as_str(), "index.json" | "manifest.json") {
                if entry.size() > MAX_JSON {
                    return Err(bad(format!("{name} is larger than {MAX_JSON} bytes")));
                }
                let mut bytes = Vec::new();
                entry
                    .read_to_end(&mut bytes)
                    .map_err(|e| bad(format!("reading {name}: {e}")))?;
                out.json.insert(name.clone(), bytes);
            }
            out.names.insert(name);
        }
        Ok(out)
    }

    /// An OCI archive has index.json and oci-layout; a `docker save` archive manifest.json.
    fn kind(&self, path: &Path) -> Result<SourceKind, BakeError> {
        if self.names.contains("index.json") && self.names.contains("oci-layout") {
            Ok(SourceKind::OciArchive)
        } else if self.names.contains("manifest.json") {
            Ok(SourceKind::DockerArchive)
        } else {
            Err(BakeError::Archive {
                path: path.to_path_buf(),
                reason: "neither an OCI archive (index.json, oci-layout) nor a docker-archive \
                         (manifest.json)"
                    .to_string(),
            })
        }
    }

    /// The one image name the archive carries: a docker `RepoTags` entry, or an OCI manifest's
    /// `io.containerd.image.name` or `org.opencontainers.image.ref.name` annotation when that is
    /// a full reference (a bare tag such as `latest` does not say which repository it is).
    fn reference(&self, path: &Path, kind: SourceKind) -> Result<ImageReference, BakeError> {
        let file = if kind == SourceKind::OciArchive {
            "index.json"
        } else {
            "manifest.json"
        };
        let bytes = self.json.get(file).map(Vec::as_slice).unwrap_or_default();
        let bad_json = |e: serde_json::Error| BakeError::Archive {
            path: path.to_path_buf(),
            reason: format!("{file} is not valid: {e}"),
        };
        let names = if kind == SourceKind::OciArchive {
            oci_names(serde_json::from_slice(bytes).map_err(bad_json)?)
        } else {
            let entries: Vec<DockerEntry> = serde_json::from_slice(bytes).map_err(bad_json)?;
            entries.into_iter().flat_map(|e| e.repo_tags).collect()
        };
        let unnamed = |found: String| BakeError::Unnamed {
            path: path.to_path_buf(),
            found,
        };
        match names.as_slice() {
            [] => Err(unnamed("it names no image".to_string())),
            [one] => registry_reference(one).map_err(|e| unnamed(format!("its image name {e}"))),
            many => Err(unnamed(format!(
                "it names several images ({})",
                many.join(", ")
            ))),
        }
    }
}

/// Full image names in an OCI index's manifest annotations, without duplicates.
fn oci_names(index: OciIndex) -> Vec<String> {
    let mut names = BTreeSet::new();
    for m in index.manifests {
        let a = &m.annotations;
        let name = a.get("io.containerd.image.name").or_else(|| {
            a.get("org.opencontainers.image.ref.name")
                .filter(|n| n.contains(['/', ':']))
        });
        if let Some(n) = name {
            names.insert(n.clone());
        }
    }
    names.into_iter().collect()
}

/// The part of an OCI index.json read here.
#[derive(Debug, Deserialize)]
struct OciIndex {
    #[serde(default)]
    manifests: Vec<OciEntry>,
}

#[derive(Debug, Deserialize)]
struct OciEntry {
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

/// The part of a docker-archive manifest.json entry read here.
#[derive(Debug, Deserialize)]
struct DockerEntry {
    #[serde(rename = "RepoTags", default)]
    repo_tags: Vec<String>,
}

/// Size of the data partition for a store of `store_bytes`: at least `minimum`, else the store
/// plus a quarter and 64 MiB for the file system's own metadata and journal, rounded up to
/// 4 MiB. The board grows the partition to the card on first boot.
pub fn data_partition_size(minimum: u64, store_bytes: u64) -> u64 {
    const HEADROOM: u64 = 64 << 20;
    const ALIGN: u64 = 4 << 20;
    let needed = store_bytes + store_bytes / 4 + HEADROOM;
    needed.next_multiple_of(ALIGN).max(minimum)
}

#[cfg(test)]
mod tests;
