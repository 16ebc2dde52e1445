//! Properties of reading a lock file: any text is read or refused without a panic, and a pin
//! whose `sha256` is not 64 lowercase hex digits (the cache names a directory by it) is always
//! refused, naming its line and package.

use proptest::prelude::*;

use super::*;

/// The rule, written out independently of the code under test.
fn is_digest(text: &str) -> bool {
    text.len() == 64
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

/// A TOML basic string holding `text` exactly.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// Values that are digests, near misses, and anything at all.
fn digest_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{64}",
        "[0-9a-fA-F]{60,68}",
        "[0-9a-f]{63}[g-zA-Z/. \u{e9}]",
        "[0-9a-f]{0,70}",
        any::<String>(),
    ]
}

/// Lines between keys that change no value: blank lines and comments.
fn filler() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(prop_oneof![Just(String::new()), "# [a-z =\"]{0,20}"], 0..3)
}

/// One `[[package]]` with `sha256`, and filler after each of its lines.
#[derive(Debug, Clone)]
struct Pin {
    name: String,
    sha256: String,
    filler: Vec<Vec<String>>,
}

fn pin() -> impl Strategy<Value = Pin> {
    (
        "[a-z0-9.+-]{1,20}",
        digest_like(),
        proptest::collection::vec(filler(), 9),
    )
        .prop_map(|(name, sha256, filler)| Pin {
            name,
            sha256,
            filler,
        })
}

/// The lock file text of `pins`, and the 1-based line of each one's `sha256`.
fn lock_text(pins: &[Pin]) -> (String, Vec<usize>) {
    let mut lines = vec!["version = 1".to_string()];
    let mut sha_lines = Vec::new();
    for pin in pins {
        let keys = [
            "[[package]]".to_string(),
            "suite = \"bookworm\"".into(),
            "component = \"main\"".into(),
            format!("requested = {}", quoted(&pin.name)),
            format!("name = {}", quoted(&pin.name)),
            "version = \"1.0-1\"".into(),
            format!("filename = \"pool/main/x/{}.deb\"", pin.name),
            format!("sha256 = {}", quoted(&pin.sha256)),
            "size = 42".into(),
        ];
        for (key, filler) in keys.into_iter().zip(&pin.filler) {
            if key.starts_with("sha256") {
                sha_lines.push(lines.len() + 1);
            }
            lines.push(key);
            lines.extend(filler.iter().cloned());
        }
    }
    (lines.join("\n") + "\n", sha_lines)
}

fn load_text(text: &str) -> Result<LockFile, Error> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("baton.lock");
    std::fs::write(&path, text).expect("write");
    LockFile::load(&path)
}

proptest! {
    /// Any text, and any lock-like text with a line changed, reads or is refused: no panic,
    /// and whatever reads holds only digests.
    #[test]
    fn any_text_is_read_or_refused_without_panic(
        text in prop_oneof![any::<String>(), "[a-z0-9\\[\\]=\" \n.#-]{0,300}"],
        pins in proptest::collection::vec(pin(), 0..3),
        cut in any::<prop::sample::Index>(),
        replacement in any::<String>(),
    ) {
        for text in [text, {
            let (full, _) = lock_text(&pins);
            let mut lines: Vec<&str> = full.lines().collect();
            let at = cut.index(lines.len());
            lines[at] = &replacement;
            lines.join("\n")
        }] {
            if let Ok(lock) = load_text(&text) {
                for entry in lock.entries() {
                    prop_assert!(is_digest(&entry.sha256), "{:?} read", entry.sha256);
                }
            }
        }
    }

    /// A lock file whose pins all have digests reads; with a pin whose `sha256` is not one, it
    /// is refused naming the first such pin's line, package and value.
    #[test]
    fn a_pin_without_a_digest_is_refused_naming_its_line(
        pins in proptest::collection::vec(pin(), 1..5),
    ) {
        let (text, sha_lines) = lock_text(&pins);
        let first_bad = pins.iter().position(|p| !is_digest(&p.sha256));
        match (load_text(&text), first_bad) {
            (Ok(lock), None) => prop_assert_eq!(lock.entries().len(), pins.len()),
            (Err(Error::Digest { line, package, value, .. }), Some(bad)) => {
                prop_assert_eq!(line, sha_lines[bad]);
                prop_assert_eq!(&package, &pins[bad].name);
                prop_assert_eq!(&value, &pins[bad].sha256);
                let shown = load_text(&text).err().map(|e| e.to_string()).unwrap_or_default();
                let wanted = format!("line {line}:");
                prop_assert!(shown.contains(&wanted), "{}", shown);
            }
            (other, bad) => prop_assert!(false, "{:?} with bad pin {:?}\n{}", other.err(), bad, text),
        }
    }
}
