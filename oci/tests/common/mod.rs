//! Test helpers: raw tar layers (including hostile ones), hand-made OCI archives, commands.
#![allow(dead_code)]

use baton_oci::model::Compression;
use baton_oci::model::{
    Descriptor, ImageConfig, Index, Manifest, Platform, RootFs, MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST,
};
use baton_oci::Digest;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// One raw tar entry; the name is written byte for byte (so `..` and `/abs` can be made).
pub struct Raw<'a> {
    pub path: &'a str,
    pub kind: tar::EntryType,
    pub data: &'a [u8],
    pub link: &'a str,
    pub mode: u32,
    pub uid: u64,
}

pub fn file<'a>(path: &'a str, data: &'a [u8]) -> Raw<'a> {
    Raw {
        path,
        kind: tar::EntryType::Regular,
        data,
        link: "",
        mode: 0o644,
        uid: 0,
    }
}
pub fn dir(path: &str) -> Raw<'_> {
    Raw {
        path,
        kind: tar::EntryType::Directory,
        data: b"",
        link: "",
        mode: 0o755,
        uid: 0,
    }
}
pub fn symlink<'a>(path: &'a str, link: &'a str) -> Raw<'a> {
    Raw {
        path,
        kind: tar::EntryType::Symlink,
        data: b"",
        link,
        mode: 0o777,
        uid: 0,
    }
}
pub fn hardlink<'a>(path: &'a str, link: &'a str) -> Raw<'a> {
    Raw {
        path,
        kind: tar::EntryType::Link,
        data: b"",
        link,
        mode: 0o644,
        uid: 0,
    }
}

/// An uncompressed tar of raw entries.
pub fn tar_of(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_old();
        let name = &mut header.as_old_mut().name;
        name[..entry.path.len()].copy_from_slice(entry.path.as_bytes());
        let link = &mut header.as_old_mut().linkname;
        link[..entry.link.len()].copy_from_slice(entry.link.as_bytes());
        header.set_entry_type(entry.kind);
        header.set_mode(entry.mode);
        header.set_uid(entry.uid);
        header.set_gid(entry.uid);
        header.set_mtime(1_000_000);
        header.set_size(entry.data.len() as u64);
        header.set_cksum();
        builder.append(&header, entry.data).unwrap();
    }
    builder.into_inner().unwrap()
}

pub fn compress(tar: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::None => tar.to_vec(),
        Compression::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(tar).unwrap();
            gz.finish().unwrap()
        }
        Compression::Zstd => {
            let mut out = Vec::new();
            ruzstd::encoding::compress(tar, &mut out, ruzstd::encoding::CompressionLevel::Fastest);
            out
        }
    }
}

pub fn descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.to_owned(),
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
        platform: None,
        annotations: BTreeMap::new(),
    }
}

pub fn arm64() -> Platform {
    Platform::linux_arm64()
}

pub fn amd64() -> Platform {
    Platform {
        architecture: "amd64".into(),
        os: "linux".into(),
        variant: None,
    }
}

/// An image (manifest + config + layers) as blobs, and the manifest's descriptor.
pub struct Image {
    pub blobs: Vec<Vec<u8>>,
    pub manifest: Descriptor,
}

/// Builds an image from uncompressed layer tars, compressed as asked.
pub fn image(layers: &[(Vec<u8>, Compression)], platform: &Platform) -> Image {
    let mut blobs = Vec::new();
    let mut layer_descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for (tar, compression) in layers {
        let blob = compress(tar, *compression);
        layer_descriptors.push(descriptor(compression.oci_media_type(), &blob));
        diff_ids.push(Digest::of(tar));
        blobs.push(blob);
    }
    let config = ImageConfig {
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        config: None,
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids,
        },
    };
    let config = serde_json::to_vec(&config).unwrap();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_MANIFEST.into()),
        config: descriptor(MEDIA_TYPE_CONFIG, &config),
        layers: layer_descriptors,
    };
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let mut manifest_descriptor = descriptor(MEDIA_TYPE_MANIFEST, &manifest);
    manifest_descriptor.platform = Some(platform.clone());
    blobs.push(config);
    blobs.push(manifest);
    Image {
        blobs,
        manifest: manifest_descriptor,
    }
}

/// An oci-archive whose index.json lists `top` and which holds `blobs` (unchecked: tests corrupt them).
pub fn archive(top: &[Descriptor], blobs: &[(String, Vec<u8>)]) -> Vec<u8> {
    let index = Index {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_INDEX.into()),
        manifests: top.to_vec(),
    };
    let index = serde_json::to_vec(&index).unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, data).unwrap();
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    for (name, data) in blobs {
        add(&format!("blobs/sha256/{name}"), data);
    }
    add("index.json", &index);
    builder.into_inner().unwrap()
}

/// The blobs of images, named by their real digests.
pub fn named(images: &[&Image]) -> Vec<(String, Vec<u8>)> {
    images
        .iter()
        .flat_map(|image| image.blobs.iter())
        .map(|blob| (Digest::of(blob).hex().to_owned(), blob.clone()))
        .collect()
}

/// Writes an archive of one image with these layers and returns its path.
pub fn write_archive(
    dir: &Path,
    file: &str,
    layers: &[(Vec<u8>, Compression)],
    platform: &Platform,
) -> std::path::PathBuf {
    let image = image(layers, platform);
    let bytes = archive(std::slice::from_ref(&image.manifest), &named(&[&image]));
    let path = dir.join(file);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Runs a command and panics with its output if it fails.
pub fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn source(kind: baton_oci::SourceKind, path: &Path) -> baton_oci::Source {
    baton_oci::Source {
        kind,
        path: path.to_owned(),
        tag: None,
    }
}
