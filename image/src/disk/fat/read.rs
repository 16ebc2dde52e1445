//! Reading FAT volumes (ours or anyone's) through the `fatfs` crate.

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::FatError;

/// One file or directory found on a volume.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FatEntry {
    /// Path from the root, `/`-separated, without a leading slash (e.g. `overlays/vc4-kms-v3d.dtbo`).
    pub path: String,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Whether it is a directory.
    pub is_dir: bool,
}

/// Every file and directory on the volume, depth first in directory order.
pub fn list_files<R: Read + Seek>(volume: R) -> Result<Vec<FatEntry>, FatError> {
    let fs = open(volume)?;
    let mut out = Vec::new();
    walk(&fs.root_dir(), "", &mut out)?;
    Ok(out)
}

/// The contents of the file at `path` (`/`-separated, case-insensitive as FAT is).
pub fn read_file<R: Read + Seek>(volume: R, path: &str) -> Result<Vec<u8>, FatError> {
    let fs = open(volume)?;
    let err = |source| FatError::Read {
        what: format!("file {path:?}"),
        source,
    };
    let mut file = fs
        .root_dir()
        .open_file(path.trim_start_matches('/'))
        .map_err(err)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(err)?;
    Ok(bytes)
}

/// The volume label from the boot sector, trailing spaces removed.
pub fn volume_label<R: Read + Seek>(volume: R) -> Result<String, FatError> {
    Ok(open(volume)?.volume_label().trim_end().to_owned())
}

type Fs<R> = fatfs::FileSystem<ReadOnly<R>>;

fn open<R: Read + Seek>(volume: R) -> Result<Fs<R>, FatError> {
    fatfs::FileSystem::new(ReadOnly(volume), fatfs::FsOptions::new()).map_err(|source| {
        FatError::Read {
            what: "file system".to_owned(),
            source,
        }
    })
}

fn walk<R: Read + Seek>(
    dir: &fatfs::Dir<'_, ReadOnly<R>>,
    prefix: &str,
    out: &mut Vec<FatEntry>,
) -> Result<(), FatError> {
    let err = |source| FatError::Read {
        what: format!(
            "directory {:?}",
            if prefix.is_empty() { "/" } else { prefix }
        ),
        source,
    };
    for entry in dir.iter() {
        let entry = entry.map_err(err)?;
        let name = entry.file_name();
        if name == "." || name == ".." {
            continue;
        }
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let is_dir = entry.is_dir();
        out.push(FatEntry {
            path: path.clone(),
            size: if is_dir { 0 } else { entry.len() },
            is_dir,
        });
        if is_dir {
            walk(&entry.to_dir(), &path, out)?;
        }
    }
    Ok(())
}

/// Lets `fatfs` (which wants a writable disk) read a volume; any write it attempts fails.
struct ReadOnly<R>(R);

impl<R: Read> Read for ReadOnly<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R> Write for ReadOnly<R> {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the FAT volume is opened read-only",
        ))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<R: Seek> Seek for ReadOnly<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.0.seek(to)
    }
}
