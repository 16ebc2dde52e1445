//! Removing what a previous boot or helper left behind, before any container starts.
//!
//! Order matters: first every process in the leftover cgroups is killed (`cgroup.kill`, or
//! SIGKILL to each pid of `cgroup.procs` where that file is missing) and the cgroups removed,
//! then the overlay roots under the bundle directory are unmounted, then the bundle and state
//! directories are deleted. Each step notes what it found; failures are noted, not fatal: a
//! leftover must not keep the board from running its other containers.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{overlay, RuntimePaths};

/// How long the processes of a leftover cgroup get to die.
const KILL_DEADLINE: Duration = Duration::from_secs(5);

/// Cleans up; returns one note per leftover found or step that failed.
pub fn leftovers(paths: &RuntimePaths) -> Vec<String> {
    let mut notes = Vec::new();
    let parent = paths.cgroup_root.join(&paths.cgroup_parent);
    if parent.is_dir() {
        for dir in cgroups_below(&parent) {
            match remove_cgroup(&dir) {
                Ok(()) => notes.push(format!("removed leftover cgroup {}", dir.display())),
                Err(e) => notes.push(format!(
                    "cannot remove leftover cgroup {}: {e}",
                    dir.display()
                )),
            }
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for target in mounts_below(&mountinfo, &paths.bundles) {
        match overlay::unmount(&target) {
            Ok(()) => notes.push(format!("unmounted leftover {}", target.display())),
            Err(e) => notes.push(e.to_string()),
        }
    }
    for dir in [&paths.bundles, &paths.state] {
        let had_entries = std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        match overlay::remove_dir(dir) {
            Ok(()) if had_entries => notes.push(format!("removed leftover {}", dir.display())),
            Ok(()) => {}
            Err(e) => notes.push(e.to_string()),
        }
    }
    notes
}

/// The cgroup directories strictly below `parent`, children after their descendants.
pub fn cgroups_below(parent: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(parent) else {
        return out;
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    for dir in dirs {
        out.extend(cgroups_below(&dir));
        out.push(dir);
    }
    out
}

fn remove_cgroup(dir: &Path) -> std::io::Result<()> {
    // Opened without create: a missing cgroup.kill (kernels before 5.14) falls back to kill(2).
    let killed = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.kill"))
        .and_then(|mut f| f.write_all(b"1"));
    if killed.is_err() {
        for pid in procs(dir) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    let deadline = Instant::now() + KILL_DEADLINE;
    while !procs(dir).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::remove_dir(dir)
}

fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// The mount points in `mountinfo` (the text of `/proc/self/mountinfo`) at or below `dir`,
/// deepest first.
pub fn mounts_below(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// Undoes the kernel's octal escapes (`\040` for a space) in a mountinfo field.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 0:21 / / rw - ext4 /dev/vda4 rw
30 22 0:40 / /run/baton/bundles/web-1/rootfs rw,nosuid - overlay overlay rw,lowerdir=/a
31 30 0:41 / /run/baton/bundles/web-1/rootfs/proc rw - proc proc rw
32 22 0:42 / /run/baton/bundles/a\\040b/rootfs rw - overlay overlay rw
33 22 0:43 / /run/baton/bundlesX rw - tmpfs tmpfs rw
";

    #[test]
    fn finds_mounts_below_the_bundles_deepest_first() {
        let found = mounts_below(MOUNTINFO, Path::new("/run/baton/bundles"));
        assert_eq!(
            found,
            vec![
                PathBuf::from("/run/baton/bundles/web-1/rootfs/proc"),
                PathBuf::from("/run/baton/bundles/web-1/rootfs"),
                PathBuf::from("/run/baton/bundles/a b/rootfs"),
            ]
        );
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape("a\\040b\\011c"), "a b\tc");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }

    #[test]
    fn lists_cgroups_depth_first_and_removes_state_dirs() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let paths = RuntimePaths {
            exe: "/nonexistent".into(),
            state: tmp.path().join("state"),
            bundles: tmp.path().join("bundles"),
            cgroup_root: tmp.path().join("cg"),
            cgroup_parent: "baton".into(),
        };
        let parent = tmp.path().join("cg/baton");
        std::fs::create_dir_all(parent.join("web-1/sub")).expect("mkdir");
        std::fs::create_dir_all(parent.join("db-1")).expect("mkdir");
        assert_eq!(
            cgroups_below(&parent),
            vec![
                parent.join("db-1"),
                parent.join("web-1/sub"),
                parent.join("web-1")
            ]
        );
        std::fs::create_dir_all(paths.state.join("web-1")).expect("mkdir");
        std::fs::create_dir_all(paths.bundles.join("web-1/rootfs")).expect("mkdir");
        let notes = leftovers(&paths);
        assert!(
            !paths.state.exists() && !paths.bundles.exists(),
            "{notes:?}"
        );
        // Empty directories standing in for cgroups are removed too.
        assert!(!parent.join("web-1").exists(), "{notes:?}");
        assert!(notes
            .iter()
            .any(|n| n.contains("cgroup") && n.contains("web-1")));
        assert!(leftovers(&paths).is_empty(), "a second run finds nothing");
    }
}
