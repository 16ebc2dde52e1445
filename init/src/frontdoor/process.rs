//! The front door's process: the init binary run again with [`ARG`], its control socket on
//! fd 3, its standard error on the console, in a cgroup of its own with a memory limit, so that
//! whatever a request does to it, PID 1 and the containers are not touched.
//!
//! ```text
//! /sys/fs/cgroup
//! ├── system       PID 1, the runtime helper
//! ├── frontdoor    the front door: memory.max = [front_door] memory, pids.max 64
//! └── baton        containers: memory.max = MemTotal - reserve - the front door's memory
//! ```

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use baton_frontdoor::child::{ARG, SOCKET_FD};

use crate::board::cgroups;
use crate::board::console::Console;

/// The front door's cgroup, beside `system` and `baton`.
pub const CGROUP: &str = "frontdoor";
/// Processes and threads the front door may have.
pub const PIDS_MAX: u32 = 64;

/// A running front door process.
#[derive(Debug)]
pub struct Child {
    /// Its pid.
    pub pid: u32,
    /// A pidfd on it (signals never reach a recycled pid), when the kernel has them.
    pidfd: Option<OwnedFd>,
}

impl Child {
    /// Kills it (SIGKILL); it is reaped by PID 1's reaper.
    pub fn kill(&self) {
        match &self.pidfd {
            Some(fd) => {
                // SAFETY: pidfd_send_signal with a valid pidfd, a valid signal number and no
                // siginfo; it reads no memory of ours.
                unsafe {
                    libc::syscall(
                        libc::SYS_pidfd_send_signal,
                        fd.as_raw_fd(),
                        libc::SIGKILL,
                        std::ptr::null::<libc::siginfo_t>(),
                        0,
                    );
                }
            }
            None => {
                if let Ok(pid) = i32::try_from(self.pid) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
}

/// Starts `exe` as the front door with `theirs` as its control socket; its standard error goes
/// to the console.
pub fn spawn(exe: &Path, theirs: OwnedFd, console: &Arc<Console>) -> std::io::Result<Child> {
    let raw = theirs.as_raw_fd();
    let mut cmd = Command::new(exe);
    cmd.arg(ARG)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    crate::board::child_fd::pass_as(&mut cmd, raw, SOCKET_FD);
    let mut child = cmd.spawn()?;
    drop(theirs);
    let pid = child.id();
    if let Some(stderr) = child.stderr.take() {
        let forwarded = crate::containers::runtime::stderr::forward_as(
            OwnedFd::from(stderr),
            Arc::clone(console),
            "front door",
        );
        if let Err(e) = forwarded {
            console.line(format_args!(
                "front door: its messages cannot be shown: {e}"
            ));
        }
    }
    // PID 1's reaper collects it; the std handle is let go without waiting.
    drop(child);
    Ok(Child {
        pid,
        pidfd: pidfd_open(pid),
    })
}

fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The front door's cgroup under `root` (the board's `/`), with its limits; the containers'
/// limit is lowered by `memory` so that the front door's memory comes out of theirs, not out
/// of the system's reserve. `None` when the board has no cgroup tree (the front door then
/// runs in PID 1's cgroup); the error says what could not be written.
pub fn cgroup(root: &Path, memory: u64) -> Result<Option<PathBuf>, String> {
    let top = root.join(cgroups::ROOT.trim_start_matches('/'));
    if !top.join("cgroup.controllers").exists() {
        return Ok(None);
    }
    let dir = top.join(CGROUP);
    let write = |file: &str, value: String| {
        std::fs::write(dir.join(file), &value).map_err(|e| format!("{}/{file}: {e}", dir.display()))
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    write("memory.max", memory.to_string())?;
    write("memory.high", (memory / 10 * 9).to_string())?;
    write("pids.max", PIDS_MAX.to_string())?;
    let total = std::fs::read_to_string(root.join("proc/meminfo"))
        .ok()
        .and_then(|m| cgroups::mem_total(&m));
    if let Some(total) = total {
        let containers = total
            .saturating_sub(cgroups::reserve(total))
            .saturating_sub(memory);
        let path = top.join(cgroups::CONTAINERS).join("memory.max");
        std::fs::write(&path, containers.to_string())
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(Some(dir))
}

/// Moves `pid` into the cgroup `dir`.
pub fn enter(dir: &Path, pid: u32) -> Result<(), String> {
    let procs = dir.join("cgroup.procs");
    std::fs::write(&procs, pid.to_string()).map_err(|e| format!("{}: {e}", procs.display()))
}
