//! The cluster interface a runner names on the kernel command line.
//!
//! Under `baton qemu run` each board's first NIC is its own private network and the boards meet
//! on a second one; the runner knows this and says so with `baton.cluster_interface=<name>`.
//! `[cluster] interface` in `cluster.toml` wins over it; a real board has neither and keeps the
//! default (the first wired interface with an address).

/// The kernel argument that names the cluster interface.
pub const ARGUMENT: &str = "baton.cluster_interface";

/// The interface named by `baton.cluster_interface=<name>` on `cmdline` (the last one wins, as
/// with any kernel argument), or `None` when it is absent or not an interface name (1-15
/// letters, digits, `-`, `_`, `.`).
pub fn interface_from_cmdline(cmdline: &str) -> Option<String> {
    let name = cmdline
        .split_whitespace()
        .filter_map(|arg| arg.strip_prefix(ARGUMENT)?.strip_prefix('='))
        .next_back()?;
    let valid = !name.is_empty()
        && name.len() < 16
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    valid.then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_interface_the_runner_names() {
        let cmdline = "console=ttyAMA0 quiet baton.cluster_interface=eth1 rootwait\n";
        assert_eq!(interface_from_cmdline(cmdline).as_deref(), Some("eth1"));
    }

    #[test]
    fn the_last_one_wins() {
        let cmdline = "baton.cluster_interface=eth1 baton.cluster_interface=end0";
        assert_eq!(interface_from_cmdline(cmdline).as_deref(), Some("end0"));
    }

    #[test]
    fn absent_empty_or_invalid_names_nothing() {
        for cmdline in [
            "",
            "console=ttyAMA0 quiet",
            "baton.cluster_interface",
            "baton.cluster_interface=",
            "baton.cluster_interfaces=eth1",
            "xbaton.cluster_interface=eth1",
            "baton.cluster_interface=eth1/../x",
            "baton.cluster_interface=a-name-far-too-long",
        ] {
            assert_eq!(interface_from_cmdline(cmdline), None, "{cmdline:?}");
        }
    }
}
