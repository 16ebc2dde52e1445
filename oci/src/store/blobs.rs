//! Blobs: `blobs/sha256/<hex>`, written through a temp file, verified while streaming.

use super::space::{FreeSpace, SpaceError};
use super::{io_error, sync_dir, Result, Store, StoreError, MAX_JSON_BYTES};
use crate::digest::{Digest, HashingReader};
use crate::model::Descriptor;
use serde::de::DeserializeOwned;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::PathBuf;

impl Store {
    /// Where the blob with this digest lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Whether the store holds this blob.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Checks that the blob a descriptor names is in the store with the size it announces.
    pub fn check_blob(&self, descriptor: &Descriptor) -> Result<()> {
        let path = self.blob_path(&descriptor.digest);
        let size = match fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::MissingBlob {
                    digest: descriptor.digest.clone(),
                    root: self.root.clone(),
                })
            }
            Err(e) => return Err(io_error("inspect blob", &path)(e)),
        };
        if size != descriptor.size {
            return Err(StoreError::SizeMismatch {
                digest: descriptor.digest.clone(),
                expected: descriptor.size,
                actual: size,
            });
        }
        Ok(())
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::MissingBlob {
                    digest: digest.clone(),
                    root: self.root.clone(),
                }
            } else {
                io_error("open blob", &path)(e)
            }
        })
    }

    /// Streams `reader` into the store and returns the blob's digest and size. With `expected`, the
    /// content must hash to it; with `expected_size`, it must have that many bytes (checked while
    /// streaming, so an oversized blob is refused as soon as it is too long). Nothing is kept unless the
    /// blob verifies; a blob already present is not rewritten.
    pub fn write_blob(
        &self,
        reader: impl Read,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<(Digest, u64)> {
        let temp = self.temp_path("blob");
        let result = self.write_blob_via(&temp, reader, expected, expected_size);
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    /// Stores an in-memory blob (a manifest or config baton writes itself).
    pub fn write_blob_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        self.write_blob(bytes, Some(&digest), Some(bytes.len() as u64))?;
        Ok(digest)
    }

    fn write_blob_via(
        &self,
        temp: &PathBuf,
        reader: impl Read,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<(Digest, u64)> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(temp)
            .map_err(io_error("create temp blob", temp))?;
        let what = expected.map_or_else(|| "blob".to_owned(), |d| format!("blob {d}"));
        let mut space = FreeSpace::new(&self.root, self.limits.min_available)
            .map_err(io_error("check free space of", &self.root))?;
        if let Some(size) = expected_size {
            space
                .fits(size)
                .map_err(|e| self.space_error(e, &what, 0))?;
        }
        let limit = expected_size.map_or(u64::MAX, |size| size.saturating_add(1));
        let mut hashing = HashingReader::new(reader.take(limit));
        // Written in whole buffers (no buffering writer), so what is charged is what was written.
        let mut file = file;
        let mut buf = vec![0u8; 128 << 10];
        let mut written = 0u64;
        loop {
            let n = fill(&mut hashing, &mut buf).map_err(|source| StoreError::Io {
                action: "stream",
                path: PathBuf::from(&what),
                source,
            })?;
            if n == 0 {
                break;
            }
            space
                .charge(n as u64)
                .map_err(|e| self.space_error(e, &what, written))?;
            file.write_all(&buf[..n])
                .map_err(io_error("write temp blob", temp))?;
            written += n as u64;
        }
        let (actual, size) = hashing
            .finish()
            .map_err(io_error("finish reading blob", temp))?;
        if let (Some(want), Some(digest)) = (expected_size, expected) {
            if size != want {
                return Err(StoreError::SizeMismatch {
                    digest: digest.clone(),
                    expected: want,
                    actual: size,
                });
            }
        }
        if let Some(want) = expected {
            if *want != actual {
                return Err(StoreError::DigestMismatch {
                    expected: want.clone(),
                    actual,
                    size,
                });
            }
        }
        if let Some(want) = expected_size {
            if size != want {
                return Err(StoreError::SizeMismatch {
                    digest: actual,
                    expected: want,
                    actual: size,
                });
            }
        }
        let target = self.blob_path(&actual);
        if target.is_file() {
            fs::remove_file(temp).map_err(io_error("remove temp blob", temp))?;
            return Ok((actual, size));
        }
        file.sync_all().map_err(io_error("sync temp blob", temp))?;
        drop(file);
        fs::rename(temp, &target).map_err(io_error("move blob into place", &target))?;
        sync_dir(&self.root.join("blobs/sha256"))?;
        Ok((actual, size))
    }

    fn space_error(&self, error: SpaceError, what: &str, written: u64) -> StoreError {
        match error {
            SpaceError::Statvfs(path, source) => StoreError::Io {
                action: "check free space of",
                path,
                source,
            },
            SpaceError::Low { available } => StoreError::NoSpace {
                root: self.root.clone(),
                what: what.to_owned(),
                written,
                available,
                min_available: self.limits.min_available,
            },
        }
    }

    /// Reads a small JSON blob (manifest, index, config).
    pub(crate) fn read_json<T: DeserializeOwned>(
        &self,
        digest: &Digest,
        what: &'static str,
    ) -> Result<T> {
        let file = self.open_blob(digest)?;
        let path = self.blob_path(digest);
        let size = file
            .metadata()
            .map_err(io_error("inspect blob", &path))?
            .len();
        if size > MAX_JSON_BYTES {
            return Err(StoreError::TooLarge {
                digest: digest.clone(),
                what,
                size,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        file.take(MAX_JSON_BYTES)
            .read_to_end(&mut bytes)
            .map_err(io_error("read blob", &path))?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
            digest: digest.clone(),
            what,
            source,
        })
    }
}

/// Reads into `buf` until it is full or the reader ends; returns how much was read.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_blob_lands_and_bad_ones_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let digest = Digest::of(b"layer bytes");
        let (got, size) = store
            .write_blob(&b"layer bytes"[..], Some(&digest), Some(11))
            .unwrap();
        assert_eq!((got.clone(), size), (digest.clone(), 11));
        assert_eq!(fs::read(store.blob_path(&digest)).unwrap(), b"layer bytes");

        let err = store
            .write_blob(&b"other bytes"[..], Some(&digest), None)
            .unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
        assert!(err.to_string().contains(&digest.to_string()), "{err}");

        let other = Digest::of(b"0123456789abcdef");
        let err = store
            .write_blob(&b"0123456789abcdef"[..], Some(&other), Some(4))
            .unwrap_err();
        assert!(matches!(err, StoreError::SizeMismatch { .. }), "{err}");
        assert!(!store.has_blob(&other));
        assert!(fs::read_dir(dir.path().join("tmp"))
            .unwrap()
            .next()
            .is_none());
    }
}

#[cfg(test)]
mod space_tests {
    use super::*;
    use crate::testimage::{names, Tmpfs};
    use crate::StoreLimits;

    const MIB: u64 = 1 << 20;

    #[test]
    fn blob_writes_stop_at_the_reserve_of_a_small_real_file_system() {
        let tmpfs = Tmpfs::mount("48m");
        let root = tmpfs.path().join("store");
        let limits = StoreLimits {
            min_available: 16 * MIB,
            ..StoreLimits::default()
        };
        let store = Store::open(&root).expect("store").with_limits(limits);
        let left_alone = || {
            assert_eq!(names(&root.join("tmp")), Vec::<String>::new());
            assert_eq!(names(&root.join("blobs/sha256")), Vec::<String>::new());
        };

        // A stream of unknown size is stopped as it goes.
        let stream = io::repeat(7).take(40 * MIB);
        let err = store.write_blob(stream, None, None).expect_err("40 MiB");
        match &err {
            StoreError::NoSpace {
                root: at,
                what,
                written,
                available,
                min_available,
            } => {
                assert_eq!(
                    (at, what.as_str(), *min_available),
                    (&root, "blob", 16 * MIB)
                );
                assert!(*written > 16 * MIB && *written <= 32 * MIB, "{written}");
                assert!(*available >= 16 * MIB, "{available}");
            }
            other => panic!("expected the reserve: {other}"),
        }
        assert!(
            err.to_string().contains("always leaves 16777216 free"),
            "{err}"
        );
        left_alone();

        // A blob announced too large is refused before a byte is written.
        let digest = Digest::of(b"never read");
        let stream = io::repeat(7).take(40 * MIB);
        let err = store
            .write_blob(stream, Some(&digest), Some(40 * MIB))
            .expect_err("40 MiB announced");
        assert!(
            matches!(&err, StoreError::NoSpace { written: 0, what, .. } if *what == format!("blob {digest}")),
            "{err}"
        );
        left_alone();

        // What fits above the reserve is written.
        let bytes = vec![3u8; (8 * MIB) as usize];
        let digest = store.write_blob_bytes(&bytes).expect("8 MiB fits");
        assert!(store.has_blob(&digest));
    }
}
