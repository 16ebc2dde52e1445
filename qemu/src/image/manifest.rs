//! `baton.json` at the root of the boot partition: which board the image is for and how QEMU
//! boots it. Written by `baton image build`; every key is optional so older images still boot.
//! Unknown keys are ignored on purpose: the builder may record more than the runner needs, and
//! the runner must keep booting images from newer builders.

use serde::Deserialize;

/// Name of the file at the root of the boot partition.
pub const FILE: &str = "baton.json";

/// The QEMU machines the runner knows how to boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    /// `-M virt`: virtio disk and network, PCI watchdog; what CI and the demo boot.
    Virt,
    /// `-M raspi3b`: SD card, USB network, fixed 1 GiB of memory and 4 cores.
    Raspi3b,
    /// `-M raspi4b`: SD card, fixed 2 GiB of memory and 4 cores, and no network at all (QEMU
    /// models neither the Pi 4's Ethernet, GENET, nor the PCIe bus its USB controller is on):
    /// it boots the Pi 4's kernel, device tree and card, which is what it is used for.
    Raspi4b,
}

impl Machine {
    /// The name QEMU's `-M` takes.
    pub fn qemu_name(self) -> &'static str {
        match self {
            Machine::Virt => "virt",
            Machine::Raspi3b => "raspi3b",
            Machine::Raspi4b => "raspi4b",
        }
    }

    /// Whether it is a Raspberry Pi model (a device tree, an SD card, no PCI).
    pub fn is_pi(self) -> bool {
        matches!(self, Machine::Raspi3b | Machine::Raspi4b)
    }

    /// Whether the model has a network the runner can attach.
    pub fn has_network(self) -> bool {
        !matches!(self, Machine::Raspi4b)
    }

    /// Parses a `qemu_machine` value; `None` for machines the runner cannot boot.
    pub fn from_qemu_name(name: &str) -> Option<Machine> {
        match name {
            "virt" => Some(Machine::Virt),
            "raspi3b" => Some(Machine::Raspi3b),
            "raspi4b" => Some(Machine::Raspi4b),
            _ => None,
        }
    }
}

/// `baton.json` as written by the image builder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Manifest {
    /// Board name (`qemu-virt`, `pi3b`, ...). Default: `qemu-virt`.
    #[serde(default)]
    pub board: Option<String>,
    /// QEMU machine to boot the image on (`virt` or `raspi3b`). Default: `virt`.
    #[serde(default)]
    pub qemu_machine: Option<String>,
    /// Kernel file on the boot partition. Default: `vmlinuz`.
    #[serde(default)]
    pub kernel: Option<String>,
    /// Initramfs file on the boot partition. Default: `initramfs`.
    #[serde(default)]
    pub initramfs: Option<String>,
    /// Device tree file on the boot partition; required for `raspi3b`, unused for `virt`.
    #[serde(default)]
    pub dtb: Option<String>,
}

impl Manifest {
    /// Board name, with its default.
    pub fn board(&self) -> &str {
        self.board.as_deref().unwrap_or("qemu-virt")
    }
    /// QEMU machine name, with its default.
    pub fn qemu_machine(&self) -> &str {
        self.qemu_machine.as_deref().unwrap_or("virt")
    }
    /// Kernel file name, with its default.
    pub fn kernel(&self) -> &str {
        self.kernel.as_deref().unwrap_or("vmlinuz")
    }
    /// Initramfs file name, with its default.
    pub fn initramfs(&self) -> &str {
        self.initramfs.as_deref().unwrap_or("initramfs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_describe_a_virt_image() {
        let m: Manifest = serde_json::from_str("{}").unwrap();
        assert_eq!(m.board(), "qemu-virt");
        assert_eq!(
            Machine::from_qemu_name(m.qemu_machine()),
            Some(Machine::Virt)
        );
        assert_eq!(m.kernel(), "vmlinuz");
        assert_eq!(m.initramfs(), "initramfs");
    }

    #[test]
    fn reads_a_pi_manifest_and_ignores_extra_keys() {
        let m: Manifest = serde_json::from_str(
            r#"{"board":"pi3b","qemu_machine":"raspi3b","dtb":"bcm2837-rpi-3-b.dtb",
                "kernel":"kernel8.img","baton_version":"0.1.0"}"#,
        )
        .unwrap();
        assert_eq!(m.board(), "pi3b");
        assert_eq!(
            Machine::from_qemu_name(m.qemu_machine()),
            Some(Machine::Raspi3b)
        );
        assert_eq!(m.kernel(), "kernel8.img");
        assert_eq!(m.dtb.as_deref(), Some("bcm2837-rpi-3-b.dtb"));
    }

    #[test]
    fn unknown_machine_is_not_bootable() {
        assert_eq!(Machine::from_qemu_name("raspi5"), None);
        assert_eq!(Machine::from_qemu_name("raspi4b"), Some(Machine::Raspi4b));
    }
}
