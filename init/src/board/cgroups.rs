//! The board's cgroup tree, defined here once (and in `docs/services.md`, "Memory"):
//!
//! ```text
//! /sys/fs/cgroup                 memory, cpu and pids enabled for the children
//! ├── system                     PID 1 and the runtime helper; memory.min = reserve / 2
//! └── baton                      every container; memory.max = MemTotal - reserve
//!     └── <instance id>          one per container, its own limits (the runtime makes these)
//! ```
//!
//! The reserve ([`reserve`]) is what containers together can never take: whatever they do, a
//! system-wide OOM cannot start from them, and the kernel's reclaim leaves the system cgroup's
//! first half of it alone (`memory.min` cannot be set on the root cgroup, hence `system`).
//! PID 1 also sets its `oom_score_adj` to -1000, which the helper inherits; containers are
//! started with 0 (see the runtime's spec), so their own cgroup limit kills them, not the board.

use std::io;
use std::path::{Path, PathBuf};

/// The cgroup v2 mount point.
pub const ROOT: &str = "/sys/fs/cgroup";
/// The cgroup of PID 1 and the runtime helper.
pub const SYSTEM: &str = "system";
/// The cgroup holding one child per container.
pub const CONTAINERS: &str = "baton";
/// The `oom_score_adj` of PID 1 and the helper: never chosen by the OOM killer.
pub const SYSTEM_OOM_SCORE_ADJ: i32 = -1000;

/// Memory kept from containers on a board with `total` bytes: 1/16, at least 128 MiB and at
/// most 256 MiB (never more than half the board).
pub fn reserve(total: u64) -> u64 {
    (total / 16).clamp(128 << 20, 256 << 20).min(total / 2)
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
pub fn mem_total(meminfo: &str) -> Option<u64> {
    super::procfs::kib_field(meminfo, "MemTotal:")
}

/// What [`setup`] put in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tree {
    /// The board's memory.
    pub total: u64,
    /// Kept from containers.
    pub reserve: u64,
}

/// Why the tree could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cgroups: cannot write {path}: {source}")]
pub struct Error {
    /// The file.
    pub path: String,
    /// Cause.
    #[source]
    pub source: io::Error,
}

fn at(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

fn write(root: &Path, path: &str, value: &str) -> Result<(), Error> {
    std::fs::write(at(root, path), value).map_err(|source| Error {
        path: path.to_string(),
        source,
    })
}

fn dir(root: &Path, name: &str) -> Result<PathBuf, Error> {
    let path = format!("{ROOT}/{name}");
    let full = at(root, &path);
    std::fs::create_dir_all(&full).map_err(|source| Error { path, source })?;
    Ok(full)
}

/// Builds the tree under the board's `root` and moves PID 1 (this process) into `system`;
/// `None` when no cgroup2 file system is mounted (no containers run then). Without
/// `/proc/meminfo` no limit is set; the error of the first write that failed is returned after
/// the others were tried.
pub fn setup(root: &Path) -> Result<Option<Tree>, Error> {
    if !at(root, &format!("{ROOT}/cgroup.controllers")).exists() {
        return Ok(None);
    }
    let total = std::fs::read_to_string(at(root, "/proc/meminfo"))
        .ok()
        .and_then(|m| mem_total(&m))
        .unwrap_or(0);
    let reserve = reserve(total);
    let mut first: Option<Error> = None;
    let mut note = |r: Result<(), Error>| {
        if let Err(e) = r {
            first.get_or_insert(e);
        }
    };
    // Each controller on its own: a kernel without one still gets the others.
    for controller in ["+memory", "+cpu", "+pids"] {
        note(write(
            root,
            &format!("{ROOT}/cgroup.subtree_control"),
            controller,
        ));
    }
    note(dir(root, SYSTEM).map(drop));
    note(write(
        root,
        &format!("{ROOT}/{SYSTEM}/memory.min"),
        &(reserve / 2).to_string(),
    ));
    note(write(
        root,
        &format!("{ROOT}/{SYSTEM}/cgroup.procs"),
        &std::process::id().to_string(),
    ));
    note(dir(root, CONTAINERS).map(drop));
    if total > 0 {
        note(write(
            root,
            &format!("{ROOT}/{CONTAINERS}/memory.max"),
            &total.saturating_sub(reserve).to_string(),
        ));
    }
    note(write(
        root,
        "/proc/self/oom_score_adj",
        &SYSTEM_OOM_SCORE_ADJ.to_string(),
    ));
    match first {
        Some(e) => Err(e),
        None => Ok(Some(Tree { total, reserve })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for d in ["proc/self", "sys/fs/cgroup"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("dirs");
        }
        std::fs::write(
            dir.path().join("proc/meminfo"),
            "MemTotal:       524288 kB\n",
        )
        .expect("meminfo");
        std::fs::write(
            dir.path().join("sys/fs/cgroup/cgroup.controllers"),
            "cpu memory pids\n",
        )
        .expect("controllers");
        dir
    }

    #[test]
    fn the_reserve_grows_with_the_board_within_bounds() {
        assert_eq!(reserve(512 << 20), 128 << 20);
        assert_eq!(reserve(1 << 30), 128 << 20);
        assert_eq!(reserve(3 << 30), 192 << 20);
        assert_eq!(reserve(8 << 30), 256 << 20);
        assert_eq!(reserve(128 << 20), 64 << 20, "never more than half");
        assert_eq!(
            mem_total("MemFree: 1 kB\nMemTotal:   524288 kB\n"),
            Some(512 << 20)
        );
        assert_eq!(mem_total("MemTotal: lots\n"), None);
    }

    #[test]
    fn sets_up_the_tree_and_moves_pid_1() {
        let tb = board();
        let tree = setup(tb.path()).expect("set up");
        assert_eq!(
            tree,
            Some(Tree {
                total: 512 << 20,
                reserve: 128 << 20
            })
        );
        let read = |p: &str| std::fs::read_to_string(at(tb.path(), p)).expect(p);
        assert_eq!(
            read("/sys/fs/cgroup/baton/memory.max"),
            (384u64 << 20).to_string()
        );
        assert_eq!(
            read("/sys/fs/cgroup/system/memory.min"),
            (64u64 << 20).to_string()
        );
        assert_eq!(
            read("/sys/fs/cgroup/system/cgroup.procs"),
            std::process::id().to_string()
        );
        assert_eq!(read("/proc/self/oom_score_adj"), "-1000");
    }

    #[test]
    fn without_cgroup2_there_is_nothing_to_do() {
        let tb = board();
        std::fs::remove_file(tb.path().join("sys/fs/cgroup/cgroup.controllers")).expect("rm");
        assert_eq!(setup(tb.path()).expect("nothing to do"), None);
        assert!(!tb.path().join("sys/fs/cgroup/baton").exists());
    }

    #[test]
    fn a_failed_write_is_reported_after_the_others() {
        let tb = board();
        // No /proc/self: the OOM score cannot be written, the cgroups still are.
        std::fs::remove_dir(tb.path().join("proc/self")).expect("rmdir");
        let e = setup(tb.path()).expect_err("oom_score_adj missing");
        assert!(e.to_string().contains("/proc/self/oom_score_adj"), "{e}");
        assert!(tb.path().join("sys/fs/cgroup/baton/memory.max").exists());
    }
}
