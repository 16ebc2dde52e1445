//! The containers' default seccomp profile, compiled to BPF in pure Rust (seccompiler).
//!
//! libcontainer ignores a spec's seccomp section without its C-backed `libseccomp` feature, so
//! the helper compiles these filters itself and the container process installs them right
//! before exec (see [`super::executor`]).
//!
//! The profile is a deny list modelled on what Docker's default profile refuses to a container
//! without extra capabilities: mounting, pivoting and chroot (see below), kernel modules, kexec, reboot, swap,
//! clock setting, the kernel keyring, BPF, perf, io_uring, userfaultfd, quotas, accounting,
//! `open_by_handle_at`, `setns`/`unshare`, and `clone` with any namespace flag. Those return
//! `EPERM`. `clone3` returns `ENOSYS` (its flags sit behind a pointer a filter cannot read), so
//! libc falls back to `clone`, whose flags the filter checks. `ptrace` stays allowed, as in
//! Docker on kernels from 4.8: without `CAP_SYS_PTRACE` it reaches only the container's own
//! processes of the same user. `chroot` is refused (Docker allows it): if the board could not
//! leave the initramfs, containers enter their root with `MS_MOVE` and `chroot` instead of
//! `pivot_root`, and a second `chroot` is the classic way out of such a root; the profile does
//! not depend on that (see the module docs of `runtime`). Calls of a foreign architecture
//! (32-bit compat) kill the process. On x86_64 the x32 ABI is not covered; the boards are aarch64 and the x86_64
//! build exists for tests.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Errors building the filters.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// seccompiler refused a rule or the filter.
    #[error("cannot build the {arch:?} seccomp filter: {source}")]
    Build {
        /// The architecture compiled for.
        arch: TargetArch,
        /// seccompiler's reason.
        source: seccompiler::BackendError,
    },
    /// The process runs on an architecture the profile has no syscall table for.
    #[error("no seccomp syscall table for this architecture")]
    UnsupportedArch,
}

/// One syscall of the profile with its number on each architecture (`None`: not present).
#[derive(Debug, Clone, Copy)]
pub struct Syscall {
    /// The kernel's name for it.
    pub name: &'static str,
    /// Its number on aarch64 (the generic table of asm-generic/unistd.h).
    pub aarch64: Option<i64>,
    /// Its number on x86_64 (asm/unistd_64.h).
    pub x86_64: Option<i64>,
}

const fn both(name: &'static str, aarch64: i64, x86_64: i64) -> Syscall {
    Syscall {
        name,
        aarch64: Some(aarch64),
        x86_64: Some(x86_64),
    }
}

const fn x86(name: &'static str, x86_64: i64) -> Syscall {
    Syscall {
        name,
        aarch64: None,
        x86_64: Some(x86_64),
    }
}

/// Syscalls refused with `EPERM` whatever their arguments.
pub const DENIED: &[Syscall] = &[
    both("acct", 89, 163),
    both("add_key", 217, 248),
    both("bpf", 280, 321),
    both("clock_adjtime", 266, 305),
    both("clock_settime", 112, 227),
    both("settimeofday", 170, 164),
    both("delete_module", 106, 176),
    both("finit_module", 273, 313),
    both("init_module", 105, 175),
    both("fsconfig", 431, 431),
    both("fsmount", 432, 432),
    both("fsopen", 430, 430),
    both("fspick", 433, 433),
    both("move_mount", 429, 429),
    both("open_tree", 428, 428),
    both("mount_setattr", 442, 442),
    both("mount", 40, 165),
    both("umount2", 39, 166),
    both("pivot_root", 41, 155),
    both("chroot", 51, 161),
    both("kexec_load", 104, 246),
    both("kexec_file_load", 294, 320),
    both("keyctl", 219, 250),
    both("request_key", 218, 249),
    both("lookup_dcookie", 18, 212),
    both("perf_event_open", 241, 298),
    both("quotactl", 60, 179),
    both("reboot", 142, 169),
    both("setns", 268, 308),
    both("unshare", 97, 272),
    both("swapon", 224, 167),
    both("swapoff", 225, 168),
    both("syslog", 116, 103),
    both("userfaultfd", 282, 323),
    both("vhangup", 58, 153),
    both("open_by_handle_at", 265, 304),
    both("io_uring_setup", 425, 425),
    both("io_uring_enter", 426, 426),
    both("io_uring_register", 427, 427),
    both("nfsservctl", 42, 180),
    x86("iopl", 172),
    x86("ioperm", 173),
    x86("uselib", 134),
    x86("_sysctl", 156),
    x86("create_module", 174),
    x86("get_kernel_syms", 177),
    x86("query_module", 178),
];

/// `clone`: refused with `EPERM` when its flags (argument 0) ask for any new namespace.
pub const CLONE: Syscall = both("clone", 220, 56);

/// `clone3`: answered with `ENOSYS` so that libc falls back to `clone`.
pub const CLONE3: Syscall = both("clone3", 435, 435);

/// The namespace flags `clone` may not use.
pub const NAMESPACE_FLAGS: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// The compiled profile: install every program, in order, in the container process.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The BPF programs (the `EPERM` filter, then the `ENOSYS` one).
    pub programs: Vec<BpfProgram>,
}

/// The architecture this binary runs on, as seccompiler names it.
pub fn native_arch() -> Result<TargetArch, Error> {
    if cfg!(target_arch = "aarch64") {
        Ok(TargetArch::aarch64)
    } else if cfg!(target_arch = "x86_64") {
        Ok(TargetArch::x86_64)
    } else {
        Err(Error::UnsupportedArch)
    }
}

fn number(call: &Syscall, arch: TargetArch) -> Option<i64> {
    match arch {
        TargetArch::aarch64 => call.aarch64,
        TargetArch::x86_64 => call.x86_64,
        _ => None,
    }
}

/// Compiles the default profile for `arch`.
pub fn profile(arch: TargetArch) -> Result<Profile, Error> {
    let build = |source| Error::Build { arch, source };
    let mut denied: BTreeMap<i64, Vec<SeccompRule>> = DENIED
        .iter()
        .filter_map(|call| number(call, arch))
        .map(|nr| (nr, Vec::new()))
        .collect();
    if let Some(clone) = number(&CLONE, arch) {
        let rules = NAMESPACE_FLAGS
            .iter()
            .map(|&flag| {
                let cond = SeccompCondition::new(
                    0,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(flag),
                    flag,
                )?;
                SeccompRule::new(vec![cond])
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(build)?;
        denied.insert(clone, rules);
    }
    let eperm = SeccompFilter::new(
        denied,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(build)?;
    let mut enosys_rules = BTreeMap::new();
    if let Some(clone3) = number(&CLONE3, arch) {
        enosys_rules.insert(clone3, Vec::new());
    }
    let enosys = SeccompFilter::new(
        enosys_rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(build)?;
    Ok(Profile {
        programs: vec![
            BpfProgram::try_from(eperm).map_err(build)?,
            BpfProgram::try_from(enosys).map_err(build)?,
        ],
    })
}

/// Installs `profile` on the calling thread (the container process, after no_new_privs).
pub fn install(profile: &Profile) -> Result<(), seccompiler::Error> {
    for program in &profile.programs {
        seccompiler::apply_filter(program)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_for_aarch64_and_x86_64() {
        for arch in [TargetArch::aarch64, TargetArch::x86_64] {
            let p = profile(arch).expect("profile");
            assert_eq!(p.programs.len(), 2);
            // The deny filter holds at least one jump per denied syscall.
            assert!(p.programs[0].len() > DENIED.len(), "{arch:?}");
            assert!(!p.programs[1].is_empty());
        }
    }

    #[test]
    fn the_architectures_differ() {
        let a = profile(TargetArch::aarch64).expect("aarch64");
        let x = profile(TargetArch::x86_64).expect("x86_64");
        assert_ne!(a.programs[0], x.programs[0]);
    }

    #[test]
    fn every_denied_call_exists_on_some_arch_and_names_are_unique() {
        let mut names: Vec<_> = DENIED.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DENIED.len());
        for call in DENIED {
            assert!(
                call.aarch64.is_some() || call.x86_64.is_some(),
                "{}",
                call.name
            );
        }
        for must in [
            "mount",
            "umount2",
            "pivot_root",
            "kexec_load",
            "bpf",
            "setns",
            "unshare",
        ] {
            assert!(names.contains(&must), "{must} is not denied");
        }
    }

    /// The hand-written numbers agree with the libc crate's for the architecture under test.
    #[test]
    fn numbers_match_libc_for_this_arch() {
        let arch = native_arch().expect("a supported test architecture");
        let expect: &[(&str, libc::c_long)] = &[
            ("mount", libc::SYS_mount),
            ("umount2", libc::SYS_umount2),
            ("pivot_root", libc::SYS_pivot_root),
            ("chroot", libc::SYS_chroot),
            ("kexec_load", libc::SYS_kexec_load),
            ("kexec_file_load", libc::SYS_kexec_file_load),
            ("init_module", libc::SYS_init_module),
            ("finit_module", libc::SYS_finit_module),
            ("delete_module", libc::SYS_delete_module),
            ("bpf", libc::SYS_bpf),
            ("perf_event_open", libc::SYS_perf_event_open),
            ("reboot", libc::SYS_reboot),
            ("swapon", libc::SYS_swapon),
            ("swapoff", libc::SYS_swapoff),
            ("keyctl", libc::SYS_keyctl),
            ("add_key", libc::SYS_add_key),
            ("request_key", libc::SYS_request_key),
            ("setns", libc::SYS_setns),
            ("unshare", libc::SYS_unshare),
            ("open_by_handle_at", libc::SYS_open_by_handle_at),
            ("acct", libc::SYS_acct),
            ("settimeofday", libc::SYS_settimeofday),
            ("clock_settime", libc::SYS_clock_settime),
            ("clock_adjtime", libc::SYS_clock_adjtime),
            ("userfaultfd", libc::SYS_userfaultfd),
            ("syslog", libc::SYS_syslog),
            ("quotactl", libc::SYS_quotactl),
            ("vhangup", libc::SYS_vhangup),
            ("lookup_dcookie", libc::SYS_lookup_dcookie),
            ("io_uring_setup", libc::SYS_io_uring_setup),
            ("io_uring_enter", libc::SYS_io_uring_enter),
            ("io_uring_register", libc::SYS_io_uring_register),
            ("open_tree", libc::SYS_open_tree),
            ("move_mount", libc::SYS_move_mount),
            ("fsopen", libc::SYS_fsopen),
            ("fsconfig", libc::SYS_fsconfig),
            ("fsmount", libc::SYS_fsmount),
            ("fspick", libc::SYS_fspick),
            ("mount_setattr", libc::SYS_mount_setattr),
        ];
        for (name, nr) in expect {
            let call = DENIED.iter().find(|c| c.name == *name).expect(name);
            assert_eq!(number(call, arch), Some(*nr), "{name}");
        }
        assert_eq!(number(&CLONE, arch), Some(libc::SYS_clone));
        assert_eq!(number(&CLONE3, arch), Some(libc::SYS_clone3));
    }
}
