//! Calls refused with `EPERM` (not merely unknown): what Docker's default profile keeps from a
//! container without extra capabilities, named so that a program that asks gets the answer a
//! capability check would give. Mounting, pivoting and chroot (see the module docs of
//! `runtime`: a second `chroot` is the classic way out of a root entered with `MS_MOVE`), kernel
//! modules, kexec, reboot, swap, clock setting, the kernel keyring, BPF, perf, io_uring,
//! userfaultfd, quotas, accounting, `open_by_handle_at`, `setns` and `unshare`.

use super::allowed::{calls, Call};

/// Refused with `EPERM` whatever their arguments, on every architecture.
#[rustfmt::skip]
pub const ALWAYS: &[Call] = calls![
    SYS_acct, SYS_add_key, SYS_bpf, SYS_chroot, SYS_clock_adjtime, SYS_clock_settime,
    SYS_delete_module, SYS_finit_module, SYS_fsconfig, SYS_fsmount, SYS_fsopen, SYS_fspick,
    SYS_init_module, SYS_io_uring_enter, SYS_io_uring_register, SYS_io_uring_setup, SYS_kexec_load,
    SYS_keyctl, SYS_lookup_dcookie, SYS_mount, SYS_mount_setattr, SYS_move_mount,
    SYS_open_by_handle_at, SYS_open_tree, SYS_perf_event_open, SYS_pivot_root, SYS_quotactl,
    SYS_reboot, SYS_request_key, SYS_setns, SYS_settimeofday, SYS_swapoff, SYS_swapon, SYS_syslog,
    SYS_umount2, SYS_unshare, SYS_userfaultfd, SYS_vhangup, SYS_nfsservctl,
];

/// Refused with `EPERM`: x86_64's own, and `kexec_file_load`, which the libc crate numbers for
/// x86_64 only (on aarch64 it is off the allow list, so refused with `ENOSYS`).
#[cfg(target_arch = "x86_64")]
#[rustfmt::skip]
pub const ARCH: &[Call] = calls![
    SYS_iopl, SYS_ioperm, SYS_uselib, SYS__sysctl, SYS_kexec_file_load,
];

/// Refused with `EPERM`: no others on this architecture.
#[cfg(not(target_arch = "x86_64"))]
pub const ARCH: &[Call] = &[];
