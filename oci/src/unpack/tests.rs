//! The limits on unpacking: the image cap, the entry cap, the free-space reserve on a real small file
//! system, and blobs corrupt on disk. Needs root (mount, mknod, trusted xattrs).

use super::budget::{layer_cost, Budget};
use super::{unpack_layer, UnpackError};
use crate::digest::Digest;
use crate::model::Compression;
use crate::testimage::{empty_files, file_header, names, put_image, zero_files_bomb, Layer, Tmpfs};
use crate::{PrepareError, Store, StoreLimits};
use std::fs;
use std::path::Path;

const MIB: u64 = 1 << 20;

fn unpack_error(result: Result<crate::PreparedImage, PrepareError>) -> UnpackError {
    match result {
        Err(PrepareError::Unpack { source, .. }) => source,
        other => panic!("expected an unpack error, got {other:?}"),
    }
}

/// Nothing of a refused layer stays: no layer, nothing in `tmp/`.
fn assert_nothing_left(root: &Path) {
    assert_eq!(names(&root.join("layers")), Vec::<String>::new());
    assert_eq!(names(&root.join("tmp")), Vec::<String>::new());
}

#[test]
fn a_gzip_bomb_is_stopped_at_the_image_cap_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let limits = StoreLimits {
        max_image_bytes: 64 * MIB,
        ..StoreLimits::default()
    };
    let store = Store::open(dir.path()).expect("store").with_limits(limits);
    // 400 MiB of zeros in 400 files.
    let bomb = zero_files_bomb(400, MIB);
    assert!(bomb.blob.len() < 1 << 20, "{} bytes", bomb.blob.len());
    let layer = Digest::of(&bomb.blob);
    put_image(&store, "bomb", &[bomb]);
    let err = unpack_error(store.prepare("bomb"));
    match &err {
        UnpackError::ImageTooLarge {
            layer: named,
            written,
            image,
            limit,
        } => {
            assert_eq!(named, &layer);
            assert_eq!(*limit, 64 * MIB);
            assert!(*written > 32 * MIB && *written <= 64 * MIB, "{written}");
            assert_eq!(image, written);
        }
        other => panic!("expected the image cap: {other}"),
    }
    let text = err.to_string();
    assert!(text.contains(&layer.to_string()), "{text}");
    assert!(text.contains("more than 67108864 bytes unpacked"), "{text}");
    assert_nothing_left(dir.path());
}

#[test]
fn layers_unpacked_earlier_count_against_the_image() {
    let dir = tempfile::tempdir().expect("temp dir");
    let limits = StoreLimits {
        max_image_bytes: 3 * MIB,
        ..StoreLimits::default()
    };
    let store = Store::open(dir.path()).expect("store").with_limits(limits);
    let file = |name: &str, size: usize| {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = file_header(size as u64);
        header.set_cksum();
        builder
            .append_data(&mut header, name, &vec![1u8; size][..])
            .expect("append");
        builder.into_inner().expect("tar")
    };
    let base = file("base", 2 << 20);
    let top = file("top", 3 << 19);
    put_image(&store, "base", &[Layer::plain(base.clone())]);
    let prepared = store.prepare("base").expect("2 MiB fits in 3");
    assert_eq!(
        layer_cost(&prepared.lower_dirs[0]).expect("cost"),
        2 * MIB + 4096
    );
    put_image(
        &store,
        "both",
        &[Layer::plain(base), Layer::plain(top.clone())],
    );
    let err = unpack_error(store.prepare("both"));
    assert!(
        matches!(err, UnpackError::ImageTooLarge { written: 0, image, .. } if image == 2 * MIB + 4096),
        "{err}"
    );
    // The top layer alone fits.
    put_image(&store, "top", &[Layer::plain(top)]);
    store.prepare("top").expect("1.5 MiB fits in 3");
}

#[test]
fn a_layer_cost_is_measured_when_it_was_not_recorded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("store");
    let mut builder = tar::Builder::new(Vec::new());
    for (name, size) in [("a", 5000usize), ("d/b", 0), ("d/c", 4096)] {
        let mut header = file_header(size as u64);
        header.set_cksum();
        builder
            .append_data(&mut header, name, &vec![2u8; size][..])
            .expect("append");
    }
    put_image(
        &store,
        "x",
        &[Layer::plain(builder.into_inner().expect("tar"))],
    );
    let prepared = store.prepare("x").expect("prepare");
    let layer = &prepared.lower_dirs[0];
    // a: 4 KiB + 8 KiB; d (created on the way): 4 KiB; d/b: 4 KiB; d/c: 4 KiB + 4 KiB.
    let recorded = layer_cost(layer).expect("cost");
    assert_eq!(recorded, 28 << 10);
    rustix::fs::removexattr(layer, "trusted.baton.unpacked").expect("remove xattr");
    assert_eq!(layer_cost(layer).expect("measured"), recorded);
}

#[test]
fn millions_of_empty_entries_hit_the_entry_cap_and_count_a_block_each() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = Store::open(dir.path()).expect("store");
    store.set_limits(StoreLimits {
        max_layer_entries: 1000,
        ..StoreLimits::default()
    });
    let tar = empty_files(3000);
    let layer = Digest::of(&tar);
    put_image(&store, "many", &[Layer::plain(tar)]);
    let err = unpack_error(store.prepare("many"));
    match &err {
        UnpackError::TooManyEntries {
            layer: named,
            limit,
            written,
        } => {
            assert_eq!((named, *limit), (&layer, 1000));
            // 1000 empty files and the directory created on the way, a block each.
            assert_eq!(*written, 1001 * 4096);
        }
        other => panic!("expected the entry cap: {other}"),
    }
    assert!(err.to_string().contains("more than 1000 entries"), "{err}");
    assert_nothing_left(dir.path());

    // Under the entry cap, empty files still count against the image: 3000 blocks > 8 MiB.
    store.set_limits(StoreLimits {
        max_image_bytes: 8 * MIB,
        ..StoreLimits::default()
    });
    let err = unpack_error(store.prepare("many"));
    assert!(
        matches!(err, UnpackError::ImageTooLarge { written, .. } if written == 8 * MIB),
        "{err}"
    );
    assert_nothing_left(dir.path());
}

/// A valid tar whose blob no longer hashes to its digest: one byte of a file's contents changed.
fn corrupt(tar: &[u8]) -> Vec<u8> {
    let mut bad = tar.to_vec();
    bad[512] ^= 0x20;
    bad
}

#[test]
fn a_blob_corrupt_on_disk_is_refused_before_anything_is_unpacked() {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = file_header(5);
    header.set_cksum();
    builder
        .append_data(&mut header, "a", &b"hello"[..])
        .expect("append");
    let tar = builder.into_inner().expect("tar");
    let digest = Digest::of(&tar);

    // Unpacking the corrupt bytes directly: the destination stays empty.
    let dir = tempfile::tempdir().expect("temp dir");
    let dest = dir.path().join("layer");
    fs::create_dir(&dest).expect("dest");
    let mut budget = Budget::new(dir.path(), StoreLimits::default()).expect("budget");
    let bad = corrupt(&tar);
    let err = unpack_layer(
        std::io::Cursor::new(&bad),
        Compression::None,
        &digest,
        &digest,
        &dest,
        &mut budget,
    )
    .expect_err("corrupt blob");
    assert!(
        matches!(&err, UnpackError::BlobDigest { layer, actual } if *layer == digest && *actual == Digest::of(&bad)),
        "{err}"
    );
    assert!(err.to_string().contains("corrupt on disk"), "{err}");
    assert_eq!(names(&dest), Vec::<String>::new());

    // Through the store: the blob changed on disk after it was stored.
    let store = Store::open(dir.path().join("store")).expect("store");
    put_image(&store, "x", &[Layer::plain(tar)]);
    fs::write(store.blob_path(&digest), &bad).expect("corrupt the blob");
    let err = unpack_error(store.prepare("x"));
    assert!(matches!(err, UnpackError::BlobDigest { .. }), "{err}");
    assert_nothing_left(store.root());
}

#[test]
fn a_layer_padded_past_its_end_is_refused() {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = file_header(1);
    builder
        .append_data(&mut header, "a", &b"a"[..])
        .expect("append");
    let mut tar = builder.into_inner().expect("tar");
    let padded = tar.len() + (10 << 10);
    tar.resize(padded, 0);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut budget = Budget::new(dir.path(), StoreLimits::default()).expect("budget");
    let unpack = |tar: &[u8], dest: &str, budget: &mut Budget| {
        let dest = dir.path().join(dest);
        fs::create_dir(&dest).expect("dest");
        let digest = Digest::of(tar);
        let blob = std::io::Cursor::new(tar);
        unpack_layer(blob, Compression::None, &digest, &digest, &dest, budget)
    };
    unpack(&tar, "padded", &mut budget).expect("tar's own padding is fine");
    tar.resize(padded + (1 << 20), 0);
    let err = unpack(&tar, "bomb", &mut budget).expect_err("a MiB more");
    assert!(matches!(err, UnpackError::Trailing { .. }), "{err}");
    assert!(
        err.to_string().contains("after the end of its tar"),
        "{err}"
    );
}

#[test]
fn unpacking_stops_at_the_reserve_of_a_small_real_file_system() {
    let tmpfs = Tmpfs::mount("48m");
    let root = tmpfs.path().join("store");
    let limits = StoreLimits {
        min_available: 16 * MIB,
        ..StoreLimits::default()
    };
    let store = Store::open(&root).expect("store").with_limits(limits);
    // 40 MiB of zeros in 1 MiB files: more than the 32 MiB the reserve leaves.
    let bomb = zero_files_bomb(40, MIB);
    let layer = Digest::of(&bomb.blob);
    put_image(&store, "big", &[bomb]);
    let before = available(&root);
    let err = unpack_error(store.prepare("big"));
    match &err {
        UnpackError::NoSpace {
            layer: named,
            written,
            available,
            min_available,
            root: at,
        } => {
            assert_eq!((named, *min_available, at), (&layer, 16 * MIB, &root));
            assert!(*written > 16 * MIB && *written < 32 * MIB, "{written}");
            assert!(
                *available >= 16 * MIB && *available < 18 * MIB,
                "{available}"
            );
        }
        other => panic!("expected the reserve: {other}"),
    }
    let text = err.to_string();
    assert!(text.contains("always leaves 16777216 free"), "{text}");
    assert_nothing_left(&root);
    // The space taken while unpacking is all given back.
    assert!(
        available(&root) >= before,
        "{} < {before}",
        available(&root)
    );

    // A layer that fits above the reserve unpacks on the same file system.
    let small = Layer {
        diff_id: real_diff_id(8, MIB),
        ..zero_files_bomb(8, MIB)
    };
    put_image(&store, "small", &[small]);
    let prepared = store.prepare("small").expect("8 MiB fits");
    assert_eq!(names(&prepared.lower_dirs[0].join("bomb")).len(), 8);
}

/// The diff id of [`zero_files_bomb`]'s uncompressed stream (for small ones).
fn real_diff_id(count: usize, size: u64) -> Digest {
    let mut stream = Vec::new();
    for i in 0..count {
        let mut header = file_header(size);
        header.set_path(format!("bomb/f{i}")).expect("path");
        header.set_cksum();
        stream.extend_from_slice(header.as_bytes());
        stream.resize(stream.len() + size as usize, 0);
    }
    stream.resize(stream.len() + 1024, 0);
    Digest::of(&stream)
}

fn available(path: &Path) -> u64 {
    let stat = rustix::fs::statvfs(path).expect("statvfs");
    stat.f_bavail * stat.f_frsize
}
