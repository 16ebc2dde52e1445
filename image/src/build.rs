//! `baton image build`: from a board config, a config directory and the init binary to an
//! SD-card image.
//!
//! The steps, in order:
//! 1. check the output path, load the board config, read and validate the config directory
//!    (generating missing secrets, and the cluster CA unless the config directory or the user's
//!    config directory has it: [`crate::cluster_ca`]);
//! 2. fetch the board's Debian packages (kernel, firmware) through the lock file and cache;
//! 3. take the kernel, device trees and the board's kernel-module closure out of the packages;
//! 4. assemble the initramfs: the init, the modules, `rootfs/`, `/etc/baton/build.json`;
//! 5. lay out the boot partition (kernel, initramfs, `cmdline.txt`, `config.txt`, firmware,
//!    device trees, `baton.json`), the second boot slot, the config partition and the data
//!    partition;
//! 6. write the image to a temporary file next to the output and rename it into place, so a
//!    failed build leaves nothing behind.
//!
//! Everything that varies between builds is derived from the inputs: the disk signature, the
//! volume ids and UUIDs are hashes of the inputs, timestamps come from `SOURCE_DATE_EPOCH` (or a
//! fixed date). Same inputs, same bytes.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::assemble::{self, BootFiles, ImageInputs};
use crate::board::BoardConfig;
use crate::config_dir::{self, ConfigTree};
use crate::debian::{self, Archive, ArchiveOptions, LockFile};

/// Timestamp used for every file when `SOURCE_DATE_EPOCH` is not set: 2026-01-01T00:00:00Z.
pub const DEFAULT_EPOCH: i64 = 1_767_225_600;

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Board name (`qemu-virt`, `pi3b`, `pi4b`, `pi5`).
    pub board: String,
    /// The config directory.
    pub config_dir: PathBuf,
    /// Image file to write.
    pub output: PathBuf,
    /// The lock file (created when missing).
    pub lock: PathBuf,
    /// Build from the cache alone.
    pub offline: bool,
    /// Re-resolve locked packages.
    pub update: bool,
    /// The init binary (static aarch64).
    pub init: PathBuf,
    /// Package cache.
    pub cache_dir: PathBuf,
    /// Board config directory; `None` uses the built-in copies.
    pub board_configs: Option<PathBuf>,
    /// Debian mirror.
    pub mirror: String,
    /// Print progress on stderr.
    pub progress: bool,
    /// Timestamp for every file (seconds since the epoch).
    pub epoch: i64,
    /// Where each cluster's CA is kept, in a directory named after the cluster; `None` is
    /// `$XDG_CONFIG_HOME/baton` ([`crate::cluster_ca::default_user_dir`]).
    pub user_config_dir: Option<PathBuf>,
}

/// OCI images to bake into the data partition (`--image`); see [`crate::bake`].
#[derive(Debug, Clone, Default)]
pub struct BakeOptions {
    /// The archives, with the references to store them under.
    pub images: Vec<crate::bake::ImageArg>,
}

/// What was built.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// The image file.
    pub image: PathBuf,
    /// Board name.
    pub board: String,
    /// Kernel release in the image.
    pub kernel_release: String,
    /// `name version` of every package used.
    pub packages: Vec<String>,
    /// The API token, when the builder generated it.
    pub generated_token: Option<String>,
    /// The API token in the image.
    pub token: String,
    /// Where the cluster CA came from.
    pub ca: crate::cluster_ca::Source,
    /// The cluster CA's certificate (PEM), which clients of the boards trust.
    pub ca_pem: String,
    /// The directory the builder keeps the cluster's CA in.
    pub ca_dir: PathBuf,
    /// Size of the image file in bytes.
    pub image_bytes: u64,
    /// Size of the compressed initramfs in bytes.
    pub initramfs_bytes: u64,
    /// Number of kernel modules in the initramfs.
    pub modules: usize,
    /// Images baked into the data partition.
    pub baked: Vec<crate::bake::BakedImage>,
}

/// Errors of a build; each names what failed and on what.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The output path is a directory.
    #[error("output {0} is a directory; give a file name for the image")]
    OutputIsDirectory(PathBuf),
    /// The output's directory does not exist.
    #[error("output {0}: its directory does not exist")]
    OutputDirMissing(PathBuf),
    /// The init binary is missing.
    #[error("init binary {0} not found: build it with `scripts/build-init` or pass --init")]
    InitMissing(PathBuf),
    /// The init binary is not a static aarch64 ELF executable.
    #[error("init binary {path}: {reason}")]
    InitInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A board config problem.
    #[error(transparent)]
    Board(#[from] crate::board::Error),
    /// A config directory problem.
    #[error(transparent)]
    Config(#[from] config_dir::Error),
    /// The cluster CA could not be found, checked, generated or kept.
    #[error(transparent)]
    Ca(#[from] crate::cluster_ca::Error),
    /// Neither `XDG_CONFIG_HOME` nor `HOME` is set, so there is nowhere to keep the cluster CA.
    #[error("no config directory for the cluster CA: set XDG_CONFIG_HOME or HOME")]
    NoUserConfigDir,
    /// A package problem.
    #[error(transparent)]
    Package(#[from] debian::Error),
    /// A lock file problem.
    #[error(transparent)]
    Lock(#[from] debian::lock::Error),
    /// Assembling the image failed.
    #[error(transparent)]
    Assemble(#[from] assemble::Error),
    /// Baking an image failed.
    #[error(transparent)]
    Bake(#[from] crate::bake::BakeError),
    /// Generating secrets failed.
    #[error("generating secrets: {0}")]
    Random(String),
}

/// Builds the image `opts` describes, with no baked images.
pub fn build(opts: &BuildOptions) -> Result<BuildReport, Error> {
    build_with(opts, &BakeOptions::default())
}

/// Builds the image `opts` describes with the images of `bake` in its data partition. The
/// images are imported and verified before anything is fetched or written.
pub fn build_with(opts: &BuildOptions, bake: &BakeOptions) -> Result<BuildReport, Error> {
    check_output(&opts.output)?;
    let board = BoardConfig::load(&opts.board, opts.board_configs.as_deref())?;
    let init = read_init(&opts.init)?;
    let mut config = ConfigTree::read(&opts.config_dir, &random_secret(24)?, &random_secret(32)?)?;
    let user_dir = match &opts.user_config_dir {
        Some(dir) => dir.clone(),
        None => crate::cluster_ca::default_user_dir().ok_or(Error::NoUserConfigDir)?,
    };
    let ca = crate::cluster_ca::provide(&mut config, &user_dir)?;
    let cluster_name = config
        .cluster
        .as_ref()
        .map(|c| c.name.clone())
        .unwrap_or_else(|| "baton".to_string());
    if opts.progress && !bake.images.is_empty() {
        eprintln!("baton: importing {} image(s) to bake in", bake.images.len());
    }
    let baked = crate::bake::stage(&bake.images)?;

    let mut lock = LockFile::load_or_new(&opts.lock)?;
    let mut archive = Archive::new(ArchiveOptions {
        base_url: opts.mirror.clone(),
        cache_dir: opts.cache_dir.clone(),
        offline: opts.offline,
        update: opts.update,
        progress: opts.progress,
        keyring: None,
    })?;
    let debs = archive.fetch_all(&board.packages(), &mut lock)?;
    lock.save(&opts.lock)?;
    let packages: Vec<String> = debs
        .iter()
        .map(|d| format!("{} {}", d.name, d.version))
        .collect();

    let boot = BootFiles::from_packages(&board, &debs)?;
    let baked_images = baked.as_ref().map(|b| b.images.clone()).unwrap_or_default();
    let seed = input_hash(&board.name, &debs, &config, &init, &baked_images);
    let inputs = ImageInputs {
        board: &board,
        boot: &boot,
        config: &config,
        init: &init,
        packages: &packages,
        seed,
        epoch: opts.epoch,
        progress: opts.progress,
        baked: baked.as_ref(),
    };
    let written = assemble::write_image(&inputs, &opts.output)?;

    let token = config
        .cluster
        .as_ref()
        .map(|c| c.token.clone())
        .unwrap_or_default();
    Ok(BuildReport {
        image: opts.output.clone(),
        board: board.name.clone(),
        kernel_release: boot.kernel_release.clone(),
        packages,
        generated_token: config.added.token.clone(),
        token,
        ca,
        ca_pem: config
            .files
            .get(baton_cluster::tls::CA_CERT_FILE)
            .map(|pem| String::from_utf8_lossy(pem).into_owned())
            .unwrap_or_default(),
        ca_dir: user_dir.join(cluster_name),
        image_bytes: written.image_bytes,
        initramfs_bytes: written.initramfs_bytes,
        modules: boot.modules.len(),
        baked: baked_images,
    })
}

fn check_output(output: &Path) -> Result<(), Error> {
    if output.is_dir() {
        return Err(Error::OutputIsDirectory(output.to_path_buf()));
    }
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(Error::OutputDirMissing(output.to_path_buf()));
    }
    Ok(())
}

/// Reads the init binary and checks that it is a static aarch64 ELF executable.
fn read_init(path: &Path) -> Result<Vec<u8>, Error> {
    let bytes = std::fs::read(path).map_err(|_| Error::InitMissing(path.to_path_buf()))?;
    let invalid = |reason: &str| Error::InitInvalid {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err(invalid("not an ELF file"));
    }
    // e_machine at offset 18, little-endian; 183 is EM_AARCH64.
    if u16::from_le_bytes([bytes[18], bytes[19]]) != 183 {
        return Err(invalid(
            "not an aarch64 binary (build it with --target aarch64-unknown-linux-musl)",
        ));
    }
    Ok(bytes)
}

/// A hash of everything that goes into the image; ids and UUIDs are derived from it.
fn input_hash(
    board: &str,
    debs: &[debian::CachedDeb],
    config: &ConfigTree,
    init: &[u8],
    baked: &[crate::bake::BakedImage],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"baton image v1\0");
    h.update(board.as_bytes());
    for d in debs {
        h.update(b"\0deb\0");
        h.update(d.sha256.as_bytes());
    }
    for (name, bytes) in &config.files {
        h.update(b"\0cfg\0");
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    h.update(b"\0init\0");
    h.update(init);
    for image in baked {
        h.update(b"\0image\0");
        h.update(image.reference.as_bytes());
        h.update(b"\0");
        h.update(image.digest.as_bytes());
    }
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.finalize().into()
}

/// `bytes` random bytes as lower-case hex.
fn random_secret(bytes: usize) -> Result<String, Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| Error::Random(e.to_string()))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// `SOURCE_DATE_EPOCH` if set and valid, else [`DEFAULT_EPOCH`].
pub fn epoch_from_env() -> i64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_EPOCH)
}

/// `baton image build` on the command line.
pub fn run_cli(args: crate::cli::BuildArgs) -> anyhow::Result<()> {
    let cache_dir = match args.cache {
        Some(c) => c,
        None => debian::cache::default_dir()?,
    };
    let init = match args.init {
        Some(p) => p,
        None => crate::locate::init_binary(),
    };
    let opts = BuildOptions {
        board: args.board,
        config_dir: args.config,
        output: args.output,
        lock: args.lock,
        offline: args.offline,
        update: args.update,
        init,
        cache_dir,
        board_configs: args.board_configs.or_else(crate::locate::board_configs_dir),
        mirror: args.mirror,
        progress: true,
        epoch: epoch_from_env(),
        user_config_dir: None,
    };
    let bake = BakeOptions {
        images: args
            .images
            .iter()
            .map(|text| crate::bake::ImageArg::parse(text))
            .collect::<Result<_, _>>()?,
    };
    let report = build_with(&opts, &bake)?;
    eprintln!(
        "baton: wrote {} ({} MiB, board {}, kernel {}, {} modules, initramfs {} KiB)",
        report.image.display(),
        report.image_bytes >> 20,
        report.board,
        report.kernel_release,
        report.modules,
        report.initramfs_bytes >> 10
    );
    for image in &report.baked {
        eprintln!(
            "baton: baked {} ({}, {} KiB)",
            image.reference,
            image.digest,
            image.size >> 10
        );
    }
    let kept = report.ca_dir.display();
    match report.ca {
        crate::cluster_ca::Source::Generated => {
            eprintln!("baton: generated the cluster CA (ca.pem, ca.key), kept in {kept}")
        }
        crate::cluster_ca::Source::UserCopy => {
            eprintln!("baton: the cluster CA is the one kept in {kept}")
        }
        crate::cluster_ca::Source::ConfigDir => {
            eprintln!("baton: the cluster CA is the config directory's (a copy is in {kept})")
        }
    }
    if let Some(token) = &report.generated_token {
        println!("API token (generated, stored in the image's cluster.toml): {token}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_checks() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            check_output(dir.path()),
            Err(Error::OutputIsDirectory(_))
        ));
        assert!(matches!(
            check_output(&dir.path().join("missing/x.img")),
            Err(Error::OutputDirMissing(_))
        ));
        check_output(&dir.path().join("x.img")).unwrap();
    }

    #[test]
    fn init_must_be_aarch64_elf() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("init");
        assert!(matches!(read_init(&path), Err(Error::InitMissing(_))));
        std::fs::write(&path, b"#!/bin/sh\n").unwrap();
        assert!(read_init(&path)
            .unwrap_err()
            .to_string()
            .contains("not an ELF"));
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[18] = 62; // x86-64
        std::fs::write(&path, &elf).unwrap();
        assert!(read_init(&path)
            .unwrap_err()
            .to_string()
            .contains("aarch64"));
        elf[18] = 183;
        std::fs::write(&path, &elf).unwrap();
        assert_eq!(read_init(&path).unwrap(), elf);
    }

    #[test]
    fn secrets_are_random_hex() {
        let a = random_secret(16).unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, random_secret(16).unwrap());
    }
}
