use super::*;

#[path = "../../tests/support/fake_image.rs"]
mod fake_image;

/// Fails when the tools that make the fixture image are missing: scripts/setup installs them.
fn require_tools() {
    assert!(
        fake_image::tools_available(),
        "sfdisk, mkfs.fat or mcopy missing (apt-get install fdisk dosfstools mtools; scripts/setup does)"
    );
}

#[test]
fn extracts_virt_boot_files_with_defaults() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let image = fake_image::build(
        dir.path(),
        "virt.img",
        &[
            ("vmlinuz", b"KERNEL"),
            ("initramfs", b"INITRD"),
            ("cmdline.txt", b"console=ttyAMA0 quiet\n"),
        ],
    );
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let files = extract(&image, &out).unwrap();
    assert_eq!(files.machine, Machine::Virt);
    assert_eq!(files.board, "qemu-virt");
    assert_eq!(files.cmdline, "console=ttyAMA0 quiet");
    assert_eq!(std::fs::read(&files.kernel).unwrap(), b"KERNEL");
    assert_eq!(std::fs::read(&files.initramfs).unwrap(), b"INITRD");
    assert_eq!(files.dtb, None);
    assert_eq!(files.image_size, std::fs::metadata(&image).unwrap().len());
}

#[test]
fn follows_a_raspi3b_manifest() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let manifest = br#"{"board":"pi3b","qemu_machine":"raspi3b","dtb":"bcm2837-rpi-3-b.dtb","kernel":"kernel8.img"}"#;
    let image = fake_image::build(
        dir.path(),
        "pi.img",
        &[
            ("baton.json", manifest),
            ("kernel8.img", b"K8"),
            ("initramfs", b"I"),
            ("bcm2837-rpi-3-b.dtb", b"DTB"),
            ("cmdline.txt", b"console=ttyAMA0"),
        ],
    );
    let files = extract(&image, dir.path()).unwrap();
    assert_eq!(files.machine, Machine::Raspi3b);
    assert_eq!(files.board, "pi3b");
    assert_eq!(std::fs::read(&files.kernel).unwrap(), b"K8");
    assert_eq!(std::fs::read(files.dtb.unwrap()).unwrap(), b"DTB");
}

#[test]
fn names_the_missing_kernel() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let image = fake_image::build(
        dir.path(),
        "nokernel.img",
        &[("cmdline.txt", b"x"), ("initramfs", b"I")],
    );
    let err = extract(&image, dir.path()).unwrap_err();
    assert!(
        matches!(&err, ImageError::MissingFile { file, .. } if file == "vmlinuz"),
        "{err}"
    );
    assert!(err.to_string().contains("has no vmlinuz"), "{err}");
}

#[test]
fn rejects_unsupported_machine_and_pi_without_dtb() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let common: [(&str, &[u8]); 3] = [
        ("vmlinuz", b"K"),
        ("initramfs", b"I"),
        ("cmdline.txt", b"c"),
    ];
    let mut files = common.to_vec();
    files.push(("baton.json", br#"{"qemu_machine":"raspi5"}"#));
    let image = fake_image::build(dir.path(), "pi4.img", &files);
    let err = extract(&image, dir.path()).unwrap_err();
    assert!(
        matches!(err, ImageError::UnsupportedMachine { ref machine, .. } if machine == "raspi5")
    );

    let mut files = common.to_vec();
    files.push(("baton.json", br#"{"qemu_machine":"raspi3b"}"#));
    let image = fake_image::build(dir.path(), "nodtb.img", &files);
    assert!(matches!(
        extract(&image, dir.path()),
        Err(ImageError::MissingDtb { .. })
    ));
}

#[test]
fn rejects_files_that_are_not_images() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zeros.img");
    std::fs::write(&path, vec![0u8; 4096]).unwrap();
    assert!(matches!(
        extract(&path, dir.path()),
        Err(ImageError::NoMbr { .. })
    ));
    let missing = dir.path().join("missing.img");
    let err = extract(&missing, dir.path()).unwrap_err();
    assert!(matches!(err, ImageError::Read { .. }));
    assert!(err.to_string().contains("missing.img"));
}
