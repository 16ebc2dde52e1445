//! The archive client: resolve, pin, download, verify and cache packages (see the module docs).

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::cache::{self, Cache, PutError};
use super::date;
use super::http;
use super::lock::{LockEntry, LockFile};
use super::packages::{self, PackageIndex};
use super::release::{self, Release};
use super::rollback::{self, Rollback};
use super::signature::{self, Keyring};

/// The Debian mirror used unless another is configured.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// The architecture of every package baton uses.
const ARCH: &str = "arm64";

/// Largest `InRelease` accepted (bookworm's is about 150 KiB).
const MAX_INRELEASE: u64 = 16 << 20;

/// Errors from the archive client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A download failed.
    #[error(transparent)]
    Http(#[from] http::Error),
    /// A package download failed.
    #[error(
        "cannot download {package} {version} from {url}: {source}; if the archive no longer has \
         this version, run the build with --update to pin the current one"
    )]
    Package {
        /// The package.
        package: String,
        /// Its version.
        version: String,
        /// Where it was fetched from.
        url: String,
        /// What went wrong.
        #[source]
        source: http::Error,
    },
    /// The signature of an `InRelease` did not check out.
    #[error(transparent)]
    Signature(#[from] signature::Error),
    /// A `Release` has expired or is not valid yet.
    #[error(transparent)]
    Release(Box<release::Error>),
    /// A `Release` was malformed or for the wrong suite.
    #[error("{url}: {source}")]
    BadRelease {
        /// Where it came from.
        url: String,
        /// What is wrong.
        #[source]
        source: Box<release::Error>,
    },
    /// A signed index older than one already accepted for the suite (a replay or rollback).
    #[error(transparent)]
    Rollback(Box<Rollback>),
    /// A `Packages` index was malformed or lacks the package.
    #[error(transparent)]
    Packages(#[from] packages::Error),
    /// The cache failed, or a download did not match its checksum.
    #[error(transparent)]
    Cache(#[from] cache::Error),
    /// The signed `Release` does not list the index needed.
    #[error("the signed Release of {suite} lists no {path} (is the component or suite right?)")]
    IndexNotListed {
        /// The suite.
        suite: String,
        /// The index path wanted.
        path: String,
    },
    /// A downloaded index does not match the signed `Release`.
    #[error("{url} does not match the signed Release: expected sha256 {expected}, got {actual}")]
    IndexMismatch {
        /// The index URL.
        url: String,
        /// The digest in the Release.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// A downloaded index could not be decompressed.
    #[error("cannot decompress {url}: {source}")]
    Decompress {
        /// The index URL.
        url: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// Offline mode and the lock file does not pin a package.
    #[error(
        "offline build, but the lock file pins no version of {name} from {suite}/{component}; \
         run the build once without --offline to resolve and pin it"
    )]
    OfflineUnpinned {
        /// Suite.
        suite: String,
        /// Component.
        component: String,
        /// Package name as requested.
        name: String,
    },
    /// Offline mode and the cache lacks pinned packages.
    #[error(
        "offline build, but the cache {} lacks {}; run the same build once without --offline \
         (with access to the mirror) to fill the cache, or copy a filled cache there",
        cache_dir.display(),
        missing.join(", ")
    )]
    OfflineMissing {
        /// The cache directory.
        cache_dir: PathBuf,
        /// `name version (suite/component)` of each missing package.
        missing: Vec<String>,
    },
}

/// Where packages come from and go to.
#[derive(Debug, Clone)]
pub struct ArchiveOptions {
    /// Mirror base URL (`http://deb.debian.org/debian`); must be `http://`.
    pub base_url: String,
    /// Download cache directory (see [`cache::default_dir`]).
    pub cache_dir: PathBuf,
    /// Never touch the network.
    pub offline: bool,
    /// Resolve every package anew even if the lock pins it, and re-pin.
    pub update: bool,
    /// Print a progress line on stderr while downloading packages.
    pub progress: bool,
    /// Trusted signing keys; `None` means the embedded Debian archive keys.
    pub keyring: Option<Keyring>,
}

impl ArchiveOptions {
    /// Options for the default mirror and the given cache, online, lock respected, with progress.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            base_url: DEFAULT_MIRROR.to_string(),
            cache_dir: cache_dir.into(),
            offline: false,
            update: false,
            progress: true,
            keyring: None,
        }
    }
}

/// A package as a board config names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PackageRef {
    /// Suite or codename (`bookworm`).
    pub suite: String,
    /// Component (`main`, `non-free-firmware`).
    pub component: String,
    /// Package name (`linux-image-arm64`, `raspi-firmware`).
    pub name: String,
}

impl std::fmt::Display for PackageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.suite, self.component, self.name)
    }
}

/// A verified package in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedDeb {
    /// The real package name (`linux-image-6.1.0-47-arm64` for `linux-image-arm64`).
    pub name: String,
    /// Its version.
    pub version: String,
    /// SHA256 of the file, lower-case hex.
    pub sha256: String,
    /// The file in the cache.
    pub path: PathBuf,
}

/// A client for one mirror and one cache. Verified indices are kept in memory for its lifetime.
pub struct Archive {
    opts: ArchiveOptions,
    keyring: Keyring,
    cache: Cache,
    client: http::Client,
    releases: HashMap<String, Release>,
    indexes: HashMap<(String, String), PackageIndex>,
    /// Index dates per suite recorded in the lock file being resolved (see [`Self::fetch`]).
    lock_dates: HashMap<String, DateTime<Utc>>,
}

impl Archive {
    /// A client with `opts`.
    pub fn new(mut opts: ArchiveOptions) -> Result<Self, Error> {
        let keyring = match opts.keyring.take() {
            Some(k) => k,
            None => Keyring::debian()?,
        };
        opts.base_url = opts.base_url.trim_end_matches('/').to_string();
        Ok(Self {
            cache: Cache::new(opts.cache_dir.clone()),
            client: http::Client::new(opts.progress),
            keyring,
            releases: HashMap::new(),
            indexes: HashMap::new(),
            lock_dates: HashMap::new(),
            opts,
        })
    }

    /// The cache in use.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Fetches `pkg` as pinned in `lock` (pinning it first if needed) and returns the verified
    /// file in the cache. If the suite's index was fetched, an index older than the one `lock`
    /// records is refused, and its `Date` is recorded in `lock`.
    pub fn fetch(&mut self, pkg: &PackageRef, lock: &mut LockFile) -> Result<CachedDeb, Error> {
        if let Some(recorded) = lock.release_date(&pkg.suite) {
            self.lock_dates.insert(pkg.suite.clone(), recorded);
        }
        let entry = self.pin(pkg, lock)?;
        let deb = self.fetch_entry(&entry)?;
        lock.set(entry);
        if let Some(release) = self.releases.get(&pkg.suite) {
            lock.record_release_date(&pkg.suite, release.date);
        }
        Ok(deb)
    }

    /// Fetches several packages. In offline mode, every package missing from the cache is named
    /// in one error.
    pub fn fetch_all(
        &mut self,
        pkgs: &[PackageRef],
        lock: &mut LockFile,
    ) -> Result<Vec<CachedDeb>, Error> {
        let mut out = Vec::new();
        let mut missing = Vec::new();
        for pkg in pkgs {
            match self.fetch(pkg, lock) {
                Ok(deb) => out.push(deb),
                Err(Error::OfflineMissing { missing: m, .. }) => missing.extend(m),
                Err(e) => return Err(e),
            }
        }
        if !missing.is_empty() {
            return Err(self.offline_missing(missing));
        }
        Ok(out)
    }

    /// The verified `Packages` index of `suite`/`component` for arm64.
    pub fn index(&mut self, suite: &str, component: &str) -> Result<&PackageIndex, Error> {
        let key = (suite.to_string(), component.to_string());
        if !self.indexes.contains_key(&key) {
            let index = self.load_index(suite, component)?;
            self.indexes.insert(key.clone(), index);
        }
        self.indexes.get(&key).ok_or_else(|| Error::IndexNotListed {
            suite: suite.to_string(),
            path: component.to_string(),
        })
    }

    fn pin(&mut self, pkg: &PackageRef, lock: &LockFile) -> Result<LockEntry, Error> {
        if let Some(entry) = lock.get(&pkg.suite, &pkg.component, &pkg.name) {
            if !self.opts.update {
                return Ok(entry.clone());
            }
        }
        if self.opts.offline {
            return Err(Error::OfflineUnpinned {
                suite: pkg.suite.clone(),
                component: pkg.component.clone(),
                name: pkg.name.clone(),
            });
        }
        let p = self.index(&pkg.suite, &pkg.component)?.resolve(&pkg.name)?;
        Ok(LockEntry {
            suite: pkg.suite.clone(),
            component: pkg.component.clone(),
            requested: pkg.name.clone(),
            name: p.name.clone(),
            version: p.version.clone(),
            filename: p.filename.clone(),
            sha256: p.sha256.clone(),
            size: p.size,
        })
    }

    fn fetch_entry(&self, e: &LockEntry) -> Result<CachedDeb, Error> {
        let found = |path| CachedDeb {
            name: e.name.clone(),
            version: e.version.clone(),
            sha256: e.sha256.clone(),
            path,
        };
        if let Some(path) = self.cache.get(&e.sha256, e.size)? {
            return Ok(found(path));
        }
        if self.opts.offline {
            return Err(self.offline_missing(vec![format!(
                "{} {} ({}/{})",
                e.name, e.version, e.suite, e.component
            )]));
        }
        let url = format!("{}/{}", self.opts.base_url, e.filename);
        let what = format!("{} {} ({url})", e.name, e.version);
        let label = format!("{} {}", e.name, e.version);
        let path = self
            .cache
            .put(&e.sha256, e.size, &e.filename, &what, |w| {
                self.client.get_to(&url, e.size, &label, w)
            })
            .map_err(|err| match err {
                PutError::Cache(c) => Error::Cache(c),
                PutError::Fill(source) => Error::Package {
                    package: e.name.clone(),
                    version: e.version.clone(),
                    url: url.clone(),
                    source,
                },
            })?;
        Ok(found(path))
    }

    fn offline_missing(&self, missing: Vec<String>) -> Error {
        Error::OfflineMissing {
            cache_dir: self.cache.root().to_path_buf(),
            missing,
        }
    }

    fn release(&mut self, suite: &str) -> Result<&Release, Error> {
        if !self.releases.contains_key(suite) {
            let url = format!("{}/dists/{suite}/InRelease", self.opts.base_url);
            let bytes = self.client.get(&url, MAX_INRELEASE)?;
            let now = date::now();
            let text = self.keyring.verify_clearsigned_at(&bytes, &url, now)?;
            let release = Release::parse(&text, suite).map_err(|source| Error::BadRelease {
                url: url.clone(),
                source: Box::new(source),
            })?;
            release
                .check_valid_at(suite, &url, now)
                .map_err(|e| Error::Release(Box::new(e)))?;
            rollback::check(
                &self.cache,
                self.lock_dates.get(suite),
                suite,
                &url,
                &release,
            )
            .map_err(|e| match e {
                rollback::Error::Cache(c) => Error::Cache(c),
                rollback::Error::Older(r) => Error::Rollback(r),
            })?;
            self.cache.record_release_date(suite, release.date)?;
            self.releases.insert(suite.to_string(), release);
        }
        self.releases
            .get(suite)
            .ok_or_else(|| Error::IndexNotListed {
                suite: suite.to_string(),
                path: "InRelease".to_string(),
            })
    }

    fn load_index(&mut self, suite: &str, component: &str) -> Result<PackageIndex, Error> {
        let base = self.opts.base_url.clone();
        let release = self.release(suite)?.clone();
        let dir = format!("{component}/binary-{ARCH}");
        let (name, file) = ["Packages.xz", "Packages.gz"]
            .into_iter()
            .find_map(|n| release.file(&format!("{dir}/{n}")).map(|f| (n, f)))
            .ok_or_else(|| Error::IndexNotListed {
                suite: suite.to_string(),
                path: format!("{dir}/Packages.xz"),
            })?;
        let url = if release.acquire_by_hash {
            format!("{base}/dists/{suite}/{dir}/by-hash/SHA256/{}", file.sha256)
        } else {
            format!("{base}/dists/{suite}/{dir}/{name}")
        };
        let bytes = self.client.get(&url, file.size)?;
        let actual = cache::sha256_hex(&bytes);
        if actual != file.sha256 {
            return Err(Error::IndexMismatch {
                url,
                expected: file.sha256.clone(),
                actual,
            });
        }
        let mut text = String::new();
        let decompressed = if name.ends_with(".xz") {
            liblzma::read::XzDecoder::new_multi_decoder(&bytes[..]).read_to_string(&mut text)
        } else {
            flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_string(&mut text)
        };
        decompressed.map_err(|source| Error::Decompress {
            url: url.clone(),
            source,
        })?;
        Ok(PackageIndex::parse(&text, &format!("{suite}/{component}"))?)
    }
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "archive_dates_tests.rs"]
mod dates_tests;
