//! Idmapped mounts: the image layers seen through a container's id range.
//!
//! A container in a user namespace maps its ids `0..count` onto the board's `base..base +
//! count`. The layers on disk belong to the board's ids (root, mostly), which that namespace
//! cannot see. So each layer is cloned (`open_tree(OPEN_TREE_CLONE)`), the clone is given the
//! mapping (`mount_setattr(MOUNT_ATTR_IDMAP)` with a user namespace carrying it) and made
//! read-only, and attached under the container's bundle (`move_mount`) where the overlay's
//! `lowerdir` names it. A layer file of root then reads as owned by `base`, the container's
//! root; the layers themselves are not changed and are shared by every service.
//!
//! The user namespace carrying the mapping comes from a child forked for the purpose: it
//! unshares its user namespace and waits; the parent writes the maps, opens the namespace and
//! lets the child exit. The helper is single-threaded, and the child only makes raw system
//! calls, so forking is safe here (and in the init, for [`probe`], for the same reason).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::IdRange;

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

/// Errors making an idmapped mount.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A step failed; `what` names it and its object.
    #[error("{what}: {source}")]
    Sys {
        /// The step.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

fn sys(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Sys { what, source }
}

fn cpath(p: &Path) -> Result<CString, Error> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::Sys {
        what: format!("path {}", p.display()),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "contains a NUL byte"),
    })
}

/// A user namespace whose ids `0..range.count` are the board's `range.base..`.
///
/// A forked child makes the namespace and waits; its `/proc/<pid>/ns/user` is opened, and the
/// child is then killed. It is killed rather than told to exit through a pipe: a child forked
/// at the same time by another thread would inherit the pipe's write end (close-on-exec does
/// not act on fork), and two such children each waiting for the other's pipe to close would
/// never exit.
pub fn user_namespace(range: IdRange) -> Result<OwnedFd, Error> {
    let mut ready = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the array, which has room for them.
    if unsafe { libc::pipe2(ready.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(sys("pipe2")(std::io::Error::last_os_error()));
    }
    // SAFETY: both descriptors were just created and are owned here only.
    let (ready_r, ready_w) = unsafe {
        (
            OwnedFd::from_raw_fd(ready[0]),
            OwnedFd::from_raw_fd(ready[1]),
        )
    };
    // SAFETY: the child only calls prctl, unshare, write and pause, raw system calls that are
    // async-signal-safe and allocate nothing, and never returns: it is killed.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(sys("fork")(std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: raw system calls on a descriptor this child inherited; it never returns.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            let ok: u8 = u8::from(libc::unshare(libc::CLONE_NEWUSER) == 0);
            libc::write(ready_w.as_raw_fd(), (&ok as *const u8).cast(), 1);
            loop {
                libc::pause();
            }
        }
    }
    drop(ready_w);
    let result = (|| {
        let mut ok = 0u8;
        // SAFETY: reads one byte into a local byte.
        let n = unsafe { libc::read(ready_r.as_raw_fd(), (&mut ok as *mut u8).cast(), 1) };
        if n != 1 || ok != 1 {
            return Err(Error::Sys {
                what: "unshare(CLONE_NEWUSER)".into(),
                source: std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "the kernel refused a new user namespace",
                ),
            });
        }
        let map = format!("0 {} {}\n", range.base, range.count);
        for file in ["uid_map", "gid_map"] {
            let path = format!("/proc/{pid}/{file}");
            std::fs::write(&path, &map).map_err(sys(format!("writing {path}")))?;
        }
        let ns = format!("/proc/{pid}/ns/user");
        std::fs::File::open(&ns)
            .map(OwnedFd::from)
            .map_err(sys(format!("opening {ns}")))
    })();
    let mut status = 0;
    // SAFETY: kills and waits for the child forked above, which is ours and not yet reaped.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, &mut status, 0);
    }
    result
}

/// A detached, read-only clone of the mount at `source`, idmapped through `userns`.
fn idmapped_clone(source: &Path, userns: &OwnedFd) -> Result<OwnedFd, Error> {
    let c = cpath(source)?;
    // SAFETY: open_tree with a valid NUL-terminated path; the result is a new descriptor.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Err(sys(format!("open_tree {}", source.display()))(e));
    }
    // SAFETY: open_tree returned a new descriptor owned by no one else.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: mount_setattr on the tree descriptor with an empty path and a valid attr struct
    // of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return Err(sys(format!("idmapping a clone of {}", source.display()))(e));
    }
    Ok(tree)
}

/// Attaches an idmapped, read-only clone of `source` on `target` (an existing directory).
pub fn mount(source: &Path, target: &Path, userns: &OwnedFd) -> Result<(), Error> {
    let tree = idmapped_clone(source, userns)?;
    let t = cpath(target)?;
    // SAFETY: move_mount from the detached tree (empty path) onto a NUL-terminated target path.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return Err(sys(format!("attaching the idmapped {}", target.display()))(
            e,
        ));
    }
    Ok(())
}

/// Whether an idmapped mount of `dir` can be made (the kernel, the file system): `Err` says
/// why not. Nothing is attached.
pub fn probe(dir: &Path) -> Result<(), String> {
    let userns = user_namespace(IdRange {
        base: 65_536 * 2,
        count: 65_536,
    })
    .map_err(|e| e.to_string())?;
    idmapped_clone(dir, &userns)
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn a_user_namespace_carries_the_mapping() {
        assert!(root(), "this test needs root (CI runs as root)");
        let ns = user_namespace(IdRange {
            base: 200_000,
            count: 65_536,
        })
        .expect("userns");
        let link = std::fs::read_link(format!("/proc/self/fd/{}", ns.as_raw_fd())).expect("link");
        assert!(link.to_string_lossy().starts_with("user:["), "{link:?}");
    }

    #[test]
    fn namespaces_made_on_many_threads_at_once_all_finish() {
        assert!(root(), "this test needs root (CI runs as root)");
        // Each child used to wait for its own pipe to close, and children forked at once held
        // each other's pipes open: two threads were enough to hang for ever.
        let (done, finished) = std::sync::mpsc::channel();
        for t in 0..8u32 {
            let done = done.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    let made = user_namespace(IdRange {
                        base: 200_000 + t * 65_536,
                        count: 65_536,
                    });
                    assert!(made.is_ok(), "{made:?}");
                }
                let _ = done.send(t);
            });
        }
        drop(done);
        for _ in 0..8 {
            finished
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("every thread to finish its namespaces");
        }
    }

    #[test]
    fn an_idmapped_layer_shows_root_files_as_the_range_root() {
        assert!(root(), "this test needs root (CI runs as root)");
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let layer = dir.path().join("layer");
        let target = dir.path().join("mapped");
        std::fs::create_dir_all(&layer).expect("layer");
        std::fs::create_dir_all(&target).expect("target");
        std::fs::write(layer.join("f"), b"x").expect("file");
        if let Err(why) = probe(&layer) {
            panic!("the temporary directory's file system cannot be idmapped: {why}");
        }
        let ns = user_namespace(IdRange {
            base: 300_000,
            count: 65_536,
        })
        .expect("userns");
        mount(&layer, &target, &ns).expect("mount");
        let meta = std::fs::metadata(target.join("f")).expect("stat");
        let written = std::fs::write(target.join("g"), b"y");
        let _ = nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH);
        assert_eq!((meta.uid(), meta.gid()), (300_000, 300_000));
        assert!(written.is_err(), "the clone is read-only");
        assert_eq!(std::fs::metadata(layer.join("f")).expect("stat").uid(), 0);
    }
}
