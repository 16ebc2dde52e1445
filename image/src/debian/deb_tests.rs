//! Tests for .deb extraction, on packages built here with the `ar` and `tar` writers.

use super::*;

/// One tar entry of a synthetic package.
pub(crate) enum Item<'a> {
    File(&'a str, &'a [u8], u32),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    Dir(&'a str),
    /// A regular file whose stored name is written raw (to smuggle in `..`).
    RawName(&'a [u8], &'a [u8]),
}

/// A .deb with `items` in a `data.tar.<codec>` member ("" for an uncompressed tar).
pub(crate) fn build_deb(items: &[Item<'_>], codec: &str) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for item in items {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        match item {
            Item::File(path, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                tar.append_data(&mut h, format!(".{path}"), *data).unwrap();
            }
            Item::Symlink(path, target) | Item::HardLink(path, target) => {
                let t = if matches!(item, Item::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                h.set_entry_type(t);
                h.set_mode(0o777);
                h.set_size(0);
                tar.append_link(&mut h, format!(".{path}"), target).unwrap();
            }
            Item::Dir(path) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                tar.append_data(&mut h, format!(".{path}"), &[][..])
                    .unwrap();
            }
            Item::RawName(name, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                h.as_old_mut().name[..name.len()].copy_from_slice(name);
                h.set_cksum();
                tar.append(&h, *data).unwrap();
            }
        }
    }
    let tar = tar.into_inner().unwrap();
    let data = compress(codec, &tar);
    let mut ar = ar::Builder::new(Vec::new());
    let mut add = |name: &str, bytes: &[u8]| {
        let header = ar::Header::new(name.as_bytes().to_vec(), bytes.len() as u64);
        ar.append(&header, bytes).unwrap();
    };
    add("debian-binary", b"2.0\n");
    add("control.tar.xz", &compress("xz", b"not read"));
    let member = if codec.is_empty() {
        "data.tar".to_string()
    } else {
        format!("data.tar.{codec}")
    };
    add(&member, &data);
    ar.into_inner().unwrap()
}

pub(crate) fn compress(codec: &str, data: &[u8]) -> Vec<u8> {
    match codec {
        "xz" => {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "gz" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "zst" => {
            ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
        }
        _ => data.to_vec(),
    }
}

fn write_deb(dir: &Path, bytes: &[u8]) -> PathBuf {
    let path = dir.join("test.deb");
    fs::write(&path, bytes).unwrap();
    path
}

fn sample() -> Vec<Item<'static>> {
    vec![
        Item::Dir("/boot"),
        Item::File("/boot/vmlinuz-6.1.0-9-arm64", b"kernel", 0o644),
        Item::File(
            "/usr/lib/linux-image-6.1.0-9-arm64/broadcom/bcm2711-rpi-4-b.dtb",
            b"dtb4",
            0o644,
        ),
        Item::Symlink(
            "/usr/lib/linux-image-6.1.0-9-arm64/broadcom/rpi4.dtb",
            "bcm2711-rpi-4-b.dtb",
        ),
        Item::HardLink("/boot/vmlinuz-copy", "./boot/vmlinuz-6.1.0-9-arm64"),
        Item::Symlink("/boot/escape", "../../../etc/shadow"),
        Item::File(
            "/lib/modules/6.1.0-9-arm64/kernel/fs/ext4/ext4.ko",
            b"ext4",
            0o644,
        ),
        Item::RawName(b"./../../evil", b"evil"),
        Item::File("/usr/sbin/tool", b"#!", 0o755),
    ]
}

#[test]
fn extracts_selected_files_from_every_compression() {
    for codec in ["xz", "zst", "gz", ""] {
        let tmp = tempfile::tempdir().unwrap();
        let deb = write_deb(tmp.path(), &build_deb(&sample(), codec));
        let files = extract(&deb, |p| {
            p.starts_with("/boot/vmlinuz-6") || p.ends_with(".ko")
        })
        .unwrap();
        let got: Vec<_> = files
            .iter()
            .map(|f| (f.path.as_str(), f.data.as_slice()))
            .collect();
        assert_eq!(
            got,
            [
                ("/boot/vmlinuz-6.1.0-9-arm64", &b"kernel"[..]),
                (
                    "/lib/modules/6.1.0-9-arm64/kernel/fs/ext4/ext4.ko",
                    &b"ext4"[..]
                ),
            ],
            "codec {codec:?}"
        );
    }
}

#[test]
fn resolves_links_and_ignores_hostile_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let deb = write_deb(tmp.path(), &build_deb(&sample(), "xz"));
    let files = extract(&deb, |p| {
        !p.starts_with("/usr/lib") || p.ends_with("rpi4.dtb")
    })
    .unwrap();
    let find = |p: &str| files.iter().find(|f| f.path == p);
    assert_eq!(find("/boot/vmlinuz-copy").unwrap().data, b"kernel");
    let rpi4 = find("/usr/lib/linux-image-6.1.0-9-arm64/broadcom/rpi4.dtb").unwrap();
    assert_eq!(
        rpi4.data, b"dtb4",
        "symlink to an unselected file is read in a second pass"
    );
    assert_eq!(find("/usr/sbin/tool").unwrap().mode, 0o755);
    assert!(find("/boot/escape").is_none(), "dangling link left out");
    assert!(files.iter().all(|f| !f.path.contains("evil")), "{files:?}");
}

#[test]
fn extracts_to_a_directory_and_decompresses_modules() {
    let tmp = tempfile::tempdir().unwrap();
    let ko = b"\x7fELF module bytes";
    let xz = compress("xz", ko);
    let zst = compress("zst", ko);
    let items = [
        Item::File("/lib/modules/6.12.0-1-arm64/kernel/a.ko.xz", &xz, 0o644),
        Item::File("/lib/modules/6.12.0-1-arm64/kernel/b.ko.zst", &zst, 0o644),
        Item::File(
            "/lib/modules/6.12.0-1-arm64/modules.builtin",
            b"kernel/c.ko\n",
            0o644,
        ),
        Item::HardLink(
            "/lib/modules/6.12.0-1-arm64/kernel/c.ko.xz",
            "./lib/modules/6.12.0-1-arm64/kernel/a.ko.xz",
        ),
    ];
    let deb = write_deb(tmp.path(), &build_deb(&items, "xz"));
    let out = tmp.path().join("out");
    let mut written = extract_to_dir(
        &deb,
        &out,
        |p| p.starts_with("/lib/modules/"),
        Modules::Decompress,
    )
    .unwrap();
    written.sort();
    let root = "lib/modules/6.12.0-1-arm64";
    assert_eq!(
        written,
        [
            PathBuf::from(format!("{root}/kernel/a.ko")),
            PathBuf::from(format!("{root}/kernel/b.ko")),
            PathBuf::from(format!("{root}/kernel/c.ko")),
            PathBuf::from(format!("{root}/modules.builtin")),
        ]
    );
    for m in ["a", "b", "c"] {
        assert_eq!(
            fs::read(out.join(format!("{root}/kernel/{m}.ko"))).unwrap(),
            ko
        );
    }
    let as_is = tmp.path().join("as-is");
    extract_to_dir(&deb, &as_is, |p| p.ends_with(".xz"), Modules::AsIs).unwrap();
    assert_eq!(
        fs::read(as_is.join(format!("{root}/kernel/a.ko.xz"))).unwrap(),
        xz
    );
}

#[test]
fn decompresses_single_modules() {
    let ko = b"module";
    for codec in ["xz", "zst", "gz"] {
        let (name, data) =
            decompress_module(&format!("/x/a.ko.{codec}"), &compress(codec, ko)).unwrap();
        assert_eq!((name.as_str(), data.as_slice()), ("/x/a.ko", &ko[..]));
    }
    let (name, data) = decompress_module("/x/a.ko", ko).unwrap();
    assert_eq!((name.as_str(), data.as_slice()), ("/x/a.ko", &ko[..]));
    assert!(decompress_module("/x/a.ko.xz", b"garbage").is_err());
}

#[test]
fn rejects_files_that_are_not_debs() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ar = ar::Builder::new(Vec::new());
    ar.append(
        &ar::Header::new(b"debian-binary".to_vec(), 4),
        &b"2.0\n"[..],
    )
    .unwrap();
    let deb = write_deb(tmp.path(), &ar.into_inner().unwrap());
    assert!(matches!(extract(&deb, |_| true), Err(Error::NoData { .. })));
    let missing = tmp.path().join("missing.deb");
    let err = extract(&missing, |_| true).unwrap_err().to_string();
    assert!(err.contains("missing.deb"), "{err}");
}
