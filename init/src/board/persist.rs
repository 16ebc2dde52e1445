//! Small state files the init keeps on the data partition, written so that a power cut leaves
//! either the old or the new contents, never a torn file.

use std::io::{self, Write};
use std::path::Path;

/// Directory of the init's own files on the data partition.
pub const DIR: &str = "/data/baton";

/// The bytes of a small state file, at most `max` of them: `Ok(None)` when it does not exist; an
/// error (the reason, without the path) when it cannot be read or is larger than `max`.
pub fn read_bounded(path: &Path, max: u64) -> Result<Option<Vec<u8>>, String> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > max {
        return Err(format!("larger than {max} bytes"));
    }
    Ok(Some(bytes))
}

/// Writes `contents` to `path` via a temporary file, fsync and rename, then syncs the directory.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no directory"))?;
    std::fs::create_dir_all(dir)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Like [`write_atomic`], for a FAT file system (the config partition): there fsync of the
/// directory does not write its entries (they sit in the block device's buffers), so the rename
/// is made durable by syncing the whole file system.
pub fn write_atomic_fat(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_atomic(path, contents)?;
    match path.parent() {
        Some(dir) => sync_file_system(dir),
        None => Ok(()),
    }
}

/// Makes every change to the file system holding `dir` durable (syncfs).
pub fn sync_file_system(dir: &Path) -> io::Result<()> {
    let d = std::fs::File::open(dir)?;
    nix::unistd::syncfs(&d).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a/b/seed");
        write_atomic(&path, b"one").expect("first");
        write_atomic(&path, b"two").expect("second");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("a/b"))
            .expect("list")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        assert_eq!(names, ["seed"]);
    }
}
