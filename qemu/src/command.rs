//! The `qemu-system-aarch64` command line for one board. Pure: it only builds arguments, so
//! every device and option choice is unit-tested here.

use std::ffi::OsString;
use std::path::Path;

use crate::image::{BootFiles, Machine};
use crate::ports::{Forward, GuestForward};

/// The two unix datagram sockets that connect a board's second NIC to the runner's hub.
#[derive(Debug, Clone, Copy)]
pub struct SegmentLink<'a> {
    /// Socket QEMU binds (the board's end).
    pub board: &'a Path,
    /// Socket the hub binds (where QEMU sends frames).
    pub hub: &'a Path,
}

/// Everything that varies between boards and runs.
#[derive(Debug, Clone)]
pub struct BoardCommand<'a> {
    /// Files extracted from the image.
    pub boot: &'a BootFiles,
    /// Board number, 1-based.
    pub index: usize,
    /// The board's qcow2 overlay.
    pub disk: &'a Path,
    /// Memory in MiB (`virt` only; `raspi3b` always has 1 GiB).
    pub memory_mib: u32,
    /// CPU count (`virt` only; `raspi3b` always has 4).
    pub cpus: u32,
    /// This board's forwards, host ports already shifted.
    pub forwards: &'a [Forward],
    /// Connections from the board to the host (the same for every board).
    pub guest_forwards: &'a [GuestForward],
    /// The shared L2 segment (eth1), when there is one.
    pub segment: Option<SegmentLink<'a>>,
    /// Unix socket for QMP, which the runner uses to know QEMU is up.
    pub qmp: &'a Path,
    /// Extra kernel arguments appended to `cmdline.txt`.
    pub extra_append: Option<&'a str>,
}

/// MAC address of a board's NIC: `52:54:00:ba:<nic>:<board>` (QEMU's local prefix), so every
/// board on the shared segment differs and a board keeps its MAC across restarts.
pub fn mac(index: usize, nic: u8) -> String {
    format!("52:54:00:ba:{nic:02x}:{:02x}", index & 0xff)
}

/// The guest's name for the NIC on the shared segment: the second virtio NIC on `virt`
/// (`eth1`), the second USB network adapter on `raspi3b` (`usb1`); `raspi4b` has none. The
/// runner passes it to the init as `baton.cluster_interface=<name>`, so boards cluster on it
/// whatever their config says.
pub fn segment_interface(machine: Machine) -> &'static str {
    match machine {
        Machine::Virt => "eth1",
        Machine::Raspi3b => "usb1",
        Machine::Raspi4b => "none",
    }
}

/// Quotes a value for a QEMU `key=value,...` option list (commas are doubled).
fn opt(value: &Path) -> String {
    value.to_string_lossy().replace(',', ",,")
}

impl BoardCommand<'_> {
    /// Arguments for `qemu-system-aarch64`, without the program name.
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
        let boot = self.boot;
        let mut append = boot.cmdline.clone();
        if boot.machine.is_pi() {
            // QEMU's BCM2835 power-management model (the Pi 4's too) resets the machine as soon
            // as the watchdog is armed instead of counting down, so an emulated Pi must not arm
            // it.
            append.push_str(" baton.watchdog=off");
        }
        if boot.machine == Machine::Raspi4b {
            // What QEMU's raspi4b does not model, and Linux would touch at boot and fault on
            // (a synchronous external abort kills PID 1): the Broadcom L2 interrupt controllers
            // and the HDMI I2C, and the clock gates the kernel turns off when unused.
            append.push_str(
                " clk_ignore_unused initcall_blacklist=brcmstb_l2_driver_init,brcmstb_i2c_driver_init",
            );
        }
        if self.segment.is_some() {
            // Tell the init which NIC is the shared segment: eth0 is the board's own user network.
            append.push_str(" baton.cluster_interface=");
            append.push_str(segment_interface(boot.machine));
        }
        if let Some(extra) = self.extra_append.filter(|e| !e.is_empty()) {
            append.push(' ');
            append.push_str(extra);
        }
        push(&["-name", &format!("board{}", self.index)]);
        push(&["-M", boot.machine.qemu_name()]);
        if boot.machine == Machine::Virt {
            push(&["-cpu", "cortex-a72", "-m", &self.memory_mib.to_string()]);
            push(&["-smp", &self.cpus.to_string()]);
        }
        // Nothing QEMU would add by itself (monitor, default serial, parallel port, VGA).
        push(&["-nodefaults", "-no-user-config", "-display", "none"]);
        push(&[
            "-chardev",
            "stdio,id=console,signal=off",
            "-serial",
            "chardev:console",
        ]);
        push(&[
            "-qmp",
            &format!("unix:{},server=on,wait=off", opt(self.qmp)),
        ]);
        push(&[
            "-kernel",
            &opt_plain(&boot.kernel),
            "-initrd",
            &opt_plain(&boot.initramfs),
        ]);
        if let Some(dtb) = &boot.dtb {
            push(&["-dtb", &opt_plain(dtb)]);
        }
        push(&["-append", &append]);
        let user = self.user_netdev();
        let dgram = self.segment.map(|s| {
            format!(
                "dgram,id=net1,local.type=unix,local.path={},remote.type=unix,remote.path={}",
                opt(s.board),
                opt(s.hub)
            )
        });
        match boot.machine {
            Machine::Virt => {
                let drive = format!("if=none,id=disk0,format=qcow2,file={}", opt(self.disk));
                push(&["-drive", &drive, "-device", "virtio-blk-pci,drive=disk0"]);
                push(&["-device", "virtio-rng-pci", "-device", "i6300esb"]);
                push(&["-netdev", &user]);
                // No option ROM: the guest boots from -kernel, so QEMU needs no ipxe-qemu ROMs.
                push(&[
                    "-device",
                    &format!(
                        "virtio-net-pci,netdev=net0,mac={},romfile=",
                        mac(self.index, 0)
                    ),
                ]);
                if let Some(d) = &dgram {
                    push(&["-netdev", d]);
                    let dev = format!(
                        "virtio-net-pci,netdev=net1,mac={},romfile=",
                        mac(self.index, 1)
                    );
                    push(&["-device", &dev]);
                }
            }
            // No network to attach (see `Machine::Raspi4b`): forwards and a segment are not
            // possible, and the lab refuses them before it gets here.
            Machine::Raspi4b => {
                let drive = format!("if=sd,format=qcow2,file={}", opt(self.disk));
                push(&["-drive", &drive]);
            }
            Machine::Raspi3b => {
                let drive = format!("if=sd,format=qcow2,file={}", opt(self.disk));
                push(&["-drive", &drive]);
                push(&["-netdev", &user]);
                push(&[
                    "-device",
                    &format!("usb-net,netdev=net0,mac={}", mac(self.index, 0)),
                ]);
                if let Some(d) = &dgram {
                    push(&["-netdev", d]);
                    push(&[
                        "-device",
                        &format!("usb-net,netdev=net1,mac={}", mac(self.index, 1)),
                    ]);
                }
            }
        }
        a.into_iter().map(OsString::from).collect()
    }

    /// `-netdev user` for eth0: DHCP from QEMU, nothing leaves the machine (`restrict=on`), and
    /// each forward bound to the host's 127.0.0.1 only.
    fn user_netdev(&self) -> String {
        let mut s = String::from("user,id=net0,restrict=on");
        for f in self.forwards {
            s.push_str(&format!(",hostfwd=tcp:127.0.0.1:{}-:{}", f.host, f.guest));
        }
        for f in self.guest_forwards {
            s.push_str(&format!(
                ",guestfwd=tcp:{}-tcp:127.0.0.1:{}",
                f.guest, f.host
            ));
        }
        s
    }
}

/// A path given as a whole option value (`-kernel PATH`), where no comma quoting applies.
fn opt_plain(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn boot(machine: Machine) -> BootFiles {
        BootFiles {
            image: PathBuf::from("/img/baton.img"),
            image_size: 1 << 20,
            board: "qemu-virt".into(),
            machine,
            kernel: PathBuf::from("/w/vmlinuz"),
            initramfs: PathBuf::from("/w/initramfs"),
            dtb: machine.is_pi().then(|| PathBuf::from("/w/pi.dtb")),
            cmdline: "console=ttyAMA0".into(),
        }
    }

    fn joined(cmd: &BoardCommand<'_>) -> String {
        let args: Vec<String> = cmd
            .args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        args.join(" ")
    }

    /// The value following `flag` each time it appears.
    fn values(cmd: &BoardCommand<'_>, flag: &str) -> Vec<String> {
        let args: Vec<String> = cmd
            .args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].clone())
            .collect()
    }

    fn command<'a>(
        boot: &'a BootFiles,
        fwd: &'a [Forward],
        seg: Option<SegmentLink<'a>>,
    ) -> BoardCommand<'a> {
        BoardCommand {
            boot,
            index: 2,
            disk: Path::new("/w/board2,x.qcow2"),
            memory_mib: 512,
            cpus: 2,
            forwards: fwd,
            guest_forwards: &[],
            segment: seg,
            qmp: Path::new("/w/q2.sock"),
            extra_append: Some("baton.test=1"),
        }
    }

    #[test]
    fn virt_board_has_the_agreed_devices() {
        let b = boot(Machine::Virt);
        let fwd = [
            Forward {
                host: 8081,
                guest: 80,
            },
            Forward {
                host: 2223,
                guest: 22,
            },
        ];
        let cmd = command(&b, &fwd, None);
        let line = joined(&cmd);
        assert!(
            line.contains("-M virt -cpu cortex-a72 -m 512 -smp 2"),
            "{line}"
        );
        assert!(line.contains("-nodefaults"), "{line}");
        assert!(line.contains("-display none"), "{line}");
        assert_eq!(values(&cmd, "-kernel"), ["/w/vmlinuz"]);
        assert_eq!(values(&cmd, "-initrd"), ["/w/initramfs"]);
        assert_eq!(values(&cmd, "-append"), ["console=ttyAMA0 baton.test=1"]);
        assert_eq!(
            values(&cmd, "-drive"),
            ["if=none,id=disk0,format=qcow2,file=/w/board2,,x.qcow2"]
        );
        assert_eq!(
            values(&cmd, "-device"),
            [
                "virtio-blk-pci,drive=disk0",
                "virtio-rng-pci",
                "i6300esb",
                "virtio-net-pci,netdev=net0,mac=52:54:00:ba:00:02,romfile="
            ]
        );
        assert_eq!(
            values(&cmd, "-netdev"),
            ["user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:8081-:80,hostfwd=tcp:127.0.0.1:2223-:22"]
        );
        assert!(values(&cmd, "-dtb").is_empty());
    }

    #[test]
    fn guest_forwards_reach_the_hosts_loopback() {
        let b = boot(Machine::Virt);
        let guest = [GuestForward {
            guest: "10.0.2.100:5000".parse().unwrap(),
            host: 41234,
        }];
        let mut cmd = command(&b, &[], None);
        cmd.guest_forwards = &guest;
        assert_eq!(
            values(&cmd, "-netdev"),
            ["user,id=net0,restrict=on,guestfwd=tcp:10.0.2.100:5000-tcp:127.0.0.1:41234"]
        );
    }

    #[test]
    fn segment_adds_a_second_nic_on_the_hub() {
        let b = boot(Machine::Virt);
        let seg = SegmentLink {
            board: Path::new("/w/b2.sock"),
            hub: Path::new("/w/h2.sock"),
        };
        let cmd = command(&b, &[], Some(seg));
        assert_eq!(
            values(&cmd, "-append"),
            ["console=ttyAMA0 baton.cluster_interface=eth1 baton.test=1"]
        );
        assert_eq!(
            values(&cmd, "-netdev"),
            [
                "user,id=net0,restrict=on",
                "dgram,id=net1,local.type=unix,local.path=/w/b2.sock,remote.type=unix,remote.path=/w/h2.sock"
            ]
        );
        let devices = values(&cmd, "-device");
        assert_eq!(
            devices.last().map(String::as_str),
            Some("virtio-net-pci,netdev=net1,mac=52:54:00:ba:01:02,romfile=")
        );
    }

    #[test]
    fn raspi4b_uses_the_sd_card_and_dtb_and_no_network() {
        let b = boot(Machine::Raspi4b);
        let cmd = command(&b, &[], None);
        let line = joined(&cmd);
        assert!(line.contains("-M raspi4b"), "{line}");
        assert!(line.contains("if=sd,format=qcow2"), "{line}");
        assert_eq!(values(&cmd, "-dtb"), ["/w/pi.dtb"]);
        assert!(!line.contains("-netdev") && !line.contains("-m "), "{line}");
        assert!(line.contains("baton.watchdog=off"), "{line}");
    }

    #[test]
    fn raspi3b_uses_sd_card_dtb_and_usb_net() {
        let b = boot(Machine::Raspi3b);
        let seg = SegmentLink {
            board: Path::new("/w/b2.sock"),
            hub: Path::new("/w/h2.sock"),
        };
        let cmd = command(&b, &[], Some(seg));
        let line = joined(&cmd);
        assert!(line.contains("-M raspi3b"), "{line}");
        assert_eq!(
            values(&cmd, "-append"),
            ["console=ttyAMA0 baton.watchdog=off baton.cluster_interface=usb1 baton.test=1"]
        );
        assert!(!line.contains("-cpu") && !line.contains("-smp"), "{line}");
        assert!(
            !line.contains("virtio") && !line.contains("i6300esb"),
            "{line}"
        );
        assert_eq!(values(&cmd, "-dtb"), ["/w/pi.dtb"]);
        assert_eq!(
            values(&cmd, "-drive"),
            ["if=sd,format=qcow2,file=/w/board2,,x.qcow2"]
        );
        assert_eq!(
            values(&cmd, "-device"),
            [
                "usb-net,netdev=net0,mac=52:54:00:ba:00:02",
                "usb-net,netdev=net1,mac=52:54:00:ba:01:02"
            ]
        );
    }

    #[test]
    fn macs_differ_per_board_and_nic() {
        assert_ne!(mac(1, 0), mac(2, 0));
        assert_ne!(mac(1, 0), mac(1, 1));
    }
}
