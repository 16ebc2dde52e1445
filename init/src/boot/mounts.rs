//! The pseudo file systems every Linux userland expects, and unmounting at shutdown.

use std::io;
use std::path::PathBuf;

use crate::board::context::Ctx;
use crate::board::sys::MsFlags;

/// Errors mounting or unmounting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A mount point could not be created.
    #[error("cannot create mount point {path}: {source}")]
    MountPoint {
        /// The directory.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// mount(2) failed.
    #[error("cannot mount {fstype} on {target}: {source}")]
    Mount {
        /// File system type.
        fstype: String,
        /// Mount point.
        target: String,
        /// Cause.
        source: io::Error,
    },
    /// Neither unmounting nor remounting read-only worked.
    #[error("cannot unmount {target} ({unmount}) nor remount it read-only ({remount})")]
    Unmount {
        /// Mount point.
        target: String,
        /// Why unmounting failed.
        unmount: io::Error,
        /// Why remounting read-only failed.
        remount: io::Error,
    },
    /// The console device could not be attached to the standard descriptors.
    #[error("cannot attach {path} as standard input/output: {source}")]
    Console {
        /// The console device.
        path: String,
        /// Cause.
        source: io::Error,
    },
}

/// One pseudo file system.
struct Pseudo {
    fstype: &'static str,
    target: &'static str,
    flags: MsFlags,
    data: Option<&'static str>,
    /// Whether boot stops without it.
    required: bool,
}

const NOSUID: MsFlags = MsFlags::MS_NOSUID;
const NODEV: MsFlags = MsFlags::MS_NODEV;
const NOEXEC: MsFlags = MsFlags::MS_NOEXEC;

/// In mount order: later targets live inside earlier ones.
const PSEUDO: [Pseudo; 8] = [
    Pseudo {
        fstype: "proc",
        target: "/proc",
        flags: NOSUID.union(NODEV).union(NOEXEC),
        data: None,
        required: true,
    },
    Pseudo {
        fstype: "sysfs",
        target: "/sys",
        flags: NOSUID.union(NODEV).union(NOEXEC),
        data: None,
        required: true,
    },
    Pseudo {
        fstype: "devtmpfs",
        target: "/dev",
        flags: NOSUID,
        data: Some("mode=0755"),
        required: true,
    },
    Pseudo {
        fstype: "devpts",
        target: "/dev/pts",
        flags: NOSUID.union(NOEXEC),
        data: Some("gid=5,mode=0620,ptmxmode=0666"),
        required: false,
    },
    Pseudo {
        fstype: "tmpfs",
        target: "/dev/shm",
        flags: NOSUID.union(NODEV),
        data: Some("mode=1777"),
        required: false,
    },
    Pseudo {
        fstype: "tmpfs",
        target: "/run",
        flags: NOSUID.union(NODEV),
        data: Some("mode=0755"),
        required: true,
    },
    Pseudo {
        fstype: "tmpfs",
        target: "/tmp",
        flags: NOSUID.union(NODEV),
        data: Some("mode=1777"),
        required: true,
    },
    // Containers need it; the board still answers the API without it.
    Pseudo {
        fstype: "cgroup2",
        target: "/sys/fs/cgroup",
        flags: NOSUID.union(NODEV).union(NOEXEC),
        data: Some("nsdelegate"),
        required: false,
    },
];

/// Mounts the pseudo file systems, then makes `/dev/console` the standard descriptors.
/// Returns the fatal error if a required one failed; optional failures are reported.
pub fn mount_pseudo(ctx: &Ctx) -> Result<(), Error> {
    for fs in &PSEUDO {
        match mount_one(ctx, fs) {
            Ok(()) => {}
            Err(e) if fs.required => return Err(e),
            Err(e) => ctx.report(e),
        }
    }
    let console = ctx.path("/dev/console");
    if let Err(source) = ctx.sys.attach_console(&console) {
        ctx.report(Error::Console {
            path: "/dev/console".to_string(),
            source,
        });
    }
    Ok(())
}

fn mount_one(ctx: &Ctx, fs: &Pseudo) -> Result<(), Error> {
    let target = ctx.path(fs.target);
    std::fs::create_dir_all(&target).map_err(|source| Error::MountPoint {
        path: PathBuf::from(fs.target),
        source,
    })?;
    ctx.sys
        .mount(fs.fstype, &target, fs.fstype, fs.flags, fs.data)
        .map_err(|source| Error::Mount {
            fstype: fs.fstype.to_string(),
            target: fs.target.to_string(),
            source,
        })
}

/// Creates `target` (board path) and mounts `device` on it, with file-system specific
/// `options` (the data argument of mount(2)).
pub fn mount_device_with(
    ctx: &Ctx,
    device: &str,
    target: &str,
    fstype: &str,
    flags: MsFlags,
    options: Option<&str>,
) -> Result<(), Error> {
    let path = ctx.path(target);
    std::fs::create_dir_all(&path).map_err(|source| Error::MountPoint {
        path: PathBuf::from(target),
        source,
    })?;
    ctx.sys
        .mount(device, &path, fstype, flags, options)
        .map_err(|source| Error::Mount {
            fstype: fstype.to_string(),
            target: target.to_string(),
            source,
        })
}

/// How a file system was taken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmounted {
    /// Unmounted.
    Unmounted,
    /// Busy, so remounted read-only instead (its data is on disk either way).
    ReadOnly,
}

/// Unmounts `target` (board path); if that fails (busy), remounts it read-only.
pub fn unmount(ctx: &Ctx, target: &str) -> Result<Unmounted, Error> {
    let path = ctx.path(target);
    let unmount = match ctx.sys.unmount(&path) {
        Ok(()) => return Ok(Unmounted::Unmounted),
        Err(e) => e,
    };
    match ctx.sys.remount_read_only(&path) {
        Ok(()) => Ok(Unmounted::ReadOnly),
        Err(remount) => Err(Error::Unmount {
            target: target.to_string(),
            unmount,
            remount,
        }),
    }
}
