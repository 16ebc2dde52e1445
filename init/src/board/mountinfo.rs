//! What `/proc/self/mountinfo` says about the board's root.

/// Whether `mountinfo` (the text of `/proc/self/mountinfo`) shows `/` on the initramfs, which
/// `pivot_root` cannot leave.
pub fn root_is_initramfs(mountinfo: &str) -> bool {
    mountinfo.lines().any(|line| {
        let mut halves = line.splitn(2, " - ");
        let before = halves.next().unwrap_or_default();
        let fstype = halves.next().and_then(|after| after.split(' ').next());
        before.split(' ').nth(4) == Some("/") && fstype == Some("rootfs")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_an_initramfs_root() {
        let initramfs =
            "1 1 0:2 / / rw - rootfs rootfs rw,size=239k\n22 1 0:20 / /proc rw - proc proc rw\n";
        assert!(root_is_initramfs(initramfs));
        let disk = "22 1 254:4 / / rw,relatime shared:1 - ext4 /dev/vda4 rw\n30 22 0:5 / /rootfs rw - tmpfs rootfs rw\n";
        assert!(!root_is_initramfs(disk));
    }
}
