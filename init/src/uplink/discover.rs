//! Finding the board's wired interfaces in sysfs.
//!
//! A physical Ethernet interface has a `device` link (it sits on a bus: SoC, USB, PCI, virtio),
//! `type` 1 (ARPHRD_ETHER) and no wireless extensions. That excludes `lo`, bridges, veths,
//! tunnels and Wi-Fi.

use std::io;
use std::path::Path;

/// ARPHRD_ETHER in `/sys/class/net/<if>/type`.
const ARPHRD_ETHER: &str = "1";

/// Names of the physical Ethernet interfaces under `sys_class_net` (normally
/// `/sys/class/net`), sorted.
pub fn ethernet_interfaces(sys_class_net: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(sys_class_net)? {
        let dir = entry?.path();
        let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let kind = std::fs::read_to_string(dir.join("type")).unwrap_or_default();
        let physical = dir.join("device").exists();
        let wireless = dir.join("wireless").exists() || dir.join("phy80211").exists();
        if physical && !wireless && kind.trim() == ARPHRD_ETHER {
            names.push(name.to_string());
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway directory under the system temp dir, removed on drop.
    struct TempDir(std::path::PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn iface(root: &Path, name: &str, kind: &str, device: bool, wireless: bool) {
        let d = root.join(name);
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join("type"), format!("{kind}\n")).expect("write type");
        if device {
            std::fs::create_dir(d.join("device")).expect("mkdir device");
        }
        if wireless {
            std::fs::create_dir(d.join("wireless")).expect("mkdir wireless");
        }
    }

    #[test]
    fn keeps_physical_ethernet_only_sorted() {
        let root = TempDir(
            std::env::temp_dir().join(format!("baton-net-discover-{}", std::process::id())),
        );
        iface(&root.0, "lo", "772", false, false);
        iface(&root.0, "eth1", "1", true, false);
        iface(&root.0, "eth0", "1", true, false);
        iface(&root.0, "usb0", "1", true, false);
        iface(&root.0, "veth0", "1", false, false);
        iface(&root.0, "wlan0", "1", true, true);
        iface(&root.0, "can0", "280", true, false);
        assert_eq!(
            ethernet_interfaces(&root.0).expect("scan"),
            vec!["eth0", "eth1", "usb0"]
        );
    }

    #[test]
    fn missing_directory_is_an_error() {
        assert!(ethernet_interfaces(Path::new("/nonexistent/baton/sys/class/net")).is_err());
    }
}
