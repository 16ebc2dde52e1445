//! The profile's tables, and its effect on a real process of this kernel.

use super::*;

fn names(tables: &[&[allowed::Call]]) -> Vec<&'static str> {
    tables
        .iter()
        .flat_map(|t| t.iter().map(|(n, _)| n.trim_start_matches("SYS_")))
        .collect()
}

#[test]
fn the_tables_are_consistent() {
    let allow = names(&[allowed::ALWAYS, allowed::ARCH]);
    let deny = names(&[denied::ALWAYS, denied::ARCH]);
    let mut all: Vec<i64> = [
        allowed::ALWAYS,
        allowed::ARCH,
        allowed::UNLISTED,
        denied::ALWAYS,
        denied::ARCH,
    ]
    .iter()
    .flat_map(|t| t.iter().map(|(_, nr)| *nr))
    .collect();
    let count = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), count, "a call is listed twice");
    for must in [
        "read",
        "write",
        "execve",
        "exit_group",
        "mmap",
        "futex",
        "rt_sigreturn",
    ] {
        assert!(allow.contains(&must), "{must} is not allowed");
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
        assert!(deny.contains(&must), "{must} is not refused");
    }
    for never in ["clone3", "kcmp", "process_vm_readv", "mbind", "init_module"] {
        assert!(!allow.contains(&never), "{never} is allowed");
    }
    assert_eq!(name_of(libc::SYS_mount), Some("mount"));
    assert_eq!(name_of(libc::SYS_clone3), Some("clone3"));
    assert_eq!(name_of(-1), None);
}

#[test]
fn it_builds_two_programs() {
    let p = profile().expect("profile");
    assert_eq!(p.programs.len(), 2);
    // At least one jump per listed call.
    assert!(p.programs[0].len() > allowed::ALWAYS.len());
    assert!(p.programs[1].len() > denied::ALWAYS.len());
}

/// What a confined process gets back from `call`: the result, or `-errno`.
fn ret(result: libc::c_long) -> libc::c_long {
    if result == -1 {
        // SAFETY: errno is thread-local and always readable.
        -libc::c_long::from(unsafe { *libc::__errno_location() })
    } else {
        result
    }
}

#[test]
fn a_confined_process_gets_enosys_for_unknown_calls_and_eperm_for_refused_ones() {
    let profile = profile().expect("profile");
    // Only raw system calls between fork and _exit: the parent has other threads.
    // SAFETY: the child runs no code that takes a lock or allocates; it ends with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        let code = if install(&profile).is_err() {
            100
        } else {
            confined_probes()
        };
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status),
        "the child died: status {status:#x}"
    );
    let failed = libc::WEXITSTATUS(status);
    let what = [
        "ok",
        "getpid was refused",
        "mount did not answer EPERM",
        "unshare(CLONE_NEWNET) did not answer EPERM",
        "clone(CLONE_NEWNET) did not answer EPERM",
        "kcmp (not on the list) did not answer ENOSYS",
        "clone3 did not answer ENOSYS",
        "personality(query) was refused",
        "personality(READ_IMPLIES_EXEC) did not answer ENOSYS",
    ];
    let said = what
        .get(failed as usize)
        .copied()
        .unwrap_or("installing failed");
    assert_eq!(failed, 0, "{said}");
}

/// Runs in the confined child: 0 when every probe answered as it must, else the first
/// failure's number.
fn confined_probes() -> i32 {
    let eperm = -libc::c_long::from(libc::EPERM);
    let enosys = -libc::c_long::from(libc::ENOSYS);
    // SAFETY: raw system calls with integer or null arguments; none of them can succeed in a
    // way that harms the test (mount and unshare are refused, kcmp only compares, clone with a
    // namespace flag is refused and a child it made would _exit at once).
    unsafe {
        if ret(libc::syscall(libc::SYS_getpid)) <= 0 {
            return 1;
        }
        let null = std::ptr::null::<libc::c_char>();
        if ret(libc::syscall(libc::SYS_mount, null, null, null, 0, null)) != eperm {
            return 2;
        }
        if ret(libc::syscall(libc::SYS_unshare, libc::CLONE_NEWNET)) != eperm {
            return 3;
        }
        let flags = (libc::CLONE_NEWNET | libc::SIGCHLD) as libc::c_ulong;
        let child = ret(libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0));
        if child == 0 {
            libc::_exit(0);
        }
        if child != eperm {
            return 4;
        }
        if ret(libc::syscall(libc::SYS_kcmp, 0, 0, 0, 0, 0)) != enosys {
            return 5;
        }
        if ret(libc::syscall(libc::SYS_clone3, 0, 0)) != enosys {
            return 6;
        }
        if ret(libc::syscall(libc::SYS_personality, 0xffff_ffffu64)) < 0 {
            return 7;
        }
        if ret(libc::syscall(libc::SYS_personality, 0x0040_0000u64)) != enosys {
            return 8;
        }
    }
    0
}
