//! The archive client refuses stale, future and rolled-back `InRelease` files and records the
//! accepted `Date` in the lock file and the cache.

use chrono::{DateTime, Duration, Utc};
use pgp::composed::SignedPublicKey;

use super::tests::{fixture, kernel_ref, options, Fixture, Server, INRELEASE};
use super::*;
use crate::debian::signature::tests::test_key_expiring;

/// Fetches the kernel with a fresh client that resolves anew (`--update`).
fn resolve(
    server: &Server,
    fx: &Fixture,
    cache: &std::path::Path,
    lock: &mut LockFile,
) -> Result<CachedDeb, Error> {
    let mut opts = options(server, fx, cache);
    opts.update = true;
    Archive::new(opts).unwrap().fetch(&kernel_ref(), lock)
}

/// A server for `fx` whose `InRelease` is dated `date`.
fn serving(fx: &Fixture, date: DateTime<Utc>, valid_until: Option<DateTime<Utc>>) -> Server {
    let server = Server::start(fx.files.clone());
    server.set(INRELEASE, fx.inrelease(&fx.key, date, valid_until));
    server
}

fn assert_mentions(err: &Error, parts: &[&str]) {
    let msg = err.to_string();
    for part in parts {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }
}

#[test]
fn an_index_past_its_valid_until_is_refused() {
    let fx = fixture(false);
    let now = date::now();
    let (made, until) = (now - Duration::days(8), now - Duration::days(1));
    let server = serving(&fx, made, Some(until));
    let tmp = tempfile::tempdir().unwrap();
    let err = resolve(&server, &fx, tmp.path(), &mut LockFile::new()).unwrap_err();
    assert!(
        matches!(&err, Error::Release(e) if matches!(**e, release::Error::Expired { .. })),
        "{err}"
    );
    assert_mentions(
        &err,
        &[
            &server.url(),
            "bookworm",
            &date::format(&made),
            &date::format(&until),
        ],
    );
    assert_eq!(
        Cache::new(tmp.path()).release_date("bookworm").unwrap(),
        None
    );

    // Still valid for a day: accepted.
    server.set(
        INRELEASE,
        fx.inrelease(&fx.key, made, Some(now + Duration::days(1))),
    );
    resolve(&server, &fx, tmp.path(), &mut LockFile::new()).unwrap();
}

#[test]
fn an_index_dated_in_the_future_is_refused() {
    let fx = fixture(false);
    let ahead = date::now() + Duration::hours(1);
    let server = serving(&fx, ahead, None);
    let tmp = tempfile::tempdir().unwrap();
    let err = resolve(&server, &fx, tmp.path(), &mut LockFile::new()).unwrap_err();
    assert!(
        matches!(&err, Error::Release(e) if matches!(**e, release::Error::NotYetValid { .. })),
        "{err}"
    );
    assert_mentions(
        &err,
        &[
            &server.url(),
            "bookworm",
            &date::format(&ahead),
            "not valid yet",
        ],
    );
}

#[test]
fn an_index_older_than_the_lock_records_is_refused() {
    let fx = fixture(false);
    let now = date::now();
    let (older, recorded) = (now - Duration::hours(3), now - Duration::hours(2));
    let server = serving(&fx, older, None);
    let tmp = tempfile::tempdir().unwrap();
    let mut lock = LockFile::new();
    lock.record_release_date("bookworm", recorded);
    let err = resolve(&server, &fx, tmp.path(), &mut lock).unwrap_err();
    assert!(matches!(err, Error::Rollback { .. }), "{err}");
    assert_mentions(
        &err,
        &[
            &server.url(),
            "bookworm",
            &date::format(&older),
            &date::format(&recorded),
            "lock file",
            "[[release]] entry of suite \"bookworm\"",
        ],
    );
    assert_eq!(
        lock.get("bookworm", "main", "linux-image-arm64"),
        None,
        "nothing pinned"
    );
}

#[test]
fn an_index_older_than_the_cache_records_is_refused_until_the_record_is_deleted() {
    let fx = fixture(false);
    let now = date::now();
    let (older, newer) = (now - Duration::hours(3), now - Duration::hours(2));
    let server = serving(&fx, newer, None);
    let tmp = tempfile::tempdir().unwrap();
    resolve(&server, &fx, tmp.path(), &mut LockFile::new()).unwrap();

    // A build with no lock file, against a mirror replaying the older index.
    server.set(INRELEASE, fx.inrelease(&fx.key, older, None));
    let err = resolve(&server, &fx, tmp.path(), &mut LockFile::new()).unwrap_err();
    assert!(matches!(err, Error::Rollback { .. }), "{err}");
    let record = Cache::new(tmp.path()).release_date_path("bookworm");
    let record = record.display().to_string();
    assert_mentions(
        &err,
        &[
            &date::format(&older),
            &date::format(&newer),
            "download cache",
            &format!("delete {record}"),
        ],
    );

    // The recovery the message names works.
    std::fs::remove_file(&record).unwrap();
    resolve(&server, &fx, tmp.path(), &mut LockFile::new()).unwrap();
}

#[test]
fn the_same_index_again_is_accepted_and_a_newer_one_is_recorded() {
    let fx = fixture(false);
    let now = date::now();
    let (first, second) = (now - Duration::hours(3), now - Duration::hours(2));
    let server = serving(&fx, first, None);
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::new(tmp.path());
    let mut lock = LockFile::new();
    let secs = |d: DateTime<Utc>| d.timestamp();

    resolve(&server, &fx, tmp.path(), &mut lock).unwrap();
    assert_eq!(lock.release_date("bookworm").map(secs), Some(secs(first)));
    assert_eq!(
        cache.release_date("bookworm").unwrap().map(secs),
        Some(secs(first))
    );

    // Same Date: the same index, fine.
    resolve(&server, &fx, tmp.path(), &mut lock).unwrap();

    server.set(INRELEASE, fx.inrelease(&fx.key, second, None));
    resolve(&server, &fx, tmp.path(), &mut lock).unwrap();
    assert_eq!(lock.release_date("bookworm").map(secs), Some(secs(second)));
    assert_eq!(
        cache.release_date("bookworm").unwrap().map(secs),
        Some(secs(second))
    );
}

#[test]
fn a_lock_file_without_release_dates_is_accepted_and_gains_one() {
    let fx = fixture(false);
    let server = serving(&fx, date::now() - Duration::hours(1), None);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("baton.lock");
    let sha = "ab".repeat(32);
    std::fs::write(
        &path,
        format!(
            "version = 1\n\n[[package]]\nsuite = \"bookworm\"\ncomponent = \"main\"\n\
             requested = \"linux-image-arm64\"\nname = \"linux-image-6.1.0-8-arm64\"\n\
             version = \"6.1.1-1\"\nfilename = \"pool/x.deb\"\nsha256 = \"{sha}\"\nsize = 3\n"
        ),
    )
    .unwrap();
    let mut lock = LockFile::load(&path).unwrap();
    assert_eq!(lock.release_date("bookworm"), None);
    resolve(&server, &fx, &tmp.path().join("cache"), &mut lock).unwrap();
    lock.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("[[release]]\nsuite = \"bookworm\"\ndate = "),
        "{text}"
    );
    assert!(LockFile::load(&path)
        .unwrap()
        .release_date("bookworm")
        .is_some());
}

#[test]
fn an_index_signed_by_an_expired_key_is_refused() {
    let fx = fixture(false);
    let day = Duration::days(1);
    let expired = test_key_expiring(date::now() - day * 10, day);
    let server = Server::start(fx.files.clone());
    server.set(
        INRELEASE,
        fx.inrelease(&expired, date::now() - Duration::hours(1), None),
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(&server, &fx, tmp.path());
    opts.keyring = Some(Keyring::from_keys(vec![SignedPublicKey::from(expired)]));
    let err = Archive::new(opts)
        .unwrap()
        .fetch(&kernel_ref(), &mut LockFile::new())
        .unwrap_err();
    assert!(
        matches!(err, Error::Signature(signature::Error::Unusable { .. })),
        "{err}"
    );
    assert_mentions(&err, &["/dists/bookworm/InRelease", "expired at"]);
}
