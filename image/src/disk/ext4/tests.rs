//! mke2fs driven for reproducible bytes, judged by e2fsck, dumpe2fs and debugfs.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::*;
use crate::disk::host_tools::{arg, check};

const MIB: u64 = 1 << 20;

fn options(populate_from: Option<&Path>) -> Ext4Options {
    Ext4Options {
        size: 64 * MIB,
        label: "baton-data".to_owned(),
        uuid: *b"\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67\x89\xab\xcd\xef",
        hash_seed: [7; 16],
        mtime: 1_700_000_000,
        populate_from: populate_from.map(Path::to_path_buf),
    }
}

/// A small tree whose files carry the given modification time and permissions as a umask of
/// `umask` would leave them.
fn source_tree(dir: &Path, mtime: u64, umask: u32) {
    fs::create_dir_all(dir.join("images/blobs")).expect("mkdir");
    fs::write(dir.join("images/index.json"), b"{}\n").expect("write");
    fs::write(dir.join("images/blobs/layer"), vec![0x5a; 70_000]).expect("write");
    fs::write(dir.join("file with space"), b"x").expect("write");
    symlink("images/index.json", dir.join("link")).expect("symlink");
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(mtime);
    for p in [
        "images/index.json",
        "images/blobs/layer",
        "images",
        "file with space",
    ] {
        fs::File::open(dir.join(p))
            .and_then(|f| f.set_modified(t))
            .expect("set mtime");
    }
    fs::write(dir.join("tool"), b"#!/bin/sh\n").expect("write");
    for (p, mode) in [
        ("images", 0o777),
        ("file with space", 0o666),
        ("tool", 0o777),
    ] {
        fs::set_permissions(dir.join(p), fs::Permissions::from_mode(mode & !umask)).expect("chmod");
    }
}

fn e2fsck(device: &str) {
    check("e2fsck", &["-fn", device]);
}

#[test]
fn empty_file_system_is_reproducible_and_clean() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = dir.path().join("a.img");
    let b = dir.path().join("b.img");
    make_ext4(&a, 0, &options(None)).expect("mke2fs a");
    make_ext4(&b, 0, &options(None)).expect("mke2fs b");
    assert_eq!(fs::metadata(&a).expect("stat").len(), 64 * MIB);
    assert!(fs::read(&a).expect("a") == fs::read(&b).expect("b"));
    e2fsck(arg(&a));

    let header = check("dumpe2fs", &["-h", arg(&a)]);
    let field = |name: &str| {
        header
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} in dumpe2fs output:\n{header}"))
            .to_owned()
    };
    assert_eq!(field("Filesystem volume name:"), "baton-data");
    assert_eq!(
        field("Filesystem UUID:"),
        "01234567-89ab-cdef-0123-456789abcdef"
    );
    assert_eq!(
        field("Directory Hash Seed:"),
        "07070707-0707-0707-0707-070707070707"
    );
    assert_eq!(field("Block size:"), "4096");
    let features = field("Filesystem features:");
    for f in [
        "has_journal",
        "extent",
        "64bit",
        "flex_bg",
        "metadata_csum",
        "resize_inode",
    ] {
        assert!(
            features.split(' ').any(|x| x == f),
            "{f} missing: {features}"
        );
    }
    for f in ["orphan_file", "metadata_csum_seed", "inline_data", "verity"] {
        assert!(
            !features.split(' ').any(|x| x == f),
            "{f} present: {features}"
        );
    }
    assert_ne!(field("Reserved GDT blocks:"), "0");
    assert_eq!(field("Filesystem created:"), "Tue Nov 14 22:13:20 2023");
}

#[test]
fn populated_file_system_ignores_source_timestamps() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (src1, src2) = (dir.path().join("src1"), dir.path().join("src2"));
    source_tree(&src1, 1_000_000_000, 0o022);
    source_tree(&src2, 1_600_000_000, 0o077);
    let (a, b) = (dir.path().join("a.img"), dir.path().join("b.img"));
    // 2026-01-01, which debugfs would misread as a date without the `@`.
    let opts = |src| Ext4Options {
        mtime: 1_767_225_600,
        ..options(Some(src))
    };
    make_ext4(&a, 0, &opts(&src1)).expect("mke2fs a");
    make_ext4(&b, 0, &opts(&src2)).expect("mke2fs b");
    assert!(fs::read(&a).expect("a") == fs::read(&b).expect("b"));
    e2fsck(arg(&a));

    let layer = dir.path().join("layer");
    check(
        "debugfs",
        &[
            "-R",
            &format!("dump /images/blobs/layer {}", arg(&layer)),
            arg(&a),
        ],
    );
    assert_eq!(fs::read(&layer).expect("dumped"), vec![0x5a; 70_000]);
    let stat = check("debugfs", &["-R", "stat \"/file with space\"", arg(&a)]);
    assert!(stat.contains("User:     0   Group:     0"), "{stat}");
    assert!(stat.contains("mtime: 0x6955b900:00000000"), "{stat}");
    assert!(stat.contains("Mode:  0644"), "{stat}");
    let stat = check("debugfs", &["-R", "stat /images", arg(&a)]);
    assert!(stat.contains("Mode:  0755"), "{stat}");
    let stat = check("debugfs", &["-R", "stat /tool", arg(&a)]);
    assert!(stat.contains("Mode:  0755"), "{stat}");
    let link = check("debugfs", &["-R", "stat /link", arg(&a)]);
    assert!(
        link.contains("Fast link dest: \"images/index.json\""),
        "{link}"
    );
}

#[test]
fn writes_at_an_offset_without_touching_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let img = dir.path().join("disk.img");
    fs::write(&img, vec![0xee; 4 * MIB as usize]).expect("write prefix");
    let src = dir.path().join("src");
    source_tree(&src, 1_000_000_000, 0o022);
    make_ext4(&img, 4 * MIB, &options(Some(&src))).expect("mke2fs at offset");
    let bytes = fs::read(&img).expect("read");
    assert_eq!(bytes.len() as u64, 68 * MIB);
    assert!(bytes[..4 * MIB as usize].iter().all(|b| *b == 0xee));
    e2fsck(&format!("{}?offset={}", arg(&img), 4 * MIB));

    let alone = dir.path().join("alone.img");
    make_ext4(&alone, 0, &options(Some(&src))).expect("mke2fs");
    assert!(bytes[4 * MIB as usize..] == fs::read(&alone).expect("read")[..]);
}

#[test]
fn rejects_bad_options() {
    let dir = tempfile::tempdir().expect("temp dir");
    let img = dir.path().join("x.img");
    let mut small = options(None);
    small.size = 8 * MIB;
    assert!(matches!(
        make_ext4(&img, 0, &small),
        Err(Ext4Error::InvalidOption { what: "size", .. })
    ));
    let mut label = options(None);
    label.label = "a-label-that-is-too-long".to_owned();
    assert!(matches!(
        make_ext4(&img, 0, &label),
        Err(Ext4Error::InvalidOption { what: "label", .. })
    ));
    let missing = options(Some(&dir.path().join("missing")));
    assert!(matches!(
        make_ext4(&img, 0, &missing),
        Err(Ext4Error::Tool {
            program: "mke2fs",
            ..
        })
    ));
}
