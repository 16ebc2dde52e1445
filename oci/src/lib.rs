//! OCI images for baton.
//!
//! - [`import`]: bring images in from `oci-archive:`, `docker-archive:` and `oci:` sources, choosing
//!   the linux/arm64 manifest of multi-platform images and refusing other platforms.
//! - [`registry`]: pull images from registries (OCI distribution API v2) over HTTPS (rustls, Mozilla's
//!   roots plus an optional CA per registry), or plain HTTP for loopback and `insecure` registries.
//! - [`store`]: the content-addressed store on the data partition: verified blobs, atomic refs,
//!   recovery at open, GC.
//! - [`prepare`]: unpack an image's layers once each (whiteouts converted for overlayfs) and hand back
//!   the lower dirs and the runtime config.
//! - [`pack`]: write a deterministic oci-archive from files and a config, without docker.
//!
//! Everything is pure Rust: the init uses this crate on the board, the image builder on the host.

pub mod digest;
pub mod import;
pub mod model;
pub mod pack;
pub mod prepare;
pub mod registry;
pub mod store;
#[cfg(test)]
mod testimage;
mod unpack;

pub use digest::Digest;
pub use import::{ImportError, Imported, Source, SourceKind};
pub use model::Platform;
pub use prepare::{ExposedPort, PrepareError, PreparedImage, RuntimeConfig};
pub use registry::{Credentials, PullRequest, RegistryCa, RegistryError, RegistryOptions};
pub use store::{GcReport, Recovery, Store, StoreError, StoreLimits};
pub use unpack::UnpackError;
