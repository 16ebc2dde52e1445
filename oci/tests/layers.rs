//! Layer unpacking: content, metadata, compression, whiteouts as overlayfs sees them, hostile tars.
//! Needs root (chown, mknod, trusted xattrs), as on the board and in CI.
// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use baton_oci::model::Compression;
use baton_oci::{PrepareError, SourceKind, Store, UnpackError};
use common::*;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

fn prepare(
    dir: &Path,
    layers: &[(Vec<u8>, Compression)],
) -> (Store, Result<baton_oci::PreparedImage, PrepareError>) {
    let store = Store::open(dir.join("store")).unwrap();
    let archive = write_archive(dir, "image.tar", layers, &arm64());
    store
        .import(&source(SourceKind::OciArchive, &archive), "test")
        .unwrap();
    let prepared = store.prepare("test");
    (store, prepared)
}

#[test]
fn unpacks_files_links_modes_and_owners_from_every_compression() {
    let base = tar_of(&[
        dir("etc"),
        Raw {
            mode: 0o600,
            uid: 1000,
            ..file("etc/secret", b"s3cret")
        },
        Raw {
            mode: 0o4755,
            ..file("bin/tool", b"#!tool")
        },
        symlink("bin/alias", "/bin/tool"),
        hardlink("bin/same", "bin/tool"),
    ]);
    let second = tar_of(&[file("etc/zstd", b"from zstd")]);
    let third = tar_of(&[file("etc/plain", b"from a plain tar")]);
    for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let dir = tempfile::tempdir().unwrap();
        let (_store, prepared) = prepare(
            dir.path(),
            &[
                (base.clone(), compression),
                (second.clone(), Compression::Zstd),
                (third.clone(), Compression::None),
            ],
        );
        let prepared = prepared.unwrap();
        assert_eq!(prepared.lower_dirs.len(), 3);
        let bottom = &prepared.lower_dirs[2];
        assert_eq!(fs::read(bottom.join("etc/secret")).unwrap(), b"s3cret");
        let meta = fs::metadata(bottom.join("etc/secret")).unwrap();
        assert_eq!(
            (meta.mode() & 0o7777, meta.uid(), meta.gid()),
            (0o600, 1000, 1000)
        );
        let tool = fs::metadata(bottom.join("bin/tool")).unwrap();
        assert_eq!(
            tool.permissions().mode() & 0o7777,
            0o4755,
            "set-uid survives chown"
        );
        assert_eq!(tool.mtime(), 1_000_000);
        assert_eq!(
            fs::read_link(bottom.join("bin/alias")).unwrap(),
            Path::new("/bin/tool")
        );
        assert_eq!(
            fs::metadata(bottom.join("bin/same")).unwrap().ino(),
            tool.ino()
        );
        assert_eq!(
            fs::read(prepared.lower_dirs[1].join("etc/zstd")).unwrap(),
            b"from zstd"
        );
        assert_eq!(
            fs::read(prepared.lower_dirs[0].join("etc/plain")).unwrap(),
            b"from a plain tar"
        );
    }
}

#[test]
fn layers_are_unpacked_once_and_shared() {
    let dir = tempfile::tempdir().unwrap();
    let layer = tar_of(&[file("a", b"a")]);
    let (store, first) = prepare(dir.path(), &[(layer.clone(), Compression::Gzip)]);
    let first = first.unwrap();
    let marker = first.lower_dirs[0].join("marker");
    fs::write(&marker, b"still here").unwrap();
    let second = store.prepare("test").unwrap();
    assert_eq!(first, second);
    assert!(marker.exists(), "a prepared layer is not unpacked again");
}

fn whiteout_layers() -> Vec<(Vec<u8>, Compression)> {
    let lower = tar_of(&[
        file("keep", b"keep"),
        file("gone", b"gone"),
        dir("opaque"),
        file("opaque/old", b"old"),
        dir("partly"),
        file("partly/old", b"old"),
    ]);
    let upper = tar_of(&[
        file(".wh.gone", b""),
        dir("opaque"),
        file("opaque/.wh..wh..opq", b""),
        file("opaque/new", b"new"),
        file("partly/new", b"new"),
    ]);
    vec![(lower, Compression::Gzip), (upper, Compression::Gzip)]
}

#[test]
fn whiteouts_become_overlayfs_whiteouts() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, prepared) = prepare(dir.path(), &whiteout_layers());
    let top = &prepared.unwrap().lower_dirs[0];
    let gone = fs::symlink_metadata(top.join("gone")).unwrap();
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    assert!(!top.join(".wh.gone").exists());
    let opaque =
        rustix::fs::lgetxattr(top.join("opaque"), "trusted.overlay.opaque", &mut [0u8; 8]).unwrap();
    assert_eq!(opaque, 1);
    assert!(!top.join("opaque/.wh..wh..opq").exists());
    assert!(
        rustix::fs::lgetxattr(top.join("partly"), "trusted.overlay.opaque", &mut [0u8; 8]).is_err()
    );
}

#[test]
fn overlayfs_shows_the_merged_view() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, prepared) = prepare(dir.path(), &whiteout_layers());
    let lower: Vec<String> = prepared
        .unwrap()
        .lower_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    let merged = dir.path().join("merged");
    fs::create_dir(&merged).unwrap();
    // A private mount namespace: the mount vanishes with the command.
    let script = format!(
        "mount -t overlay overlay -o lowerdir={} {m} && cd {m} && find . | sort",
        lower.join(":"),
        m = merged.display()
    );
    let listing = run(Command::new("unshare").args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]));
    let files: Vec<&str> = listing.lines().collect();
    assert_eq!(
        files,
        [
            ".",
            "./keep",
            "./opaque",
            "./opaque/new",
            "./partly",
            "./partly/new",
            "./partly/old"
        ]
    );
}

fn refused(entries: &[Raw<'_>], expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let (store, prepared) = prepare(dir.path(), &[(tar_of(entries), Compression::Gzip)]);
    let err = prepared.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(
            err,
            PrepareError::Unpack {
                source: UnpackError::Refused { .. },
                ..
            }
        ),
        "{message}"
    );
    assert!(
        message.contains(expected),
        "{message} should mention {expected}"
    );
    assert!(
        message.contains("image test") && message.contains("layer sha256:"),
        "{message}"
    );
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing written outside"
    );
    assert_eq!(
        fs::read_dir(store.root().join("layers")).unwrap().count(),
        0
    );
    assert_eq!(fs::read_dir(store.root().join("tmp")).unwrap().count(), 0);
}

#[test]
fn hostile_layers_are_refused() {
    refused(&[file("../outside/x", b"x")], "../outside/x");
    refused(&[file("/abs", b"x")], "absolute path");
    refused(&[file("a/../../outside/x", b"x")], "`..`");
    // A symlink pointing out, then a write through it.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("outside");
    let target = out.display().to_string();
    refused(
        &[symlink("esc", &target), file("esc/x", b"x")],
        "goes through the symlink",
    );
    refused(
        &[symlink("esc", "../../.."), file("esc/x", b"x")],
        "goes through the symlink",
    );
    refused(
        &[hardlink("passwd", "../../etc/passwd")],
        "leaves the layer",
    );
    refused(&[hardlink("passwd", "/etc/passwd")], "leaves the layer");
    refused(
        &[symlink("etc", "/etc"), hardlink("passwd", "etc/passwd")],
        "goes through the symlink",
    );
    refused(
        &[hardlink("loop", "missing")],
        "not a file earlier in this layer",
    );
}

#[test]
fn a_layer_whose_content_does_not_match_its_diff_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let tar = tar_of(&[file("a", b"a")]);
    let mut image = image(&[(tar, Compression::None)], &arm64());
    // Swap the config for one with a wrong diff id.
    let mut config: baton_oci::model::ImageConfig =
        serde_json::from_slice(&image.blobs[1]).unwrap();
    config.rootfs.diff_ids[0] = baton_oci::Digest::of(b"something else");
    let config = serde_json::to_vec(&config).unwrap();
    let mut manifest: baton_oci::model::Manifest = serde_json::from_slice(&image.blobs[2]).unwrap();
    manifest.config = descriptor(baton_oci::model::MEDIA_TYPE_CONFIG, &config);
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    image.blobs[1] = config;
    image.blobs[2] = manifest_bytes.clone();
    let mut top = descriptor(baton_oci::model::MEDIA_TYPE_MANIFEST, &manifest_bytes);
    top.platform = Some(arm64());
    let path = dir.path().join("bad.tar");
    fs::write(&path, archive(&[top], &named(&[&image]))).unwrap();
    store
        .import(&source(SourceKind::OciArchive, &path), "test")
        .unwrap();
    let err = store.prepare("test").unwrap_err();
    assert!(
        matches!(
            err,
            PrepareError::Unpack {
                source: UnpackError::DiffId { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("image config says"), "{err}");
}
