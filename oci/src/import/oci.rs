//! OCI image layouts, as a tar (`oci-archive:`) or a directory (`oci:`).

use super::archive::ingest;
use super::fetch::{FromLayout, InStore};
use super::select::{finish, select_manifest};
use super::{ImportError, ImportRequest, Imported};
use crate::model::Index;
use crate::store::MAX_JSON_BYTES;
use std::fs::File;
use std::io::Read;

/// Imports a tar of an OCI layout.
pub(crate) fn import_archive(job: &ImportRequest<'_>) -> Result<Imported, ImportError> {
    let found = ingest(job, &["index.json", "oci-layout"], |_| false)?;
    let bytes = found
        .small
        .get("index.json")
        .ok_or_else(|| missing(job, "index.json"))?;
    let index: Index = job.json("index.json", bytes)?;
    let manifest = select_manifest(
        job,
        &index.manifests,
        job.source.tag.as_deref(),
        &mut InStore,
    )?;
    finish(job, &manifest, &mut InStore)
}

/// Imports an OCI layout directory, copying only the blobs the chosen manifest needs.
pub(crate) fn import_layout(job: &ImportRequest<'_>) -> Result<Imported, ImportError> {
    let dir = &job.source.path;
    let index_path = dir.join("index.json");
    let file = File::open(&index_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            missing(job, "index.json")
        } else {
            job.io_error(&index_path)(e)
        }
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_JSON_BYTES)
        .read_to_end(&mut bytes)
        .map_err(job.io_error(&index_path))?;
    let index: Index = job.json("index.json", &bytes)?;
    let mut fetch = FromLayout { dir };
    let manifest = select_manifest(job, &index.manifests, job.source.tag.as_deref(), &mut fetch)?;
    finish(job, &manifest, &mut fetch)
}

fn missing(job: &ImportRequest<'_>, file: &str) -> ImportError {
    ImportError::MissingFile {
        image: job.image.clone(),
        file: file.to_owned(),
        kind: job.source.kind,
    }
}
