//! Importers: OCI archives (`oci-archive:`), `docker save` archives (`docker-archive:`) and OCI layout
//! directories (`oci:`) into the [`Store`].
//!
//! Archives are read in one streaming pass: every blob goes straight into the store, hashed while it is
//! written and refused if it does not match its name, so a 100 MB image needs no 100 MB of memory. Only
//! the small JSON files (index.json, manifest.json) are held in memory, up to
//! [`MAX_JSON_BYTES`](crate::store::MAX_JSON_BYTES). Then the manifest for the store's platform is
//! chosen, every blob it reaches is checked (digest and size), and only then is the ref written. An
//! import that fails leaves verified but unreferenced blobs, which the next GC removes.
//!
//! Registry pulls ([`crate::registry`]) plug in at [`fetch::BlobFetch`]: fetch the top manifest or
//! index, then let [`select::select_manifest`] walk it, fetching each blob into the store as it goes.

mod archive;
mod docker;
pub(crate) mod fetch;
mod oci;
pub(crate) mod select;

use crate::digest::Digest;
use crate::model::Platform;
use crate::store::{Store, StoreError};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Errors from importing an image. Every message names the image (its name and source).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The reference is not `oci-archive:`, `docker-archive:` or `oci:` followed by a path.
    #[error("image reference {0:?}: expected oci-archive:PATH, docker-archive:PATH or oci:PATH (optionally :TAG)")]
    Reference(String),
    /// The store refused a blob or ref.
    #[error("image {image}: {source}")]
    Store {
        /// The image.
        image: String,
        /// What the store said.
        source: StoreError,
    },
    /// Reading the archive or layout failed (truncated, unreadable).
    #[error("image {image}: reading {path}: {source}")]
    Io {
        /// The image.
        image: String,
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A JSON file of the archive does not parse.
    #[error("image {image}: {file} is not valid: {source}")]
    Json {
        /// The image.
        image: String,
        /// The file.
        file: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A required file is missing from the archive or layout.
    #[error("image {image}: no {file} (is this really a {kind}?)")]
    MissingFile {
        /// The image.
        image: String,
        /// The file.
        file: String,
        /// The source kind.
        kind: SourceKind,
    },
    /// A file of the archive is refused (bad name, too large, unsupported digest algorithm).
    #[error("image {image}: archive entry {entry}: {reason}")]
    Entry {
        /// The image.
        image: String,
        /// The entry's path in the archive.
        entry: String,
        /// Why.
        reason: String,
    },
    /// No manifest for the store's platform.
    #[error("image {image}: built for {found}, wanted {wanted}")]
    Platform {
        /// The image.
        image: String,
        /// The platforms it offers.
        found: String,
        /// The platform the store wants.
        wanted: Platform,
    },
    /// No manifest carries the requested tag.
    #[error("image {image}: no image tagged {tag:?} (it has: {available})")]
    Tag {
        /// The image.
        image: String,
        /// The requested tag.
        tag: String,
        /// The tags present.
        available: String,
    },
    /// Several images and no tag to choose.
    #[error("image {image}: holds several images ({available}); add :TAG to the reference")]
    Ambiguous {
        /// The image.
        image: String,
        /// The tags present.
        available: String,
    },
    /// The registry refused, failed or could not be reached.
    #[error("image {image}: {source}")]
    Registry {
        /// The image.
        image: String,
        /// What went wrong with the registry.
        source: crate::registry::RegistryError,
    },
    /// An index or manifest is malformed (bad media type, nesting too deep).
    #[error("image {image}: blob {blob}: {reason}")]
    Structure {
        /// The image.
        image: String,
        /// The blob.
        blob: Digest,
        /// What is wrong.
        reason: String,
    },
}

/// Where an image comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A tar of an OCI image layout (`skopeo copy … oci-archive:`, `docker buildx --output type=oci`).
    OciArchive,
    /// A `docker save` archive.
    DockerArchive,
    /// An OCI image layout directory.
    OciLayout,
    /// A registry ([`Store::pull`]); not a valid kind for [`Store::import`].
    Registry,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::OciArchive => "oci-archive",
            SourceKind::DockerArchive => "docker-archive",
            SourceKind::OciLayout => "oci",
            SourceKind::Registry => "registry",
        })
    }
}

/// An image source: kind, path and optional tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The format.
    pub kind: SourceKind,
    /// The archive file or layout directory.
    pub path: PathBuf,
    /// Which image of a multi-image archive (`org.opencontainers.image.ref.name`, or a docker
    /// `RepoTags` entry); `None` takes the only one.
    pub tag: Option<String>,
}

impl Source {
    /// Parses `oci-archive:PATH[:TAG]`, `docker-archive:PATH[:TAG]` or `oci:PATH[:TAG]`, with relative
    /// paths taken relative to `base` (the config partition). A tag starts at the first `:` after the
    /// last `/`.
    pub fn parse(reference: &str, base: &Path) -> Result<Source, ImportError> {
        let bad = || ImportError::Reference(reference.to_owned());
        let (kind, rest) = reference.split_once(':').ok_or_else(bad)?;
        let kind = match kind {
            "oci-archive" => SourceKind::OciArchive,
            "docker-archive" => SourceKind::DockerArchive,
            "oci" => SourceKind::OciLayout,
            _ => return Err(bad()),
        };
        let file_start = rest.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match rest[file_start..].find(':') {
            Some(i) => (&rest[..file_start + i], Some(&rest[file_start + i + 1..])),
            None => (rest, None),
        };
        if path.is_empty() || tag == Some("") {
            return Err(bad());
        }
        Ok(Source {
            kind,
            path: base.join(path),
            tag: tag.map(str::to_owned),
        })
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.path.display())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        Ok(())
    }
}

/// The result of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The ref name the image was stored under.
    pub name: String,
    /// Its manifest digest.
    pub manifest: Digest,
    /// The platform it is for.
    pub platform: Platform,
    /// Its layer count.
    pub layers: usize,
}

/// One import as every importer (and the registry pull) carries it out: into which store, under
/// which ref name, from which source, and how to name the image in errors.
pub(crate) struct ImportRequest<'a> {
    pub store: &'a Store,
    pub name: &'a str,
    pub source: &'a Source,
    pub image: String,
}

impl ImportRequest<'_> {
    pub fn store_error(&self) -> impl Fn(StoreError) -> ImportError + '_ {
        move |source| ImportError::Store {
            image: self.image.clone(),
            source,
        }
    }

    pub fn io_error<'p>(&'p self, path: &'p Path) -> impl Fn(io::Error) -> ImportError + 'p {
        move |source| ImportError::Io {
            image: self.image.clone(),
            path: path.to_owned(),
            source,
        }
    }

    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        file: &str,
        bytes: &[u8],
    ) -> Result<T, ImportError> {
        serde_json::from_slice(bytes).map_err(|source| ImportError::Json {
            image: self.image.clone(),
            file: file.to_owned(),
            source,
        })
    }
}

impl Store {
    /// Imports the image at `source` and points the ref `name` at it. Holds the store lock shared
    /// (see [`Store::gc`]).
    pub fn import(&self, source: &Source, name: &str) -> Result<Imported, ImportError> {
        let job = ImportRequest {
            store: self,
            name,
            source,
            image: format!("{name} ({source})"),
        };
        let _lock = self.lock_shared().map_err(job.store_error())?;
        match source.kind {
            SourceKind::OciArchive => oci::import_archive(&job),
            SourceKind::DockerArchive => docker::import(&job),
            SourceKind::OciLayout => oci::import_layout(&job),
            SourceKind::Registry => Err(ImportError::Reference(source.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let base = Path::new("/cfg");
        let source = Source::parse("oci-archive:images/web.tar", base).unwrap();
        assert_eq!(source.kind, SourceKind::OciArchive);
        assert_eq!(source.path, Path::new("/cfg/images/web.tar"));
        assert_eq!(source.tag, None);
        let source = Source::parse("docker-archive:img/x.tar:web:latest", base).unwrap();
        assert_eq!(source.kind, SourceKind::DockerArchive);
        assert_eq!(source.path, Path::new("/cfg/img/x.tar"));
        assert_eq!(source.tag.as_deref(), Some("web:latest"));
        let source = Source::parse("oci:/abs/layout:v1", base).unwrap();
        assert_eq!(source.path, Path::new("/abs/layout"));
        assert_eq!(source.tag.as_deref(), Some("v1"));
        for bad in ["web.tar", "http:x", "oci-archive:", "oci:x:"] {
            assert!(Source::parse(bad, base).is_err(), "{bad}");
        }
    }
}
