//! Every privileged call the init makes, behind one trait.
//!
//! The boot sequence and the shutdown path only ever touch the kernel through [`Sys`]; plain
//! file reads and writes go to paths under a root directory instead (`/` on the board, a temp
//! dir in tests). [`real::RealSys`] makes the system calls; the recording fake in `fake` (tests
//! only) logs every call as one line and can be told to fail some of them.

use std::fmt;
use std::io;
use std::path::Path;
use std::time::SystemTime;

pub use nix::mount::MsFlags;

#[cfg(test)]
pub mod fake;
pub mod real;

/// The reboot(2) command the board ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Restart the board.
    Reboot,
    /// Stop the CPU, leave power on.
    Halt,
    /// Switch off.
    Poweroff,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Reboot => "reboot",
            Action::Halt => "halt",
            Action::Poweroff => "power off",
        })
    }
}

/// Signals the shutdown path sends to every process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: please stop.
    Terminate,
    /// SIGKILL: stop now.
    Kill,
}

/// The outcome of one non-blocking wait for any child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaped {
    /// A child finished and is now gone.
    Exited {
        /// Its process id.
        pid: i32,
        /// How it ended, for the log (`exit 1`, `signal SIGKILL`).
        status: String,
    },
    /// Children exist but none has finished.
    Running,
    /// There are no children left.
    NoChildren,
}

/// An open hardware watchdog. Dropping it without [`WatchdogDevice::disarm`] leaves it armed.
pub trait WatchdogDevice: Send {
    /// Sets the timeout; returns the timeout the driver actually chose, in seconds.
    fn set_timeout(&mut self, seconds: u32) -> io::Result<u32>;
    /// Restarts the countdown.
    fn keepalive(&mut self) -> io::Result<()>;
    /// Stops the watchdog (the "magic close": write `V`, then close).
    fn disarm(self: Box<Self>) -> io::Result<()>;
}

/// The privileged operations of PID 1. Paths are real paths (already joined to the root).
pub trait Sys: Send + Sync {
    /// mount(2).
    fn mount(
        &self,
        source: &str,
        target: &Path,
        fstype: &str,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()>;
    /// umount(2) without flags.
    fn unmount(&self, target: &Path) -> io::Result<()>;
    /// Remounts a mounted file system read-only.
    fn remount_read_only(&self, target: &Path) -> io::Result<()>;
    /// Opens `console` and makes it file descriptors 0, 1 and 2.
    fn attach_console(&self, console: &Path) -> io::Result<()>;
    /// Makes Ctrl-Alt-Del send SIGINT to init instead of rebooting at once.
    fn disable_ctrl_alt_del(&self) -> io::Result<()>;
    /// finit_module(2) on the file at `path`, without parameters.
    fn load_module(&self, path: &Path) -> io::Result<()>;
    /// sethostname(2).
    fn set_hostname(&self, name: &str) -> io::Result<()>;
    /// Mixes `seed` into the kernel's pool and credits it as entropy (RNDADDENTROPY).
    fn add_entropy(&self, seed: &[u8]) -> io::Result<()>;
    /// Fills `buf` from the kernel's random number generator.
    fn random_bytes(&self, buf: &mut [u8]) -> io::Result<()>;
    /// The wall clock.
    fn now(&self) -> SystemTime;
    /// Sets the wall clock.
    fn set_time(&self, time: SystemTime) -> io::Result<()>;
    /// Tells the kernel that partition `number` of `disk` now spans `length` bytes from `start`
    /// (BLKPG_RESIZE_PARTITION).
    fn resize_partition(&self, disk: &Path, number: u32, start: u64, length: u64)
        -> io::Result<()>;
    /// Grows the ext4 file system mounted at `mountpoint` to `blocks` blocks (EXT4_IOC_RESIZE_FS).
    fn resize_ext4(&self, mountpoint: &Path, blocks: u64) -> io::Result<()>;
    /// Opens (and so starts) the watchdog device at `path`.
    fn open_watchdog(&self, path: &Path) -> io::Result<Box<dyn WatchdogDevice>>;
    /// Sends `signal` to every process except init itself (kill(-1, ..)).
    fn kill_all(&self, signal: Signal) -> io::Result<()>;
    /// waitpid(-1, WNOHANG).
    fn reap(&self) -> io::Result<Reaped>;
    /// sync(2).
    fn sync(&self);
    /// reboot(2). Returns only on failure (the fake returns `Ok`).
    fn reboot(&self, action: Action) -> io::Result<()>;
    /// mknod(2): creates the device node, FIFO or socket `path` with `mode` (type and
    /// permission bits, as in `st_mode`) and device number `device` (as in `st_rdev`).
    fn make_node(&self, path: &Path, mode: u32, device: u64) -> io::Result<()>;
    /// Moves the mount at `from` onto `to` (mount(2) with `MS_MOVE`).
    fn move_mount(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// chroot(2).
    fn change_root(&self, path: &Path) -> io::Result<()>;
    /// chdir(2).
    fn change_dir(&self, path: &Path) -> io::Result<()>;
    /// execv(2) of `path` with `args` (`args[0]` included) and the current environment.
    /// Returns only on failure (the fake returns `Ok`).
    fn exec(&self, path: &Path, args: &[String]) -> io::Result<()>;
}
