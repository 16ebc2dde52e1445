//! Moving a service's volumes into its id range: a volume written while the service ran with
//! the board's ids keeps working once it runs in a user namespace.
//!
//! Each file, directory and link whose owner or group is below [`RANGE`] gets that id plus the
//! range's base (`lchown`: links are never followed); other ids are left alone. Running it
//! again changes nothing, so a walk cut short (power loss) is simply done again: the table
//! records a service's volumes as shifted only after the walk ended.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::ids::RANGE;

/// Shifts the ids of everything under `dir` (included) by `base`; a missing `dir` is fine.
pub fn shift_tree(dir: &Path, base: u32) -> std::io::Result<u64> {
    let mut changed = 0;
    let mut pending: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(with_path(e, &path)),
        };
        let shift = |id: u32| (id < RANGE).then(|| id + base);
        let (uid, gid) = (shift(meta.uid()), shift(meta.gid()));
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::lchown(&path, uid, gid).map_err(|e| with_path(e, &path))?;
            changed += 1;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(|e| with_path(e, &path))? {
                pending.push(entry.map_err(|e| with_path(e, &path))?.path());
            }
        }
    }
    Ok(changed)
}

/// Gives a volume's directory to the range's root if it is not in the range yet (just made).
pub fn own_root(dir: &Path, base: u32) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| with_path(e, dir))?;
    let inside = |id: u32| (base..base.saturating_add(RANGE)).contains(&id);
    if !inside(meta.uid()) || !inside(meta.gid()) {
        std::os::unix::fs::lchown(dir, Some(base), Some(base)).map_err(|e| with_path(e, dir))?;
    }
    Ok(())
}

fn with_path(e: std::io::Error, path: &Path) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_low_ids_once_and_follows_no_link() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (CI runs as root)"
        );
        let tmp = tempfile::tempdir().expect("tempdir");
        let vol = tmp.path().join("vol");
        std::fs::create_dir_all(vol.join("sub")).expect("mkdir");
        std::fs::write(vol.join("sub/f"), b"x").expect("file");
        std::os::unix::fs::lchown(vol.join("sub/f"), Some(1000), Some(100)).expect("chown");
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, b"y").expect("outside");
        std::os::unix::fs::symlink(&outside, vol.join("link")).expect("link");
        let base = 131_072;
        assert_eq!(shift_tree(&vol, base).expect("shift"), 4);
        let f = std::fs::metadata(vol.join("sub/f")).expect("f");
        assert_eq!((f.uid(), f.gid()), (base + 1000, base + 100));
        assert_eq!(std::fs::metadata(&vol).expect("vol").uid(), base);
        assert_eq!(std::fs::metadata(&outside).expect("outside").uid(), 0);
        assert_eq!(shift_tree(&vol, base).expect("again"), 0, "idempotent");
        assert_eq!(
            shift_tree(&tmp.path().join("none"), base).expect("missing"),
            0
        );
        own_root(&vol, base).expect("own");
        let fresh = tmp.path().join("fresh");
        std::fs::create_dir(&fresh).expect("fresh");
        own_root(&fresh, base).expect("own fresh");
        assert_eq!(std::fs::metadata(&fresh).expect("fresh").uid(), base);
    }
}
