//! Property tests of unpacking a layer: a tar of hostile entries (absolute paths, `..`, links
//! out, names through links, any bytes as names and contents) or any bytes at all is unpacked or
//! refused without a panic, and nothing appears outside the layer's directory. Needs root, like
//! unpacking itself. Cases: proptest's 256, `PROPTEST_CASES` for more (`scripts/fuzz`).

use proptest::prelude::*;

use super::budget::Budget;
use super::unpack_layer;
use crate::digest::Digest;
use crate::model::Compression;

/// One entry of a hostile tar.
#[derive(Debug, Clone)]
enum Entry {
    File(String, Vec<u8>),
    Dir(String),
    Symlink(String, String),
    Hardlink(String, String),
}

fn path() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        Just("..".to_string()),
        Just(".".to_string()),
        Just("".to_string()),
        Just(".wh..wh..opq".to_string()),
        "[a-c]{1,3}",
        ".wh.[a-c]{1,2}",
        "\\PC{1,8}",
    ];
    (any::<bool>(), prop::collection::vec(part, 1..4)).prop_map(|(absolute, parts)| {
        format!("{}{}", if absolute { "/" } else { "" }, parts.join("/"))
    })
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        (path(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(p, b)| Entry::File(p, b)),
        path().prop_map(Entry::Dir),
        (path(), path()).prop_map(|(p, t)| Entry::Symlink(p, t)),
        (path(), path()).prop_map(|(p, t)| Entry::Hardlink(p, t)),
    ]
}

/// The tar of `entries`, with names written raw into the headers (no checks of the tar crate's).
fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut out = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        let (name, kind, data, link): (&str, _, &[u8], Option<&str>) = match e {
            Entry::File(p, b) => (p, tar::EntryType::Regular, b, None),
            Entry::Dir(p) => (p, tar::EntryType::Directory, &[], None),
            Entry::Symlink(p, t) => (p, tar::EntryType::Symlink, &[], Some(t)),
            Entry::Hardlink(p, t) => (p, tar::EntryType::Link, &[], Some(t)),
        };
        let raw = &mut h.as_old_mut().name;
        let n = name.len().min(raw.len());
        raw[..n].copy_from_slice(&name.as_bytes()[..n]);
        if let Some(t) = link {
            let raw = &mut h.as_old_mut().linkname;
            let n = t.len().min(raw.len());
            raw[..n].copy_from_slice(&t.as_bytes()[..n]);
        }
        h.set_entry_type(kind);
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        h.set_cksum();
        let _ = out.append(&h, data);
    }
    out.into_inner().unwrap_or_default()
}

/// Unpacks `tar` into `<parent>/layer` and checks that `parent` holds nothing else.
fn unpack_confined(tar: &[u8]) -> Result<(), TestCaseError> {
    let parent = tempfile::tempdir().expect("temp dir");
    let dest = parent.path().join("layer");
    std::fs::create_dir(&dest).expect("layer dir");
    let digest = Digest::of(tar);
    let mut budget = Budget::new(parent.path(), crate::StoreLimits::default()).expect("statvfs");
    let blob = std::io::Cursor::new(tar);
    let _ = unpack_layer(
        blob,
        Compression::None,
        &digest,
        &digest,
        &dest,
        &mut budget,
    );
    let outside: Vec<_> = std::fs::read_dir(parent.path())
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .filter(|n| n != "layer")
        .collect();
    prop_assert!(
        outside.is_empty(),
        "written outside the layer: {:?}",
        outside
    );
    Ok(())
}

proptest! {
    #[test]
    fn hostile_entries_stay_inside_the_layer(entries in prop::collection::vec(entry(), 1..8)) {
        unpack_confined(&tar_of(&entries))?;
    }

    #[test]
    fn any_bytes_are_unpacked_or_refused_without_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        unpack_confined(&bytes)?;
    }
}
