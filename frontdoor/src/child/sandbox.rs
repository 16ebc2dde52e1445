//! What the front door gives up before it serves (docs/design/front-door.md, section 1): it
//! faces the LAN, so a flaw in it must not reach the card or the init.
//!
//! - its own mount namespace, with mounts made private and the card's partitions (`/config`,
//!   `/data`) detached from it: their files are the init's (`/etc` stays: the resolver reads
//!   the `resolv.conf` the init keeps);
//! - `oom_score_adj` 500: the kernel kills it before the init and its services (it would
//!   otherwise inherit PID 1's -1000);
//! - at most 16384 descriptors, no core dumps;
//! - uid and gid 900 (`frontdoor` in rootfs/etc), no supplementary groups;
//! - not dumpable (no ptrace by the same uid, no /proc/self/mem for others) and no new
//!   privileges through any exec.
//!
//! It runs single-threaded, before the runtime: a namespace or an id change applies to the
//! calling thread, and there must be no other. Any step that fails is fatal. A seccomp filter
//! comes later.

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::resource::{setrlimit, Resource};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};

/// The front door's user and group (rootfs/etc/passwd and group).
pub const ID: u32 = 900;
/// Descriptors it may have open (client and upstream connections).
pub const MAX_FILES: u64 = 16384;
/// Its `oom_score_adj`.
pub const OOM_SCORE_ADJ: i32 = 500;
/// The card's partitions, mounted in the init's namespace, not in the front door's.
pub const DETACHED: [&str; 2] = ["/config", "/data"];

/// Enters the sandbox; returns notes for `Ready` (a partition that was not mounted).
pub fn enter() -> Result<Vec<String>, String> {
    fn step(what: &'static str) -> impl FnOnce(nix::Error) -> String {
        move |e| format!("{what}: {e}")
    }
    unshare(CloneFlags::CLONE_NEWNS).map_err(step("unshare the mount namespace"))?;
    // Private first: the detaches below must not propagate back to the init's namespace.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(step("make the mounts private"))?;
    let notes = detach(&DETACHED)?;
    std::fs::write("/proc/self/oom_score_adj", OOM_SCORE_ADJ.to_string())
        .map_err(|e| format!("write /proc/self/oom_score_adj: {e}"))?;
    setrlimit(Resource::RLIMIT_NOFILE, MAX_FILES, MAX_FILES).map_err(step("limit descriptors"))?;
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(step("forbid core dumps"))?;
    drop_ids(ID)?;
    nix::sys::prctl::set_dumpable(false).map_err(step("PR_SET_DUMPABLE"))?;
    nix::sys::prctl::set_no_new_privs().map_err(step("PR_SET_NO_NEW_PRIVS"))?;
    Ok(notes)
}

/// Detaches each of `paths` from this mount namespace; one that is not mounted (or absent)
/// gives a note, any other failure an error.
pub fn detach(paths: &[&str]) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    for path in paths {
        match umount2(*path, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            // EINVAL: not a mount point; ENOENT: no such directory.
            Err(nix::Error::EINVAL | nix::Error::ENOENT) => {
                notes.push(format!("{path} was not mounted"));
            }
            Err(e) => return Err(format!("detach {path}: {e}")),
        }
    }
    Ok(notes)
}

/// Becomes `id` (user and group) for good: groups first, while still allowed to change them.
fn drop_ids(id: u32) -> Result<(), String> {
    let (gid, uid) = (Gid::from_raw(id), Uid::from_raw(id));
    setgroups(&[]).map_err(|e| format!("clear the groups: {e}"))?;
    setresgid(gid, gid, gid).map_err(|e| format!("become group {id}: {e}"))?;
    setresuid(uid, uid, uid).map_err(|e| format!("become user {id}: {e}"))?;
    Ok(())
}
