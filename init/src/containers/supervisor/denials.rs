//! Seccomp refusals, from the kernel's log to the instance that made the call.
//!
//! The profile's filters are installed with `SECCOMP_FILTER_FLAG_LOG`, so the kernel logs each
//! refused call as an audit record (`audit: type=1326 ... pid=N comm="x" ... syscall=N ...`),
//! rate-limited by the kernel itself. A thread of its own (never the runtime's) reads
//! `/dev/kmsg` from its end, keeps only those records, finds the instance by the process's
//! cgroup (`/proc/<pid>/cgroup`: `0::/baton/<instance id>`), and hands a line such as `seccomp
//! refused mount (syscall 40) to pid 812 (sh): EPERM` to the supervisor through a bounded
//! channel; what does not fit is dropped and counted.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::board::cgroups;
use crate::containers::runtime::seccomp::{self, allowed::Call, denied};

/// A refused call as the kernel logged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The process (in the board's PID namespace).
    pub pid: u32,
    /// Its command name, as the kernel logged it.
    pub comm: String,
    /// The call's number.
    pub syscall: i64,
}

/// One record of the kernel's log is at most this long (the kernel's own limit is 1 KiB of
/// text plus its dictionary).
const RECORD: usize = 8192;

/// Reads a `/dev/kmsg` record; `None` for anything but a seccomp audit record.
pub fn parse(record: &[u8]) -> Option<Denial> {
    let text = std::str::from_utf8(record).ok()?;
    let message = text.split_once(';')?.1.lines().next()?;
    if !message.contains("type=1326") {
        return None;
    }
    let field = |key: &str| {
        message
            .split_whitespace()
            .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
    };
    let comm = field("comm").map_or_else(String::new, |c| c.trim_matches('"').to_string());
    Some(Denial {
        pid: field("pid")?.parse().ok()?,
        comm: comm.chars().take(32).collect(),
        syscall: field("syscall")?.parse().ok()?,
    })
}

fn listed(table: &[Call], nr: i64) -> bool {
    table.iter().any(|(_, n)| *n == nr)
}

/// The line for an instance's log. The kernel does not log the errno: it follows from the
/// profile (`EPERM` for the calls a capability check would refuse and `clone` with namespace
/// flags, `ENOSYS` for the rest).
pub fn describe(d: &Denial) -> String {
    let call = match seccomp::name_of(d.syscall) {
        Some(name) => format!("{name} (syscall {})", d.syscall),
        None => format!("syscall {}", d.syscall),
    };
    let eperm = listed(denied::ALWAYS, d.syscall)
        || listed(denied::ARCH, d.syscall)
        || d.syscall == libc::SYS_clone;
    format!(
        "seccomp refused {call} to pid {} ({}): {}",
        d.pid,
        d.comm,
        if eperm { "EPERM" } else { "ENOSYS" }
    )
}

/// The instance whose cgroup holds `pid`, from `<proc>/<pid>/cgroup`.
pub fn instance_of(proc: &Path, pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(proc.join(pid.to_string()).join("cgroup")).ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let id = path.strip_prefix(&format!("/{}/", cgroups::CONTAINERS))?;
    let id = id.split('/').next()?;
    (!id.is_empty()).then(|| id.to_string())
}

/// The reader's counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// Refusals handed on.
    pub reported: AtomicU64,
    /// Refusals dropped because the supervisor was behind.
    pub dropped: AtomicU64,
}

/// Starts the reader on `kmsg` (the board's `/dev/kmsg`), sending (instance id, line) for
/// refusals of processes in an instance's cgroup; it ends when `to` is closed.
pub fn spawn(
    kmsg: PathBuf,
    proc: PathBuf,
    to: mpsc::Sender<(String, String)>,
) -> std::io::Result<Arc<Counters>> {
    let mut file = std::fs::File::open(&kmsg)?;
    skip_to_end(&file);
    let counters = Arc::new(Counters::default());
    let counted = Arc::clone(&counters);
    std::thread::Builder::new()
        .name("seccomp-log".into())
        .spawn(move || {
            let mut buf = vec![0u8; RECORD];
            while !to.is_closed() {
                let n = match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    // EPIPE: records were overwritten before we read them; read on.
                    Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        std::thread::sleep(Duration::from_secs(1));
                        continue;
                    }
                };
                let Some(denial) = parse(&buf[..n]) else {
                    continue;
                };
                let Some(instance) = instance_of(&proc, denial.pid) else {
                    continue;
                };
                match to.try_send((instance, describe(&denial))) {
                    Ok(()) => counted.reported.fetch_add(1, Ordering::Relaxed),
                    Err(_) => counted.dropped.fetch_add(1, Ordering::Relaxed),
                };
            }
        })?;
    Ok(counters)
}

/// Moves `/dev/kmsg` to its end: only refusals from now on are reported.
fn skip_to_end(file: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: lseek on a descriptor this function borrows; /dev/kmsg takes SEEK_END.
    unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_END) };
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD_TEXT: &str = "5,512,13278984690,-;audit: type=1326 audit(1796328591.465:11): \
        auid=4294967295 uid=0 gid=0 ses=4294967295 pid=7177 comm=\"sh\" exe=\"/bin/busybox\" \
        sig=0 arch=c00000b7 syscall=40 compat=0 ip=0x7f6c2bf01829 code=0x50000\n \
        SUBSYSTEM=audit\n";

    #[test]
    fn reads_the_kernel_s_audit_record() {
        let d = parse(RECORD_TEXT.as_bytes()).expect("a denial");
        assert_eq!(
            d,
            Denial {
                pid: 7177,
                comm: "sh".into(),
                syscall: 40
            }
        );
        assert!(parse(b"6,1,2,-;eth0: link up\n").is_none());
        assert!(parse(b"garbage").is_none());
        assert!(parse(&[0xff, b';', b't']).is_none());
        let no_pid = RECORD_TEXT.replace("pid=7177", "pid=x");
        assert!(parse(no_pid.as_bytes()).is_none());
    }

    #[test]
    fn says_which_call_and_which_answer() {
        let mount = Denial {
            pid: 9,
            comm: "sh".into(),
            syscall: libc::SYS_mount,
        };
        assert_eq!(
            describe(&mount),
            format!(
                "seccomp refused mount (syscall {}) to pid 9 (sh): EPERM",
                libc::SYS_mount
            )
        );
        let kcmp = Denial {
            syscall: libc::SYS_kcmp,
            ..mount
        };
        assert!(describe(&kcmp).ends_with(": ENOSYS"), "{}", describe(&kcmp));
    }

    /// A confined child (the real profile) makes a refused call; the reader, on this machine's
    /// own `/dev/kmsg`, reports it for the instance its (stand-in) cgroup names.
    #[tokio::test]
    async fn a_refusal_on_this_kernel_reaches_the_instance() {
        let profile = seccomp::profile().expect("profile");
        let proc = tempfile::tempdir().expect("temp dir");
        let (tx, mut rx) = mpsc::channel(16);
        spawn("/dev/kmsg".into(), proc.path().to_path_buf(), tx).expect("reading /dev/kmsg");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        // The kernel rate-limits audit lines: try again until one gets through.
        loop {
            let pid = confined_child_calling_kcmp(&profile, proc.path());
            let got = tokio::time::timeout(Duration::from_secs(6), rx.recv()).await;
            if let Ok(Some((instance, line))) = got {
                assert_eq!(instance, "probe-1");
                assert!(line.starts_with("seccomp refused kcmp"), "{line}");
                assert!(line.contains(&format!("to pid {pid} ")), "{line}");
                assert!(line.ends_with(": ENOSYS"), "{line}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no refusal reported"
            );
        }
    }

    /// Forks a child that waits until its stand-in cgroup file exists in `proc`, installs the
    /// profile and calls kcmp; returns its pid once it has exited.
    fn confined_child_calling_kcmp(profile: &seccomp::Profile, proc: &Path) -> i32 {
        let mut fds = [0; 2];
        // SAFETY: pipe fills the two-element array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child makes only raw system calls and ends with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let mut byte = 0u8;
            // SAFETY: reads one byte into a local; installs a prepared filter; raw calls.
            unsafe {
                libc::read(fds[0], (&mut byte as *mut u8).cast(), 1);
                if seccomp::install(profile).is_ok() {
                    libc::syscall(libc::SYS_kcmp, 0, 0, 0, 0, 0);
                }
                libc::_exit(0);
            }
        }
        let dir = proc.join(pid.to_string());
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("cgroup"), "0::/baton/probe-1\n").expect("cgroup");
        // SAFETY: writes one byte from a local to the pipe just made, then closes both ends.
        unsafe {
            libc::write(fds[1], [1u8].as_ptr().cast(), 1);
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        pid
    }

    #[test]
    fn finds_the_instance_by_its_cgroup() {
        let dir = tempfile::tempdir().expect("temp dir");
        let put = |pid: &str, text: &str| {
            std::fs::create_dir_all(dir.path().join(pid)).expect("dir");
            std::fs::write(dir.path().join(pid).join("cgroup"), text).expect("write");
        };
        put("12", "0::/baton/web-1\n");
        put("13", "0::/system\n");
        put("14", "0::/baton/\n");
        assert_eq!(instance_of(dir.path(), 12), Some("web-1".into()));
        assert_eq!(instance_of(dir.path(), 13), None);
        assert_eq!(instance_of(dir.path(), 14), None);
        assert_eq!(instance_of(dir.path(), 15), None);
    }
}
