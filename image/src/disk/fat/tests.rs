//! The FAT32 writer judged by fsck.fat and mtools, and the reader judged against mkfs.fat.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use super::*;
use crate::disk::host_tools::{arg, check, run};
use crate::disk::region::Region;

const MIB: u64 = 1 << 20;

fn options(size: u64) -> FatOptions {
    FatOptions {
        size,
        label: "BATON-CFG".to_owned(),
        volume_id: 0x1234_5678,
        mtime: 1_700_000_000,
        hidden_sectors: 0,
    }
}

/// Bytes that differ from cluster to cluster, so a misplaced cluster shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}

/// A boot-partition-like tree plus the awkward cases: empty file, exactly one cluster (512 bytes
/// on a 64 MiB volume), many clusters, deep nesting, a directory spanning several clusters.
fn sample_tree() -> (FatDir, BTreeMap<String, Vec<u8>>) {
    let mut files = BTreeMap::new();
    files.insert(
        "config.txt".to_owned(),
        b"arm_64bit=1\nkernel=vmlinuz\n".to_vec(),
    );
    files.insert(
        "cmdline.txt".to_owned(),
        b"console=ttyAMA0 quiet\n".to_vec(),
    );
    files.insert("bcm2837-rpi-3-b.dtb".to_owned(), pattern(30_000, 1));
    files.insert("bcm2837-rpi-3-b-plus.dtb".to_owned(), pattern(31_000, 2));
    files.insert("KERNEL8.IMG".to_owned(), pattern(700_000, 3));
    files.insert("empty".to_owned(), Vec::new());
    files.insert("one-cluster.bin".to_owned(), pattern(512, 4));
    files.insert("overlays/vc4-kms-v3d.dtbo".to_owned(), pattern(2000, 5));
    files.insert("overlays/README".to_owned(), b"overlays\n".to_vec());
    files.insert("a/b/c/d/deep file name.txt".to_owned(), b"deep\n".to_vec());
    for i in 0..40 {
        files.insert(
            format!("services/service-number-{i:02}.toml"),
            format!("name = \"s{i}\"\n").into_bytes(),
        );
    }
    let mut root = FatDir::new();
    for (path, data) in &files {
        root.add_file(path, data.clone()).expect("add file");
    }
    root.add_dir("images").expect("empty dir");
    (root, files)
}

fn write_image(path: &Path, opts: &FatOptions, tree: &FatDir) {
    let mut f = File::create(path).expect("create image");
    write_fat32(&mut f, opts, tree).expect("write FAT32");
}

fn fsck(path: &Path) {
    let out = check("fsck.fat", &["-n", "-V", arg(path)]);
    assert!(!out.contains("differ"), "fsck.fat -n complained:\n{out}");
}

/// Every regular file under `dir`, keyed by `/`-separated relative path.
fn host_files(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in fs::read_dir(dir).expect("read dir") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if entry.file_type().expect("type").is_dir() {
            host_files(&entry.path(), &rel, out);
        } else {
            out.insert(rel, fs::read(entry.path()).expect("read"));
        }
    }
}

#[test]
fn fsck_and_mtools_accept_the_written_volume() {
    let dir = tempfile::tempdir().expect("temp dir");
    let img = dir.path().join("fat.img");
    let (tree, files) = sample_tree();
    let opts = options(64 * MIB);
    write_image(&img, &opts, &tree);
    assert_eq!(fs::metadata(&img).expect("stat").len(), 64 * MIB);
    fsck(&img);

    let info = check("minfo", &["-i", arg(&img), "::"]);
    assert!(info.contains("serial number: 12345678"), "{info}");
    assert!(info.contains("disk type=\"FAT32   \""), "{info}");
    let label = check("fatlabel", &[arg(&img)]);
    assert_eq!(label.trim(), "BATON-CFG");

    let out = dir.path().join("out");
    fs::create_dir(&out).expect("mkdir");
    check(
        "mcopy",
        &["-s", "-n", "-m", "-i", arg(&img), "::/*", arg(&out)],
    );
    let mut copied = BTreeMap::new();
    host_files(&out, "", &mut copied);
    assert_eq!(copied, files);
    assert!(out.join("images").is_dir());
}

#[test]
fn fatfs_reads_back_the_same_tree() {
    let dir = tempfile::tempdir().expect("temp dir");
    let img = dir.path().join("fat.img");
    let (tree, files) = sample_tree();
    write_image(&img, &options(64 * MIB), &tree);

    let listed = list_files(File::open(&img).expect("open")).expect("list");
    let sizes: BTreeMap<String, u64> = listed
        .iter()
        .filter(|e| !e.is_dir)
        .map(|e| (e.path.clone(), e.size))
        .collect();
    let expected: BTreeMap<String, u64> = files
        .iter()
        .map(|(p, d)| (p.clone(), d.len() as u64))
        .collect();
    assert_eq!(sizes, expected);
    assert!(listed.iter().any(|e| e.is_dir && e.path == "a/b/c"));
    for (path, data) in &files {
        let got = read_file(File::open(&img).expect("open"), path).expect("read file");
        assert_eq!(&got, data, "{path}");
    }
    let label = volume_label(File::open(&img).expect("open")).expect("label");
    assert_eq!(label, "BATON-CFG");
}

#[test]
fn output_is_deterministic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (tree, _) = sample_tree();
    let a = dir.path().join("a.img");
    let b = dir.path().join("b.img");
    write_image(&a, &options(64 * MIB), &tree);
    write_image(&b, &options(64 * MIB), &tree.clone());
    assert!(fs::read(&a).expect("a") == fs::read(&b).expect("b"));
}

#[test]
fn larger_clusters_and_non_ascii_names() {
    // 300 MiB: 4 KiB clusters, so "one cluster" and "many clusters" change meaning.
    let dir = tempfile::tempdir().expect("temp dir");
    let img = dir.path().join("big.img");
    let mut tree = FatDir::new();
    tree.add_file("grüße.txt", "hallo".as_bytes())
        .expect("unicode name");
    tree.add_file("one", pattern(4096, 7)).expect("one cluster");
    tree.add_file("many", pattern(4096 * 9 + 1, 8))
        .expect("many clusters");
    tree.add_file("exactly-13chr", b"x".to_vec())
        .expect("13-char name");
    write_image(&img, &options(300 * MIB), &tree);
    fsck(&img);
    assert_eq!(
        read_file(File::open(&img).expect("open"), "grüße.txt").expect("read"),
        b"hallo"
    );
    assert_eq!(
        read_file(File::open(&img).expect("open"), "many").expect("read"),
        pattern(4096 * 9 + 1, 8)
    );
}

#[test]
fn writes_into_a_region_of_a_larger_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let img = dir.path().join("disk.img");
    let file = File::create_new(&img).expect("create");
    file.set_len(80 * MIB).expect("size");
    let (tree, files) = sample_tree();
    let mut region = Region::new(&file, 4 * MIB, 64 * MIB).expect("region");
    write_fat32(&mut region, &options(64 * MIB), &tree).expect("write");
    drop(file);

    let f = File::open(&img).expect("open");
    let volume = Region::new(&f, 4 * MIB, 64 * MIB).expect("region");
    let got = read_file(volume, "overlays/vc4-kms-v3d.dtbo").expect("read");
    assert_eq!(&got, &files["overlays/vc4-kms-v3d.dtbo"]);
}

#[test]
fn reads_volumes_made_by_mkfs_fat_and_mtools() {
    let dir = tempfile::tempdir().expect("temp dir");
    let img = dir.path().join("mkfs.img");
    check(
        "mkfs.fat",
        &["-F", "32", "-n", "OTHER", "-C", arg(&img), "65536"],
    );
    let src = dir.path().join("cmdline.txt");
    fs::write(&src, "console=ttyAMA0\n").expect("write");
    check("mmd", &["-i", arg(&img), "::/overlays"]);
    check(
        "mcopy",
        &["-i", arg(&img), arg(&src), "::/overlays/Long Name.txt"],
    );
    check("mcopy", &["-i", arg(&img), arg(&src), "::/cmdline.txt"]);

    let listed = list_files(File::open(&img).expect("open")).expect("list");
    let paths: Vec<&str> = listed.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["overlays", "overlays/Long Name.txt", "cmdline.txt"]);
    let got = read_file(File::open(&img).expect("open"), "overlays/long name.txt").expect("read");
    assert_eq!(got, b"console=ttyAMA0\n");
    assert_eq!(
        volume_label(File::open(&img).expect("open")).expect("label"),
        "OTHER"
    );
}

#[test]
fn rejects_bad_names_clashes_and_overflow() {
    let mut tree = FatDir::new();
    assert!(matches!(
        tree.add_file("a:b", Vec::new()),
        Err(FatError::InvalidName { .. })
    ));
    tree.add_file("Config.txt", Vec::new()).expect("add");
    assert!(matches!(
        tree.add_file("CONFIG.TXT", Vec::new()),
        Err(FatError::Exists { .. })
    ));
    assert!(matches!(
        tree.add_file("Config.txt/x", Vec::new()),
        Err(FatError::Exists { .. })
    ));
    tree.add_file("big", vec![0u8; 40 * MIB as usize])
        .expect("add");
    let mut sink = std::io::Cursor::new(Vec::new());
    assert!(matches!(
        write_fat32(&mut sink, &options(34 * MIB), &tree),
        Err(FatError::Full { .. })
    ));
    let mut bad_label = options(64 * MIB);
    bad_label.label = "lower".to_owned();
    assert!(matches!(
        write_fat32(&mut sink, &bad_label, &FatDir::new()),
        Err(FatError::InvalidLabel(_))
    ));
}

#[test]
fn a_crashed_tool_run_is_reported() {
    // fsck.fat must fail on a volume whose FAT is damaged; guards against a checker that passes anything.
    let dir = tempfile::tempdir().expect("temp dir");
    let img = dir.path().join("bad.img");
    let (tree, _) = sample_tree();
    write_image(&img, &options(64 * MIB), &tree);
    let g = geometry::Geometry::for_size(64 * MIB).expect("geometry");
    let mut f = fs::OpenOptions::new().write(true).open(&img).expect("open");
    f.seek(SeekFrom::Start(g.fat_offset(0) + 4 * 3))
        .expect("seek");
    f.write_all(&0x0fff_fff7u32.to_le_bytes()).expect("corrupt");
    drop(f);
    assert!(!run("fsck.fat", &["-n", arg(&img)]).status.success());
}
