//! ext4 project quotas on the data partition: what a service may write there (its volumes and
//! its instances' writable layers) is one project whose hard limit is the spec's
//! `resources.disk`.
//!
//! A project is a number carried by every inode; a directory marked "project inherit" passes
//! its number to everything created inside it, so marking a volume's or a writable layer's
//! directory before the container starts charges all it writes to the project. Limits need the
//! file system made with `-O quota,project` (the builder does; it cannot be added online) and
//! mounted with `prjquota`. Calls go through `quotactl_fd(2)` (Linux 5.14) on the mount point,
//! so no block device path is needed.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// `PRJQUOTA` of `<linux/quota.h>`.
const PRJQUOTA: libc::c_int = 2;
/// `Q_XGETQSTATV` of `<linux/dqblk_xfs.h>`: `XQM_CMD(8)`.
const Q_XGETQSTATV: libc::c_int = (b'X' as libc::c_int) << 8 | 8;
/// `FS_QSTATV_VERSION1`.
const QSTATV_VERSION: i8 = 1;
/// Project quota accounting is on.
const PDQ_ACCT: u16 = 0x10;
/// Project quota limits are enforced.
const PDQ_ENFD: u16 = 0x20;
/// Quota limits are in blocks of this many bytes (`QIF_DQBLKSIZE`).
const QUOTA_BLOCK: u64 = 1024;
/// `FS_XFLAG_PROJINHERIT`: new inodes take the directory's project.
const XFLAG_PROJINHERIT: u32 = 0x200;
/// How deep [`set_project_tree`] walks; a deeper tree is refused rather than overflow a stack.
const MAX_DEPTH: usize = 128;

/// `struct fsxattr` of `<linux/fs.h>`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct FsXattr {
    xflags: u32,
    extsize: u32,
    nextents: u32,
    projid: u32,
    cowextsize: u32,
    pad: [u8; 8],
}

nix::ioctl_read!(fs_get_xattr, b'X', 31, FsXattr);
nix::ioctl_write_ptr!(fs_set_xattr, b'X', 32, FsXattr);

/// `struct fs_qfilestatv`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct QFileStatV {
    ino: u64,
    nblks: u64,
    nextents: u32,
    pad: u32,
}

/// `struct fs_quota_statv`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct QuotaStatV {
    version: i8,
    pad1: u8,
    flags: u16,
    incoredqs: u32,
    user: QFileStatV,
    group: QFileStatV,
    project: QFileStatV,
    btimelimit: i32,
    itimelimit: i32,
    rtbtimelimit: i32,
    bwarnlimit: u16,
    iwarnlimit: u16,
    rtbwarnlimit: u16,
    pad3: u16,
    pad4: u32,
    pad2: [u64; 7],
}

/// Errors about project quotas; each names the file system or directory.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file system does not enforce project quotas.
    #[error("{mount} does not enforce project quotas: {why}")]
    Unsupported {
        /// The mount point.
        mount: PathBuf,
        /// Why (made without the feature, mounted without `prjquota`, or the call failed).
        why: String,
    },
    /// Opening or marking a directory failed.
    #[error("cannot give {path} to disk project {project}: {source}")]
    Mark {
        /// The file or directory.
        path: PathBuf,
        /// The project.
        project: u32,
        /// The error.
        source: io::Error,
    },
    /// Setting or reading a limit failed.
    #[error("disk project {project} on {mount}: {action}: {source}")]
    Limit {
        /// The mount point.
        mount: PathBuf,
        /// The project.
        project: u32,
        /// What was being done.
        action: &'static str,
        /// The error.
        source: io::Error,
    },
}

/// Whether the file system mounted at `mount` enforces project quotas.
pub fn probe(mount: &Path) -> Result<(), Error> {
    let unsupported = |why: String| Error::Unsupported {
        mount: mount.to_path_buf(),
        why,
    };
    let dir = open_dir(mount).map_err(|e| unsupported(e.to_string()))?;
    let mut stat = QuotaStatV {
        version: QSTATV_VERSION,
        ..QuotaStatV::default()
    };
    let cmd = libc::QCMD(Q_XGETQSTATV, PRJQUOTA);
    quotactl(&dir, cmd, 0, std::ptr::from_mut(&mut stat).cast()).map_err(|e| {
        unsupported(match e.raw_os_error() {
            Some(libc::ENOSYS | libc::ENOTSUP) => {
                format!("the kernel or the file system has no quota support ({e})")
            }
            _ => format!("reading its quota state: {e}"),
        })
    })?;
    if stat.flags & PDQ_ACCT == 0 {
        return Err(unsupported(
            "its file system was made without the `project` and `quota` features (a card made \
             by an older `baton image build`)"
                .to_string(),
        ));
    }
    if stat.flags & PDQ_ENFD == 0 {
        return Err(unsupported("it is mounted without `prjquota`".to_string()));
    }
    Ok(())
}

/// Marks the directory `dir` as project `project`, inheriting: what is created inside from now
/// on belongs to the project. What is already inside keeps its project (see [`set_project_tree`]).
pub fn set_project(dir: &Path, project: u32) -> Result<(), Error> {
    let mark = |source| Error::Mark {
        path: dir.to_path_buf(),
        project,
        source,
    };
    let file = open_dir(dir).map_err(mark)?;
    mark_open(&file, project, true).map(drop).map_err(mark)
}

/// The project of the directory `dir`.
pub fn project_of(dir: &Path) -> Result<u32, Error> {
    let fail = |source| Error::Mark {
        path: dir.to_path_buf(),
        project: 0,
        source,
    };
    let file = open_dir(dir).map_err(fail)?;
    let mut attr = FsXattr::default();
    // SAFETY: the descriptor is open for the call's duration and `attr` is a valid, writable
    // `struct fsxattr`, the type this ioctl fills.
    unsafe { fs_get_xattr(file.as_raw_fd(), &mut attr) }.map_err(|e| fail(e.into()))?;
    Ok(attr.projid)
}

/// Marks `dir` and everything under it (directories inheriting), so that data written before
/// the directory had a project counts too. Symbolic links and special files keep theirs (they
/// hold no data blocks worth counting). Returns how many inodes changed.
pub fn set_project_tree(dir: &Path, project: u32) -> Result<u64, Error> {
    let mut changed = 0;
    walk(dir, project, 0, &mut changed)?;
    Ok(changed)
}

fn walk(path: &Path, project: u32, depth: usize, changed: &mut u64) -> Result<(), Error> {
    let fail = |source| Error::Mark {
        path: path.to_path_buf(),
        project,
        source,
    };
    if depth > MAX_DEPTH {
        return Err(fail(io::Error::other(format!(
            "deeper than {MAX_DEPTH} directories"
        ))));
    }
    let meta = std::fs::symlink_metadata(path).map_err(fail)?;
    let kind = meta.file_type();
    if kind.is_symlink() || kind.is_fifo() || kind.is_socket() || kind.is_block_device() {
        return Ok(());
    }
    if kind.is_char_device() {
        return Ok(());
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(fail)?;
    // The path may have been swapped for another kind of file since the metadata was read.
    let opened = file.metadata().map_err(fail)?;
    if opened.ino() != meta.ino() || opened.dev() != meta.dev() {
        return Err(fail(io::Error::other("changed while being marked")));
    }
    if mark_open(&file, project, kind.is_dir()).map_err(fail)? {
        *changed += 1;
    }
    if kind.is_dir() {
        for entry in std::fs::read_dir(path).map_err(fail)? {
            let entry = entry.map_err(fail)?;
            walk(&entry.path(), project, depth + 1, changed)?;
        }
    }
    Ok(())
}

/// Sets the project (and, for a directory, inheritance) of an open file; `false` when it had
/// them already.
fn mark_open(file: &File, project: u32, inherit: bool) -> io::Result<bool> {
    let mut attr = FsXattr::default();
    // SAFETY: the descriptor is open for the call's duration and `attr` is a valid, writable
    // `struct fsxattr`, the type this ioctl fills.
    unsafe { fs_get_xattr(file.as_raw_fd(), &mut attr) }.map_err(io::Error::from)?;
    let flags = if inherit {
        attr.xflags | XFLAG_PROJINHERIT
    } else {
        attr.xflags
    };
    if attr.projid == project && attr.xflags == flags {
        return Ok(false);
    }
    attr.projid = project;
    attr.xflags = flags;
    // SAFETY: as above; the kernel only reads `attr`.
    unsafe { fs_set_xattr(file.as_raw_fd(), &attr) }.map_err(io::Error::from)?;
    Ok(true)
}

/// Sets project `project`'s hard limit on the file system at `mount` to `bytes` (rounded up to
/// KiB; 0 means no limit).
pub fn set_limit(mount: &Path, project: u32, bytes: u64) -> Result<(), Error> {
    // SAFETY: `dqblk` is plain old data; all zeroes is a valid value.
    let mut block: libc::dqblk = unsafe { std::mem::zeroed() };
    block.dqb_bhardlimit = bytes.div_ceil(QUOTA_BLOCK);
    block.dqb_valid = libc::QIF_BLIMITS;
    project_call(
        mount,
        project,
        libc::Q_SETQUOTA,
        "setting the limit",
        &mut block,
    )
}

/// Project `project`'s bytes in use and hard limit (0: none) on the file system at `mount`.
pub fn usage(mount: &Path, project: u32) -> Result<(u64, u64), Error> {
    // SAFETY: as in `set_limit`.
    let mut block: libc::dqblk = unsafe { std::mem::zeroed() };
    project_call(
        mount,
        project,
        libc::Q_GETQUOTA,
        "reading the usage",
        &mut block,
    )?;
    Ok((
        block.dqb_curspace,
        block.dqb_bhardlimit.saturating_mul(QUOTA_BLOCK),
    ))
}

/// One `dqblk` command of the project quota type on the file system at `mount`.
fn project_call(
    mount: &Path,
    project: u32,
    cmd: libc::c_int,
    action: &'static str,
    block: &mut libc::dqblk,
) -> Result<(), Error> {
    let fail = |action, source| Error::Limit {
        mount: mount.to_path_buf(),
        project,
        action,
        source,
    };
    let dir = open_dir(mount).map_err(|e| fail("opening", e))?;
    let cmd = libc::QCMD(cmd, PRJQUOTA);
    quotactl(&dir, cmd, project, std::ptr::from_mut(block).cast()).map_err(|e| fail(action, e))
}

fn open_dir(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

fn quotactl(
    dir: &File,
    cmd: libc::c_int,
    id: u32,
    addr: *mut libc::c_void,
) -> Result<(), io::Error> {
    // SAFETY: `quotactl_fd(fd, cmd, id, addr)`: the descriptor is open for the call, and `addr`
    // points at the structure `cmd` reads or fills (the callers pair them), alive for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_quotactl_fd,
            dir.as_raw_fd(),
            cmd as libc::c_uint,
            id,
            addr,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
#[path = "quota_tests.rs"]
mod tests;
