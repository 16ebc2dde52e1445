//! The verified `Release` text of one suite: which suite it is, when it was made and until when
//! it is valid, and the SHA256 of every index.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{control, date};

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
    /// A date field is not an RFC 2822 date.
    #[error("the Release file of suite {suite} has an unreadable {field} {value:?} (expected a date like \"Sat, 10 Jan 2026 09:56:44 UTC\")")]
    BadDate {
        /// The suite asked for.
        suite: String,
        /// `Date` or `Valid-Until`.
        field: &'static str,
        /// The value found.
        value: String,
    },
    /// `Valid-Until` has passed: the archive no longer vouches for this index.
    #[error(
        "{url}: the signed index of suite {suite} expired at {valid_until} (Valid-Until; its Date \
         is {date}) and it is now {now}: the mirror serves a stale or replayed index (or this \
         machine's clock is wrong)"
    )]
    Expired {
        /// The suite asked for.
        suite: String,
        /// Where the index came from.
        url: String,
        /// Its `Date`.
        date: String,
        /// Its `Valid-Until`.
        valid_until: String,
        /// The time of the check.
        now: String,
    },
    /// `Date` is further in the future than [`date::FUTURE_ALLOWANCE`].
    #[error(
        "{url}: the signed index of suite {suite} is not valid yet: its Date is {date} but it is \
         now {now} (more than {allowance} minutes behind); set this machine's clock right"
    )]
    NotYetValid {
        /// The suite asked for.
        suite: String,
        /// Where the index came from.
        url: String,
        /// Its `Date`.
        date: String,
        /// The time of the check.
        now: String,
        /// The allowance, in minutes.
        allowance: i64,
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
    /// When the archive made this index (`Date`).
    pub date: DateTime<Utc>,
    /// Until when the archive vouches for it (`Valid-Until`), if it says.
    pub valid_until: Option<DateTime<Utc>>,
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
        let when = |field: &'static str| -> Result<Option<DateTime<Utc>>, Error> {
            let Some(value) = stanza.get(field) else {
                return Ok(None);
            };
            date::parse(value).map(Some).ok_or_else(|| Error::BadDate {
                suite: wanted.to_string(),
                field,
                value: value.to_string(),
            })
        };
        let date = when("Date")?.ok_or_else(|| missing("Date"))?;
        let valid_until = when("Valid-Until")?;
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
            date,
            valid_until,
            files,
        })
    }

    /// Checks, as apt does, that the index is valid at `now`: its `Valid-Until` (if any) has not
    /// passed and its `Date` is not further ahead than [`date::FUTURE_ALLOWANCE`]. `suite` and
    /// `url` name it in errors.
    pub fn check_valid_at(&self, suite: &str, url: &str, now: DateTime<Utc>) -> Result<(), Error> {
        if let Some(valid_until) = self.valid_until {
            if valid_until <= now {
                return Err(Error::Expired {
                    suite: suite.to_string(),
                    url: url.to_string(),
                    date: date::format(&self.date),
                    valid_until: date::format(&valid_until),
                    now: date::format(&now),
                });
            }
        }
        if self.date > now + date::FUTURE_ALLOWANCE {
            return Err(Error::NotYetValid {
                suite: suite.to_string(),
                url: url.to_string(),
                date: date::format(&self.date),
                now: date::format(&now),
                allowance: date::FUTURE_ALLOWANCE.num_minutes(),
            });
        }
        Ok(())
    }

    /// The digest of `path` (relative to `dists/<suite>/`), if listed.
    pub fn file(&self, path: &str) -> Option<&IndexFile> {
        self.files.get(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "Origin: Debian\nSuite: oldstable\nCodename: bookworm\n\
        Date: Sat, 10 Jan 2026 09:56:44 UTC\nAcquire-By-Hash: yes\n\
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
    fn date_is_required_and_dates_must_parse() {
        let d = Release::parse(TEXT, "bookworm").unwrap();
        assert_eq!(date::format(&d.date), "Sat, 10 Jan 2026 09:56:44 UTC");
        assert_eq!(d.valid_until, None);
        let none = TEXT.replace("Date: Sat, 10 Jan 2026 09:56:44 UTC\n", "");
        let err = Release::parse(&none, "bookworm").unwrap_err();
        assert!(
            matches!(err, Error::MissingField { field: "Date", .. }),
            "{err}"
        );
        let bad = TEXT.replace("Sat, 10 Jan 2026 09:56:44 UTC", "soon");
        let err = Release::parse(&bad, "bookworm").unwrap_err().to_string();
        assert!(
            err.contains("bookworm") && err.contains("Date") && err.contains("\"soon\""),
            "{err}"
        );
        let bad = TEXT.replace("Acquire-By-Hash", "Valid-Until: never\nAcquire-By-Hash");
        let err = Release::parse(&bad, "bookworm").unwrap_err();
        assert!(
            matches!(
                err,
                Error::BadDate {
                    field: "Valid-Until",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn an_expired_or_future_index_is_refused_naming_suite_url_and_dates() {
        let text = TEXT.replace(
            "Acquire-By-Hash",
            "Valid-Until: Sat, 17 Jan 2026 09:56:44 UTC\nAcquire-By-Hash",
        );
        let r = Release::parse(&text, "bookworm").unwrap();
        let at = |s| date::parse(s).unwrap();
        let url = "http://m/debian/dists/bookworm/InRelease";
        r.check_valid_at("bookworm", url, at("Sat, 10 Jan 2026 09:56:44 UTC"))
            .unwrap();
        r.check_valid_at("bookworm", url, at("Sat, 17 Jan 2026 09:56:43 UTC"))
            .unwrap();
        let err = r
            .check_valid_at("bookworm", url, at("Sat, 17 Jan 2026 09:56:44 UTC"))
            .unwrap_err();
        assert!(matches!(err, Error::Expired { .. }), "{err}");
        let msg = err.to_string();
        for part in [
            url,
            "bookworm",
            "Sat, 17 Jan 2026 09:56:44 UTC",
            "Sat, 10 Jan 2026 09:56:44 UTC",
        ] {
            assert!(msg.contains(part), "{part} missing from {msg}");
        }

        // Within the allowance a Date ahead of the clock is accepted; beyond it, refused.
        r.check_valid_at("bookworm", url, at("Sat, 10 Jan 2026 09:51:44 UTC"))
            .unwrap();
        let err = r
            .check_valid_at("bookworm", url, at("Sat, 10 Jan 2026 09:51:43 UTC"))
            .unwrap_err();
        assert!(matches!(err, Error::NotYetValid { .. }), "{err}");
        let msg = err.to_string();
        for part in [
            url,
            "bookworm",
            "Sat, 10 Jan 2026 09:56:44 UTC",
            "Sat, 10 Jan 2026 09:51:43 UTC",
        ] {
            assert!(msg.contains(part), "{part} missing from {msg}");
        }
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
        assert!(
            r.valid_until.is_none(),
            "bookworm main carries no Valid-Until"
        );
        r.check_valid_at("bookworm", "InRelease", r.date).unwrap();
        assert!(r.file("main/binary-arm64/Packages.xz").is_some());
        assert!(r
            .file("non-free-firmware/binary-arm64/Packages.xz")
            .is_some());
    }
}
