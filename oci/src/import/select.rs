//! Choosing the manifest for the store's platform from an index (nested indexes and Docker manifest
//! lists included), and finishing an import once it is chosen.

use super::fetch::BlobFetch;
use super::{ImportError, ImportRequest, Imported};
use crate::digest::Digest;
use crate::model::{
    is_index, is_manifest, Descriptor, ImageConfig, Index, Manifest, Platform, ANNOTATION_REF_NAME,
};
use std::collections::BTreeSet;

const MAX_DEPTH: usize = 4;

/// Picks the manifest for `job.store.platform()` among `candidates` (an index's entries), restricted
/// to those tagged `tag` when given, fetching the blobs it needs to decide.
pub(crate) fn select_manifest(
    job: &ImportRequest<'_>,
    candidates: &[Descriptor],
    tag: Option<&str>,
    fetch: &mut dyn BlobFetch,
) -> Result<Digest, ImportError> {
    let tags: BTreeSet<&str> = candidates
        .iter()
        .filter_map(|d| d.annotations.get(ANNOTATION_REF_NAME).map(String::as_str))
        .collect();
    let available = || {
        if tags.is_empty() {
            "no tags".to_owned()
        } else {
            tags.iter().copied().collect::<Vec<_>>().join(", ")
        }
    };
    let chosen: Vec<Descriptor> = match tag {
        Some(tag) => candidates
            .iter()
            .filter(|d| d.annotations.get(ANNOTATION_REF_NAME).map(String::as_str) == Some(tag))
            .cloned()
            .collect(),
        None if tags.len() > 1 => {
            return Err(ImportError::Ambiguous {
                image: job.image.clone(),
                available: available(),
            })
        }
        None => candidates.to_vec(),
    };
    if let Some(tag) = tag.filter(|_| chosen.is_empty()) {
        return Err(ImportError::Tag {
            image: job.image.clone(),
            tag: tag.to_owned(),
            available: available(),
        });
    }
    let mut found = Vec::new();
    match walk(job, &chosen, 0, fetch, &mut found)? {
        Some(digest) => Ok(digest),
        None => Err(ImportError::Platform {
            image: job.image.clone(),
            found: if found.is_empty() {
                "no platform at all".to_owned()
            } else {
                found
                    .iter()
                    .map(Platform::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            wanted: job.store.platform().clone(),
        }),
    }
}

fn walk(
    job: &ImportRequest<'_>,
    candidates: &[Descriptor],
    depth: usize,
    fetch: &mut dyn BlobFetch,
    found: &mut Vec<Platform>,
) -> Result<Option<Digest>, ImportError> {
    let wanted = job.store.platform();
    for descriptor in candidates {
        let structure = |reason: String| ImportError::Structure {
            image: job.image.clone(),
            blob: descriptor.digest.clone(),
            reason,
        };
        if is_index(&descriptor.media_type) {
            if depth >= MAX_DEPTH {
                return Err(structure(format!("indexes nested deeper than {MAX_DEPTH}")));
            }
            fetch.fetch(job, descriptor)?;
            let index: Index = job
                .store
                .read_json(&descriptor.digest, "image index")
                .map_err(job.store_error())?;
            if let Some(digest) = walk(job, &index.manifests, depth + 1, fetch, found)? {
                return Ok(Some(digest));
            }
        } else if is_manifest(&descriptor.media_type) {
            if let Some(platform) = &descriptor.platform {
                if !platform.satisfies(wanted) {
                    found.push(platform.clone());
                    continue;
                }
            }
            let config = manifest_config(job, descriptor, fetch)?;
            let platform = config.platform();
            if platform.satisfies(wanted) {
                return Ok(Some(descriptor.digest.clone()));
            }
            found.push(platform);
        } else {
            return Err(structure(format!(
                "media type {:?} is neither a manifest nor an index",
                descriptor.media_type
            )));
        }
    }
    Ok(None)
}

fn manifest_config(
    job: &ImportRequest<'_>,
    descriptor: &Descriptor,
    fetch: &mut dyn BlobFetch,
) -> Result<ImageConfig, ImportError> {
    fetch.fetch(job, descriptor)?;
    let manifest: Manifest = job
        .store
        .read_json(&descriptor.digest, "image manifest")
        .map_err(job.store_error())?;
    fetch.fetch(job, &manifest.config)?;
    job.store
        .read_json(&manifest.config.digest, "image config")
        .map_err(job.store_error())
}

/// Checks the platform of a chosen manifest's config, fetches its layers and writes the ref.
pub(crate) fn finish(
    job: &ImportRequest<'_>,
    manifest_digest: &Digest,
    fetch: &mut dyn BlobFetch,
) -> Result<Imported, ImportError> {
    let manifest: Manifest = job
        .store
        .read_json(manifest_digest, "image manifest")
        .map_err(job.store_error())?;
    fetch.fetch(job, &manifest.config)?;
    let config: ImageConfig = job
        .store
        .read_json(&manifest.config.digest, "image config")
        .map_err(job.store_error())?;
    let platform = config.platform();
    if !platform.satisfies(job.store.platform()) {
        return Err(ImportError::Platform {
            image: job.image.clone(),
            found: platform.to_string(),
            wanted: job.store.platform().clone(),
        });
    }
    for layer in &manifest.layers {
        fetch.fetch(job, layer)?;
    }
    job.store
        .set_ref(job.name, manifest_digest)
        .map_err(job.store_error())?;
    Ok(Imported {
        name: job.name.to_owned(),
        manifest: manifest_digest.clone(),
        platform,
        layers: manifest.layers.len(),
    })
}
