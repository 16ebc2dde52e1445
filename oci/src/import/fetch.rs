//! How an importer gets a blob a descriptor names into the store: already there (archives, which are
//! streamed in whole first), copied from a layout directory, or (later) downloaded from a registry.

use super::{ImportError, ImportRequest};
use crate::model::Descriptor;
use std::fs::File;
use std::io;

/// Puts the blob a descriptor names into the store, verified against its digest and size.
pub(crate) trait BlobFetch {
    /// Makes `descriptor`'s blob present in `job.store`.
    fn fetch(
        &mut self,
        job: &ImportRequest<'_>,
        descriptor: &Descriptor,
    ) -> Result<(), ImportError>;
}

/// For archives: every blob was streamed into the store already; check it is there with its size.
pub(crate) struct InStore;

impl BlobFetch for InStore {
    fn fetch(
        &mut self,
        job: &ImportRequest<'_>,
        descriptor: &Descriptor,
    ) -> Result<(), ImportError> {
        job.store.check_blob(descriptor).map_err(job.store_error())
    }
}

/// For OCI layout directories: copy `blobs/sha256/<hex>` from the layout, verifying while copying.
pub(crate) struct FromLayout<'a> {
    /// The layout directory.
    pub dir: &'a std::path::Path,
}

impl BlobFetch for FromLayout<'_> {
    fn fetch(
        &mut self,
        job: &ImportRequest<'_>,
        descriptor: &Descriptor,
    ) -> Result<(), ImportError> {
        if job.store.check_blob(descriptor).is_ok() {
            return Ok(());
        }
        let path = self.dir.join("blobs/sha256").join(descriptor.digest.hex());
        let file = File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                ImportError::MissingFile {
                    image: job.image.clone(),
                    file: format!("blob {} (at {})", descriptor.digest, path.display()),
                    kind: job.source.kind,
                }
            } else {
                job.io_error(&path)(e)
            }
        })?;
        job.store
            .write_blob(file, Some(&descriptor.digest), Some(descriptor.size))
            .map_err(job.store_error())?;
        Ok(())
    }
}
