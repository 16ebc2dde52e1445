//! A Raspberry Pi 4B image boots on QEMU's `raspi4b` model to `baton: ready`: the Pi 4's
//! kernel, device tree (`bcm2711-rpi-4-b.dtb`) and module set, from its SD card, whose boot,
//! config and data partitions it finds and mounts. The model has no network (neither the Pi
//! 4's Ethernet nor its PCIe USB controller is modelled), so everything is read from the
//! board's serial console.

use baton_tests::{boot_forwarding, build_image, tail, wait_ready, CLUSTER_TOML};

#[test]
fn pi4b_image_boots_on_raspi4b_from_its_sd_card() {
    let image = build_image("pi4b", &[("cluster.toml", CLUSTER_TOML)]);
    let lab = boot_forwarding(&image.path, 1, "pi4b", &[]);
    wait_ready(&lab, 1, 1);
    let lines = lab.board(1).expect("board 1").lines();
    let said = |what: &str| lines.iter().any(|l| l.contains(what));
    for what in [
        "baton: board pi4b, image by baton",
        "baton: boot disk /dev/mmcblk",
        "mounted",
    ] {
        assert!(
            said(what),
            "no {what:?} on the console:\n{}",
            tail(&lines, 80)
        );
    }
    let data = lines
        .iter()
        .find(|l| l.starts_with("baton: data: /dev/mmcblk") && l.contains("mounted"))
        .unwrap_or_else(|| panic!("the data partition on the SD card:\n{}", tail(&lines, 80)));
    assert!(data.contains("p4 mounted"), "{data}");
}
