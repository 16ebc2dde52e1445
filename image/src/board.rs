//! Board configs: what a board needs on its SD card, as declarative data.
//!
//! One TOML file per board in `board-configs/` (`qemu-virt.toml`, `pi3b.toml`, ...) plus
//! `module-sets.toml`, which names lists of kernel modules that boards share. A file is read into
//! [`RawBoardConfig`] (unknown keys are errors), then validated into [`BoardConfig`], the only
//! type the builder uses.
//!
//! Where the files come from: the directory given by the caller, else `$BATON_BOARD_CONFIGS`,
//! else a `board-configs/` directory next to (or a few levels above) the running executable, so
//! a checkout's `target/debug/baton` finds the repository's files. When none exists the copies
//! compiled into the binary are used, so an installed `baton` works anywhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::debian::PackageRef;

/// Environment variable naming the board-config directory.
pub const DIR_ENV: &str = "BATON_BOARD_CONFIGS";

/// The name of the shared module-set file in the board-config directory.
pub const MODULE_SETS_FILE: &str = "module-sets.toml";

/// Board files compiled into the binary.
const BUILTIN: &[(&str, &str)] = &[
    ("pi3b", include_str!("../../board-configs/pi3b.toml")),
    ("pi4b", include_str!("../../board-configs/pi4b.toml")),
    ("pi5", include_str!("../../board-configs/pi5.toml")),
    (
        "qemu-virt",
        include_str!("../../board-configs/qemu-virt.toml"),
    ),
];

/// The module-set file compiled into the binary.
const BUILTIN_SETS: &str = include_str!("../../board-configs/module-sets.toml");

/// Errors from loading a board config.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No board of that name.
    #[error("unknown board {name:?}; known boards: {}", known.join(", "))]
    Unknown {
        /// The name asked for.
        name: String,
        /// The boards that exist.
        known: Vec<String>,
    },
    /// The board is described but cannot be built.
    #[error("board {name} is not supported: {reason}")]
    Unsupported {
        /// The board.
        name: String,
        /// Why.
        reason: String,
    },
    /// A file could not be read.
    #[error("cannot read board config {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid TOML for its type (unknown or misspelt keys, wrong types).
    #[error("{file}: {source}")]
    Parse {
        /// The file (path, or `built-in <name>.toml`).
        file: String,
        /// What is wrong, with line and column.
        #[source]
        source: toml::de::Error,
    },
    /// A field has a value that is not allowed.
    #[error("{file}: field {field}: {reason}")]
    Invalid {
        /// The file.
        file: String,
        /// The dotted field name.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

/// A board file as written (version 1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBoardConfig {
    /// Format version; must be 1.
    pub version: u32,
    /// Board name; must equal the file name without `.toml`.
    pub name: String,
    /// One line for humans.
    pub description: String,
    /// If set, the board is described but refused, with this reason.
    #[serde(default)]
    pub unsupported: Option<String>,
    /// Device-tree blobs for the boot partition, relative to the kernel package's
    /// `/usr/lib/linux-image-<release>/` (e.g. `broadcom/bcm2711-rpi-4-b.dtb`). They are written to
    /// the partition's root under their file name.
    #[serde(default)]
    pub dtbs: Vec<String>,
    /// The kernel.
    pub kernel: RawKernel,
    /// Boot firmware (Raspberry Pi boards whose boot ROM needs it).
    #[serde(default)]
    pub firmware: Option<RawFirmware>,
    /// Kernel modules for the initramfs.
    pub modules: RawModules,
    /// Boot partition contents besides kernel, DTBs and firmware.
    pub boot: RawBoot,
    /// SD image layout rules.
    #[serde(default)]
    pub image: RawImage,
    /// How to boot the board under QEMU, if it can be emulated.
    #[serde(default)]
    pub qemu: Option<RawQemu>,
}

/// `[kernel]`: which Debian package holds the kernel, its DTBs and modules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKernel {
    /// Debian suite or codename (`bookworm`).
    pub suite: String,
    /// Archive component (`main`).
    pub component: String,
    /// Package name; `linux-image-arm64` is followed to the real kernel package.
    pub package: String,
    /// File name of the kernel on the boot partition (`kernel8.img` for the Pi firmware).
    pub file: String,
    /// The kernel must reach the boot partition as an uncompressed arm64 `Image` (the Pi
    /// firmware cannot decompress it). Debian's arm64 `vmlinuz` already is one (magic `ARMd` at
    /// offset 0x38); only a gzip-compressed one (`1f 8b`) needs decompressing.
    #[serde(default)]
    pub decompress: bool,
}

/// `[firmware]`: boot firmware from a Debian package.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFirmware {
    /// Debian suite or codename.
    pub suite: String,
    /// Archive component (`non-free-firmware` for `raspi-firmware`).
    pub component: String,
    /// Package name (`raspi-firmware`).
    pub package: String,
    /// Directory inside the package holding the files (`/usr/lib/raspi-firmware`).
    pub dir: String,
    /// Files from `dir` to copy to the boot partition's root.
    pub files: Vec<String>,
}

/// `[modules]`: kernel modules for the initramfs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModules {
    /// Names of sets from `module-sets.toml`, loaded in this order.
    #[serde(default)]
    pub sets: Vec<String>,
    /// Further modules, loaded after the sets.
    #[serde(default)]
    pub extra: Vec<String>,
}

/// `[boot]`: the rest of the boot partition and the kernel command line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBoot {
    /// File name of the initramfs on the boot partition (`config.txt` must load it by this name).
    pub initramfs_file: String,
    /// Kernel command line (written to `cmdline.txt`; passed with `-append` under QEMU). Must
    /// name the serial console.
    pub cmdline: String,
    /// Serial console device without `/dev/` (`ttyAMA0`); PID 1 logs there.
    pub console: String,
    /// Contents of `config.txt` for the Pi firmware; must name the kernel and initramfs files.
    #[serde(default)]
    pub config_txt: Option<String>,
}

/// `[image]`: constraints on the SD image.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawImage {
    /// The image size must be a power of two (QEMU's emulated Pi SD card requires it).
    #[serde(default)]
    pub power_of_two: bool,
}

/// `[qemu]`: emulation settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQemu {
    /// `qemu-system-aarch64 -machine` value (`virt`, `raspi3b`).
    pub machine: String,
    /// `-cpu` value, if the machine does not fix it.
    #[serde(default)]
    pub cpu: Option<String>,
    /// Memory in MiB (`-m`).
    pub memory_mib: u32,
}

/// The shared module-set file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModuleSets {
    /// Set name to module names.
    pub sets: BTreeMap<String, Vec<String>>,
}

/// A validated board config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardConfig {
    /// Board name (`pi4b`).
    pub name: String,
    /// One line for humans.
    pub description: String,
    /// The kernel package (holds the kernel, DTBs and modules).
    pub kernel: PackageRef,
    /// File name of the kernel on the boot partition.
    pub kernel_file: String,
    /// The kernel must be written as an uncompressed `Image`: gunzip it if the package's
    /// `vmlinuz` starts with the gzip magic (Debian's arm64 `vmlinuz` does not; it is an `Image`).
    pub decompress_kernel: bool,
    /// Boot firmware, if the board needs it.
    pub firmware: Option<Firmware>,
    /// DTBs, relative to `/usr/lib/linux-image-<release>/` in the kernel package; written to the
    /// boot partition's root under their file names.
    pub dtbs: Vec<String>,
    /// Kernel modules wanted in the initramfs, sets expanded, `-` written as `_`, each once, in
    /// load order (dependencies still to be added with [`crate::kmod::closure`]).
    pub modules: Vec<String>,
    /// File name of the initramfs on the boot partition.
    pub initramfs_file: String,
    /// Kernel command line.
    pub cmdline: String,
    /// Serial console device without `/dev/` (`ttyAMA0`).
    pub console: String,
    /// `config.txt` contents, if any.
    pub config_txt: Option<String>,
    /// The image size must be a power of two.
    pub power_of_two_image: bool,
    /// QEMU `-machine` if the board can be emulated (`virt`, `raspi3b`).
    pub qemu_machine: Option<String>,
    /// QEMU `-cpu`, if the machine needs one.
    pub qemu_cpu: Option<String>,
    /// QEMU `-m` in MiB.
    pub qemu_memory_mib: Option<u32>,
}

/// A validated `[firmware]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firmware {
    /// The package to fetch.
    pub package: PackageRef,
    /// Absolute directory inside the package, without a trailing `/`.
    pub directory: String,
    /// Files from `directory` for the boot partition's root.
    pub files: Vec<String>,
}

impl BoardConfig {
    /// The packages to fetch: the kernel first, then the firmware if any.
    pub fn packages(&self) -> Vec<PackageRef> {
        let mut out = vec![self.kernel.clone()];
        out.extend(self.firmware.iter().map(|f| f.package.clone()));
        out
    }

    /// Loads and validates board `name` from `dir` (see the module docs for where files are
    /// looked for when `dir` is `None`).
    pub fn load(name: &str, dir: Option<&Path>) -> Result<Self, Error> {
        let Some(dir) = find_dir(dir) else {
            let (_, text) = BUILTIN
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| unknown(name, builtin_names()))?;
            return Self::parse(name, text, BUILTIN_SETS, &format!("built-in {name}.toml"));
        };
        if !is_board_name(name) {
            return Err(unknown(name, names_in(&dir)?));
        }
        let path = dir.join(format!("{name}.toml"));
        if !path.is_file() {
            return Err(unknown(name, names_in(&dir)?));
        }
        let text = read(&path)?;
        let sets_path = dir.join(MODULE_SETS_FILE);
        let sets = if sets_path.is_file() {
            read(&sets_path)?
        } else {
            BUILTIN_SETS.to_string()
        };
        Self::parse(name, &text, &sets, &path.display().to_string())
    }

    /// The names of the boards available from `dir` (as [`BoardConfig::load`] would find them).
    pub fn known_boards(dir: Option<&Path>) -> Result<Vec<String>, Error> {
        match find_dir(dir) {
            Some(dir) => names_in(&dir),
            None => Ok(builtin_names()),
        }
    }

    /// Parses and validates the text of board `name` (labelled `file` in errors) with the
    /// module sets in `sets_text`.
    pub fn parse(name: &str, text: &str, sets_text: &str, file: &str) -> Result<Self, Error> {
        let raw: RawBoardConfig = toml::from_str(text).map_err(|source| Error::Parse {
            file: file.to_string(),
            source,
        })?;
        let sets: RawModuleSets = toml::from_str(sets_text).map_err(|source| Error::Parse {
            file: MODULE_SETS_FILE.to_string(),
            source,
        })?;
        raw.validate(name, &sets, file)
    }
}

impl RawBoardConfig {
    /// Checks every field and builds the validated config.
    pub fn validate(
        self,
        expected_name: &str,
        sets: &RawModuleSets,
        file: &str,
    ) -> Result<BoardConfig, Error> {
        let invalid = |field: &str, reason: String| Error::Invalid {
            file: file.to_string(),
            field: field.to_string(),
            reason,
        };
        if self.version != 1 {
            return Err(invalid(
                "version",
                format!("{} is not supported; use 1", self.version),
            ));
        }
        if self.name != expected_name {
            return Err(invalid(
                "name",
                format!("{:?} must match the file name {expected_name:?}", self.name),
            ));
        }
        if let Some(reason) = self.unsupported {
            return Err(Error::Unsupported {
                name: self.name,
                reason: reason.trim().to_string(),
            });
        }
        let package = |field: &str, suite: String, component: String, name: String| {
            for (key, value) in [
                ("suite", &suite),
                ("component", &component),
                ("package", &name),
            ] {
                if !is_debian_word(value) {
                    return Err(invalid(
                        &format!("{field}.{key}"),
                        format!("{value:?} is not a Debian name"),
                    ));
                }
            }
            Ok(PackageRef {
                suite,
                component,
                name,
            })
        };
        let k = self.kernel;
        check_file_name(&k.file).map_err(|r| invalid("kernel.file", r))?;
        let kernel = package("kernel", k.suite, k.component, k.package)?;
        let firmware = match self.firmware {
            None => None,
            Some(f) => {
                if !f.dir.starts_with('/') || f.dir.contains("..") {
                    return Err(invalid(
                        "firmware.dir",
                        format!("{:?} must be an absolute path", f.dir),
                    ));
                }
                if f.files.is_empty() {
                    return Err(invalid("firmware.files", "lists no files".to_string()));
                }
                for name in &f.files {
                    check_file_name(name).map_err(|r| invalid("firmware.files", r))?;
                }
                Some(Firmware {
                    package: package("firmware", f.suite, f.component, f.package)?,
                    directory: f.dir.trim_end_matches('/').to_string(),
                    files: f.files,
                })
            }
        };
        for dtb in &self.dtbs {
            if dtb.starts_with('/')
                || dtb.split('/').any(|p| p.is_empty() || p == "..")
                || !dtb.ends_with(".dtb")
            {
                return Err(invalid(
                    "dtbs",
                    format!("{dtb:?} must be a relative path to a .dtb file"),
                ));
            }
        }
        let mut modules: Vec<String> = Vec::new();
        for set in &self.modules.sets {
            let list = sets.sets.get(set).ok_or_else(|| {
                let known: Vec<_> = sets.sets.keys().cloned().collect();
                invalid(
                    "modules.sets",
                    format!("unknown set {set:?}; known sets: {}", known.join(", ")),
                )
            })?;
            modules.extend(list.iter().map(|m| crate::kmod::normalize(m)));
        }
        modules.extend(self.modules.extra.iter().map(|m| crate::kmod::normalize(m)));
        if let Some(bad) = modules
            .iter()
            .find(|m| m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            return Err(invalid("modules", format!("{bad:?} is not a module name")));
        }
        let mut seen = std::collections::HashSet::new();
        modules.retain(|m| seen.insert(m.clone()));

        let b = self.boot;
        check_file_name(&b.initramfs_file).map_err(|r| invalid("boot.initramfs_file", r))?;
        if b.console.is_empty() || b.console.contains('/') {
            return Err(invalid(
                "boot.console",
                format!("{:?} is not a device name like ttyAMA0", b.console),
            ));
        }
        let console = format!("console={}", b.console);
        if !b
            .cmdline
            .split_whitespace()
            .any(|w| w == console || w.starts_with(&format!("{console},")))
        {
            return Err(invalid(
                "boot.cmdline",
                format!("must contain {console} so the boot log reaches the serial console"),
            ));
        }
        if b.cmdline.contains('\n') {
            return Err(invalid("boot.cmdline", "must be one line".to_string()));
        }
        if let Some(config) = &b.config_txt {
            for name in [&k.file, &b.initramfs_file] {
                if !config.contains(name.as_str()) {
                    return Err(invalid(
                        "boot.config_txt",
                        format!("does not name {name:?}, so the firmware would not load it"),
                    ));
                }
            }
        }
        let qemu = match self.qemu {
            None => None,
            Some(q) => {
                if q.machine.is_empty() {
                    return Err(invalid("qemu.machine", "is empty".to_string()));
                }
                if q.machine.starts_with("raspi") && !self.image.power_of_two {
                    return Err(invalid(
                        "image.power_of_two",
                        format!(
                            "must be true: QEMU's {} SD card needs a power-of-two image size",
                            q.machine
                        ),
                    ));
                }
                if q.memory_mib == 0 {
                    return Err(invalid(
                        "qemu.memory_mib",
                        "must be more than 0".to_string(),
                    ));
                }
                Some(q)
            }
        };
        Ok(BoardConfig {
            name: self.name,
            description: self.description.trim().to_string(),
            kernel,
            kernel_file: k.file,
            decompress_kernel: k.decompress,
            firmware,
            dtbs: self.dtbs,
            modules,
            initramfs_file: b.initramfs_file,
            cmdline: b.cmdline.trim().to_string(),
            console: b.console,
            config_txt: b.config_txt,
            power_of_two_image: self.image.power_of_two,
            qemu_machine: qemu.as_ref().map(|q| q.machine.clone()),
            qemu_cpu: qemu.as_ref().and_then(|q| q.cpu.clone()),
            qemu_memory_mib: qemu.map(|q| q.memory_mib),
        })
    }
}

/// The board-config directory: `explicit`, else `$BATON_BOARD_CONFIGS`, else a
/// `board-configs/` holding `module-sets.toml` in the executable's directory or up to four
/// levels above it.
pub fn find_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = explicit {
        return Some(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os(DIR_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .skip(1)
        .take(5)
        .map(|a| a.join("board-configs"))
        .find(|d| d.join(MODULE_SETS_FILE).is_file())
}

fn builtin_names() -> Vec<String> {
    BUILTIN.iter().map(|(n, _)| n.to_string()).collect()
}

fn names_in(dir: &Path) -> Result<Vec<String>, Error> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let file = entry
            .map_err(io)?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if let Some(stem) = file.strip_suffix(".toml") {
            if file != MODULE_SETS_FILE && is_board_name(stem) {
                names.push(stem.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn unknown(name: &str, known: Vec<String>) -> Error {
    Error::Unknown {
        name: name.to_string(),
        known,
    }
}

fn is_board_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_debian_word(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

fn check_file_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(format!("{name:?} must be a plain file name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../board-configs")
    }

    #[test]
    fn every_shipped_board_loads_from_the_repo_and_the_builtin_copy() {
        let names = BoardConfig::known_boards(Some(&repo_dir())).unwrap();
        assert_eq!(names, ["pi3b", "pi4b", "pi5", "qemu-virt"]);
        assert_eq!(builtin_names().len(), names.len());
        for name in &names {
            let from_dir = BoardConfig::load(name, Some(&repo_dir()));
            let (_, text) = BUILTIN.iter().find(|(n, _)| n == name).unwrap();
            let builtin = BoardConfig::parse(name, text, BUILTIN_SETS, "built-in");
            match (from_dir, builtin) {
                (Ok(a), Ok(b)) => assert_eq!(a, b),
                (Err(Error::Unsupported { .. }), Err(Error::Unsupported { .. })) => {}
                (a, b) => panic!("{name}: {a:?} / {b:?}"),
            }
        }
    }

    #[test]
    fn qemu_virt_is_complete() {
        let b = BoardConfig::load("qemu-virt", Some(&repo_dir())).unwrap();
        assert_eq!(b.kernel.to_string(), "bookworm/main/linux-image-arm64");
        assert!(b.firmware.is_none());
        assert_eq!(b.packages(), std::slice::from_ref(&b.kernel));
        assert_eq!(b.console, "ttyAMA0");
        assert_eq!(b.qemu_machine.as_deref(), Some("virt"));
        for m in [
            "virtio_blk",
            "virtio_net",
            "overlay",
            "ext4",
            "vfat",
            "crc32c_generic",
        ] {
            assert!(
                b.modules.contains(&m.to_string()),
                "{m} missing from {:?}",
                b.modules
            );
        }
        let mut sorted = b.modules.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), b.modules.len(), "modules listed once");
    }

    #[test]
    fn pi_boards_have_firmware_dtbs_and_an_uncompressed_kernel() {
        for name in ["pi3b", "pi4b"] {
            let b = BoardConfig::load(name, Some(&repo_dir())).unwrap();
            let fw = b.firmware.as_ref().unwrap();
            assert_eq!(fw.package.name, "raspi-firmware");
            assert_eq!(fw.package.component, "non-free-firmware");
            assert!(b.decompress_kernel && b.kernel_file == "kernel8.img");
            assert!(!b.dtbs.is_empty() && b.config_txt.is_some());
            assert_eq!(b.packages().len(), 2);
        }
        let pi3 = BoardConfig::load("pi3b", Some(&repo_dir())).unwrap();
        assert!(pi3.power_of_two_image);
        assert_eq!(pi3.qemu_machine.as_deref(), Some("raspi3b"));
        let pi4 = BoardConfig::load("pi4b", Some(&repo_dir())).unwrap();
        assert!(pi4.power_of_two_image);
        assert_eq!(pi4.qemu_machine.as_deref(), Some("raspi4b"));
        let phy = pi3.modules.iter().position(|m| m == "phy_generic").unwrap();
        let dwc2 = pi3.modules.iter().position(|m| m == "dwc2").unwrap();
        assert!(phy < dwc2, "phy_generic must load before dwc2");
    }

    #[test]
    fn pi5_is_refused_with_the_reason() {
        let err = BoardConfig::load("pi5", Some(&repo_dir()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pi5") && err.contains("MMC_SDHCI_BRCMSTB"),
            "{err}"
        );
    }

    #[test]
    fn unknown_boards_list_the_known_ones() {
        let err = BoardConfig::load("pi9", Some(&repo_dir()))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "unknown board \"pi9\"; known boards: pi3b, pi4b, pi5, qemu-virt"
        );
        let err = BoardConfig::load("../etc/passwd", Some(&repo_dir())).unwrap_err();
        assert!(matches!(err, Error::Unknown { .. }));
        let empty = tempfile::tempdir().unwrap();
        let err = BoardConfig::load("qemu-virt", Some(empty.path())).unwrap_err();
        assert!(
            matches!(err, Error::Unknown { ref known, .. } if known.is_empty()),
            "{err}"
        );
    }

    fn parse_with(edit: impl Fn(String) -> String) -> Result<BoardConfig, Error> {
        let (_, text) = BUILTIN.iter().find(|(n, _)| *n == "pi3b").unwrap();
        BoardConfig::parse("pi3b", &edit(text.to_string()), BUILTIN_SETS, "pi3b.toml")
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values_naming_the_field() {
        let err = parse_with(|t| t.replace("[kernel]\n", "[kernel]\nflavour = \"rpi\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("pi3b.toml: ") && err.contains("flavour"),
            "{err}"
        );
        let cases: [(&str, &str, &str); 6] = [
            ("initramfs initramfs followkernel", "", "boot.config_txt"),
            ("sets = [", "sets = [\"nope\", ", "modules.sets"),
            (
                "power_of_two = true",
                "power_of_two = false",
                "image.power_of_two",
            ),
            ("console=ttyAMA0", "console=tty1", "boot.cmdline"),
            (
                "file = \"kernel8.img\"",
                "file = \"../kernel8.img\"",
                "kernel.file",
            ),
            ("name = \"pi3b\"", "name = \"pi3\"", "name"),
        ];
        for (from, to, field) in cases {
            let err = parse_with(|t| t.replacen(from, to, 1)).unwrap_err();
            match &err {
                Error::Invalid { field: f, file, .. } => {
                    assert_eq!((f.as_str(), file.as_str()), (field, "pi3b.toml"), "{err}")
                }
                other => panic!("{from}: {other}"),
            }
        }
    }
}
