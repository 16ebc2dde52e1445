//! The real system calls, used on the board.

use std::ffi::c_int;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::libc;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::signal::{self, Signal as NixSignal};
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::{Reaped, Signal, Sys, WatchdogDevice};
use crate::board::sys::Action;

/// `struct rand_pool_info` header size: `int entropy_count; int buf_size;`.
const RAND_POOL_HEADER: usize = 2 * std::mem::size_of::<c_int>();

nix::ioctl_write_ptr_bad!(
    rnd_add_entropy,
    nix::request_code_write!(b'R', 0x03, RAND_POOL_HEADER),
    c_int
);
nix::ioctl_write_ptr_bad!(blkpg, nix::request_code_none!(0x12, 105), BlkpgIoctlArg);
nix::ioctl_write_ptr!(ext4_resize_fs, b'f', 16, u64);
nix::ioctl_readwrite!(wdioc_settimeout, b'W', 6, c_int);
nix::ioctl_read!(wdioc_keepalive, b'W', 5, c_int);

/// `BLKPG_RESIZE_PARTITION` from `<linux/blkpg.h>`.
const BLKPG_RESIZE_PARTITION: c_int = 3;

/// `struct blkpg_ioctl_arg`.
#[repr(C)]
struct BlkpgIoctlArg {
    op: c_int,
    flags: c_int,
    datalen: c_int,
    data: *const BlkpgPartition,
}

/// `struct blkpg_partition`.
#[repr(C)]
struct BlkpgPartition {
    start: i64,
    length: i64,
    pno: c_int,
    devname: [u8; 64],
    volname: [u8; 64],
}

/// The kernel, for real.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealSys;

fn errno(e: Errno) -> io::Error {
    io::Error::from(e)
}

fn too_big(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{what} out of range"))
}

impl Sys for RealSys {
    fn mount(
        &self,
        source: &str,
        target: &Path,
        fstype: &str,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        nix::mount::mount(Some(source), target, Some(fstype), flags, data).map_err(errno)
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        nix::mount::umount2(target, MntFlags::empty()).map_err(errno)
    }

    fn remount_read_only(&self, target: &Path) -> io::Result<()> {
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        nix::mount::mount(None::<&str>, target, None::<&str>, flags, None::<&str>).map_err(errno)
    }

    fn attach_console(&self, console: &Path) -> io::Result<()> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(console)?;
        let fd = file.as_raw_fd();
        for target in 0..=2 {
            if fd == target {
                continue;
            }
            // SAFETY: dup2 only replaces descriptor `target` (0-2, owned by the std streams,
            // which stay valid) with a duplicate of `fd`, which is open for this whole call.
            if unsafe { libc::dup2(fd, target) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if fd <= 2 {
            // The console landed on a standard descriptor itself: keep it open.
            let _ = file.into_raw_fd();
        }
        Ok(())
    }

    fn disable_ctrl_alt_del(&self) -> io::Result<()> {
        nix::sys::reboot::set_cad_enabled(false).map_err(errno)
    }

    fn load_module(&self, path: &Path) -> io::Result<()> {
        let file = File::open(path)?;
        nix::kmod::finit_module(&file, c"", nix::kmod::ModuleInitFlags::empty()).map_err(errno)
    }

    fn set_hostname(&self, name: &str) -> io::Result<()> {
        nix::unistd::sethostname(name).map_err(errno)
    }

    fn add_entropy(&self, seed: &[u8]) -> io::Result<()> {
        let bits = c_int::try_from(seed.len() * 8).map_err(|_| too_big("entropy seed"))?;
        let len = c_int::try_from(seed.len()).map_err(|_| too_big("entropy seed"))?;
        // struct rand_pool_info as c_ints, so the buffer is aligned for the header fields.
        let words = seed.len().div_ceil(4);
        let mut info = vec![0 as c_int; 2 + words];
        info[0] = bits;
        info[1] = len;
        for (i, chunk) in seed.chunks(4).enumerate() {
            let mut word = [0u8; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            info[2 + i] = c_int::from_ne_bytes(word);
        }
        let urandom = OpenOptions::new().write(true).open("/dev/urandom")?;
        // SAFETY: `info` is a complete rand_pool_info whose buf_size matches the bytes that
        // follow the header; the kernel only reads it during the call.
        unsafe { rnd_add_entropy(urandom.as_raw_fd(), info.as_ptr()) }.map_err(errno)?;
        Ok(())
    }

    fn random_bytes(&self, buf: &mut [u8]) -> io::Result<()> {
        let mut flags = libc::GRND_INSECURE;
        let mut filled = 0;
        while filled < buf.len() {
            let rest = &mut buf[filled..];
            // SAFETY: the pointer and length describe the writable slice `rest`.
            let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), flags) };
            if n < 0 {
                let err = io::Error::last_os_error();
                match err.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    // Kernels before 5.6 do not know GRND_INSECURE.
                    Some(libc::EINVAL) if flags != 0 => flags = 0,
                    _ => return Err(err),
                }
                continue;
            }
            filled += usize::try_from(n).map_err(|_| too_big("getrandom result"))?;
        }
        Ok(())
    }

    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn set_time(&self, time: SystemTime) -> io::Result<()> {
        let since = time
            .duration_since(UNIX_EPOCH)
            .map_err(|_| too_big("time before 1970"))?;
        let spec = nix::sys::time::TimeSpec::from_duration(since);
        nix::time::clock_settime(nix::time::ClockId::CLOCK_REALTIME, spec).map_err(errno)
    }

    fn resize_partition(
        &self,
        disk: &Path,
        number: u32,
        start: u64,
        length: u64,
    ) -> io::Result<()> {
        let part = BlkpgPartition {
            start: i64::try_from(start).map_err(|_| too_big("partition start"))?,
            length: i64::try_from(length).map_err(|_| too_big("partition length"))?,
            pno: c_int::try_from(number).map_err(|_| too_big("partition number"))?,
            devname: [0; 64],
            volname: [0; 64],
        };
        let arg = BlkpgIoctlArg {
            op: BLKPG_RESIZE_PARTITION,
            flags: 0,
            datalen: c_int::try_from(std::mem::size_of::<BlkpgPartition>())
                .map_err(|_| too_big("blkpg argument"))?,
            data: &part,
        };
        let file = File::open(disk)?;
        // SAFETY: `arg` and the `part` it points to live until the call returns; the kernel
        // reads exactly `datalen` bytes from `data`.
        unsafe { blkpg(file.as_raw_fd(), &arg) }.map_err(errno)?;
        Ok(())
    }

    fn resize_ext4(&self, mountpoint: &Path, blocks: u64) -> io::Result<()> {
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(mountpoint)?;
        // SAFETY: the argument is a pointer to a u64 that outlives the call.
        unsafe { ext4_resize_fs(dir.as_raw_fd(), &blocks) }.map_err(errno)?;
        Ok(())
    }

    fn open_watchdog(&self, path: &Path) -> io::Result<Box<dyn WatchdogDevice>> {
        let file = OpenOptions::new().write(true).open(path)?;
        Ok(Box::new(RealWatchdog { file }))
    }

    fn kill_all(&self, sig: Signal) -> io::Result<()> {
        let sig = match sig {
            Signal::Terminate => NixSignal::SIGTERM,
            Signal::Kill => NixSignal::SIGKILL,
        };
        match signal::kill(Pid::from_raw(-1), sig) {
            // ESRCH: there was nobody left to signal.
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(e) => Err(errno(e)),
        }
    }

    fn reap(&self) -> io::Result<Reaped> {
        loop {
            return match nix::sys::wait::waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => Ok(Reaped::Running),
                Ok(WaitStatus::Exited(pid, code)) => Ok(Reaped::Exited {
                    pid: pid.as_raw(),
                    status: format!("exit {code}"),
                }),
                Ok(WaitStatus::Signaled(pid, sig, _)) => Ok(Reaped::Exited {
                    pid: pid.as_raw(),
                    status: format!("signal {sig}"),
                }),
                // Stopped/continued children are still there; look again later.
                Ok(_) => Ok(Reaped::Running),
                Err(Errno::ECHILD) => Ok(Reaped::NoChildren),
                Err(Errno::EINTR) => continue,
                Err(e) => Err(errno(e)),
            };
        }
    }

    fn sync(&self) {
        nix::unistd::sync();
    }

    fn reboot(&self, action: Action) -> io::Result<()> {
        use nix::sys::reboot::RebootMode;
        let mode = match action {
            Action::Reboot => RebootMode::RB_AUTOBOOT,
            Action::Halt => RebootMode::RB_HALT_SYSTEM,
            Action::Poweroff => RebootMode::RB_POWER_OFF,
        };
        match nix::sys::reboot::reboot(mode) {
            Ok(never) => match never {},
            Err(e) => Err(errno(e)),
        }
    }

    fn make_node(&self, path: &Path, mode: u32, device: u64) -> io::Result<()> {
        let kind = nix::sys::stat::SFlag::from_bits_truncate(mode & libc::S_IFMT);
        let perm = nix::sys::stat::Mode::from_bits_truncate(mode & 0o7777);
        nix::sys::stat::mknod(path, kind, perm, device).map_err(errno)
    }

    fn move_mount(&self, from: &Path, to: &Path) -> io::Result<()> {
        nix::mount::mount(Some(from), to, None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .map_err(errno)
    }

    fn change_root(&self, path: &Path) -> io::Result<()> {
        nix::unistd::chroot(path).map_err(errno)
    }

    fn change_dir(&self, path: &Path) -> io::Result<()> {
        nix::unistd::chdir(path).map_err(errno)
    }

    fn exec(&self, path: &Path, args: &[String]) -> io::Result<()> {
        let invalid = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{what} contains a NUL byte"),
            )
        };
        let program = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| invalid("program path"))?;
        let args = args
            .iter()
            .map(|a| std::ffi::CString::new(a.as_bytes()).map_err(|_| invalid("argument")))
            .collect::<io::Result<Vec<_>>>()?;
        match nix::unistd::execv(&program, &args) {
            Ok(never) => match never {},
            Err(e) => Err(errno(e)),
        }
    }
}

/// `/dev/watchdog`, open.
struct RealWatchdog {
    file: File,
}

impl WatchdogDevice for RealWatchdog {
    fn set_timeout(&mut self, seconds: u32) -> io::Result<u32> {
        let mut value = c_int::try_from(seconds).map_err(|_| too_big("watchdog timeout"))?;
        // SAFETY: the driver reads and writes back one c_int through the pointer.
        unsafe { wdioc_settimeout(self.file.as_raw_fd(), &mut value) }.map_err(errno)?;
        u32::try_from(value).map_err(|_| too_big("watchdog timeout"))
    }

    fn keepalive(&mut self) -> io::Result<()> {
        let mut unused: c_int = 0;
        // SAFETY: WDIOC_KEEPALIVE ignores its argument; it points to a live c_int anyway.
        unsafe { wdioc_keepalive(self.file.as_raw_fd(), &mut unused) }.map_err(errno)?;
        Ok(())
    }

    fn disarm(mut self: Box<Self>) -> io::Result<()> {
        self.file.write_all(b"V")
    }
}
