//! Importing: platform selection, and corrupt, mislabelled, truncated or foreign archives refused with
//! errors naming the image and the blob.
// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use baton_oci::model::{Compression, Descriptor, Index, MEDIA_TYPE_INDEX};
use baton_oci::{ImportError, SourceKind, Store, StoreError};
use common::*;
use std::fs;
use std::path::{Path, PathBuf};

fn layer() -> Vec<(Vec<u8>, Compression)> {
    vec![(tar_of(&[file("hello", b"hello")]), Compression::Gzip)]
}

fn import(dir: &Path, bytes: Vec<u8>) -> (Store, Result<baton_oci::Imported, ImportError>) {
    let store = Store::open(dir.join("store")).unwrap();
    let path = dir.join("image.tar");
    fs::write(&path, bytes).unwrap();
    let result = store.import(&source(SourceKind::OciArchive, &path), "web");
    (store, result)
}

fn nested_index(images: &[&Image]) -> (Descriptor, Vec<u8>) {
    let index = Index {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_INDEX.into()),
        manifests: images.iter().map(|i| i.manifest.clone()).collect(),
    };
    let bytes = serde_json::to_vec(&index).unwrap();
    (descriptor(MEDIA_TYPE_INDEX, &bytes), bytes)
}

#[test]
fn picks_linux_arm64_from_a_nested_multi_platform_index() {
    let dir = tempfile::tempdir().unwrap();
    let intel = image(&layer(), &amd64());
    let mut v8 = arm64();
    v8.variant = Some("v8".into());
    let arm = image(&[(tar_of(&[file("arm", b"arm")]), Compression::Zstd)], &v8);
    let (top, index_bytes) = nested_index(&[&intel, &arm]);
    let mut blobs = named(&[&intel, &arm]);
    blobs.push((top.digest.hex().to_owned(), index_bytes));
    let (store, imported) = import(dir.path(), archive(&[top], &blobs));
    let imported = imported.unwrap();
    assert_eq!(imported.manifest, arm.manifest.digest);
    assert_eq!(store.get_ref("web").unwrap(), arm.manifest.digest);
    assert_eq!(
        store.refs().unwrap(),
        vec![("web".to_owned(), arm.manifest.digest.clone())]
    );
}

#[test]
fn a_foreign_single_platform_image_is_refused_naming_both_platforms() {
    let dir = tempfile::tempdir().unwrap();
    let mut intel = image(&layer(), &amd64());
    intel.manifest.platform = None; // only the config tells
    let (store, result) = import(
        dir.path(),
        archive(&[intel.manifest.clone()], &named(&[&intel])),
    );
    let err = result.unwrap_err();
    assert!(matches!(err, ImportError::Platform { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("web (oci-archive:"), "{message}");
    assert!(
        message.contains("linux/amd64") && message.contains("wanted linux/arm64"),
        "{message}"
    );
    assert!(store.refs().unwrap().is_empty());
}

#[test]
fn a_blob_whose_content_does_not_match_its_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let image = image(&layer(), &arm64());
    let mut blobs = named(&[&image]);
    let layer_name = blobs[0].0.clone();
    blobs[0].1[20] ^= 0xff;
    let (store, result) = import(
        dir.path(),
        archive(std::slice::from_ref(&image.manifest), &blobs),
    );
    let err = result.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(
            err,
            ImportError::Store {
                source: StoreError::DigestMismatch { .. },
                ..
            }
        ),
        "{message}"
    );
    assert!(
        message.contains("image web") && message.contains(&layer_name),
        "{message}"
    );
    assert!(!store
        .blob_path(&baton_oci::Digest::from_hex(&layer_name).unwrap())
        .exists());
}

#[test]
fn a_manifest_naming_a_blob_the_archive_lacks_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let image = image(&layer(), &arm64());
    let mut blobs = named(&[&image]);
    let (missing, _) = blobs.remove(0);
    let (store, result) = import(
        dir.path(),
        archive(std::slice::from_ref(&image.manifest), &blobs),
    );
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            ImportError::Store {
                source: StoreError::MissingBlob { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&missing), "{err}");
    assert!(
        store.refs().unwrap().is_empty(),
        "no ref to an incomplete image"
    );
}

#[test]
fn a_descriptor_with_the_wrong_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let image = image(&layer(), &arm64());
    let mut top = image.manifest.clone();
    top.size += 1;
    let (_store, result) = import(dir.path(), archive(&[top], &named(&[&image])));
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            ImportError::Store {
                source: StoreError::SizeMismatch { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains(&image.manifest.digest.to_string()),
        "{err}"
    );
}

#[test]
fn a_truncated_archive_is_refused() {
    let image = image(&layer(), &arm64());
    let whole = archive(std::slice::from_ref(&image.manifest), &named(&[&image]));
    for cut in [700, 1024 + 300, whole.len() / 2, whole.len() - 2048] {
        let dir = tempfile::tempdir().unwrap();
        let (store, result) = import(dir.path(), whole[..cut].to_vec());
        let err = result.expect_err("truncated archive imported");
        assert!(err.to_string().contains("image web"), "{err}");
        assert!(store.refs().unwrap().is_empty());
    }
}

#[test]
fn non_archives_and_unsupported_digests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, result) = import(dir.path(), b"not a tar at all".repeat(100));
    assert!(result.is_err());
    let mut blobs = named(&[&image(&layer(), &arm64())]);
    blobs[0].0 = "not-a-digest".into();
    let (_store, result) = import(dir.path(), archive(&[], &blobs));
    let err = result.unwrap_err();
    assert!(matches!(err, ImportError::Entry { .. }), "{err}");
    assert!(
        err.to_string().contains("blobs/sha256/not-a-digest"),
        "{err}"
    );
}

#[test]
fn an_oci_layout_directory_is_imported_blob_by_blob() {
    let dir = tempfile::tempdir().unwrap();
    let image = image(&layer(), &arm64());
    let layout = dir.path().join("layout");
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    for (name, bytes) in named(&[&image]) {
        fs::write(layout.join("blobs/sha256").join(name), bytes).unwrap();
    }
    let unrelated: PathBuf = layout.join("blobs/sha256").join("ab".repeat(32));
    fs::write(&unrelated, b"not referenced").unwrap();
    let index = Index {
        schema_version: 2,
        media_type: None,
        manifests: vec![image.manifest.clone()],
    };
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let imported = store
        .import(&source(SourceKind::OciLayout, &layout), "layout")
        .unwrap();
    assert_eq!(imported.manifest, image.manifest.digest);
    assert_eq!(
        fs::read_dir(store.root().join("blobs/sha256"))
            .unwrap()
            .count(),
        3,
        "only what the image needs"
    );
}
