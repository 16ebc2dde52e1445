//! Turning verified packages, the init and the config directory into the image's partitions.
//!
//! [`BootFiles::from_packages`] takes the kernel, device trees, kernel modules and firmware out
//! of the Debian packages; [`write_image`] builds the initramfs and writes the four partitions.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use baton_spec::build_info::{self, partition, BuildInfo};
use serde::Serialize;

use crate::bake::{self, BakedImage, StagedStore};
use crate::board::BoardConfig;
use crate::config_dir::ConfigTree;
use crate::debian::{self, CachedDeb};
use crate::disk::cpio::CpioArchive;
use crate::disk::ext4::Ext4Options;
use crate::disk::fat::{FatDir, FatOptions};
use crate::disk::image::{ImageWriter, Partition};
use crate::disk::layout::{ImageLayout, PartitionSizes, TotalSize};
use crate::kmod;

/// Name of the image manifest at the root of the boot partition.
pub const MANIFEST: &str = "baton.json";

const MIB: u64 = 1 << 20;
/// Partition sizes; the data partition grows to fill the card on first boot, and is made larger
/// when baked images need it ([`bake::data_partition_size`]).
const SIZES: PartitionSizes = PartitionSizes {
    boot: 128 * MIB,
    boot_b: 128 * MIB,
    config: 64 * MIB,
    data: 128 * MIB,
};

/// Errors assembling the image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A package lacks a file the board needs.
    #[error("package {package}: {what} not found (looked for {pattern})")]
    Missing {
        /// Package name and version.
        package: String,
        /// What was looked for.
        what: &'static str,
        /// The path pattern.
        pattern: String,
    },
    /// Reading a package failed.
    #[error(transparent)]
    Deb(#[from] debian::deb::Error),
    /// Writing the image file failed.
    #[error(transparent)]
    Image(#[from] crate::disk::image::ImageError),
    /// The module closure could not be computed.
    #[error(transparent)]
    Modules(#[from] kmod::Error),
    /// Writing a part of the image failed.
    #[error("{what}: {message}")]
    Write {
        /// What was being written.
        what: String,
        /// The cause.
        message: String,
    },
    /// A file-system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

fn write_err(what: impl Into<String>) -> impl FnOnce(String) -> Error {
    let what = what.into();
    move |message| Error::Write { what, message }
}

/// What the board boots: taken out of the packages.
#[derive(Debug, Clone)]
pub struct BootFiles {
    /// Kernel release (`6.1.0-40-arm64`).
    pub kernel_release: String,
    /// Kernel package `name version`.
    pub kernel_package: String,
    /// The kernel image as it goes onto the boot partition.
    pub kernel: Vec<u8>,
    /// Device trees by file name.
    pub dtbs: BTreeMap<String, Vec<u8>>,
    /// Firmware files by path on the boot partition.
    pub firmware: BTreeMap<String, Vec<u8>>,
    /// Kernel modules in load order: (path relative to `/lib/modules/<release>/`, contents).
    pub modules: Vec<(String, Vec<u8>)>,
}

impl BootFiles {
    /// Extracts what `board` needs from its packages (`debs`, in `board.packages()` order).
    pub fn from_packages(board: &BoardConfig, debs: &[CachedDeb]) -> Result<BootFiles, Error> {
        let kernel_deb = debs
            .iter()
            .find(|d| d.name.starts_with("linux-image-"))
            .ok_or_else(|| Error::Missing {
                package: board.name.clone(),
                what: "a kernel package",
                pattern: "linux-image-*".to_string(),
            })?;
        let kernel_package = format!("{} {}", kernel_deb.name, kernel_deb.version);
        let missing = |what, pattern: &str| Error::Missing {
            package: kernel_package.clone(),
            what,
            pattern: pattern.to_string(),
        };

        let images = debian::deb::extract(&kernel_deb.path, |p| p.starts_with("/boot/vmlinuz-"))?;
        let image = images
            .into_iter()
            .next()
            .ok_or_else(|| missing("the kernel", "/boot/vmlinuz-*"))?;
        let kernel_release = image.path.trim_start_matches("/boot/vmlinuz-").to_string();
        let kernel = if board.decompress_kernel {
            gunzip(&image.data).map_err(write_err("decompressing the kernel"))?
        } else {
            image.data
        };

        let dtb_prefix = format!("/usr/lib/linux-image-{kernel_release}/");
        let mut dtbs = BTreeMap::new();
        for f in debian::deb::extract(&kernel_deb.path, |p| {
            p.strip_prefix(&dtb_prefix)
                .is_some_and(|rel| board.dtbs.iter().any(|d| d == rel))
        })? {
            dtbs.insert(base_name(&f.path).to_string(), f.data);
        }
        for d in &board.dtbs {
            if !dtbs.contains_key(base_name(d)) {
                return Err(missing("a device tree", &format!("{dtb_prefix}{d}")));
            }
        }

        let modules_root = unpacked_modules(kernel_deb, &kernel_release)?;
        let order = kmod::closure(&modules_root, &board.modules)?;
        let mut modules = Vec::with_capacity(order.len());
        for rel in order {
            let path = modules_root.join(&rel);
            let data = std::fs::read(&path).map_err(|source| Error::Io {
                action: "reading",
                path: path.clone(),
                source,
            })?;
            modules.push((rel.to_string_lossy().into_owned(), data));
        }

        let mut firmware = BTreeMap::new();
        if let Some(fw) = &board.firmware {
            let deb = debs
                .iter()
                .find(|d| d.name == fw.package.name)
                .ok_or_else(|| Error::Missing {
                    package: fw.package.name.clone(),
                    what: "the firmware package",
                    pattern: fw.package.to_string(),
                })?;
            let found = debian::deb::extract(&deb.path, |p| {
                p.strip_prefix(&fw.directory)
                    .is_some_and(|rest| fw.files.iter().any(|f| rest.trim_start_matches('/') == f))
            })?;
            for f in found {
                let name = f.path[fw.directory.len()..]
                    .trim_start_matches('/')
                    .to_string();
                firmware.insert(name, f.data);
            }
            for f in &fw.files {
                if !firmware.contains_key(f) {
                    return Err(Error::Missing {
                        package: format!("{} {}", deb.name, deb.version),
                        what: "a firmware file",
                        pattern: format!("{}/{f}", fw.directory),
                    });
                }
            }
        }

        Ok(BootFiles {
            kernel_release,
            kernel_package,
            kernel,
            dtbs,
            firmware,
            modules,
        })
    }
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The kernel package's modules, unpacked (and decompressed) once per package into the cache.
fn unpacked_modules(deb: &CachedDeb, release: &str) -> Result<PathBuf, Error> {
    let cache_root = deb.path.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = cache_root.join("unpacked").join(&deb.sha256);
    // bookworm ships modules under /lib/modules, later releases under /usr/lib/modules.
    let root_in = |dir: &Path| {
        let merged = dir.join("usr/lib/modules").join(release);
        if merged.is_dir() {
            merged
        } else {
            dir.join("lib/modules").join(release)
        }
    };
    if dir.join(".complete").is_file() {
        return Ok(root_in(&dir));
    }
    let parent = cache_root.join("unpacked");
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    };
    std::fs::create_dir_all(&parent).map_err(io("creating", &parent))?;
    let tmp = tempfile::Builder::new()
        .prefix(".unpacking-")
        .tempdir_in(&parent)
        .map_err(io("creating a directory in", &parent))?;
    let prefix = format!("/lib/modules/{release}/");
    let is_module = |p: &str| p.strip_prefix("/usr").unwrap_or(p).starts_with(&prefix);
    debian::deb::extract_to_dir(
        &deb.path,
        tmp.path(),
        is_module,
        debian::deb::Modules::Decompress,
    )?;
    std::fs::write(tmp.path().join(".complete"), b"").map_err(io("writing", tmp.path()))?;
    let tmp_path = tmp.keep();
    if let Err(e) = std::fs::rename(&tmp_path, &dir) {
        // Another build unpacked the same package at the same time: use theirs.
        let _ = std::fs::remove_dir_all(&tmp_path);
        if !dir.join(".complete").is_file() {
            return Err(Error::Io {
                action: "moving unpacked modules to",
                path: dir,
                source: e,
            });
        }
    }
    Ok(root_in(&dir))
}

/// Decompresses a gzip stream; anything else (Debian's arm64 `vmlinuz` is already a plain
/// `Image`) comes back as it is.
fn gunzip(data: &[u8]) -> Result<Vec<u8>, String> {
    if data.len() < 2 || data[..2] != [0x1f, 0x8b] {
        return Ok(data.to_vec());
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Everything the image is made of.
#[derive(Debug)]
pub struct ImageInputs<'a> {
    /// The board.
    pub board: &'a BoardConfig,
    /// Kernel, device trees, modules, firmware.
    pub boot: &'a BootFiles,
    /// The config partition's files.
    pub config: &'a ConfigTree,
    /// The init binary.
    pub init: &'a [u8],
    /// `name version` of each package.
    pub packages: &'a [String],
    /// Hash of all inputs; ids and UUIDs derive from it.
    pub seed: [u8; 32],
    /// Timestamp for every file.
    pub epoch: i64,
    /// Print progress on stderr.
    pub progress: bool,
    /// OCI images to bake into the data partition's image store.
    pub baked: Option<&'a StagedStore>,
}

/// Sizes of what was written.
#[derive(Debug, Clone, Copy)]
pub struct Written {
    /// The image file.
    pub image_bytes: u64,
    /// The compressed initramfs.
    pub initramfs_bytes: u64,
}

/// `baton.json` on the boot partition: what the image is and how QEMU boots it.
#[derive(Debug, Serialize)]
struct Manifest<'a> {
    board: &'a str,
    qemu_machine: Option<&'a str>,
    kernel: &'a str,
    initramfs: &'a str,
    dtb: Option<&'a str>,
    kernel_release: &'a str,
    packages: &'a [String],
    baton_version: &'a str,
    /// Images baked into the data partition's store (left out when there are none).
    #[serde(skip_serializing_if = "<[BakedImage]>::is_empty")]
    images: &'a [BakedImage],
}

/// Writes the image to a temporary file next to `output` and renames it into place.
pub fn write_image(inputs: &ImageInputs<'_>, output: &Path) -> Result<Written, Error> {
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".baton-image-")
        .tempfile_in(dir)
        .map_err(|source| Error::Io {
            action: "creating a temporary file in",
            path: dir.to_path_buf(),
            source,
        })?;
    let disk_id = u32::from_le_bytes([
        inputs.seed[0],
        inputs.seed[1],
        inputs.seed[2],
        inputs.seed[3],
    ]) | 1;
    let initramfs = initramfs(inputs, disk_id)?;
    let written = write_partitions(inputs, tmp.path(), disk_id, &initramfs)?;
    tmp.persist(output).map_err(|e| Error::Io {
        action: "renaming the finished image to",
        path: output.to_path_buf(),
        source: e.error,
    })?;
    Ok(written)
}

fn initramfs(inputs: &ImageInputs<'_>, disk_id: u32) -> Result<Vec<u8>, Error> {
    let boot = inputs.boot;
    let info = BuildInfo {
        board: inputs.board.name.clone(),
        kernel_release: boot.kernel_release.clone(),
        kernel_package: boot.kernel_package.clone(),
        baton_version: env!("CARGO_PKG_VERSION").to_string(),
        disk_id,
        modules: boot.modules.iter().map(|(p, _)| p.clone()).collect(),
        console: inputs.board.console.clone(),
    };
    let info_json =
        serde_json::to_vec_pretty(&info).map_err(|e| write_err("build.json")(e.to_string()))?;
    let epoch = u32::try_from(inputs.epoch.max(0)).unwrap_or(u32::MAX);
    let cpio_err = |e: crate::disk::cpio::CpioError| write_err("initramfs")(e.to_string());
    let mut cpio = CpioArchive::new(epoch);
    for dir in [
        "proc", "sys", "dev", "run", "tmp", "config", "data", "boot", "mnt",
    ] {
        cpio.add_dir(dir, 0o755).map_err(cpio_err)?;
    }
    // The kernel opens /dev/console for the init before devtmpfs is mounted; /dev/null keeps a
    // process whose standard streams cannot be opened from aborting.
    cpio.add_node(
        "dev/console",
        0o600,
        crate::disk::cpio::CpioNode::CharDevice(5, 1),
    )
    .map_err(cpio_err)?;
    cpio.add_node(
        "dev/null",
        0o666,
        crate::disk::cpio::CpioNode::CharDevice(1, 3),
    )
    .map_err(cpio_err)?;
    cpio.add_file("init", 0o755, inputs.init.to_vec())
        .map_err(cpio_err)?;
    for (path, mode, data) in crate::rootfs::FILES {
        cpio.add_file(path, *mode, data.to_vec())
            .map_err(cpio_err)?;
    }
    cpio.add_file(build_info::PATH.trim_start_matches('/'), 0o644, info_json)
        .map_err(cpio_err)?;
    for (rel, data) in &boot.modules {
        let path = format!("lib/modules/{}/{rel}", boot.kernel_release);
        cpio.add_file(&path, 0o644, data.clone())
            .map_err(cpio_err)?;
    }
    cpio.write_gzip(Vec::new()).map_err(cpio_err)
}

fn write_partitions(
    inputs: &ImageInputs<'_>,
    path: &Path,
    disk_id: u32,
    initramfs: &[u8],
) -> Result<Written, Error> {
    let board = inputs.board;
    let boot = inputs.boot;
    let total = if board.power_of_two_image {
        TotalSize::PowerOfTwo
    } else {
        TotalSize::Minimal
    };
    let sizes = PartitionSizes {
        data: bake::data_partition_size(SIZES.data, inputs.baked.map_or(0, |b| b.bytes)),
        ..SIZES
    };
    let layout = ImageLayout::new(&sizes, total)
        .map_err(|e| write_err("the partition layout")(e.to_string()))?;
    let image_err = Error::Image;
    let fat_err = |e: crate::disk::fat::FatError| write_err("boot partition")(e.to_string());
    let mut img = ImageWriter::create(path, layout, disk_id).map_err(image_err)?;

    let mut tree = FatDir::new();
    let kernel_name = board.kernel_file.as_str();
    tree.add_file(kernel_name, boot.kernel.clone())
        .map_err(fat_err)?;
    tree.add_file(&board.initramfs_file, initramfs.to_vec())
        .map_err(fat_err)?;
    tree.add_file("cmdline.txt", format!("{}\n", board.cmdline))
        .map_err(fat_err)?;
    if let Some(config_txt) = &board.config_txt {
        tree.add_file("config.txt", config_txt.clone())
            .map_err(fat_err)?;
    }
    for (name, data) in &boot.dtbs {
        tree.add_file(name, data.clone()).map_err(fat_err)?;
    }
    for (name, data) in &boot.firmware {
        tree.add_file(name, data.clone()).map_err(fat_err)?;
    }
    let manifest = Manifest {
        board: &board.name,
        qemu_machine: board.qemu_machine.as_deref(),
        kernel: kernel_name,
        initramfs: &board.initramfs_file,
        dtb: board.dtbs.first().map(|d| base_name(d)),
        kernel_release: &boot.kernel_release,
        packages: inputs.packages,
        baton_version: env!("CARGO_PKG_VERSION"),
        images: inputs.baked.map_or(&[], |b| b.images.as_slice()),
    };
    let manifest =
        serde_json::to_vec_pretty(&manifest).map_err(|e| write_err(MANIFEST)(e.to_string()))?;
    tree.add_file(MANIFEST, manifest).map_err(fat_err)?;

    let seed = &inputs.seed;
    let volume_id = |i: usize| {
        u32::from_le_bytes([
            seed[4 + i * 4],
            seed[5 + i * 4],
            seed[6 + i * 4],
            seed[7 + i * 4],
        ])
    };
    let fat_opts = |extent: crate::disk::layout::Extent, label: &str, id: u32| FatOptions {
        size: extent.size,
        label: label.to_string(),
        volume_id: id,
        mtime: inputs.epoch,
        hidden_sectors: extent.start_lba(),
    };
    if inputs.progress {
        eprintln!(
            "baton: writing boot partition ({} KiB kernel, {} KiB initramfs)",
            boot.kernel.len() >> 10,
            initramfs.len() >> 10
        );
    }
    img.write_fat32(
        Partition::Boot,
        &fat_opts(layout.boot, "BATON-BOOT", volume_id(0)),
        &tree,
    )
    .map_err(image_err)?;
    img.write_fat32(
        Partition::BootB,
        &fat_opts(layout.boot_b, "BATON-BOOTB", volume_id(1)),
        &FatDir::new(),
    )
    .map_err(image_err)?;

    let mut config = FatDir::new();
    for (name, data) in &inputs.config.files {
        config
            .add_file(name, data.clone())
            .map_err(|e| write_err("config partition")(e.to_string()))?;
    }
    if inputs.progress {
        eprintln!(
            "baton: writing config partition ({} files)",
            inputs.config.files.len()
        );
    }
    img.write_fat32(
        Partition::Config,
        &fat_opts(layout.config, partition::CONFIG_LABEL, volume_id(2)),
        &config,
    )
    .map_err(image_err)?;

    if inputs.progress {
        eprintln!(
            "baton: making the data file system ({} MiB, {} baked images)",
            layout.data.size >> 20,
            inputs.baked.map_or(0, |b| b.images.len())
        );
    }
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&seed[16..32]);
    uuid[6] = (uuid[6] & 0x0f) | 0x40; // version 4 layout, derived rather than random
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    let mut hash_seed = [0u8; 16];
    hash_seed.copy_from_slice(&seed[..16]);
    img.make_ext4(&Ext4Options {
        size: layout.data.size,
        label: partition::DATA_LABEL.to_string(),
        uuid,
        hash_seed,
        mtime: inputs.epoch,
        populate_from: inputs.baked.map(|b| b.tree().to_path_buf()),
    })
    .map_err(image_err)?;
    img.finish().map_err(image_err)?;
    Ok(Written {
        image_bytes: layout.total_size,
        initramfs_bytes: initramfs.len() as u64,
    })
}
