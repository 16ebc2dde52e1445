//! The checks against a directory that plays sysfs and a mount table, and the write and its
//! read-back against a regular file that plays the card.

use std::path::Path;

use super::*;

fn put(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// A host with a fixed disk `sda` (its `sda1` is `/`) and an SD card in a reader, `sdb`
/// (its `sdb1` mounted at `/media/card` when `card_mounted`).
fn host(card_mounted: bool) -> (tempfile::TempDir, Host) {
    let dir = tempfile::tempdir().expect("dir");
    let root = dir.path();
    for (disk, dev, removable, sectors) in [
        ("sda", "8:0", "0", "500118192"),
        ("sdb", "8:16", "1", "62333952"),
    ] {
        put(root, &format!("devices/{disk}/size"), sectors);
        put(root, &format!("devices/{disk}/removable"), removable);
        put(root, &format!("devices/{disk}/dev"), dev);
        put(root, &format!("devices/{disk}/{disk}1/partition"), "1");
        let minor: u32 = dev[2..].parse().expect("minor");
        put(
            root,
            &format!("devices/{disk}/{disk}1/dev"),
            &format!("8:{}", minor + 1),
        );
    }
    put(root, "devices/sdb/device/vendor", "Generic");
    put(root, "devices/sdb/device/model", "STORAGE DEVICE");
    std::fs::create_dir(root.join("block")).expect("block");
    for (name, target) in [
        ("sda", "sda"),
        ("sdb", "sdb"),
        ("sda1", "sda/sda1"),
        ("sdb1", "sdb/sdb1"),
    ] {
        std::os::unix::fs::symlink(
            root.join("devices").join(target),
            root.join("block").join(name),
        )
        .expect("link");
    }
    let mut table = String::from("22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n");
    if card_mounted {
        table.push_str("40 22 8:17 / /media/card rw,nosuid shared:9 - vfat /dev/sdb1 rw\n");
    }
    put(root, "mountinfo", &table);
    let host = Host {
        block: root.join("block"),
        mountinfo: root.join("mountinfo"),
    };
    (dir, host)
}

#[test]
fn a_card_in_a_reader_is_described_and_may_be_written() {
    let (_dir, host) = host(false);
    let card = host.disk("sdb").expect("sdb");
    assert_eq!(card.size, 62_333_952 * 512);
    assert!(card.removable);
    assert_eq!(card.model, "Generic STORAGE DEVICE");
    assert_eq!(
        host.refusals(&card, 1 << 30, false).expect("checks"),
        Vec::<String>::new()
    );
}

#[test]
fn a_mounted_card_a_system_disk_a_partition_and_a_small_card_are_refused() {
    let (_dir, mounted) = host(true);
    let card = mounted.disk("sdb").expect("sdb");
    let why = mounted.refusals(&card, 1 << 30, false).expect("checks");
    assert_eq!(why.len(), 1, "{why:?}");
    assert!(why[0].contains("mounted at /media/card"), "{why:?}");

    let system = mounted.disk("sda").expect("sda");
    let why = mounted.refusals(&system, 1 << 30, true).expect("checks");
    assert!(
        why.iter().any(|w| w.contains("system disk")),
        "--force does not take it: {why:?}"
    );
    let why = mounted.refusals(&system, 1 << 30, false).expect("checks");
    assert!(
        why.iter().any(|w| w.contains("not a removable disk")),
        "{why:?}"
    );

    let err = mounted.disk("sdb1").expect_err("a partition");
    assert!(err.to_string().contains("is a partition"), "{err}");
    let err = mounted.disk("sdz").expect_err("no such disk");
    assert!(err.to_string().contains("not a disk"), "{err}");

    let (_dir, free) = host(false);
    let card = free.disk("sdb").expect("sdb");
    let why = free.refusals(&card, card.size + 1, false).expect("checks");
    assert_eq!(why.len(), 1, "{why:?}");
    assert!(why[0].contains("does not fit"), "{why:?}");
}

#[test]
fn the_image_is_written_from_the_start_and_read_back_the_same() {
    let dir = tempfile::tempdir().expect("dir");
    let image = dir.path().join("baton.img");
    let card = dir.path().join("card");
    let bytes: Vec<u8> = (0..(9 << 20) + 123)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&image, &bytes).expect("image");
    // The card is larger and holds other bytes beyond the image.
    std::fs::write(&card, vec![0xEE; 16 << 20]).expect("card");
    let mut seen = Vec::new();
    write(&image, &card, |done, total| seen.push((done, total))).expect("written");
    let total = bytes.len() as u64;
    assert_eq!(seen.last(), Some(&(total, total)));
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{seen:?}");
    assert_eq!(
        digest(&card, total).expect("card"),
        digest(&image, total).expect("image")
    );
    let after = std::fs::read(&card).expect("card");
    assert!(
        after[bytes.len()..].iter().all(|b| *b == 0xEE),
        "nothing past the image changes"
    );
    assert!(
        digest(&image, total + 1).is_err(),
        "reading past the end is an error"
    );
}

#[test]
fn a_regular_file_is_not_a_device() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").expect("file");
    let err = kernel_name(&file).expect_err("not a block device");
    assert!(err.to_string().contains("not a block device"), "{err}");
}
