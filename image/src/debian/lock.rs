//! The lock file: the exact Debian packages a build used, so the next build fetches the same.
//!
//! ```toml
//! version = 1
//!
//! [[release]]
//! suite = "bookworm"
//! date = "Sat, 10 Jan 2026 09:56:44 UTC"
//!
//! [[package]]
//! suite = "bookworm"
//! component = "main"
//! requested = "linux-image-arm64"
//! name = "linux-image-6.1.0-47-arm64"
//! version = "6.1.170-1"
//! filename = "pool/main/l/linux-signed-arm64/linux-image-6.1.0-47-arm64_6.1.170-1_arm64.deb"
//! sha256 = "…"
//! size = 61234567
//! ```
//!
//! Entries are keyed by what a board asked for (suite, component, requested name) and saved
//! sorted, so the file only changes when a pin does.
//!
//! A `[[release]]` records the `Date` of the newest signed index of a suite that a pin was
//! resolved from; an index older than that is refused later (a replayed or rolled-back index).
//! Lock files written before this field existed are read as recording no date, and gain one the
//! next time a suite's index is fetched.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::date;

/// Errors from reading or writing a lock file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read or written.
    #[error("lock file {path}: cannot {action}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid lock file.
    #[error("lock file {path} is invalid: {source}")]
    Parse {
        /// The lock file.
        path: PathBuf,
        /// What is wrong, with line and column.
        #[source]
        source: toml::de::Error,
    },
    /// The file is for another version of baton.
    #[error("lock file {path} has version {version}; this baton reads version 1")]
    Version {
        /// The lock file.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// A package's `sha256` is not 64 lowercase hex digits (the cache names a directory by it).
    #[error("lock file {path}, line {line}: package {package:?}: sha256 {value:?} is not 64 lowercase hex digits")]
    Digest {
        /// The lock file.
        path: PathBuf,
        /// The line of the value (of the `sha256` key), 1-based; 0 if it was not found.
        line: usize,
        /// The package's `name`.
        package: String,
        /// The value found.
        value: String,
    },
    /// A `[[release]]` date is not a date.
    #[error("lock file {path}: the release of suite {suite:?} has the unreadable date {value:?} (expected a date like \"Sat, 10 Jan 2026 09:56:44 UTC\")")]
    Date {
        /// The lock file.
        path: PathBuf,
        /// The suite.
        suite: String,
        /// The value found.
        value: String,
    },
    /// Serialising failed (a bug).
    #[error("cannot serialise the lock file {path}: {source}")]
    Serialize {
        /// The lock file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: toml::ser::Error,
    },
}

/// One pinned package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockEntry {
    /// Suite or codename the package comes from (`bookworm`).
    pub suite: String,
    /// Archive component (`main`, `non-free-firmware`).
    pub component: String,
    /// The name the board config asked for; a metapackage is resolved to `name`.
    pub requested: String,
    /// The package actually downloaded.
    pub name: String,
    /// Its exact version.
    pub version: String,
    /// Its path in the archive (`pool/...`).
    pub filename: String,
    /// SHA256 of the .deb, lower-case hex.
    pub sha256: String,
    /// Size of the .deb in bytes.
    pub size: u64,
}

impl LockEntry {
    fn key(&self) -> (&str, &str, &str) {
        (&self.suite, &self.component, &self.requested)
    }
}

/// The `Date` of the newest signed index of a suite that pins were resolved from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseEntry {
    /// Suite or codename, as the packages name it.
    suite: String,
    /// The index's `Date`, as [`date::format`] writes it.
    date: String,
}

/// All pinned packages of a build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    /// Format version (1).
    version: u32,
    /// Index dates per suite (absent in lock files from before they were recorded).
    #[serde(default, rename = "release", skip_serializing_if = "Vec::is_empty")]
    releases: Vec<ReleaseEntry>,
    /// The pins.
    #[serde(default, rename = "package")]
    packages: Vec<LockEntry>,
}

/// The 1-based line of the `sha256` value of the `index`th package in `text`, or 0 if the text
/// does not say (read again with spans, only to name the line in an error: any layout TOML
/// allows, `[[package]]` tables or an inline array, gives the right line).
fn sha256_line(text: &str, index: usize) -> usize {
    #[derive(Deserialize)]
    struct Spans {
        #[serde(default, rename = "package")]
        packages: Vec<PackageSpan>,
    }
    #[derive(Deserialize)]
    struct PackageSpan {
        sha256: toml::Spanned<toml::Value>,
    }
    let Ok(spans) = toml::from_str::<Spans>(text) else {
        return 0;
    };
    spans.packages.get(index).map_or(0, |package| {
        let start = package.sha256.span().start.min(text.len());
        text.as_bytes()[..start]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    })
}

impl LockFile {
    /// An empty lock.
    pub fn new() -> Self {
        Self {
            version: 1,
            releases: Vec::new(),
            packages: Vec::new(),
        }
    }

    /// Reads a lock file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            action: "read it",
            source,
        })?;
        let lock: LockFile = toml::from_str(&text).map_err(|source| Error::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        if lock.version != 1 {
            return Err(Error::Version {
                path: path.to_path_buf(),
                version: lock.version,
            });
        }
        for (index, entry) in lock.packages.iter().enumerate() {
            if !super::cache::is_sha256_hex(&entry.sha256) {
                return Err(Error::Digest {
                    path: path.to_path_buf(),
                    line: sha256_line(&text, index),
                    package: entry.name.clone(),
                    value: entry.sha256.clone(),
                });
            }
        }
        for release in &lock.releases {
            if date::parse(&release.date).is_none() {
                return Err(Error::Date {
                    path: path.to_path_buf(),
                    suite: release.suite.clone(),
                    value: release.date.clone(),
                });
            }
        }
        Ok(lock)
    }

    /// Reads a lock file, or starts an empty one if `path` does not exist.
    pub fn load_or_new(path: &Path) -> Result<Self, Error> {
        if path.exists() {
            Self::load(path)
        } else {
            Ok(Self::new())
        }
    }

    /// Writes the lock file (sorted; via a temporary file and rename).
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let mut sorted = self.clone();
        sorted.packages.sort_by(|a, b| a.key().cmp(&b.key()));
        sorted.releases.sort_by(|a, b| a.suite.cmp(&b.suite));
        let body = toml::to_string(&sorted).map_err(|source| Error::Serialize {
            path: path.to_path_buf(),
            source,
        })?;
        let text = format!(
            "# Pinned Debian packages for `baton image build`. Generated; commit it for \
             reproducible builds.\n# Run the build with --update to pick up new versions.\n\n{body}"
        );
        let io_err = |action, source| Error::Io {
            path: path.to_path_buf(),
            action,
            source,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| io_err("create a temporary file next to it", e))?;
        std::fs::write(tmp.path(), text).map_err(|e| io_err("write it", e))?;
        tmp.persist(path)
            .map_err(|e| io_err("move it into place", e.error))?;
        Ok(())
    }

    /// The pin for `requested` from `suite`/`component`, if any.
    pub fn get(&self, suite: &str, component: &str, requested: &str) -> Option<&LockEntry> {
        self.packages
            .iter()
            .find(|e| e.key() == (suite, component, requested))
    }

    /// Adds or replaces a pin.
    pub fn set(&mut self, entry: LockEntry) {
        self.packages.retain(|e| e.key() != entry.key());
        self.packages.push(entry);
    }

    /// All pins.
    pub fn entries(&self) -> &[LockEntry] {
        &self.packages
    }

    /// The `Date` of the newest index of `suite` recorded, if any (dates are checked on load).
    pub fn release_date(&self, suite: &str) -> Option<DateTime<Utc>> {
        self.releases
            .iter()
            .find(|r| r.suite == suite)
            .and_then(|r| date::parse(&r.date))
    }

    /// Records `date` as the `Date` of `suite`'s index, unless a newer one is recorded.
    pub fn record_release_date(&mut self, suite: &str, date: DateTime<Utc>) {
        if self.release_date(suite).is_some_and(|d| d >= date) {
            return;
        }
        self.releases.retain(|r| r.suite != suite);
        self.releases.push(ReleaseEntry {
            suite: suite.to_string(),
            date: date::format(&date),
        });
    }
}

#[cfg(test)]
#[path = "lock_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "lock_proptests.rs"]
mod proptests;
