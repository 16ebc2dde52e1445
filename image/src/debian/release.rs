//! The verified `Release` text of one suite: which suite it is and the SHA256 of every index.

use std::collections::BTreeMap;

use super::control;

/// Errors from reading a `Release` file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A required field is missing.
    #[error("the Release file of suite {suite} has no {field} field")]
    MissingField {
        /// The suite asked for.
        suite: String,
        /// The missing field.
        field: &'static str,
    },
    /// The signed file is for another suite (a mirror replaying the wrong index).
    #[error("asked for suite {wanted} but the signed Release is for suite {suite} / codename {codename}")]
    WrongSuite {
        /// The suite asked for.
        wanted: String,
        /// Its `Suite` field.
        suite: String,
        /// Its `Codename` field.
        codename: String,
    },
    /// A line of the SHA256 list is malformed.
    #[error("the Release file of suite {suite} has a malformed SHA256 line: {line:?}")]
    BadLine {
        /// The suite asked for.
        suite: String,
        /// The offending line.
        line: String,
    },
}

/// Digest and size of one file listed in a `Release`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// Lower-case hex SHA256.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// The parts of a `Release` file the builder uses.
#[derive(Debug, Clone)]
pub struct Release {
    /// `Suite` (e.g. `oldstable`).
    pub suite: String,
    /// `Codename` (e.g. `bookworm`).
    pub codename: String,
    /// Whether indices may be fetched by hash (`Acquire-By-Hash: yes`).
    pub acquire_by_hash: bool,
    files: BTreeMap<String, IndexFile>,
}

impl Release {
    /// Parses the signed text of the `Release` of `wanted` (a suite or codename) and checks it is
    /// really that suite's.
    pub fn parse(text: &str, wanted: &str) -> Result<Self, Error> {
        let stanza = control::stanzas(text)
            .into_iter()
            .next()
            .unwrap_or_default();
        let missing = |field| Error::MissingField {
            suite: wanted.to_string(),
            field,
        };
        let suite = stanza.get("Suite").unwrap_or_default().to_string();
        let codename = stanza.get("Codename").unwrap_or_default().to_string();
        if suite != wanted && codename != wanted {
            return Err(Error::WrongSuite {
                wanted: wanted.to_string(),
                suite,
                codename,
            });
        }
        let sums = stanza.get("SHA256").ok_or_else(|| missing("SHA256"))?;
        let mut files = BTreeMap::new();
        for line in sums.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let bad = || Error::BadLine {
                suite: wanted.to_string(),
                line: line.to_string(),
            };
            let mut parts = line.split_whitespace();
            let (Some(sha), Some(size), Some(path), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            let size = size.parse().map_err(|_| bad())?;
            if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            files.insert(
                path.to_string(),
                IndexFile {
                    sha256: sha.to_ascii_lowercase(),
                    size,
                },
            );
        }
        Ok(Self {
            suite,
            codename,
            acquire_by_hash: stanza
                .get("Acquire-By-Hash")
                .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            files,
        })
    }

    /// The digest of `path` (relative to `dists/<suite>/`), if listed.
    pub fn file(&self, path: &str) -> Option<&IndexFile> {
        self.files.get(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "Origin: Debian\nSuite: oldstable\nCodename: bookworm\nAcquire-By-Hash: yes\n\
        MD5Sum:\n 0ed6d4c8891eb86358b94bb35d9e4da4  1484322 contrib/Contents-all\n\
        SHA256:\n 2ddb1737692e8c45c53e8d57c0ce4cd21c78c5703b830c3226b1423566a06c00  8689464 main/binary-arm64/Packages.xz\n";

    #[test]
    fn parses_sha256_list_and_checks_suite() {
        let r = Release::parse(TEXT, "bookworm").unwrap();
        assert!(r.acquire_by_hash);
        let f = r.file("main/binary-arm64/Packages.xz").unwrap();
        assert_eq!(f.size, 8689464);
        assert!(f.sha256.starts_with("2ddb17"));
        assert!(
            r.file("contrib/Contents-all").is_none(),
            "MD5 entries are not trusted"
        );
        assert!(Release::parse(TEXT, "oldstable").is_ok());
        let err = Release::parse(TEXT, "trixie").unwrap_err();
        assert!(err.to_string().contains("trixie"), "{err}");
    }

    #[test]
    fn rejects_malformed_lines() {
        let bad = TEXT.replace("8689464", "lots");
        assert!(matches!(
            Release::parse(&bad, "bookworm"),
            Err(Error::BadLine { .. })
        ));
    }

    #[test]
    fn parses_the_real_bookworm_release() {
        let bytes = include_bytes!("testdata/bookworm-InRelease");
        let text = super::super::Keyring::debian()
            .unwrap()
            .verify_clearsigned(bytes, "InRelease")
            .unwrap();
        let r = Release::parse(&text, "bookworm").unwrap();
        assert_eq!(r.codename, "bookworm");
        assert!(r.file("main/binary-arm64/Packages.xz").is_some());
        assert!(r
            .file("non-free-firmware/binary-arm64/Packages.xz")
            .is_some());
    }
}
