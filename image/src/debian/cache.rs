//! The per-user download cache: verified .deb files, content-addressed by SHA256.
//!
//! Layout: `<root>/debs/<sha256>/<file name from the pool>`. The directory name is the digest, so
//! a lookup needs nothing but the digest from the lock file; the file name keeps the cache
//! readable. Files are written to a temporary file in the same directory tree, checked, and only
//! then renamed into place, so the cache never holds a partial or unverified file under a real
//! name.
//!
//! `<root>/releases/<suite>` records the `Date` of the newest signed index of each suite the
//! cache has accepted (see `release_dates.rs`).

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Errors from the cache.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error("download cache: cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// A digest that is not 64 lowercase hex digits: never made into a cache path.
    #[error("{what}: sha256 {value:?} is not 64 lowercase hex digits; refusing to use it as a cache path")]
    BadDigest {
        /// The package or file.
        what: String,
        /// The value found.
        value: String,
    },
    /// A recorded index date could not be read.
    #[error("download cache: {path} does not hold an index date ({value:?}); delete the file and run the build again")]
    BadRecord {
        /// The record.
        path: PathBuf,
        /// What it holds (at most its first bytes).
        value: String,
    },
    /// No cache directory could be found.
    #[error("cannot find a cache directory: set BATON_CACHE_DIR, XDG_CACHE_HOME or HOME")]
    NoCacheDir,
    /// Downloaded or stored content does not match the expected digest or size.
    #[error(
        "{what}: expected sha256 {expected} ({expected_size} bytes) but got sha256 {actual} \
         ({actual_size} bytes); the file was discarded"
    )]
    Mismatch {
        /// The package or file.
        what: String,
        /// Expected digest.
        expected: String,
        /// Expected size.
        expected_size: u64,
        /// Digest of what arrived.
        actual: String,
        /// Size of what arrived.
        actual_size: u64,
    },
}

/// The cache directory to use when none is configured: `$BATON_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/baton`, else `~/.cache/baton`.
pub fn default_dir() -> Result<PathBuf, Error> {
    let non_empty = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = non_empty("BATON_CACHE_DIR") {
        return Ok(dir);
    }
    if let Some(dir) = non_empty("XDG_CACHE_HOME") {
        return Ok(dir.join("baton"));
    }
    non_empty("HOME")
        .map(|h| h.join(".cache").join("baton"))
        .ok_or(Error::NoCacheDir)
}

/// Whether `text` is a SHA-256 digest as the cache names directories: exactly 64 lowercase hex
/// digits.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Lower-case hex SHA256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A cache rooted at a directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// A cache in `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of digest `sha256`, which must be 64 lowercase hex digits
    /// ([`is_sha256_hex`]): a path is never built from anything else, whatever a lock file or an
    /// index says.
    fn dir_for(&self, sha256: &str) -> Result<PathBuf, Error> {
        if !is_sha256_hex(sha256) {
            return Err(Error::BadDigest {
                what: "package cache".to_string(),
                value: sha256.to_string(),
            });
        }
        Ok(self.root.join("debs").join(sha256))
    }

    /// The stored file with digest `sha256`, re-hashed to make sure it is intact. A file that no
    /// longer matches is removed and reported as absent.
    pub fn get(&self, sha256: &str, size: u64) -> Result<Option<PathBuf>, Error> {
        let dir = self.dir_for(sha256)?;
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io_err("list", &dir, source)),
        };
        for entry in entries {
            let path = entry.map_err(|e| io_err("list", &dir, e))?.path();
            if path.extension().is_some_and(|e| e == "partial") {
                continue;
            }
            let (actual, actual_size) = hash_file(&path)?;
            if actual == sha256 && actual_size == size {
                return Ok(Some(path));
            }
            fs::remove_file(&path).map_err(|e| io_err("remove corrupt file", &path, e))?;
        }
        Ok(None)
    }

    /// Streams content into the cache under `file_name`, checking it against `sha256` and
    /// `size`. `fill` writes the content and returns how many bytes it wrote. On any error or
    /// mismatch nothing is left behind. `what` names the package in errors.
    pub fn put<E>(
        &self,
        sha256: &str,
        size: u64,
        file_name: &str,
        what: &str,
        fill: impl FnOnce(&mut dyn Write) -> Result<u64, E>,
    ) -> Result<PathBuf, PutError<E>> {
        let dir = self.dir_for(sha256)?;
        fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
        let tmp = tempfile::Builder::new()
            .suffix(".partial")
            .tempfile_in(&dir)
            .map_err(|e| io_err("create a temporary file in", &dir, e))?;
        let mut writer = HashingWriter {
            inner: io::BufWriter::new(tmp),
            hasher: Sha256::new(),
            len: 0,
        };
        fill(&mut writer).map_err(PutError::Fill)?;
        let HashingWriter { inner, hasher, len } = writer;
        let tmp = inner
            .into_inner()
            .map_err(|e| io_err("write into", &dir, e.into_error()))?;
        let actual = hex(&hasher.finalize());
        if actual != sha256 || len != size {
            return Err(PutError::Cache(Error::Mismatch {
                what: what.to_string(),
                expected: sha256.to_string(),
                expected_size: size,
                actual,
                actual_size: len,
            }));
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| io_err("sync", tmp.path(), e))?;
        let dest = dir.join(sanitize(file_name));
        tmp.persist(&dest)
            .map_err(|e| io_err("move into place", &dest, e.error))?;
        Ok(dest)
    }
}

/// Errors from [`Cache::put`]: the cache's own, or the filler's.
#[derive(Debug)]
pub enum PutError<E> {
    /// The cache failed or the content did not match.
    Cache(Error),
    /// The function producing the content failed.
    Fill(E),
}

impl<E> From<Error> for PutError<E> {
    fn from(e: Error) -> Self {
        PutError::Cache(e)
    }
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// SHA256 (hex) and length of a file.
pub fn hash_file(path: &Path) -> Result<(String, u64), Error> {
    let mut file = fs::File::open(path).map_err(|e| io_err("open", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| io_err("read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((hex(&hasher.finalize()), len))
}

/// The last path component, with anything odd replaced, so a pool file name cannot escape.
fn sanitize(file_name: &str) -> String {
    let base = file_name.rsplit('/').next().unwrap_or_default();
    let clean: String = base
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' | '+' | '~' => c,
            _ => '_',
        })
        .collect();
    match clean.trim_start_matches('.') {
        "" => "package.deb".to_string(),
        s => s.to_string(),
    }
}

pub(super) fn io_err(action: &'static str, path: &Path, source: io::Error) -> Error {
    Error::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(
        cache: &Cache,
        sha: &str,
        size: u64,
        data: &[u8],
    ) -> Result<PathBuf, PutError<io::Error>> {
        cache.put(sha, size, "pool/main/a/a_1_arm64.deb", "a 1", |w| {
            w.write_all(data)?;
            Ok(data.len() as u64)
        })
    }

    #[test]
    fn stores_verified_content_and_finds_it_again() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::new(tmp.path());
        let data = b"hello deb";
        let sha = sha256_hex(data);
        assert_eq!(cache.get(&sha, 9).unwrap(), None);
        let path = put(&cache, &sha, 9, data).unwrap();
        assert_eq!(
            path,
            tmp.path().join("debs").join(&sha).join("a_1_arm64.deb")
        );
        assert_eq!(fs::read(&path).unwrap(), data);
        assert_eq!(cache.get(&sha, 9).unwrap(), Some(path));
    }

    #[test]
    fn mismatch_leaves_nothing_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::new(tmp.path());
        let sha = sha256_hex(b"expected");
        let err = match put(&cache, &sha, 8, b"tampered") {
            Err(PutError::Cache(e)) => e,
            other => panic!("unexpected {other:?}"),
        };
        let msg = err.to_string();
        assert!(msg.contains("a 1") && msg.contains(&sha), "{msg}");
        let left: Vec<_> = fs::read_dir(tmp.path().join("debs").join(&sha))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        assert_eq!(cache.get(&sha, 8).unwrap(), None);
    }

    #[test]
    fn failing_filler_leaves_nothing_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::new(tmp.path());
        let sha = sha256_hex(b"x");
        let res = cache.put(&sha, 1, "x.deb", "x", |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("connection reset"))
        });
        assert!(matches!(res, Err(PutError::Fill(_))));
        assert_eq!(
            fs::read_dir(tmp.path().join("debs").join(&sha))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn corrupted_cache_entry_is_removed_and_reported_absent() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::new(tmp.path());
        let sha = sha256_hex(b"good");
        let path = put(&cache, &sha, 4, b"good").unwrap();
        fs::write(&path, b"evil").unwrap();
        assert_eq!(cache.get(&sha, 4).unwrap(), None);
        assert!(!path.exists());
    }

    #[test]
    fn file_names_cannot_escape() {
        assert_eq!(sanitize("pool/main/../../etc/passwd"), "passwd");
        assert_eq!(sanitize(".."), "package.deb");
        assert_eq!(sanitize("a b+c~1.deb"), "a_b+c~1.deb");
    }

    #[test]
    fn a_digest_that_is_not_64_lowercase_hex_digits_never_becomes_a_path() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        fs::write(&victim, "keep me").unwrap();
        let cache = Cache::new(tmp.path().join("cache"));
        let good = sha256_hex(b"x");
        for bad in [
            "../../victim".to_string(),
            "../../etc/x".to_string(),
            good.to_uppercase(),
            good[..63].to_string(),
            format!("{good}0"),
            String::new(),
            format!("{}/..", &good[..61]),
        ] {
            let err = cache.get(&bad, 1).unwrap_err();
            assert!(
                matches!(&err, Error::BadDigest { value, .. } if *value == bad),
                "{err}"
            );
            assert!(
                err.to_string().ends_with(
                    "is not 64 lowercase hex digits; refusing to use it as a cache path"
                ),
                "{err}"
            );
            assert!(matches!(
                put(&cache, &bad, 1, b"x"),
                Err(PutError::Cache(Error::BadDigest { .. }))
            ));
        }
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep me");
        assert!(!tmp.path().join("cache").exists(), "nothing was created");
        assert!(is_sha256_hex(&good));
    }
}
