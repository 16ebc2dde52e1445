//! Named network namespaces for instances: created in a short-lived thread (so no other
//! thread ever changes namespace) and kept alive by a bind mount at `<dir>/<id>`, which is the
//! path the runtime joins.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

/// Errors creating or removing a namespace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed.
    #[error("network namespace {path}: {what}: {source}")]
    Sys {
        /// The namespace file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
}

fn sys(path: &Path, what: &'static str) -> impl FnOnce(nix::Error) -> Error {
    let path = path.to_path_buf();
    move |e| Error::Sys {
        path,
        what,
        source: std::io::Error::from(e),
    }
}

/// Creates a new network namespace pinned at `dir/<id>` and returns that path. An existing
/// one of the same name (from a crashed run) is replaced.
pub fn create(dir: &Path, id: &str) -> Result<PathBuf, Error> {
    let path = dir.join(id);
    std::fs::create_dir_all(dir).map_err(|source| Error::Sys {
        path: dir.to_path_buf(),
        what: "creating the directory",
        source,
    })?;
    let _ = remove(&path);
    std::fs::File::create(&path).map_err(|source| Error::Sys {
        path: path.clone(),
        what: "creating the mount point",
        source,
    })?;
    let target = path.clone();
    let made = std::thread::spawn(move || -> Result<(), Error> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(sys(&target, "unshare"))?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(sys(&target, "bind-mounting"))
    })
    .join();
    match made {
        Ok(Ok(())) => Ok(path),
        Ok(Err(e)) => {
            let _ = std::fs::remove_file(&path);
            Err(e)
        }
        Err(_) => Err(Error::Sys {
            path,
            what: "the namespace thread",
            source: std::io::Error::other("panicked"),
        }),
    }
}

/// Unpins and deletes the namespace at `path` (it ends when nothing else uses it).
pub fn remove(path: &Path) -> Result<(), Error> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(sys(path, "unmounting")(e)),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Sys {
            path: path.to_path_buf(),
            what: "removing",
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs root (CI and this project's test machines run as root).
    #[test]
    fn creates_a_distinct_namespace_and_removes_it() {
        assert!(
            nix::unistd::Uid::effective().is_root(),
            "this test needs root"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let path = create(dir.path(), "web-1").expect("created");
        let ours =
            std::fs::metadata("/proc/self/ns/net").map(|m| std::os::unix::fs::MetadataExt::ino(&m));
        let theirs = std::fs::metadata(&path).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
        assert_ne!(ours.ok(), theirs.ok(), "a new namespace, not ours");
        // Creating it again replaces it.
        create(dir.path(), "web-1").expect("created again");
        remove(&path).expect("removed");
        assert!(!path.exists());
        remove(&path).expect("removing twice is fine");
    }
}
