//! `docker save` archives: `manifest.json` lists each image's config file and layer tars. The config
//! is an OCI-compatible image config; baton writes an OCI manifest for it and stores that.

use super::archive::{ingest, Ingested};
use super::fetch::InStore;
use super::select::finish;
use super::{ImportError, ImportRequest, Imported};
use crate::digest::Digest;
use crate::model::{Compression, Descriptor, Manifest, MEDIA_TYPE_CONFIG, MEDIA_TYPE_MANIFEST};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;

/// One image in `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Imports a `docker save` archive.
pub(crate) fn import(job: &ImportRequest<'_>) -> Result<Imported, ImportError> {
    let found = ingest(job, &["manifest.json"], |name| {
        name.ends_with(".tar") || name.ends_with(".json")
    })?;
    let bytes = found
        .small
        .get("manifest.json")
        .ok_or_else(|| ImportError::MissingFile {
            image: job.image.clone(),
            file: "manifest.json".to_owned(),
            kind: job.source.kind,
        })?;
    let entries: Vec<Entry> = job.json("manifest.json", bytes)?;
    let entry = choose(job, &entries)?;
    let config = descriptor(job, &found, &entry.config, MEDIA_TYPE_CONFIG.to_owned())?;
    let mut layers = Vec::new();
    for layer in &entry.layers {
        let (digest, _) = blob(job, &found, layer)?;
        let compression = sniff(job, digest)?;
        layers.push(descriptor(
            job,
            &found,
            layer,
            compression.oci_media_type().to_owned(),
        )?);
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_MANIFEST.to_owned()),
        config,
        layers,
    };
    let bytes = serde_json::to_vec(&manifest).map_err(|source| ImportError::Json {
        image: job.image.clone(),
        file: "generated manifest".to_owned(),
        source,
    })?;
    let digest = job
        .store
        .write_blob_bytes(&bytes)
        .map_err(job.store_error())?;
    finish(job, &digest, &mut InStore)
}

fn choose<'e>(job: &ImportRequest<'_>, entries: &'e [Entry]) -> Result<&'e Entry, ImportError> {
    let tags: Vec<&str> = entries
        .iter()
        .flat_map(|e| e.repo_tags.iter().flatten().map(String::as_str))
        .collect();
    let available = || {
        if tags.is_empty() {
            "no tags".to_owned()
        } else {
            tags.join(", ")
        }
    };
    match &job.source.tag {
        Some(tag) => entries
            .iter()
            .find(|e| {
                e.repo_tags
                    .iter()
                    .flatten()
                    .any(|t| t == tag || t.rsplit_once(':').is_some_and(|(_, short)| short == tag))
            })
            .ok_or_else(|| ImportError::Tag {
                image: job.image.clone(),
                tag: tag.clone(),
                available: available(),
            }),
        None => match entries {
            [only] => Ok(only),
            _ => Err(ImportError::Ambiguous {
                image: job.image.clone(),
                available: available(),
            }),
        },
    }
}

fn blob<'f>(
    job: &ImportRequest<'_>,
    found: &'f Ingested,
    path: &str,
) -> Result<&'f (Digest, u64), ImportError> {
    found.blob(path).ok_or_else(|| ImportError::MissingFile {
        image: job.image.clone(),
        file: format!("{path} (named in manifest.json)"),
        kind: job.source.kind,
    })
}

fn descriptor(
    job: &ImportRequest<'_>,
    found: &Ingested,
    path: &str,
    media_type: String,
) -> Result<Descriptor, ImportError> {
    let (digest, size) = blob(job, found, path)?;
    Ok(Descriptor {
        media_type,
        digest: digest.clone(),
        size: *size,
        platform: None,
        annotations: BTreeMap::new(),
    })
}

fn sniff(job: &ImportRequest<'_>, digest: &Digest) -> Result<Compression, ImportError> {
    let file = job.store.open_blob(digest).map_err(job.store_error())?;
    let mut head = Vec::with_capacity(4);
    let path = job.store.blob_path(digest);
    file.take(4)
        .read_to_end(&mut head)
        .map_err(job.io_error(&path))?;
    Ok(Compression::sniff(&head))
}
