//! The store across crashes and collections: recovery at open, GC.
// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use baton_oci::model::Compression;
use baton_oci::{Digest, SourceKind, Store};
use common::*;
use std::fs;
use std::path::Path;

fn import(store: &Store, dir: &Path, file: &str, content: &[u8], name: &str) -> Digest {
    let path = write_archive(
        dir,
        file,
        &[(tar_of(&[common::file("f", content)]), Compression::Gzip)],
        &arm64(),
    );
    store
        .import(&source(SourceKind::OciArchive, &path), name)
        .unwrap()
        .manifest
}

#[test]
fn a_power_cut_leaves_a_store_that_opens_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::open(&root).unwrap();
    let good = import(&store, dir.path(), "a.tar", b"a", "good");
    drop(store);
    // What a power cut can leave: a half-written blob, a half-written ref, a half-unpacked layer…
    fs::write(root.join("tmp/blob-1-0"), b"half a blob").unwrap();
    fs::write(root.join("tmp/ref-1-1"), b"sha256:12").unwrap();
    fs::create_dir_all(root.join("tmp/layer-1-2/usr/bin")).unwrap();
    // …and, from a damaged card, a ref that does not parse and one whose manifest is gone.
    fs::write(root.join("refs/torn"), b"sha256:0123").unwrap();
    let gone = Digest::of(b"gone");
    fs::write(root.join("refs/dangling"), format!("{gone}\n")).unwrap();

    let store = Store::open(&root).unwrap();
    let recovery = store.recovery();
    assert!(recovery.ran);
    assert_eq!(recovery.removed_temp.len(), 3);
    assert_eq!(fs::read_dir(root.join("tmp")).unwrap().count(), 0);
    let dropped: Vec<&str> = recovery
        .dropped_refs
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(dropped, ["dangling", "torn"]);
    assert!(
        recovery.dropped_refs[0].1.contains(&gone.to_string()),
        "{:?}",
        recovery.dropped_refs
    );
    assert_eq!(store.refs().unwrap(), vec![("good".to_owned(), good)]);
    store.prepare("good").unwrap();
}

#[test]
fn gc_keeps_what_is_referenced_and_removes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let kept = import(&store, dir.path(), "a.tar", b"kept", "kept");
    import(&store, dir.path(), "b.tar", b"dropped", "dropped");
    let kept_dirs = store.prepare("kept").unwrap().lower_dirs;
    let dropped_dirs = store.prepare("dropped").unwrap().lower_dirs;
    let stray = store.write_blob_bytes(b"left by a failed import").unwrap();

    let report = store.gc(&["kept", "not-there"]).unwrap();
    assert_eq!(report.removed_refs, ["dropped"]);
    assert_eq!(
        report.removed_blobs.len(),
        4,
        "manifest, config, layer, stray: {report:?}"
    );
    assert!(report.removed_blobs.contains(&stray));
    assert_eq!(report.removed_layers.len(), 1);
    assert!(report.freed_bytes > 0);
    assert!(kept_dirs.iter().all(|d| d.is_dir()));
    assert!(dropped_dirs.iter().all(|d| !d.exists()));
    assert_eq!(store.refs().unwrap(), vec![("kept".to_owned(), kept)]);
    assert_eq!(
        fs::read_dir(store.root().join("blobs/sha256"))
            .unwrap()
            .count(),
        3
    );
    store.prepare("kept").unwrap();

    let again = store.gc(&["kept"]).unwrap();
    assert_eq!(again, baton_oci::GcReport::default());
}

#[test]
fn recovery_is_skipped_while_another_handle_works() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let first = Store::open(&root).unwrap();
    assert!(first.recovery().ran);
    // An import holds the lock shared while it runs; a store opened meanwhile must not clean tmp/.
    let lock = fs::File::open(root.join("lock")).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockShared).unwrap();
    fs::write(root.join("tmp/blob-in-flight"), b"x").unwrap();
    let second = Store::open(&root).unwrap();
    assert!(!second.recovery().ran);
    assert!(root.join("tmp/blob-in-flight").exists());
}
