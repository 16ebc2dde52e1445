//! Debian packages for the image: the kernel, its modules and DTBs, and the Raspberry Pi firmware.
//!
//! The flow, for each package a board names (suite, component, name):
//! 1. If the [`LockFile`] pins it (and no update was asked for), that exact file is used: from the
//!    [`Cache`] if present and intact, else downloaded from the archive pool by its `Filename`.
//! 2. Otherwise the suite's `InRelease` is fetched and its OpenPGP signature checked against the
//!    embedded Debian archive keys ([`Keyring`]); the component's `Packages.xz` is fetched and
//!    checked against the SHA256 in the signed text; the name is resolved in it (a kernel
//!    metapackage is followed to the real kernel package) and the result pinned in the lock.
//! 3. Every download is checked against its SHA256 and size before it gets a name in the cache.
//!
//! In offline mode nothing touches the network: a build works from the cache and the lock alone,
//! or fails naming every missing package and version.
//!
//! [`deb`] reads files out of the downloaded packages.

mod archive;
pub mod cache;
mod control;
pub mod date;
pub mod deb;
mod http;
mod key_validity;
pub mod lock;
pub mod packages;
pub mod release;
mod release_dates;
mod rollback;
pub mod signature;
pub mod version;

pub use archive::{Archive, ArchiveOptions, CachedDeb, Error, PackageRef, DEFAULT_MIRROR};
pub use cache::Cache;
pub use lock::{LockEntry, LockFile};
pub use signature::Keyring;
