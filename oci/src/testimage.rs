//! Test helpers: images put straight into a store, gzip bombs, and a small real file system.

use crate::digest::Digest;
use crate::model::{
    Descriptor, ImageConfig, Manifest, RootFs, MEDIA_TYPE_CONFIG, MEDIA_TYPE_LAYER_GZIP,
    MEDIA_TYPE_LAYER_TAR, MEDIA_TYPE_MANIFEST,
};
use crate::Store;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// One layer: its blob, whether it is gzipped, and the diff id its config announces.
pub(crate) struct Layer {
    pub blob: Vec<u8>,
    pub gzip: bool,
    pub diff_id: Digest,
}

impl Layer {
    /// An uncompressed layer with its true diff id.
    pub fn plain(tar: Vec<u8>) -> Layer {
        Layer {
            diff_id: Digest::of(&tar),
            blob: tar,
            gzip: false,
        }
    }
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.to_owned(),
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
        platform: None,
        annotations: BTreeMap::new(),
    }
}

/// Stores the layers, a config and a manifest, and points `name` at the manifest.
pub(crate) fn put_image(store: &Store, name: &str, layers: &[Layer]) {
    let mut descriptors = Vec::new();
    for layer in layers {
        store.write_blob_bytes(&layer.blob).expect("store layer");
        let media_type = if layer.gzip {
            MEDIA_TYPE_LAYER_GZIP
        } else {
            MEDIA_TYPE_LAYER_TAR
        };
        descriptors.push(descriptor(media_type, &layer.blob));
    }
    let platform = store.platform();
    let config = ImageConfig {
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        config: None,
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
        },
    };
    let config = serde_json::to_vec(&config).expect("config json");
    store.write_blob_bytes(&config).expect("store config");
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_MANIFEST.into()),
        config: descriptor(MEDIA_TYPE_CONFIG, &config),
        layers: descriptors,
    };
    let manifest = serde_json::to_vec(&manifest).expect("manifest json");
    let digest = store.write_blob_bytes(&manifest).expect("store manifest");
    store.set_ref(name, &digest).expect("set ref");
}

/// The header of a regular file owned by root, `size` bytes long (path and checksum still to set).
pub(crate) fn file_header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_000_000);
    header
}

/// A tar of empty regular files named `f0`, `f1`... inside directory `d`.
pub(crate) fn empty_files(count: usize) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for i in 0..count {
        let mut header = file_header(0);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("d/f{i}"), &[][..])
            .expect("append");
    }
    builder.into_inner().expect("tar")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// A gzip bomb: a layer of `count` files of `size` zero bytes each (`size` a multiple of 512), as
/// concatenated gzip members (one per tar header, and one member of `size` zeros compressed once and
/// repeated), so hundreds of MiB cost well under a MiB. Its diff id is not the real one (hashing the
/// whole stream would be slow): a layer refused by a limit never gets to that check.
pub(crate) fn zero_files_bomb(count: usize, size: u64) -> Layer {
    assert_eq!(size % 512, 0);
    let zeros = gzip(&vec![0u8; usize::try_from(size).expect("size")]);
    let mut blob = Vec::new();
    for i in 0..count {
        let mut header = file_header(size);
        header.set_path(format!("bomb/f{i}")).expect("path");
        header.set_cksum();
        blob.extend(gzip(header.as_bytes()));
        blob.extend_from_slice(&zeros);
    }
    blob.extend(gzip(&[0u8; 1024]));
    Layer {
        blob,
        gzip: true,
        diff_id: Digest::of(b"not checked: the layer is refused before"),
    }
}

/// Names in a directory.
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A tmpfs of a given size mounted on a temp dir, unmounted when dropped.
pub(crate) struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts it; panics (fails the test) if mounting fails.
    pub fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("temp dir");
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs on {:?} failed",
            dir.path()
        );
        Tmpfs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}
