//! Freezing against stand-in files, and for real in a cgroup v2 tree (as root).

use std::path::PathBuf;
use std::process::{Child, Command};

use super::*;

#[test]
fn reads_the_frozen_line() {
    assert_eq!(frozen_value("populated 1\nfrozen 1\n"), Some(1));
    assert_eq!(frozen_value("populated 0\nfrozen 0\n"), Some(0));
    assert_eq!(frozen_value("populated 1\n"), None);
    assert_eq!(frozen_value("frozen yes\n"), None);
}

#[tokio::test(start_paused = true)]
async fn a_freeze_the_kernel_never_reports_is_undone_after_the_deadline() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("cgroup.events"), "populated 1\nfrozen 0\n").expect("events");
    let err = set(dir.path(), true).await.expect_err("never frozen");
    assert!(
        matches!(&err, FreezeError::Timeout { want: 1, .. }),
        "{err}"
    );
    let freeze = std::fs::read_to_string(dir.path().join("cgroup.freeze")).expect("freeze file");
    assert_eq!(freeze, "0", "the freeze is undone");
}

#[tokio::test]
async fn a_missing_cgroup_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let gone = dir.path().join("gone");
    let err = set(&gone, true).await.expect_err("no cgroup");
    assert!(err.to_string().contains("gone/cgroup.freeze"), "{err}");
}

/// The first cgroup v2 mount (`/sys/fs/cgroup` on a board, `/sys/fs/cgroup/unified` on a
/// hybrid host).
fn cgroup2_mount() -> PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    info.lines()
        .find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            (right.split(' ').next()? == "cgroup2").then(|| PathBuf::from(point))
        })
        .expect("these tests need a cgroup v2 mount")
}

/// A test cgroup with one `sleep` in it; killed and removed on drop.
struct Sleeper {
    dir: PathBuf,
    child: Child,
}

impl Sleeper {
    fn start(name: &str) -> Sleeper {
        let dir = cgroup2_mount().join(format!("baton-freeze-{name}-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let child = Command::new("sleep").arg("600").spawn().expect("sleep");
        std::fs::write(dir.join("cgroup.procs"), child.id().to_string()).expect("cgroup.procs");
        Sleeper { dir, child }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid, which it is until we wait for it.
        let r = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(r, 0, "kill {signal}");
    }

    /// Waits for the child to end; the signal that ended it.
    fn ended_by(&mut self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.child.wait().expect("wait").signal()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("cgroup.freeze"), "0");
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[tokio::test]
async fn a_real_cgroup_freezes_thaws_and_a_frozen_one_still_dies_of_sigkill() {
    baton_testnet::require_root();
    let mut s = Sleeper::start("thaw");
    set(&s.dir, true).await.expect("freeze");
    let events = |s: &Sleeper| std::fs::read_to_string(s.dir.join("cgroup.events")).expect("ev");
    assert_eq!(frozen_value(&events(&s)), Some(1));
    set(&s.dir, false).await.expect("thaw");
    assert_eq!(frozen_value(&events(&s)), Some(0));
    // Thawed, it handles SIGTERM again.
    s.signal(libc::SIGTERM);
    assert_eq!(s.ended_by(), Some(libc::SIGTERM));

    let mut s = Sleeper::start("kill");
    set(&s.dir, true).await.expect("freeze");
    s.signal(libc::SIGKILL);
    assert_eq!(
        s.ended_by(),
        Some(libc::SIGKILL),
        "SIGKILL reaches a frozen process"
    );
}
