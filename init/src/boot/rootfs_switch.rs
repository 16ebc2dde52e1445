//! Moves the board off the initramfs onto a tmpfs root before anything else runs.
//!
//! The kernel unpacks the initramfs into `rootfs`, a mount with no parent, which `pivot_root(2)`
//! cannot leave; containers would have to enter their roots with `MS_MOVE` and `chroot`. So the
//! very first thing PID 1 does, when `/` is `rootfs`, is what busybox `switch_root` does after
//! a copy: mount a tmpfs at [`NEW_ROOT`], copy every file of the initramfs into it, delete the
//! initramfs files (freeing their memory), move the tmpfs onto `/`, `chroot` into it and
//! re-execute `/init` with [`SWITCHED_ARG`]. The new init finds `/` on a tmpfs and boots
//! normally.
//!
//! Failures before the initramfs files are deleted undo the tmpfs and leave the board on the
//! initramfs (the container runtime then falls back to `chroot`). After that point there is no
//! way back: a failed move still `chroot`s into the copy, and a failed exec continues the boot
//! in this process, on the new root. The caller reports every error.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::board::context::Ctx;
use crate::board::mountinfo::root_is_initramfs;
use crate::board::sys::MsFlags;

/// Where the tmpfs is mounted while the initramfs is copied into it.
pub const NEW_ROOT: &str = "/.baton-root";
/// The argument the re-executed init gets, so it never tries to switch twice.
pub const SWITCHED_ARG: &str = "--baton-switched-root";
/// The program the kernel started from the initramfs, executed again from the new root.
pub const INIT: &str = "/init";

/// Why the root was not switched (or was, but not completely).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// /proc could not be mounted or read to see what `/` is.
    #[error("cannot tell whether / is the initramfs ({path}): {source}")]
    Detect {
        /// The path that failed.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The re-executed init still found itself on the initramfs.
    #[error("/ is still the initramfs after switching to a tmpfs root; staying on it")]
    StillInitramfs,
    /// Preparing the new root failed; the board stays on the initramfs.
    #[error("cannot {action} {path} for the tmpfs root (staying on the initramfs): {source}")]
    Prepare {
        /// What was being done (`mount a tmpfs on`, `copy`, ...).
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Moving the tmpfs onto `/` failed; the init entered it with a plain `chroot` instead.
    #[error("cannot move the tmpfs root {path} onto /: {source}; entered it with chroot")]
    Move {
        /// The new root.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The new root could not be entered at all: the board runs on what is left of the
    /// initramfs.
    #[error("cannot enter the tmpfs root {path}: {source}")]
    Enter {
        /// The new root.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The init could not be executed again; the boot continues in this process on the new root.
    #[error("switched to the tmpfs root but cannot execute {path} again: {source}")]
    Exec {
        /// The program.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// What [`switch_root`] did when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `/` is not the initramfs: nothing to do.
    NotNeeded,
    /// The init was executed again from the tmpfs root (only the test fake returns this).
    Executed,
}

/// What was copied.
#[derive(Debug, Default)]
struct Copied {
    files: u64,
    bytes: u64,
}

/// Switches to a tmpfs root if `/` is the initramfs. `args` are this process's arguments
/// (`args[0]` first); they are passed on to the new init, after [`SWITCHED_ARG`].
pub fn switch_root(ctx: &Ctx, args: &[String]) -> Result<Outcome, Error> {
    let switched = args.iter().any(|a| a == SWITCHED_ARG);
    if !on_initramfs(ctx)? {
        if switched {
            ctx.say("running on a tmpfs root");
        }
        return Ok(Outcome::NotNeeded);
    }
    if switched {
        return Err(Error::StillInitramfs);
    }
    let started = Instant::now();
    let new_root = ctx.path(NEW_ROOT);
    let copied = prepare(ctx, &new_root)?;
    delete_contents(&ctx.root, &new_root);
    ctx.say(format_args!(
        "copied the initramfs to a tmpfs root ({} files, {} KiB) in {} ms",
        copied.files,
        copied.bytes / 1024,
        started.elapsed().as_millis()
    ));
    enter(ctx, &new_root)?;
    let mut next = vec![args.first().cloned().unwrap_or_else(|| INIT.to_string())];
    next.push(SWITCHED_ARG.to_string());
    next.extend(args.iter().skip(1).cloned());
    match ctx.sys.exec(Path::new(INIT), &next) {
        Ok(()) => Ok(Outcome::Executed),
        Err(source) => Err(Error::Exec {
            path: PathBuf::from(INIT),
            source,
        }),
    }
}

/// Whether `/` is the initramfs, from `/proc/self/mountinfo` (mounting /proc for the look).
fn on_initramfs(ctx: &Ctx) -> Result<bool, Error> {
    let proc = ctx.path("/proc");
    let detect = |path: &Path, source| Error::Detect {
        path: path.to_path_buf(),
        source,
    };
    ctx.sys
        .mount("proc", &proc, "proc", MsFlags::empty(), None)
        .map_err(|e| detect(&proc, e))?;
    let mountinfo_path = ctx.path("/proc/self/mountinfo");
    let mountinfo = fs::read_to_string(&mountinfo_path);
    if let Err(e) = ctx.sys.unmount(&proc) {
        return Err(detect(&proc, e));
    }
    let mountinfo = mountinfo.map_err(|e| detect(&mountinfo_path, e))?;
    Ok(root_is_initramfs(&mountinfo))
}

/// Mounts the tmpfs and copies the initramfs into it; on failure, takes it down again.
fn prepare(ctx: &Ctx, new_root: &Path) -> Result<Copied, Error> {
    let fail = |action, path: &Path, source| Error::Prepare {
        action,
        path: path.to_path_buf(),
        source,
    };
    fs::create_dir_all(new_root).map_err(|e| fail("create", new_root, e))?;
    if let Err(e) = ctx.sys.mount(
        "tmpfs",
        new_root,
        "tmpfs",
        MsFlags::empty(),
        Some("mode=0755"),
    ) {
        let _ = fs::remove_dir(new_root);
        return Err(fail("mount a tmpfs on", new_root, e));
    }
    let result = copy_all(ctx, new_root).and_then(|copied| {
        let init = new_root.join(INIT.trim_start_matches('/'));
        match fs::metadata(&init) {
            Ok(m) if m.is_file() => Ok(copied),
            Ok(_) => Err(("find", init, io::ErrorKind::InvalidData.into())),
            Err(e) => Err(("find", init, e)),
        }
    });
    result.map_err(|(action, path, source)| {
        if let Err(e) = ctx.sys.unmount(new_root) {
            ctx.report(format_args!("cannot unmount {}: {e}", new_root.display()));
        }
        let _ = fs::remove_dir_all(new_root);
        fail(action, &path, source)
    })
}

type CopyError = (&'static str, PathBuf, io::Error);

fn copy_all(ctx: &Ctx, new_root: &Path) -> Result<Copied, CopyError> {
    let meta = fs::symlink_metadata(&ctx.root).map_err(|e| ("read", ctx.root.clone(), e))?;
    let mut copied = Copied::default();
    copy_dir(ctx, &ctx.root, new_root, new_root, meta.dev(), &mut copied)?;
    Ok(copied)
}

/// Copies the entries of `from` into `to`, staying on device `dev` and skipping `skip`.
fn copy_dir(
    ctx: &Ctx,
    from: &Path,
    to: &Path,
    skip: &Path,
    dev: u64,
    copied: &mut Copied,
) -> Result<(), CopyError> {
    let entries = fs::read_dir(from).map_err(|e| ("read", from.to_path_buf(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| ("read", from.to_path_buf(), e))?;
        let src = entry.path();
        if src == skip {
            continue;
        }
        let meta = fs::symlink_metadata(&src).map_err(|e| ("read", src.clone(), e))?;
        if meta.dev() != dev {
            continue;
        }
        let dst = to.join(entry.file_name());
        let kind = meta.file_type();
        if kind.is_dir() {
            fs::create_dir(&dst).map_err(|e| ("create", dst.clone(), e))?;
            copy_dir(ctx, &src, &dst, skip, dev, copied)?;
            let mode = fs::Permissions::from_mode(meta.mode() & 0o7777);
            fs::set_permissions(&dst, mode).map_err(|e| ("set the mode of", dst.clone(), e))?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&src).map_err(|e| ("read", src.clone(), e))?;
            std::os::unix::fs::symlink(target, &dst).map_err(|e| ("create", dst.clone(), e))?;
        } else if kind.is_file() {
            copied.bytes += fs::copy(&src, &dst).map_err(|e| ("copy", src.clone(), e))?;
        } else {
            ctx.sys
                .make_node(&dst, meta.mode(), meta.rdev())
                .map_err(|e| ("create", dst.clone(), e))?;
        }
        copied.files += 1;
    }
    Ok(())
}

/// Deletes everything under `dir` on the same device, except `keep`; errors are ignored (what
/// cannot be deleted only costs memory).
fn delete_contents(dir: &Path, keep: &Path) {
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return;
    };
    delete_under(dir, keep, meta.dev());
}

fn delete_under(dir: &Path, keep: &Path, dev: u64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path == keep {
            continue;
        }
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.dev() != dev {
            continue;
        }
        if meta.is_dir() {
            delete_under(&path, keep, dev);
            let _ = fs::remove_dir(&path);
        } else {
            let _ = fs::remove_file(&path);
        }
    }
}

/// Moves the new root onto `/` and enters it, as busybox `switch_root` does.
fn enter(ctx: &Ctx, new_root: &Path) -> Result<(), Error> {
    let enter_err = |source| Error::Enter {
        path: new_root.to_path_buf(),
        source,
    };
    ctx.sys.change_dir(new_root).map_err(enter_err)?;
    if let Err(source) = ctx.sys.move_mount(new_root, &ctx.root) {
        // The copy is still a mount with a parent, so pivot_root works from inside it too.
        ctx.sys.change_root(new_root).map_err(enter_err)?;
        ctx.sys.change_dir(Path::new("/")).map_err(enter_err)?;
        return Err(Error::Move {
            path: new_root.to_path_buf(),
            source,
        });
    }
    ctx.sys.change_root(Path::new(".")).map_err(enter_err)?;
    ctx.sys.change_dir(Path::new("/")).map_err(enter_err)?;
    Ok(())
}

#[cfg(test)]
#[path = "rootfs_switch_tests.rs"]
mod tests;
