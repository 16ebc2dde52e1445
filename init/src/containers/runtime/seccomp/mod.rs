//! The containers' seccomp profile, compiled to BPF in pure Rust (seccompiler) for the
//! architecture the init runs on.
//!
//! libcontainer ignores a spec's seccomp section without its C-backed `libseccomp` feature, so
//! the helper compiles these filters itself and the container process installs them right
//! before exec (see [`super::executor`]).
//!
//! The profile is an allow list ([`allowed`]), as the container field's default profiles are:
//! a call it does not name answers `ENOSYS`, so libc falls back where it can, and a call that a
//! future kernel adds is refused until it is reviewed. A second filter refuses with `EPERM` the
//! calls that a capability check would refuse ([`denied`]) and `clone` with any namespace flag;
//! installed after the allow list, its `EPERM` wins over the first filter's `ENOSYS` (among
//! errno answers the newest filter's counts). `personality` is allowed for the usual personas
//! only. `clone3` is not on the list: its flags sit behind a pointer a filter cannot read, and
//! its `ENOSYS` makes libc use `clone`. `ptrace` stays allowed, as in Docker on kernels from
//! 4.8: without `CAP_SYS_PTRACE` it reaches only the container's own processes. Calls of a
//! foreign architecture (32-bit compat) kill the process. Both filters are installed with
//! `SECCOMP_FILTER_FLAG_LOG`, so the kernel logs every refusal (an `audit: type=1326` line naming
//! the process and the call's number), which the board maps to the instance.

use std::collections::BTreeMap;
use std::io;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

pub mod allowed;
pub mod denied;

/// Errors building or installing the filters.
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
    /// The kernel refused a filter.
    #[error("cannot install the seccomp filter: {0}")]
    Install(#[source] io::Error),
}

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

/// The `personality` values a container may set: Linux, `UNAME26`, `ADDR_NO_RANDOMIZE` and
/// both, and the query `0xffffffff`.
pub const PERSONAS: [u64; 5] = [0, 0x0008, 0x20000, 0x20008, 0xffff_ffff];

/// The compiled profile: install every program, in order, in the container process.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The BPF programs (the allow list, then the `EPERM` filter).
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

/// The kernel's name of call `nr` when the profile names it (`mount`), for messages.
pub fn name_of(nr: i64) -> Option<&'static str> {
    let tables = [
        allowed::ALWAYS,
        allowed::ARCH,
        allowed::UNLISTED,
        denied::ALWAYS,
        denied::ARCH,
    ];
    tables
        .iter()
        .flat_map(|t| t.iter())
        .chain([&("SYS_clone", libc::SYS_clone)])
        .chain([&("SYS_personality", libc::SYS_personality)])
        .find(|(_, n)| *n == nr)
        .map(|(name, _)| name.trim_start_matches("SYS_"))
}

fn each_arg0(
    values: &[u64],
    op: impl Fn(u64) -> SeccompCmpOp,
) -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
    values
        .iter()
        .map(|&v| {
            SeccompRule::new(vec![SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                op(v),
                v,
            )?])
        })
        .collect()
}

/// Compiles the profile for the architecture the init runs on.
pub fn profile() -> Result<Profile, Error> {
    let arch = native_arch()?;
    let build = |source| Error::Build { arch, source };
    let number = |nr: libc::c_long| -> i64 { nr };
    // The allow list: anything else answers ENOSYS.
    let mut allowed: BTreeMap<i64, Vec<SeccompRule>> = allowed::ALWAYS
        .iter()
        .chain(allowed::ARCH)
        .map(|(_, nr)| (number(*nr), Vec::new()))
        .collect();
    allowed.insert(number(libc::SYS_clone), Vec::new());
    let personas = each_arg0(&PERSONAS, |_| SeccompCmpOp::Eq).map_err(build)?;
    allowed.insert(number(libc::SYS_personality), personas);
    let allow_list = SeccompFilter::new(
        allowed,
        SeccompAction::Errno(libc::ENOSYS as u32),
        SeccompAction::Allow,
        arch,
    )
    .map_err(build)?;
    // The refusals: EPERM, as a capability check would answer.
    let mut refused: BTreeMap<i64, Vec<SeccompRule>> = denied::ALWAYS
        .iter()
        .chain(denied::ARCH)
        .map(|(_, nr)| (number(*nr), Vec::new()))
        .collect();
    let namespaces = each_arg0(&NAMESPACE_FLAGS, SeccompCmpOp::MaskedEq).map_err(build)?;
    refused.insert(number(libc::SYS_clone), namespaces);
    let refusals = SeccompFilter::new(
        refused,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(build)?;
    Ok(Profile {
        programs: vec![
            BpfProgram::try_from(allow_list).map_err(build)?,
            BpfProgram::try_from(refusals).map_err(build)?,
        ],
    })
}

/// Installs one program on the calling thread, with refusals logged by the kernel where it
/// can (`SECCOMP_FILTER_FLAG_LOG`, from Linux 4.14), without otherwise.
fn install_one(program: &BpfProgram) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: u16::try_from(program.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
        // seccompiler's sock_filter is the kernel's struct (repr(C), same fields).
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    for flags in [libc::SECCOMP_FILTER_FLAG_LOG, 0] {
        // SAFETY: `fprog` points at `program`, which outlives the call; the kernel copies the
        // filter and keeps no pointer to it.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                &fprog as *const libc::sock_fprog,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINVAL) || flags == 0 {
            return Err(e);
        }
    }
    Ok(())
}

/// Installs `profile` on the calling thread (the container process): sets no_new_privs (so
/// the filters need no privilege), then every program in order.
pub fn install(profile: &Profile) -> Result<(), Error> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(Error::Install(io::Error::last_os_error()));
    }
    for program in &profile.programs {
        install_one(program).map_err(Error::Install)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
