//! When images leave the store: a ref goes once no service names its image any more (the service
//! was removed, or its spec moved to another image and the rollout finished), then every blob and
//! unpacked layer that no remaining ref reaches. Refs that no service ever named, such as images
//! baked into the card by `baton image build --image`, stay until a service has used and released
//! them. And how they come in: [`StoreImages`] imports archives and pulls registry images.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use baton_oci::{
    GcReport, ImportError, PrepareError, PreparedImage, PullRequest, RegistryOptions, Source,
    Store, StoreError,
};
use baton_spec::service::{ImageReference, ImageSource};

use super::toolkit::Images;
use super::Paths;

/// Collecting unused images failed.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The store's refs could not be listed.
    #[error("listing the image store: {0}")]
    List(#[source] StoreError),
    /// The collection itself failed.
    #[error("collecting unused images: {0}")]
    Gc(#[source] StoreError),
}

/// Bringing an image into the store failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The archive reference does not parse or name a file.
    #[error("image {image}: {source}")]
    Source {
        /// The image as the spec names it.
        image: String,
        /// The cause.
        #[source]
        source: Box<ImportError>,
    },
    /// Importing the archive failed.
    #[error(transparent)]
    Import(Box<ImportError>),
    /// Pulling from the registry failed.
    #[error("pulling {reference}: {source}")]
    Pull {
        /// The registry reference.
        reference: String,
        /// The cause.
        #[source]
        source: Box<ImportError>,
    },
    /// Unpacking the image failed.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
}

/// The refs to keep: every ref in the store except the released ones that no current spec uses.
pub fn keep(
    stored: impl IntoIterator<Item = String>,
    released: &BTreeSet<String>,
    in_use: &BTreeSet<String>,
) -> Vec<String> {
    stored
        .into_iter()
        .filter(|name| !released.contains(name) || in_use.contains(name))
        .collect()
}

/// Drops the released refs that `in_use` does not name, and whatever that leaves unreachable.
pub fn collect(
    store: &Store,
    released: &BTreeSet<String>,
    in_use: &BTreeSet<String>,
) -> Result<GcReport, CollectError> {
    let stored = store.refs().map_err(CollectError::List)?;
    let keep = keep(stored.into_iter().map(|(name, _)| name), released, in_use);
    let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
    store.gc(&keep).map_err(CollectError::Gc)
}

/// One line for the console about what a collection freed, or `None` when it freed nothing.
pub fn summary(report: &GcReport) -> Option<String> {
    if report.removed_refs.is_empty() && report.removed_blobs.is_empty() {
        return None;
    }
    Some(format!(
        "images: removed {} unused ({}), {} blobs and {} unpacked layers, {:.1} MiB freed",
        report.removed_refs.len(),
        if report.removed_refs.is_empty() {
            "none named".to_string()
        } else {
            report.removed_refs.join(", ")
        },
        report.removed_blobs.len(),
        report.removed_layers.len(),
        report.freed_bytes as f64 / (1024.0 * 1024.0)
    ))
}

/// The board's image store, with what importing and pulling need.
pub struct StoreImages {
    store: Arc<Store>,
    /// Archive references are relative to it.
    config: PathBuf,
    registries: Arc<BTreeMap<String, RegistryOptions>>,
}

impl StoreImages {
    /// `store`, with the config partition and registries of `paths`.
    pub fn new(store: Arc<Store>, paths: &Paths) -> StoreImages {
        StoreImages {
            store,
            config: paths.config.clone(),
            registries: Arc::clone(&paths.registries),
        }
    }
}

impl Images for StoreImages {
    fn prepare(&self, source: &ImageSource) -> Result<PreparedImage, ImageError> {
        let text = source.to_string();
        match source {
            ImageSource::Registry(reference) => {
                pull(&self.store, reference, &text, &self.registries)?
            }
            _ => {
                let archive =
                    Source::parse(&text, &self.config).map_err(|source| ImageError::Source {
                        image: text.clone(),
                        source: Box::new(source),
                    })?;
                self.store
                    .import(&archive, &text)
                    .map_err(|e| ImageError::Import(Box::new(e)))?;
            }
        }
        Ok(self.store.prepare(&text)?)
    }

    fn collect(
        &self,
        released: &BTreeSet<String>,
        in_use: &BTreeSet<String>,
    ) -> Result<Option<String>, CollectError> {
        collect(&self.store, released, in_use).map(|report| summary(&report))
    }
}

/// Pulls a registry image into the store under the reference text `name`, unless the store
/// already holds it: an image pinned by digest that is stored under that digest, or a tag that
/// was pulled (or baked into the image by `baton image build --image`) before. So a board starts
/// its services without the network, and a tag is only fetched again when the service is
/// removed and its image collected.
fn pull(
    store: &Store,
    reference: &ImageReference,
    name: &str,
    registries: &BTreeMap<String, RegistryOptions>,
) -> Result<(), ImageError> {
    if let Ok(stored) = store.get_ref(name) {
        match &reference.digest {
            Some(digest) if stored.to_string() != *digest => {}
            _ => return Ok(()),
        }
    }
    let request = PullRequest {
        registry: reference.api_host().to_owned(),
        repository: reference.repository.clone(),
        reference: reference
            .digest
            .clone()
            .or_else(|| reference.tag.clone())
            .unwrap_or_else(|| "latest".to_owned()),
    };
    let options = registries
        .get(&reference.registry)
        .cloned()
        .unwrap_or_default();
    store
        .pull(&request, name, &options)
        .map(|_| ())
        .map_err(|source| ImageError::Pull {
            reference: reference.to_string(),
            source: Box::new(source),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_released_refs_that_nothing_uses_go() {
        let stored = ["a", "b", "baked", "c"].map(String::from);
        let kept = keep(stored, &set(&["a", "b"]), &set(&["b", "c"]));
        assert_eq!(kept, ["b", "baked", "c"]);
    }

    /// Packs a one-file linux/arm64 image into `dir` and imports it as `name`.
    fn add_image(store: &Store, dir: &std::path::Path, name: &str) {
        let spec = baton_oci::pack::PackSpec {
            entries: vec![baton_oci::pack::PackEntry::bytes(
                "/app",
                name.as_bytes().to_vec(),
                0o755,
            )],
            config: Default::default(),
            platform: baton_oci::Platform::linux_arm64(),
            tag: None,
        };
        let path = dir.join(format!("{name}.tar"));
        let file = std::fs::File::create(&path).expect("archive");
        baton_oci::pack::oci_archive(&spec, file).expect("pack");
        let source =
            baton_oci::Source::parse(&format!("oci-archive:{name}.tar"), dir).expect("source");
        store.import(&source, name).expect("import");
    }

    #[test]
    fn a_collection_drops_the_released_image_and_keeps_the_others() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("images")).expect("store");
        for name in ["old", "current", "baked"] {
            add_image(&store, dir.path(), name);
        }
        let report = collect(&store, &set(&["old"]), &set(&["current"])).expect("gc");
        assert_eq!(report.removed_refs, ["old"]);
        // The old image's manifest, config and layer.
        assert_eq!(report.removed_blobs.len(), 3, "{report:?}");
        let left: Vec<String> = store
            .refs()
            .expect("refs")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(left, ["baked", "current"]);
        assert!(summary(&report).is_some_and(|s| s.contains("old")));

        // Nothing released: a collection keeps every image.
        let again = collect(&store, &BTreeSet::new(), &BTreeSet::new()).expect("gc");
        assert_eq!(summary(&again), None);
        assert_eq!(store.refs().expect("refs").len(), 2);
    }
}
