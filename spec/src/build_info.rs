//! `/etc/baton/build.json` in the initramfs: what the image builder tells the init about the
//! image it is running from. Written by `baton image build`, read by the init at boot.

use serde::{Deserialize, Serialize};

/// Path of the file inside the initramfs.
pub const PATH: &str = "/etc/baton/build.json";

/// Facts about the image, fixed at build time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildInfo {
    /// Board name, as in `board-configs/<board>.toml` (for example `qemu-virt`).
    pub board: String,
    /// Kernel release the modules belong to (for example `6.1.0-40-arm64`).
    pub kernel_release: String,
    /// Debian package version of the kernel.
    pub kernel_package: String,
    /// Version of baton that built the image.
    pub baton_version: String,
    /// MBR disk signature of the image (the 32-bit "disk identifier" at offset 440), used to
    /// find the boot disk among all block devices.
    pub disk_id: u32,
    /// Kernel modules to load, as paths relative to `/lib/modules/<kernel_release>/`, in the
    /// order they must be loaded (dependencies and soft dependencies first).
    pub modules: Vec<String>,
    /// Serial console device name without `/dev/` (for example `ttyAMA0`).
    pub console: String,
}

/// Partition numbers (1-based, as in `/dev/mmcblk0pN`) in every baton image.
pub mod partition {
    /// FAT32 boot partition, slot A.
    pub const BOOT_A: u32 = 1;
    /// FAT32 boot partition, slot B (for A/B updates with tryboot).
    pub const BOOT_B: u32 = 2;
    /// FAT32 config partition labelled `BATON-CFG`.
    pub const CONFIG: u32 = 3;
    /// ext4 data partition, grown to fill the card on first boot.
    pub const DATA: u32 = 4;
    /// Volume label of the config partition.
    pub const CONFIG_LABEL: &str = "BATON-CFG";
    /// Volume label of the data partition.
    pub const DATA_LABEL: &str = "baton-data";
}
