//! Reading a baton image: the MBR, then the FAT32 boot partition (p1), from which the runner
//! copies the kernel, initramfs, command line and (for Pi machines) device tree into its work
//! directory. The image itself is only ever opened read-only.

pub mod dtb;
pub mod manifest;

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use baton_spec::build_info::partition;
use baton_spec::mbr;

pub use manifest::{Machine, Manifest};

/// What went wrong reading an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The image file could not be opened or read.
    #[error("cannot read image {path}: {source}")]
    Read {
        /// Image path.
        path: PathBuf,
        /// Underlying error.
        source: io::Error,
    },
    /// The first sector carries no MBR boot signature.
    #[error("image {path} has no MBR partition table (no 0x55AA signature at offset 510)")]
    NoMbr {
        /// Image path.
        path: PathBuf,
    },
    /// Partition 1 is missing or lies outside the file.
    #[error("image {path} has no usable boot partition 1 ({reason})")]
    NoBootPartition {
        /// Image path.
        path: PathBuf,
        /// Why entry 1 is unusable.
        reason: String,
    },
    /// The boot partition holds no FAT file system that can be read.
    #[error("cannot open the FAT file system on the boot partition of {path}: {source}")]
    Fat {
        /// Image path.
        path: PathBuf,
        /// Underlying error.
        source: io::Error,
    },
    /// A required file is not on the boot partition.
    #[error("the boot partition of {path} has no {file}")]
    MissingFile {
        /// Image path.
        path: PathBuf,
        /// File name looked for.
        file: String,
    },
    /// A file on the boot partition could not be read.
    #[error("cannot read {file} from the boot partition of {path}: {source}")]
    ReadFile {
        /// Image path.
        path: PathBuf,
        /// File on the boot partition.
        file: String,
        /// Underlying error.
        source: io::Error,
    },
    /// An extracted file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// Destination path.
        path: PathBuf,
        /// Underlying error.
        source: io::Error,
    },
    /// `baton.json` is not valid JSON of the expected shape.
    #[error("baton.json on the boot partition of {path} is invalid: {source}")]
    Manifest {
        /// Image path.
        path: PathBuf,
        /// Parse error.
        source: serde_json::Error,
    },
    /// `baton.json` names a machine the runner cannot boot.
    #[error(
        "baton.json in {path} asks for qemu machine {machine:?}; baton-qemu boots virt and raspi3b"
    )]
    UnsupportedMachine {
        /// Image path.
        path: PathBuf,
        /// The machine named.
        machine: String,
    },
    /// A raspi3b image without a device tree.
    #[error("baton.json in {path} asks for raspi3b but names no dtb")]
    MissingDtb {
        /// Image path.
        path: PathBuf,
    },
}

type Result<T> = std::result::Result<T, ImageError>;

/// The files needed to boot an image, extracted to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFiles {
    /// The image they came from (absolute).
    pub image: PathBuf,
    /// Size of the image in bytes.
    pub image_size: u64,
    /// Board name from `baton.json`.
    pub board: String,
    /// Machine to boot on.
    pub machine: Machine,
    /// Extracted kernel.
    pub kernel: PathBuf,
    /// Extracted initramfs.
    pub initramfs: PathBuf,
    /// Extracted device tree (raspi3b only).
    pub dtb: Option<PathBuf>,
    /// Kernel command line from `cmdline.txt`, trimmed.
    pub cmdline: String,
}

/// Reads `image` and copies its boot files into `dest` (an existing directory).
pub fn extract(image: &Path, dest: &Path) -> Result<BootFiles> {
    let read_err = |source| ImageError::Read {
        path: image.to_path_buf(),
        source,
    };
    let abs = std::fs::canonicalize(image).map_err(read_err)?;
    let mut file = File::open(&abs).map_err(read_err)?;
    let image_size = file.metadata().map_err(read_err)?.len();
    let mut sector = [0u8; 512];
    file.read_exact(&mut sector).map_err(read_err)?;
    mbr::disk_id(&sector).map_err(|_| ImageError::NoMbr { path: abs.clone() })?;
    let boot =
        mbr::entry(&sector, partition::BOOT_A).ok_or_else(|| ImageError::NoBootPartition {
            path: abs.clone(),
            reason: "MBR entry 1 is empty".into(),
        })?;
    let (start, len) = (boot.offset(), boot.size());
    if start + len > image_size {
        return Err(ImageError::NoBootPartition {
            path: abs,
            reason: format!(
                "it ends at byte {} but the image has {image_size} bytes",
                start + len
            ),
        });
    }
    let region = Region {
        file,
        start,
        len,
        pos: 0,
    };
    let fs = fatfs::FileSystem::new(region, fatfs::FsOptions::new()).map_err(|source| {
        ImageError::Fat {
            path: abs.clone(),
            source,
        }
    })?;
    let root = fs.root_dir();
    let reader = BootReader {
        image: &abs,
        root: &root,
    };

    let manifest: Manifest = match reader.read_optional(manifest::FILE)? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|source| ImageError::Manifest {
            path: abs.clone(),
            source,
        })?,
        None => Manifest::default(),
    };
    let machine = Machine::from_qemu_name(manifest.qemu_machine()).ok_or_else(|| {
        ImageError::UnsupportedMachine {
            path: abs.clone(),
            machine: manifest.qemu_machine().to_string(),
        }
    })?;
    let cmdline = String::from_utf8_lossy(&reader.read("cmdline.txt")?)
        .trim()
        .to_string();
    let kernel = reader.extract(manifest.kernel(), dest)?;
    let initramfs = reader.extract(manifest.initramfs(), dest)?;
    let dtb = match (machine, &manifest.dtb) {
        (Machine::Raspi3b | Machine::Raspi4b, None) => {
            return Err(ImageError::MissingDtb { path: abs })
        }
        (Machine::Raspi3b, Some(name)) => Some(reader.extract(name, dest)?),
        (Machine::Raspi4b, Some(name)) => {
            let path = reader.extract(name, dest)?;
            // See `dtb`: QEMU's raspi4b cannot power the SD card the way the board does.
            if let Ok(mut blob) = std::fs::read(&path) {
                let mut dropped = 0;
                for (node, names) in [dtb::RASPI4B_SD, dtb::RASPI4B_SDHCI] {
                    dropped += dtb::drop_properties(&mut blob, node, names).unwrap_or(0);
                }
                if dropped > 0 {
                    let _ = std::fs::write(&path, &blob);
                }
            }
            Some(path)
        }
        (Machine::Virt, _) => None,
    };
    Ok(BootFiles {
        board: manifest.board().to_string(),
        image: abs,
        image_size,
        machine,
        kernel,
        initramfs,
        dtb,
        cmdline,
    })
}

/// Reads whole files from the boot partition's root directory.
struct BootReader<'a, 'fs> {
    image: &'a Path,
    root: &'a fatfs::Dir<'fs, Region>,
}

impl BootReader<'_, '_> {
    fn read_optional(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let mut file = match self.root.open_file(name) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(self.read_error(name, source)),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|source| self.read_error(name, source))?;
        Ok(Some(bytes))
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        self.read_optional(name)?
            .ok_or_else(|| ImageError::MissingFile {
                path: self.image.to_path_buf(),
                file: name.to_string(),
            })
    }

    /// Copies `name` to `dest/<its base name>` and returns that path.
    fn extract(&self, name: &str, dest: &Path) -> Result<PathBuf> {
        let bytes = self.read(name)?;
        let base = name.rsplit('/').next().unwrap_or(name);
        let path = dest.join(base);
        std::fs::write(&path, bytes).map_err(|source| ImageError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    fn read_error(&self, name: &str, source: io::Error) -> ImageError {
        ImageError::ReadFile {
            path: self.image.to_path_buf(),
            file: name.to_string(),
            source,
        }
    }
}

/// A read-only window onto one partition of the image file. `fatfs` wants `Write` as well;
/// every write fails, so nothing can change the image.
struct Region {
    file: File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Read for Region {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let want = (buf.len() as u64).min(left) as usize;
        if want == 0 {
            return Ok(0);
        }
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = self.file.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for Region {
    fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the image is opened read-only",
        ))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Region {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(n) if n <= self.len => {
                self.pos = n;
                Ok(n)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek outside the partition",
            )),
        }
    }
}

#[cfg(test)]
mod tests;
