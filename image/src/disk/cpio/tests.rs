//! The newc writer judged by GNU cpio and gzip.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::*;
use crate::disk::host_tools::{arg, check, check_in};

const MTIME: u32 = 1_700_000_000;

fn sample() -> CpioArchive {
    let mut a = CpioArchive::new(MTIME);
    a.add_file("init", 0o755, b"\x7fELF pretend".to_vec())
        .expect("init");
    a.add_file("etc/passwd", 0o644, b"root:x:0:0::/:/init\n".to_vec())
        .expect("passwd");
    a.add_file("etc/empty", 0o600, Vec::new()).expect("empty");
    a.add_file(
        "lib/modules/6.1.0-arm64/kernel/fs/ext4/ext4.ko",
        0o644,
        vec![0xa5; 5003],
    )
    .expect("module");
    a.add_dir("tmp", 0o1777).expect("tmp");
    a.add_symlink("sbin/init", "/init").expect("symlink");
    a
}

fn extract(archive: &[u8], dir: &Path) {
    let file = dir.join("initramfs.cpio");
    fs::write(&file, archive).expect("write archive");
    let root = dir.join("root");
    fs::create_dir(&root).expect("mkdir");
    check_in(
        "cpio",
        &[
            "-i",
            "-d",
            "-m",
            "--no-absolute-filenames",
            "-F",
            arg(&file),
        ],
        Some(&root),
    );
}

#[test]
fn cpio_lists_parents_first_and_extracts_the_same_tree() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bytes = sample().write_newc(Vec::new()).expect("write");
    let file = dir.path().join("list.cpio");
    fs::write(&file, &bytes).expect("write");
    let listed = check("cpio", &["-t", "-F", arg(&file)]);
    let names: Vec<&str> = listed.lines().collect();
    assert_eq!(
        names,
        [
            "etc",
            "etc/empty",
            "etc/passwd",
            "init",
            "lib",
            "lib/modules",
            "lib/modules/6.1.0-arm64",
            "lib/modules/6.1.0-arm64/kernel",
            "lib/modules/6.1.0-arm64/kernel/fs",
            "lib/modules/6.1.0-arm64/kernel/fs/ext4",
            "lib/modules/6.1.0-arm64/kernel/fs/ext4/ext4.ko",
            "sbin",
            "sbin/init",
            "tmp",
        ]
    );

    extract(&bytes, dir.path());
    let root = dir.path().join("root");
    assert_eq!(
        fs::read(root.join("init")).expect("init"),
        b"\x7fELF pretend"
    );
    assert_eq!(
        fs::read(root.join("lib/modules/6.1.0-arm64/kernel/fs/ext4/ext4.ko")).expect("ko"),
        vec![0xa5; 5003]
    );
    assert_eq!(fs::read(root.join("etc/empty")).expect("empty"), b"");
    let mode = |p: &str| {
        fs::symlink_metadata(root.join(p))
            .expect("stat")
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("init"), 0o755);
    assert_eq!(mode("etc/empty"), 0o600);
    assert_eq!(mode("tmp"), 0o1777);
    assert_eq!(mode("lib/modules"), 0o755);
    assert_eq!(
        fs::read_link(root.join("sbin/init")).expect("link"),
        Path::new("/init")
    );
    let meta = fs::metadata(root.join("etc/passwd")).expect("stat");
    assert_eq!(meta.mtime(), i64::from(MTIME));
}

#[test]
fn gzip_output_is_valid_and_deterministic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let gz = sample().write_gzip(Vec::new()).expect("gzip");
    // Magic, deflate, no flags, mtime 0, "best" level marker, OS unknown.
    assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 0xff]);
    let file = dir.path().join("initramfs.cpio.gz");
    fs::write(&file, &gz).expect("write");
    check("gzip", &["-t", arg(&file)]);

    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain)
        .expect("gunzip");
    assert_eq!(plain, sample().write_newc(Vec::new()).expect("newc"));

    // Same entries added in another order: same bytes.
    let mut other = CpioArchive::new(MTIME);
    other.add_symlink("sbin/init", "/init").expect("symlink");
    other.add_dir("tmp", 0o1777).expect("tmp");
    other
        .add_file(
            "lib/modules/6.1.0-arm64/kernel/fs/ext4/ext4.ko",
            0o644,
            vec![0xa5; 5003],
        )
        .expect("module");
    other
        .add_file("etc/empty", 0o600, Vec::new())
        .expect("empty");
    other
        .add_file("etc/passwd", 0o644, b"root:x:0:0::/:/init\n".to_vec())
        .expect("passwd");
    other
        .add_file("init", 0o755, b"\x7fELF pretend".to_vec())
        .expect("init");
    assert_eq!(other.write_gzip(Vec::new()).expect("gzip"), gz);
}

#[test]
fn known_bytes_of_a_one_file_archive() {
    let mut a = CpioArchive::new(0x5f5e_1000);
    a.add_file("init", 0o755, b"hi".to_vec()).expect("init");
    let bytes = a.write_newc(Vec::new()).expect("write");
    let expected_head = concat!(
        "070701", "00000001", "000081ED", "00000000", "00000000", "00000001", "5F5E1000",
        "00000002", "00000000", "00000000", "00000000", "00000000", "00000005", "00000000",
    );
    assert_eq!(&bytes[..110], expected_head.as_bytes());
    // Name "init\0" ends at 115, padded to 116; data "hi" padded to 120; then the trailer.
    assert_eq!(&bytes[110..120], b"init\0\0hi\0\0");
    assert_eq!(&bytes[120..126], b"070701");
    assert_eq!(&bytes[230..241], b"TRAILER!!!\0");
    assert_eq!(bytes.len() % 4, 0);
}

#[test]
fn device_nodes_are_listed_with_their_numbers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut a = CpioArchive::new(MTIME);
    a.add_node("dev/console", 0o600, CpioNode::CharDevice(5, 1))
        .expect("console");
    a.add_node("dev/vda", 0o660, CpioNode::BlockDevice(254, 0))
        .expect("disk");
    let file = dir.path().join("dev.cpio");
    fs::write(&file, a.write_newc(Vec::new()).expect("write")).expect("write");
    let listed = check("cpio", &["-tv", "--numeric-uid-gid", "-F", arg(&file)]);
    let lines: Vec<&str> = listed.lines().collect();
    assert!(
        lines[1].starts_with("crw-------")
            && lines[1].contains("5,")
            && lines[1].ends_with("dev/console"),
        "{listed}"
    );
    assert!(
        lines[2].starts_with("brw-rw----")
            && lines[2].contains("254,")
            && lines[2].ends_with("dev/vda"),
        "{listed}"
    );
}

#[test]
fn rejects_clashes_and_bad_paths() {
    let mut a = sample();
    assert!(matches!(
        a.add_file("init", 0o644, Vec::new()),
        Err(CpioError::Exists(_))
    ));
    assert!(matches!(
        a.add_file("init/x", 0o644, Vec::new()),
        Err(CpioError::Exists(_))
    ));
    assert!(matches!(
        a.add_dir("init", 0o755),
        Err(CpioError::Exists(_))
    ));
    assert!(matches!(
        a.add_file("../etc", 0o644, Vec::new()),
        Err(CpioError::InvalidPath(_))
    ));
    assert!(matches!(
        a.add_file("/", 0o644, Vec::new()),
        Err(CpioError::InvalidPath(_))
    ));
    // Leading slashes are dropped, an explicit mode replaces the implicit parent's.
    a.add_dir("/lib/modules", 0o700).expect("dir");
    let dir = tempfile::tempdir().expect("temp dir");
    extract(&a.write_newc(Vec::new()).expect("write"), dir.path());
    let meta = fs::metadata(dir.path().join("root/lib/modules")).expect("stat");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o700);
}
