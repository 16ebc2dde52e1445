//! A Raspberry Pi 3B image boots on QEMU's `raspi3b` model and mounts its SD-card partitions.

use baton_tests::{api, boot, build_image, wait_ready, CLUSTER_TOML, TOKEN};

#[test]
fn pi3b_image_boots_on_raspi3b_and_mounts_its_sd_partitions() {
    let image = build_image("pi3b", &[("cluster.toml", CLUSTER_TOML)]);
    let cluster = boot(&image.path, 1, "pi3b");
    wait_ready(&cluster, 1, 1);
    let status = api(&cluster, 1, TOKEN)
        .status()
        .expect("status over the USB network");
    assert_eq!(status["board"], "pi3b");
    let data = &status["data"];
    assert!(
        data["device"]
            .as_str()
            .is_some_and(|d| d.starts_with("/dev/mmcblk")),
        "the data partition is on the SD card: {data}"
    );
    let files = baton_tests::strings(&status["config_files"]);
    assert!(
        files.iter().any(|f| f == "cluster.toml"),
        "the config partition is mounted: {files:?}"
    );
}
