use super::*;
use crate::boot::disk;
use crate::boot::testbed::{Testbed, DISK_ID, IMAGE_END, MIB};

fn boot_disk(tb: &Testbed) -> BootDisk {
    disk::scan(&tb.ctx, DISK_ID).0.expect("boot disk")
}

/// What the data partition is mounted with.
const MOUNT_OPTIONS: &str = "prjquota,resuid=131071,resgid=131071";

/// 444 MiB of 4 KiB blocks: a file system that fills the partition as built.
const FULL: u64 = 444 * 256;

#[test]
fn first_boot_grows_partition_then_file_system() {
    let tb = Testbed::new();
    let disk_sectors = 16 * 1024 * u64::from(MIB) + 1234;
    tb.image_disk(disk_sectors, FULL);
    let data = prepare(&tb.ctx, &boot_disk(&tb)).expect("mounted");

    let new_end = disk_sectors / mbr::ALIGN_SECTORS * mbr::ALIGN_SECTORS;
    let start = u64::from(580 * MIB);
    let new_len = new_end - start;
    // The MBR on "disk" now says so, and nothing else in sector 0 changed.
    let sector0: [u8; 512] = tb.read("/dev/vda")[..512].try_into().expect("512 bytes");
    assert_eq!(
        mbr::entry(&sector0, 4).map(|e| u64::from(e.sectors)),
        Some(new_len)
    );
    assert_eq!(mbr::entry(&sector0, 3).map(|e| e.sectors), Some(64 * MIB));
    assert_eq!(
        tb.sys.calls_starting("blkpg"),
        [format!(
            "blkpg-resize /dev/vda 4 {} {}",
            start * 512,
            new_len * 512
        )]
    );
    let blocks = new_len * 512 / 4096;
    assert_eq!(
        tb.sys.calls_starting("mount").concat() + &tb.sys.calls_starting("ext4").concat(),
        format!("mount ext4 /dev/vda4 /data {MOUNT_OPTIONS}ext4-resize /data {blocks}")
    );
    assert_eq!(
        (data.device.as_str(), data.size_bytes, data.grown),
        ("/dev/vda4", blocks * 4096, true)
    );
    // The test's root is no ext4 file system with quotas: the reason is kept for the status.
    assert!(!data.disk_quotas);
    assert!(data
        .disk_quotas_missing
        .expect("a reason")
        .contains("does not enforce project quotas"));
}

#[test]
fn later_boots_change_nothing() {
    let tb = Testbed::new();
    tb.image_disk(IMAGE_END, FULL);
    let data = prepare(&tb.ctx, &boot_disk(&tb)).expect("mounted");
    assert!(!data.grown);
    assert_eq!(data.size_bytes, 444 << 20);
    assert_eq!(
        tb.sys.calls(),
        [format!("mount ext4 /dev/vda4 /data {MOUNT_OPTIONS}")]
    );
}

#[test]
fn interrupted_grow_finishes_the_file_system() {
    // The table was grown (the kernel knows 1 GiB more) but the file system was not.
    let tb = Testbed::new();
    tb.image_disk(IMAGE_END, FULL);
    tb.file("/sys/class/block/vda4/size", format!("{}\n", 1468 * MIB));
    let data = prepare(&tb.ctx, &boot_disk(&tb)).expect("mounted");
    assert!(data.grown);
    assert_eq!(tb.sys.calls_starting("blkpg"), Vec::<String>::new());
    assert_eq!(
        tb.sys.calls_starting("ext4"),
        [format!("ext4-resize /data {}", 1468 * 256)]
    );
}

#[test]
fn a_refused_grow_still_mounts() {
    let tb = Testbed::new();
    tb.image_disk(4 * IMAGE_END, FULL);
    tb.sys.fail("blkpg", nix::libc::EBUSY);
    let data = prepare(&tb.ctx, &boot_disk(&tb)).expect("mounted");
    assert!(!data.grown);
    assert_eq!(tb.sys.calls_starting("ext4"), Vec::<String>::new());
    assert_eq!(tb.state().errors().len(), 1, "{:?}", tb.state().errors());
    assert!(tb.state().errors()[0].contains("partition 4 on /dev/vda"));
}

#[test]
fn an_unmountable_partition_is_an_error() {
    let tb = Testbed::new();
    tb.image_disk(IMAGE_END, FULL);
    tb.sys.fail("mount ext4", nix::libc::EINVAL);
    let err = prepare(&tb.ctx, &boot_disk(&tb)).expect_err("not mounted");
    assert!(err.to_string().contains("ext4 on /data"), "{err}");
}

#[test]
fn a_card_without_project_quotas_mounts_without_them_and_says_why() {
    let tb = Testbed::new();
    tb.image_disk(IMAGE_END, FULL);
    tb.sys.fail(
        &format!("mount ext4 /dev/vda4 /data {MOUNT_OPTIONS}"),
        nix::libc::EINVAL,
    );
    let data = prepare(&tb.ctx, &boot_disk(&tb)).expect("mounted");
    assert_eq!(
        tb.sys.calls_starting("mount"),
        [
            format!("mount ext4 /dev/vda4 /data {MOUNT_OPTIONS}"),
            "mount ext4 /dev/vda4 /data resuid=131071,resgid=131071".to_string()
        ]
    );
    assert!(!data.disk_quotas);
    assert!(
        tb.console()
            .iter()
            .any(|l| l.contains("mounting /dev/vda4 without project quotas")),
        "{:?}",
        tb.console()
    );
}

#[test]
fn reads_64bit_superblocks() {
    let sb = parse_superblock(&build_superblock(0x1_0000_0010)).expect("ext4");
    assert_eq!(sb.blocks, 0x1_0000_0010);
    assert_eq!(sb.block_size, 4096);
    assert!(parse_superblock(&[0; 1024]).is_err());
}
