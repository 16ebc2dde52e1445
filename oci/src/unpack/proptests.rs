//! Property tests of unpacking a layer: a tar of hostile entries (absolute paths, `..`, links
//! out, names through links, any bytes as names and contents) or any bytes at all is unpacked or
//! refused without a panic, and nothing appears outside the layer's directory; tars of extension
//! headers of any size, intact or with bytes changed, are read through the header guard as
//! without it up to where it refuses, and the tar crate never keeps one past its bound. Needs
//! root, like unpacking itself. Cases: proptest's 256, `PROPTEST_CASES` for more (`scripts/fuzz`).

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

/// One header of a tar read through the header guard, and the contents that follow it.
#[derive(Debug, Clone)]
struct Raw {
    kind: u8,
    /// GNU, ustar or (neither) old format.
    format: u8,
    size: u64,
    /// Extension blocks after a GNU sparse header.
    extensions: u8,
}

fn raw() -> impl Strategy<Value = Raw> {
    use super::headers::{MAX_LONG_NAME, MAX_PAX};
    let kind = prop_oneof![
        4 => prop::sample::select(b"LKxgS0125".to_vec()),
        1 => any::<u8>(),
    ];
    let size = prop_oneof![
        8 => 0..1500u64,
        2 => (MAX_LONG_NAME - 2)..(MAX_LONG_NAME + 2),
        1 => (MAX_PAX - 1)..(MAX_PAX + 2),
        1 => (1u64 << 33)..(1u64 << 62),
    ];
    (kind, 0..3u8, size, 0..4u8).prop_map(|(kind, format, size, extensions)| Raw {
        kind,
        format,
        size,
        extensions,
    })
}

/// The tar of `raws`, each with as many contents as it declares up to a few MiB (PAX headers hold
/// 8-byte records, the rest `a`s), then the end of the archive.
fn raw_tar(raws: &[Raw]) -> Vec<u8> {
    let mut tar = Vec::new();
    for r in raws {
        let mut h = match r.format {
            0 => tar::Header::new_gnu(),
            1 => tar::Header::new_ustar(),
            _ => tar::Header::new_old(),
        };
        h.as_old_mut().name[..4].copy_from_slice(b"name");
        h.set_entry_type(tar::EntryType::new(r.kind));
        h.set_mode(0o644);
        h.set_size(r.size);
        if let Some(gnu) = h.as_gnu_mut() {
            gnu.set_is_extended(r.extensions > 0);
        }
        h.set_cksum();
        tar.extend(h.as_bytes());
        if r.kind == b'S' && r.format == 0 {
            for n in 1..=r.extensions {
                let mut ext = tar::GnuExtSparseHeader::new();
                ext.set_is_extended(n < r.extensions);
                tar.extend(ext.as_bytes());
            }
        }
        let present = r.size.min(3 << 20) as usize;
        let filler: &[u8] = if r.kind == b'x' { b"8 k=aaa\n" } else { b"a" };
        tar.extend(filler.iter().cycle().take(present));
        tar.resize(tar.len().next_multiple_of(512), 0);
    }
    tar.resize(tar.len() + 1024, 0);
    tar
}

/// Whether a header in `raws` declares more than the guard allows.
fn oversized(raws: &[Raw]) -> bool {
    use super::headers::{MAX_LONG_NAME, MAX_PAX};
    raws.iter().any(|r| match r.kind {
        b'L' | b'K' => r.size > MAX_LONG_NAME,
        b'x' | b'g' => r.size > MAX_PAX,
        _ => false,
    })
}

/// What the tar crate reads of `tar` through the guard, checked against what it reads without: the
/// same entries up to where the guard refuses, none with a name or link past the bound. Returns
/// how many entries, the most PAX records one had, and the error the reading stopped at.
fn guarded_like_bare(tar: &[u8]) -> Result<(usize, u64, Option<String>), TestCaseError> {
    use super::headers::{HeaderGuard, MAX_LONG_NAME};
    use super::headers_tests::read_all;
    let (guarded, guarded_error) = read_all(HeaderGuard::new(tar));
    let (bare, _) = read_all(tar);
    for seen in &guarded {
        prop_assert!(seen.path.len() as u64 <= MAX_LONG_NAME);
        prop_assert!(seen.link.as_ref().map_or(0, Vec::len) as u64 <= MAX_LONG_NAME);
    }
    prop_assert!(guarded.len() <= bare.len());
    prop_assert_eq!(&guarded[..], &bare[..guarded.len()]);
    let records = guarded
        .iter()
        .map(|s| s.pax.len() as u64)
        .max()
        .unwrap_or(0);
    Ok((guarded.len(), records, guarded_error.map(|e| e.to_string())))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_tar_crate_buffers_no_extension_header_past_its_bound(raws in prop::collection::vec(raw(), 1..6)) {
        let tar = raw_tar(&raws);
        let (guarded, records, error) = guarded_like_bare(&tar)?;
        // PAX headers hold 8-byte records: no more than fit the bound were kept.
        prop_assert!(records <= super::headers::MAX_PAX / 8);
        if !oversized(&raws) {
            // Nothing to refuse: the guard is invisible.
            let (bare, bare_error) = super::headers_tests::read_all(&tar[..]);
            prop_assert_eq!(guarded, bare.len());
            prop_assert_eq!(error, bare_error.map(|e| e.to_string()));
        }
        unpack_confined(&tar)?;
    }

    #[test]
    fn a_tar_with_bytes_changed_anywhere_is_guarded_without_a_panic(
        raws in prop::collection::vec(raw(), 1..6),
        changes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut tar = raw_tar(&raws);
        for (at, byte) in changes {
            let at = at.index(tar.len());
            tar[at] = byte;
        }
        guarded_like_bare(&tar)?;
        unpack_confined(&tar)?;
    }
}
