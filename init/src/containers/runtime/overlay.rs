//! A container's root: an overlayfs over the image layers, with a per-run writable layer.

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// The kernel copies at most one page of mount options.
const MAX_OPTIONS: usize = 4095;

/// Errors preparing or removing a container root.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A directory could not be wiped or created.
    #[error("cannot prepare {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A path cannot appear in overlayfs options.
    #[error("overlay path {path} is unusable: {why}")]
    BadPath {
        /// The path.
        path: PathBuf,
        /// Why.
        why: &'static str,
    },
    /// The options do not fit in a page.
    #[error("overlay options for {target} are {len} bytes, over the kernel's {MAX_OPTIONS}")]
    TooLong {
        /// The mount point.
        target: PathBuf,
        /// Their length.
        len: usize,
    },
    /// mount(2) failed.
    #[error("cannot mount the overlay on {target}: {source}")]
    Mount {
        /// The mount point.
        target: PathBuf,
        /// The error.
        source: nix::Error,
    },
    /// umount2(2) failed.
    #[error("cannot unmount {target}: {source}")]
    Unmount {
        /// The mount point.
        target: PathBuf,
        /// The error.
        source: nix::Error,
    },
}

/// The upper and work directories inside a request's `writable_dir`.
pub fn upper_work(writable: &Path) -> (PathBuf, PathBuf) {
    (writable.join("upper"), writable.join("work"))
}

/// Empties `writable` (whatever a previous run left) and creates its upper and work directories.
pub fn prepare_writable(writable: &Path) -> Result<(), Error> {
    remove_dir(writable)?;
    let (upper, work) = upper_work(writable);
    for dir in [&upper, &work] {
        std::fs::create_dir_all(dir).map_err(|source| Error::Dir {
            path: dir.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Removes `dir` and everything in it; a missing `dir` is fine.
pub fn remove_dir(dir: &Path) -> Result<(), Error> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Dir {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// The overlayfs options for `lower` (top first) over `writable`.
pub fn options(lower: &[PathBuf], writable: &Path, target: &Path) -> Result<String, Error> {
    if lower.is_empty() {
        return Err(Error::BadPath {
            path: target.to_path_buf(),
            why: "the image has no layers",
        });
    }
    let (upper, work) = upper_work(writable);
    let mut all: Vec<&Path> = lower.iter().map(PathBuf::as_path).collect();
    all.push(&upper);
    all.push(&work);
    for p in &all {
        let s = p.to_str().ok_or_else(|| Error::BadPath {
            path: p.to_path_buf(),
            why: "not UTF-8",
        })?;
        if s.contains([',', ':', '\\']) {
            return Err(Error::BadPath {
                path: p.to_path_buf(),
                why: "contains ',', ':' or '\\'",
            });
        }
    }
    let lowers: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        upper.display(),
        work.display()
    );
    if data.len() > MAX_OPTIONS {
        return Err(Error::TooLong {
            target: target.to_path_buf(),
            len: data.len(),
        });
    }
    Ok(data)
}

/// Mounts the overlay of `lower` over `writable` on `target` (which must exist).
pub fn mount_root(lower: &[PathBuf], writable: &Path, target: &Path) -> Result<(), Error> {
    let data = options(lower, writable, target)?;
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(data.as_str()),
    )
    .map_err(|source| Error::Mount {
        target: target.to_path_buf(),
        source,
    })
}

/// Detaches whatever is mounted on `target`; nothing mounted there is fine.
pub fn unmount(target: &Path) -> Result<(), Error> {
    match umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(source) => Err(Error::Unmount {
            target: target.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_list_layers_top_first() {
        let o = options(
            &["/l/top".into(), "/l/base".into()],
            Path::new("/data/rw/web-1"),
            Path::new("/r"),
        )
        .expect("options");
        assert_eq!(
            o,
            "lowerdir=/l/top:/l/base,upperdir=/data/rw/web-1/upper,workdir=/data/rw/web-1/work"
        );
    }

    #[test]
    fn unusable_paths_and_no_layers_are_refused() {
        let w = Path::new("/w");
        let t = Path::new("/t");
        assert!(options(&[], w, t).is_err());
        assert!(options(&["/a:b".into()], w, t).is_err());
        assert!(options(&["/a,b".into()], w, t).is_err());
        let many: Vec<PathBuf> = (0..200)
            .map(|i| PathBuf::from(format!("/data/layers/{i:064}")))
            .collect();
        assert!(matches!(options(&many, w, t), Err(Error::TooLong { .. })));
    }

    #[test]
    fn prepare_wipes_the_previous_run() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let w = tmp.path().join("rw");
        prepare_writable(&w).expect("first");
        std::fs::write(w.join("upper/old"), b"x").expect("write");
        prepare_writable(&w).expect("second");
        assert!(w.join("upper").is_dir() && w.join("work").is_dir());
        assert!(!w.join("upper/old").exists());
        remove_dir(&w).expect("remove");
        remove_dir(&w).expect("remove again");
        assert!(!w.exists());
    }
}
