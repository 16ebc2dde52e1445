//! The download cache's record of index dates: `<root>/releases/<suite>` holds the `Date` of the
//! newest signed `InRelease` of that suite the cache has accepted, so an older one (replayed by a
//! mirror or someone in between) is refused even by a build whose lock file records none.

use std::fs;
use std::io::{self, Read};
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::cache::{io_err, Cache, Error};
use super::date;

/// Longest record read (a date is about 30 bytes).
const MAX_RECORD: u64 = 256;

impl Cache {
    /// The file recording the index date of `suite`. A suite name that is not a plain file name
    /// is replaced by its digest, so no name can reach outside the directory.
    pub fn release_date_path(&self, suite: &str) -> PathBuf {
        let plain = !suite.is_empty()
            && suite.len() <= 64
            && !suite.starts_with('.')
            && suite
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'));
        let name = if plain {
            suite.to_string()
        } else {
            format!("sha256-{}", super::cache::sha256_hex(suite.as_bytes()))
        };
        self.root().join("releases").join(name)
    }

    /// The recorded index date of `suite`, if any.
    pub fn release_date(&self, suite: &str) -> Result<Option<DateTime<Utc>>, Error> {
        let path = self.release_date_path(suite);
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("open", &path, e)),
        };
        let mut text = String::new();
        file.take(MAX_RECORD)
            .read_to_string(&mut text)
            .map_err(|e| io_err("read", &path, e))?;
        match date::parse(&text) {
            Some(d) => Ok(Some(d)),
            None => Err(Error::BadRecord {
                path,
                value: text.chars().take(64).collect(),
            }),
        }
    }

    /// Records `date` as the index date of `suite`, unless a newer one is recorded. Written to a
    /// temporary file and renamed, so a reader sees the old or the new record, never a mix.
    pub fn record_release_date(&self, suite: &str, date: DateTime<Utc>) -> Result<(), Error> {
        if self.release_date(suite)?.is_some_and(|d| d >= date) {
            return Ok(());
        }
        let path = self.release_date_path(suite);
        let dir = self.root().join("releases");
        fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
        let tmp = tempfile::Builder::new()
            .suffix(".partial")
            .tempfile_in(&dir)
            .map_err(|e| io_err("create a temporary file in", &dir, e))?;
        fs::write(tmp.path(), format!("{}\n", date::format(&date)))
            .map_err(|e| io_err("write", tmp.path(), e))?;
        tmp.persist(&path)
            .map_err(|e| io_err("move into place", &path, e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_only_ever_move_forward() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::new(tmp.path());
        let d = |s| date::parse(s).unwrap();
        assert_eq!(cache.release_date("bookworm").unwrap(), None);
        cache
            .record_release_date("bookworm", d("Sat, 10 Jan 2026 09:56:44 UTC"))
            .unwrap();
        cache
            .record_release_date("bookworm", d("Fri, 09 Jan 2026 09:56:44 UTC"))
            .unwrap();
        assert_eq!(
            cache.release_date("bookworm").unwrap(),
            Some(d("Sat, 10 Jan 2026 09:56:44 UTC"))
        );
        assert_eq!(
            fs::read_to_string(tmp.path().join("releases/bookworm")).unwrap(),
            "Sat, 10 Jan 2026 09:56:44 UTC\n"
        );
        cache
            .record_release_date("bookworm", d("Sun, 11 Jan 2026 09:56:44 UTC"))
            .unwrap();
        assert_eq!(
            cache.release_date("bookworm").unwrap(),
            Some(d("Sun, 11 Jan 2026 09:56:44 UTC"))
        );
        assert_eq!(cache.release_date("trixie").unwrap(), None);
    }

    #[test]
    fn odd_suite_names_stay_inside_and_bad_records_name_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::new(tmp.path());
        for odd in ["../../x", "", ".hidden", "a/b"] {
            let path = cache.release_date_path(odd);
            assert_eq!(path.parent(), Some(tmp.path().join("releases").as_path()));
            assert!(path
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("sha256-"));
        }
        fs::create_dir_all(tmp.path().join("releases")).unwrap();
        fs::write(tmp.path().join("releases/bookworm"), "garbage").unwrap();
        let err = cache.release_date("bookworm").unwrap_err().to_string();
        assert!(
            err.contains("releases/bookworm") && err.contains("garbage"),
            "{err}"
        );
    }
}
