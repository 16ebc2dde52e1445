//! A whole image (MBR, two FAT32 volumes, a copied-in slot, ext4) judged by sfdisk, fsck.fat and
//! e2fsck, and read back with `read_image`.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use baton_spec::mbr::{TYPE_FAT32_LBA, TYPE_LINUX};

use super::*;
use crate::disk::fat::FatDir;
use crate::disk::host_tools::{arg, check};
use crate::disk::layout::{PartitionSizes, TotalSize};

const MIB: u64 = 1 << 20;
const DISK_ID: u32 = 0xba70_0001;
const MTIME: i64 = 1_700_000_000;

fn layout() -> ImageLayout {
    let sizes = PartitionSizes {
        boot: 40 * MIB,
        boot_b: 40 * MIB,
        config: 36 * MIB,
        data: 32 * MIB,
    };
    ImageLayout::new(&sizes, TotalSize::PowerOfTwo).expect("layout")
}

fn fat_options(extent: Extent, label: &str, volume_id: u32) -> FatOptions {
    FatOptions {
        size: extent.size,
        label: label.to_owned(),
        volume_id,
        mtime: MTIME,
        hidden_sectors: extent.start_lba(),
    }
}

fn boot_tree() -> FatDir {
    let mut t = FatDir::new();
    t.add_file("vmlinuz", vec![0x4b; 3 * MIB as usize])
        .expect("kernel");
    t.add_file("initramfs.cpio.gz", vec![0x1f; 700_000])
        .expect("initramfs");
    t.add_file("cmdline.txt", b"console=ttyAMA0\n".to_vec())
        .expect("cmdline");
    t.add_file("bcm2837-rpi-3-b.dtb", vec![0xd0; 30_000])
        .expect("dtb");
    t.add_file("overlays/vc4-kms-v3d.dtbo", vec![0xd1; 3_000])
        .expect("overlay");
    t
}

/// Builds a complete image at `path`: p1 and p3 written in place, p2 copied in from a separate
/// FAT volume, p4 made by mke2fs at its offset.
fn build(path: &Path, scratch: &Path) -> ImageLayout {
    let l = layout();
    let mut img = ImageWriter::create(path, l, DISK_ID).expect("create");
    img.write_fat32(
        Partition::Boot,
        &fat_options(l.boot, "BATON-BOOT", 1),
        &boot_tree(),
    )
    .expect("boot");
    let mut cfg = FatDir::new();
    cfg.add_file("services/web.toml", b"name = \"web\"\n".to_vec())
        .expect("service");
    cfg.add_dir("images").expect("images");
    img.write_fat32(
        Partition::Config,
        &fat_options(l.config, "BATON-CFG", 3),
        &cfg,
    )
    .expect("config");

    let slot = scratch.join("slot-b.fat");
    let mut f = File::create(&slot).expect("create slot");
    crate::disk::fat::write_fat32(&mut f, &fat_options(l.boot_b, "BATON-B", 2), &FatDir::new())
        .expect("slot fat");
    drop(f);
    img.copy_into(Partition::BootB, &mut File::open(&slot).expect("open slot"))
        .expect("copy slot");

    let ext = Ext4Options {
        size: l.data.size,
        label: "baton-data".to_owned(),
        uuid: [0x42; 16],
        hash_seed: [0x43; 16],
        mtime: MTIME,
        populate_from: None,
    };
    img.make_ext4(&ext).expect("ext4");
    img.finish().expect("finish");
    l
}

fn extract(img: &Path, e: Extent, to: &Path) {
    let mut f = File::open(img).expect("open");
    f.seek(SeekFrom::Start(e.offset)).expect("seek");
    let mut bytes = vec![0u8; e.size as usize];
    f.read_exact(&mut bytes).expect("read partition");
    fs::write(to, bytes).expect("write partition");
}

#[test]
fn standard_tools_accept_the_whole_image() {
    let dir = tempfile::tempdir().expect("temp dir");
    let img = dir.path().join("baton.img");
    let l = build(&img, dir.path());
    assert_eq!(l.total_size, 256 * MIB);
    let meta = fs::metadata(&img).expect("stat");
    assert_eq!(meta.len(), 256 * MIB);
    assert!(
        meta.blocks() * 512 < 64 * MIB,
        "image is not sparse: {} blocks",
        meta.blocks()
    );

    check("sfdisk", &["--verify", arg(&img)]);
    let json: serde_json::Value =
        serde_json::from_str(&check("sfdisk", &["--json", arg(&img)])).expect("sfdisk json");
    let table = &json["partitiontable"];
    assert_eq!(table["label"], "dos");
    assert_eq!(table["id"], "0xba700001");
    assert_eq!(table["sectorsize"], 512);
    let parts = table["partitions"].as_array().expect("partitions");
    assert_eq!(parts.len(), 4);
    for (p, (e, kind)) in parts
        .iter()
        .zip(l.extents().iter().zip(["c", "c", "c", "83"]))
    {
        assert_eq!(p["start"], e.offset / 512);
        assert_eq!(p["size"], e.size / 512);
        assert_eq!(p["type"], kind);
    }
    assert_eq!(parts[0]["bootable"], true);
    assert!(parts[1].get("bootable").is_none());

    for (n, e) in [(1, l.boot), (2, l.boot_b), (3, l.config)] {
        let part = dir.path().join(format!("p{n}.fat"));
        extract(&img, e, &part);
        check("fsck.fat", &["-n", arg(&part)]);
    }
    check(
        "e2fsck",
        &["-fn", &format!("{}?offset={}", arg(&img), l.data.offset)],
    );
}

#[test]
fn read_image_reports_partitions_and_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let img = dir.path().join("baton.img");
    let l = build(&img, dir.path());
    let contents = read_image(&img).expect("read image");
    assert_eq!(contents.size, 256 * MIB);
    assert_eq!(contents.disk_id, DISK_ID);
    let kinds: Vec<u8> = contents.partitions.iter().map(|p| p.entry.kind).collect();
    assert_eq!(
        kinds,
        [TYPE_FAT32_LBA, TYPE_FAT32_LBA, TYPE_FAT32_LBA, TYPE_LINUX]
    );
    assert_eq!(contents.partitions[3].entry.offset(), l.data.offset);
    match &contents.partitions[0].filesystem {
        Filesystem::Fat { label, files } => {
            assert_eq!(label, "BATON-BOOT");
            let kernel = files
                .iter()
                .find(|f| f.path == "vmlinuz")
                .expect("kernel listed");
            assert_eq!(kernel.size, 3 * MIB);
            assert!(files.iter().any(|f| f.path == "overlays/vc4-kms-v3d.dtbo"));
        }
        other => panic!("p1 is {other:?}"),
    }
    assert!(
        matches!(&contents.partitions[1].filesystem, Filesystem::Fat { label, files } if label == "BATON-B" && files.is_empty())
    );
    assert!(
        matches!(&contents.partitions[2].filesystem, Filesystem::Fat { label, .. } if label == "BATON-CFG")
    );
    assert_eq!(
        contents.partitions[3].filesystem,
        Filesystem::Ext4 {
            label: "baton-data".to_owned(),
            uuid: "42424242-4242-4242-4242-424242424242".to_owned()
        }
    );

    assert_eq!(
        read_partition_file(&img, 1, "cmdline.txt").expect("cmdline"),
        b"console=ttyAMA0\n"
    );
    assert_eq!(
        read_partition_file(&img, 1, "vmlinuz")
            .expect("kernel")
            .len() as u64,
        3 * MIB
    );
    assert!(matches!(
        read_partition_file(&img, 5, "x"),
        Err(ImageError::NoPartition { .. })
    ));
    assert!(matches!(
        read_partition_file(&img, 4, "x"),
        Err(ImageError::Fat { partition: 4, .. })
    ));
}

#[test]
fn same_inputs_same_image_bytes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (dir.path().join("a.img"), dir.path().join("b.img"));
    build(&a, dir.path());
    build(&b, dir.path());
    assert!(fs::read(&a).expect("a") == fs::read(&b).expect("b"));
}

#[test]
fn options_must_match_the_partition() {
    let dir = tempfile::tempdir().expect("temp dir");
    let l = layout();
    let mut img = ImageWriter::create(&dir.path().join("x.img"), l, DISK_ID).expect("create");
    let mut wrong = fat_options(l.boot, "BATON-BOOT", 1);
    wrong.hidden_sectors = 0;
    assert!(matches!(
        img.write_fat32(Partition::Boot, &wrong, &FatDir::new()),
        Err(ImageError::Mismatch {
            partition: 1,
            what: "hidden_sectors",
            ..
        })
    ));
    assert!(matches!(
        img.write_fat32(
            Partition::Config,
            &fat_options(l.boot, "BATON-CFG", 1),
            &FatDir::new()
        ),
        Err(ImageError::Mismatch { partition: 3, .. })
    ));
}
