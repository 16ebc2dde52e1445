//! Refusing a signed index older than one already accepted for its suite: a mirror, or someone
//! between it and the builder, replaying an old but still validly signed `InRelease` to hide
//! security updates. The newest accepted `Date` per suite is recorded in the lock file and in
//! the download cache (`release_dates.rs`); an equal `Date` is the same index and is fine.

use chrono::{DateTime, Utc};

use super::cache::{self, Cache};
use super::date;
use super::release::Release;

/// An index older than the one recorded.
#[derive(Debug, thiserror::Error)]
#[error(
    "{url}: the signed index of suite {suite} is dated {date}, older than the index dated \
     {recorded} already accepted ({recorded_in}); refusing it, since an old index can hide \
     security updates. If the mirror really went back (say, you switched to one that lags \
     behind), wait for it to catch up or use the mirror you used before; to accept it anyway, \
     {recover}"
)]
pub struct Rollback {
    /// The suite.
    pub suite: String,
    /// Where the index came from.
    pub url: String,
    /// Its `Date`.
    pub date: String,
    /// The recorded `Date`.
    pub recorded: String,
    /// Where it is recorded.
    pub recorded_in: String,
    /// How to remove the record.
    pub recover: String,
}

/// Errors from [`check`].
#[derive(Debug)]
pub(super) enum Error {
    /// The cache's record could not be read.
    Cache(cache::Error),
    /// The index is older than a recorded one.
    Older(Box<Rollback>),
}

/// Refuses `release` (of `suite`, from `url`) if it is older than `lock_date` (the lock file's
/// record) or the cache's record.
pub(super) fn check(
    cache: &Cache,
    lock_date: Option<&DateTime<Utc>>,
    suite: &str,
    url: &str,
    release: &Release,
) -> Result<(), Error> {
    let record = cache.release_date_path(suite);
    let older = |recorded: &DateTime<Utc>, recorded_in: String, recover: String| {
        Error::Older(Box::new(Rollback {
            suite: suite.to_string(),
            url: url.to_string(),
            date: date::format(&release.date),
            recorded: date::format(recorded),
            recorded_in,
            recover,
        }))
    };
    if let Some(recorded) = lock_date.filter(|d| release.date < **d) {
        return Err(older(
            recorded,
            "recorded in the lock file".to_string(),
            format!(
                "delete the [[release]] entry of suite {suite:?} from the lock file (and the \
                 cache's record {}, if it holds the newer date too)",
                record.display()
            ),
        ));
    }
    let cached = cache.release_date(suite).map_err(Error::Cache)?;
    if let Some(recorded) = cached.filter(|d| release.date < *d) {
        return Err(older(
            &recorded,
            format!("recorded in the download cache, {}", record.display()),
            format!("delete {}", record.display()),
        ));
    }
    Ok(())
}
