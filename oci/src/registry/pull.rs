//! [`Store::pull`]: fetch a manifest (or index) by tag or digest, then its blobs, into the store.

use super::client::Client;
use super::{RegistryError, RegistryOptions};
use crate::digest::Digest;
use crate::import::fetch::BlobFetch;
use crate::import::select::{finish, select_manifest};
use crate::import::{ImportError, ImportRequest, Imported, Source, SourceKind};
use crate::model::{is_index, is_manifest, Descriptor, Index};
use crate::store::{Store, MAX_JSON_BYTES};

/// The manifest media types baton asks registries for.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// What to pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// The host to send API requests to, with optional port (`localhost:5000`).
    pub registry: String,
    /// The repository (`library/nginx`).
    pub repository: String,
    /// A tag (`1.27`) or a manifest digest (`sha256:…`); a digest is verified.
    pub reference: String,
}

impl Store {
    /// Pulls `request` from its registry and points the ref `name` at it. Holds the store lock shared
    /// (see [`Store::gc`]). Blobs already in the store are not downloaded again.
    pub fn pull(
        &self,
        request: &PullRequest,
        name: &str,
        options: &RegistryOptions,
    ) -> Result<Imported, ImportError> {
        let source = Source {
            kind: SourceKind::Registry,
            path: Default::default(),
            tag: None,
        };
        let job = ImportRequest {
            store: self,
            name,
            source: &source,
            image: format!("{name} (from {}/{})", request.registry, request.repository),
        };
        let registry_error = |source: RegistryError| ImportError::Registry {
            image: job.image.clone(),
            source,
        };
        let client =
            Client::new(&request.registry, &request.repository, options).map_err(registry_error)?;
        let _lock = self.lock_shared().map_err(job.store_error())?;
        let mut fetch = FromRegistry { client };
        let (top, media_type) = fetch.manifest(&job, &request.reference, None)?;
        if is_index(&media_type) {
            let index: Index = self
                .read_json(&top, "image index")
                .map_err(job.store_error())?;
            let chosen = select_manifest(&job, &index.manifests, None, &mut fetch)?;
            finish(&job, &chosen, &mut fetch)
        } else {
            finish(&job, &top, &mut fetch)
        }
    }
}

/// Fetches blobs from a registry: manifests and indexes from `/manifests/`, the rest from `/blobs/`.
struct FromRegistry {
    client: Client,
}

impl FromRegistry {
    /// Fetches the manifest or index `reference` (tag or digest) into the store; returns its digest and
    /// media type. With `expected`, its digest and size must match.
    fn manifest(
        &mut self,
        job: &ImportRequest<'_>,
        reference: &str,
        expected: Option<&Descriptor>,
    ) -> Result<(Digest, String), ImportError> {
        let registry_error = |source: RegistryError| ImportError::Registry {
            image: job.image.clone(),
            source,
        };
        let what = format!("manifest {reference}");
        let path = format!("manifests/{reference}");
        let mut response = self
            .client
            .get(&path, Some(ACCEPT), &what)
            .map_err(registry_error)?;
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
            .unwrap_or_default();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_JSON_BYTES)
            .read_to_vec()
            .map_err(|e| registry_error(self.client.body_error(&path, e)))?;
        let pinned = match expected {
            Some(d) => Some(d.digest.clone()),
            None => Digest::parse(reference).ok(),
        };
        let (digest, _) = job
            .store
            .write_blob(bytes.as_slice(), pinned.as_ref(), expected.map(|d| d.size))
            .map_err(job.store_error())?;
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Typed {
            media_type: Option<String>,
        }
        let declared = serde_json::from_slice::<Typed>(&bytes)
            .ok()
            .and_then(|t| t.media_type);
        let media_type = [Some(content_type), declared]
            .into_iter()
            .flatten()
            .find(|t| is_index(t) || is_manifest(t))
            .ok_or_else(|| {
                registry_error(RegistryError::MediaType {
                    registry: self.client.registry().to_owned(),
                    what: what.clone(),
                    media_type: response
                        .headers()
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("none")
                        .to_owned(),
                })
            })?;
        Ok((digest, media_type))
    }
}

impl BlobFetch for FromRegistry {
    fn fetch(
        &mut self,
        job: &ImportRequest<'_>,
        descriptor: &Descriptor,
    ) -> Result<(), ImportError> {
        if job.store.check_blob(descriptor).is_ok() {
            return Ok(());
        }
        if is_index(&descriptor.media_type) || is_manifest(&descriptor.media_type) {
            self.manifest(job, &descriptor.digest.to_string(), Some(descriptor))?;
            return Ok(());
        }
        let path = format!("blobs/{}", descriptor.digest);
        let response = self
            .client
            .get(&path, None, &format!("blob {}", descriptor.digest))
            .map_err(|source| ImportError::Registry {
                image: job.image.clone(),
                source,
            })?;
        job.store
            .write_blob(
                response.into_body().into_reader(),
                Some(&descriptor.digest),
                Some(descriptor.size),
            )
            .map_err(job.store_error())?;
        Ok(())
    }
}
