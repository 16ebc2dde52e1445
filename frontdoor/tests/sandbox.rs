//! The sandbox entered for real, in this test's own process (no harness: a process of one
//! thread, as `unshare(CLONE_NEWNS)` needs, that is thrown away after). Needs root, as the
//! board's other namespace tests do (CI runs as root).
//!
//! Everything it changes is its own: the mount namespace is new and private before anything
//! is detached in it, and the ids, limits and flags are this process's.

use baton_frontdoor::child::sandbox;
use nix::sys::resource::{getrlimit, Resource};
use nix::unistd::{getgid, getgroups, getuid, Gid, Uid};

fn main() {
    // A path that is no mount point is a note, not an error (with or without root).
    let notes = sandbox::detach(&["/nonexistent/baton-front-door"]).expect("detach");
    assert_eq!(notes, ["/nonexistent/baton-front-door was not mounted"]);

    assert!(
        getuid().is_root(),
        "entering the sandbox needs root (run the tests as root, as CI does)"
    );
    let notes = sandbox::enter().expect("enter the sandbox");
    eprintln!("sandbox: notes: {notes:?}");
    let id = sandbox::ID;
    assert_eq!(getuid(), Uid::from_raw(id));
    assert_eq!(getgid(), Gid::from_raw(id));
    assert_eq!(getgroups().expect("groups"), Vec::<Gid>::new());
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    for line in ["Uid", "Gid"] {
        let want = format!("{line}:\t{id}\t{id}\t{id}\t{id}");
        assert!(status.contains(&want), "{line} not all {id}: {status}");
    }
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    assert!(!nix::sys::prctl::get_dumpable().expect("dumpable"));
    let nofile = getrlimit(Resource::RLIMIT_NOFILE).expect("nofile");
    assert_eq!(nofile, (sandbox::MAX_FILES, sandbox::MAX_FILES));
    assert_eq!(getrlimit(Resource::RLIMIT_CORE).expect("core"), (0, 0));
    let oom = std::fs::read_to_string("/proc/self/oom_score_adj").expect("oom_score_adj");
    assert_eq!(oom.trim(), sandbox::OOM_SCORE_ADJ.to_string());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    for path in sandbox::DETACHED {
        assert!(
            !mounts.lines().any(|l| l.split(' ').nth(4) == Some(path)),
            "{path} still mounted: {mounts}"
        );
    }
    // Root's powers are gone: the ids cannot be taken back.
    assert!(nix::unistd::setuid(Uid::from_raw(0)).is_err());
    eprintln!("sandbox: ok");
}
