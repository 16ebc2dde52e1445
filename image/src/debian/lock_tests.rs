//! Lock file tests: round trips, digests, release dates, versions.

use super::*;

fn entry(requested: &str, version: &str) -> LockEntry {
    LockEntry {
        suite: "bookworm".into(),
        component: "main".into(),
        requested: requested.into(),
        name: format!("{requested}-real"),
        version: version.into(),
        filename: format!("pool/main/x/{requested}_{version}_arm64.deb"),
        sha256: "ab".repeat(32),
        size: 42,
    }
}

#[test]
fn round_trips_sorted_and_replaces_pins() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("baton.lock");
    let mut lock = LockFile::load_or_new(&path).unwrap();
    lock.set(entry("zz", "1"));
    lock.set(entry("aa", "1"));
    lock.set(entry("zz", "2"));
    assert_eq!(lock.entries().len(), 2);
    lock.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.find("requested = \"aa\"") < text.find("requested = \"zz\""),
        "{text}"
    );
    let back = LockFile::load(&path).unwrap();
    assert_eq!(back.get("bookworm", "main", "zz").unwrap().version, "2");
    assert_eq!(back.get("trixie", "main", "zz"), None);
    // Saving again gives the same bytes.
    back.save(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn a_sha256_that_is_not_64_lowercase_hex_digits_is_refused_with_file_line_and_package() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("baton.lock");
    let good = "ab".repeat(32);
    for bad in [
        "../../etc/x".to_string(),
        good.to_uppercase(),
        good[..62].to_string(),
        format!("{good}a"),
        String::new(),
    ] {
        let mut lock = LockFile::new();
        lock.set(entry("aa", "1"));
        lock.set(LockEntry {
            sha256: bad.clone(),
            ..entry("zz", "2")
        });
        lock.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        // Saved sorted: "zz" is the second package, its sha256 the last.
        let lines: Vec<&str> = text.lines().collect();
        let line = lines.iter().rposition(|l| l.starts_with("sha256")).unwrap() + 1;
        assert!(text
            .lines()
            .nth(line - 1)
            .unwrap()
            .contains(&format!("{bad:?}")));
        let err = LockFile::load(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "lock file {}, line {line}: package \"zz-real\": sha256 {bad:?} is not 64 lowercase hex digits",
                path.display()
            )
        );
    }
    let mut lock = LockFile::new();
    lock.set(entry("aa", "1"));
    lock.save(&path).unwrap();
    assert!(LockFile::load(&path).is_ok());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("--update to pick up") && !text.contains("--update-lock"));
}

#[test]
fn a_lock_without_release_dates_is_read_and_gains_them() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("baton.lock");
    let mut old = LockFile::new();
    old.set(entry("aa", "1"));
    old.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("[[release]]"), "{text}");

    let mut lock = LockFile::load(&path).unwrap();
    assert_eq!(lock.release_date("bookworm"), None);
    let d = |s| date::parse(s).unwrap();
    lock.record_release_date("trixie", d("Sun, 11 Jan 2026 08:00:00 UTC"));
    lock.record_release_date("bookworm", d("Sat, 10 Jan 2026 09:56:44 UTC"));
    // An older date never lowers the record.
    lock.record_release_date("bookworm", d("Fri, 09 Jan 2026 09:56:44 UTC"));
    lock.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(
            "[[release]]\nsuite = \"bookworm\"\ndate = \"Sat, 10 Jan 2026 09:56:44 UTC\""
        ),
        "{text}"
    );
    assert!(
        text.find("\"bookworm\"") < text.find("\"trixie\""),
        "{text}"
    );
    let back = LockFile::load(&path).unwrap();
    assert_eq!(
        back.release_date("bookworm"),
        Some(d("Sat, 10 Jan 2026 09:56:44 UTC"))
    );
    assert_eq!(back.entries(), lock.entries());

    std::fs::write(&path, text.replace("Sat, 10 Jan 2026", "someday")).unwrap();
    let err = LockFile::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("baton.lock") && err.contains("bookworm") && err.contains("someday"),
        "{err}"
    );
}

#[test]
fn rejects_unknown_keys_and_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("baton.lock");
    std::fs::write(
        &path,
        "version = 1\n[[package]]\nsuite = \"x\"\nbogus = 1\n",
    )
    .unwrap();
    let err = LockFile::load(&path).unwrap_err().to_string();
    assert!(err.contains("baton.lock") && err.contains("bogus"), "{err}");
    std::fs::write(&path, "version = 7\n").unwrap();
    assert!(matches!(
        LockFile::load(&path),
        Err(Error::Version { version: 7, .. })
    ));
    assert!(matches!(
        LockFile::load(&tmp.path().join("missing.lock")),
        Err(Error::Io { .. })
    ));
}

#[test]
fn the_bad_sha256_s_line_is_named_in_any_layout_toml_allows() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("baton.lock");
    let good = "ab".repeat(32);
    let fields = |name: &str, sha: &str| {
        format!(
            "suite = \"bookworm\", component = \"main\", requested = \"{name}\", name = \"{name}\", \
             version = \"1\", filename = \"pool/{name}.deb\", sha256 = \"{sha}\", size = 1"
        )
    };
    // A multi-line string whose lines start with `sha256`, above the pin's own key.
    let tables = String::from(
        "version = 1\n\n[[package]]\nsuite = \"bookworm\"\ncomponent = \"main\"\nrequested = \"a\"\n\
         name = \"a\"\nversion = \"1\"\nfilename = \"\"\"pool/a.deb\nsha256 = not this line\n\"\"\"\n\
         sha256 = \"BAD\"\nsize = 1\n"
    );
    // One inline array of packages; the bad pin is the second, on the array's third line.
    let inline = format!(
        "version = 1\npackage = [\n  {{ {} }},\n  {{ {} }},\n]\n",
        fields("a", &good),
        fields("b", "BAD")
    );
    for (text, line, package) in [(tables, 12, "a"), (inline, 4, "b")] {
        std::fs::write(&path, &text).unwrap();
        let err = LockFile::load(&path).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "lock file {}, line {line}: package \"{package}\": sha256 \"BAD\" is not 64 lowercase hex digits",
                path.display()
            ),
            "{text}"
        );
    }
}
