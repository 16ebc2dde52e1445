//! The kernel-module closure: which `.ko` files an initramfs needs, in load order.
//!
//! Debian's kernel package ships no `modules.dep` (depmod runs at install time), so the builder
//! reads each module's `.modinfo` ELF section itself: `depends=` (hard dependencies, which must
//! exist) and `softdep=pre: ...` (modules modprobe loads first if they exist). PID 1 has no
//! modprobe, so the returned list is the whole story: each module comes after everything it
//! depends on.
//!
//! Names compare with `-` and `_` as equal (`crc32c-generic` is `crc32c_generic`). Modules built
//! into the kernel (listed in `modules.builtin`) are satisfied without a file. Soft dependencies
//! that name an alias rather than a module (`softdep=pre: crc32c`) are not resolved; the ones that
//! matter are added by [`EXTRA_SOFTDEPS`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSection};

/// Soft dependencies the kernel's own metadata does not spell out by module name (FIELD-NOTES):
/// `(module, modules to load before it)`.
pub const EXTRA_SOFTDEPS: &[(&str, &[&str])] = &[
    ("ext4", &["crc32c_generic"]),
    ("libcrc32c", &["crc32c_generic"]),
    ("vfat", &["nls_ascii", "nls_cp437"]),
];

/// Errors from computing a closure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A directory or module could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A module is not a readable ELF file with a `.modinfo` section.
    #[error("{path} is not a kernel module: {reason}")]
    BadModule {
        /// The module file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A wanted module, or a hard dependency of one, is neither a file nor built in.
    #[error("kernel module {module} is not under {} (needed by {})", root.display(), chain.join(" <- "))]
    Missing {
        /// The missing module.
        module: String,
        /// The modules that led to it, innermost first, ending with the wanted module.
        chain: Vec<String>,
        /// The modules directory searched.
        root: PathBuf,
    },
    /// Modules depend on each other in a circle.
    #[error("kernel modules depend on each other in a cycle: {}", chain.join(" -> "))]
    Cycle {
        /// The modules in the cycle.
        chain: Vec<String>,
    },
}

/// `-` and `_` are the same in module names.
pub fn normalize(name: &str) -> String {
    name.trim().replace('-', "_")
}

/// The modules under `modules_root` (a `lib/modules/<release>` directory) needed to load every
/// module in `wanted`, as paths relative to `modules_root`, each after its dependencies and
/// pre-soft-dependencies. Wanted modules that are built into the kernel are skipped.
pub fn closure(modules_root: &Path, wanted: &[String]) -> Result<Vec<PathBuf>, Error> {
    let mut walk = Walk {
        root: modules_root,
        files: index_files(modules_root)?,
        builtin: read_builtin(modules_root)?,
        extra: EXTRA_SOFTDEPS
            .iter()
            .map(|(m, pre)| (m.to_string(), pre.iter().map(|p| p.to_string()).collect()))
            .collect(),
        state: HashMap::new(),
        stack: Vec::new(),
        order: Vec::new(),
    };
    for name in wanted {
        walk.visit(&normalize(name), true)?;
    }
    Ok(walk.order)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Visiting,
    Done,
}

struct Walk<'a> {
    root: &'a Path,
    files: BTreeMap<String, PathBuf>,
    builtin: HashSet<String>,
    extra: HashMap<String, Vec<String>>,
    state: HashMap<String, State>,
    stack: Vec<String>,
    order: Vec<PathBuf>,
}

impl Walk<'_> {
    fn visit(&mut self, name: &str, hard: bool) -> Result<(), Error> {
        match self.state.get(name) {
            Some(State::Done) => return Ok(()),
            Some(State::Visiting) if hard => {
                let from = self.stack.iter().position(|s| s == name).unwrap_or(0);
                let mut chain = self.stack[from..].to_vec();
                chain.push(name.to_string());
                return Err(Error::Cycle { chain });
            }
            // A soft dependency back into the current chain: modprobe would skip it too.
            Some(State::Visiting) => return Ok(()),
            None => {}
        }
        if self.builtin.contains(name) {
            self.state.insert(name.to_string(), State::Done);
            return Ok(());
        }
        let Some(rel) = self.files.get(name).cloned() else {
            if !hard {
                return Ok(());
            }
            return Err(Error::Missing {
                module: name.to_string(),
                chain: self.stack.iter().rev().cloned().collect(),
                root: self.root.to_path_buf(),
            });
        };
        self.state.insert(name.to_string(), State::Visiting);
        self.stack.push(name.to_string());
        let info = read_modinfo(&self.root.join(&rel))?;
        let mut soft = self.extra.get(name).cloned().unwrap_or_default();
        soft.extend(info.pre_softdeps);
        for dep in soft {
            self.visit(&normalize(&dep), false)?;
        }
        for dep in info.depends {
            self.visit(&normalize(&dep), true)?;
        }
        self.stack.pop();
        self.state.insert(name.to_string(), State::Done);
        self.order.push(rel);
        Ok(())
    }
}

/// What a module's `.modinfo` says about its dependencies.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ModInfo {
    /// `depends=` entries.
    pub depends: Vec<String>,
    /// `softdep=pre:` entries.
    pub pre_softdeps: Vec<String>,
}

/// Reads the `.modinfo` section of the module at `path` (`.ko`, or `.ko.xz`/`.ko.zst`/`.ko.gz`).
pub fn read_modinfo(path: &Path) -> Result<ModInfo, Error> {
    let raw = fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |reason: String| Error::BadModule {
        path: path.to_path_buf(),
        reason,
    };
    let (_, data) = crate::debian::deb::decompress_module(&path.to_string_lossy(), &raw)
        .map_err(|e| bad(format!("cannot decompress: {e}")))?;
    let elf = object::File::parse(&*data).map_err(|e| bad(e.to_string()))?;
    let section = elf
        .section_by_name(".modinfo")
        .ok_or_else(|| bad("no .modinfo section".to_string()))?;
    let bytes = section.data().map_err(|e| bad(e.to_string()))?;
    Ok(parse_modinfo(bytes))
}

fn parse_modinfo(bytes: &[u8]) -> ModInfo {
    let mut info = ModInfo::default();
    for field in bytes.split(|&b| b == 0) {
        let field = String::from_utf8_lossy(field);
        if let Some(deps) = field.strip_prefix("depends=") {
            info.depends.extend(
                deps.split(',')
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(String::from),
            );
        } else if let Some(soft) = field.strip_prefix("softdep=") {
            let mut pre = false;
            for word in soft.split_whitespace() {
                match word {
                    "pre:" => pre = true,
                    "post:" => pre = false,
                    w if pre => info.pre_softdeps.push(w.to_string()),
                    _ => {}
                }
            }
        }
    }
    info
}

/// Every module file under `root`, by normalised name (first in path order wins).
fn index_files(root: &Path) -> Result<BTreeMap<String, PathBuf>, Error> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel_dir) = dirs.pop() {
        let dir = root.join(&rel_dir);
        let io_err = |source| Error::Io {
            path: dir.clone(),
            source,
        };
        let mut entries: Vec<_> = fs::read_dir(&dir)
            .map_err(io_err)?
            .collect::<Result<_, _>>()
            .map_err(io_err)?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries.into_iter().rev() {
            let rel = rel_dir.join(entry.file_name());
            let kind = entry.file_type().map_err(io_err)?;
            if kind.is_dir() {
                dirs.push(rel);
                continue;
            }
            let file = entry.file_name().to_string_lossy().into_owned();
            if let Some(name) = module_name(&file) {
                out.entry(normalize(name)).or_insert(rel);
            }
        }
    }
    Ok(out)
}

fn module_name(file: &str) -> Option<&str> {
    ["", ".xz", ".zst", ".gz"]
        .into_iter()
        .find_map(|ext| file.strip_suffix(ext)?.strip_suffix(".ko"))
}

fn read_builtin(root: &Path) -> Result<HashSet<String>, Error> {
    let path = root.join("modules.builtin");
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(source) => return Err(Error::Io { path, source }),
    };
    Ok(text
        .lines()
        .filter_map(|l| l.rsplit('/').next())
        .filter_map(module_name)
        .map(normalize)
        .collect())
}

/// Tests on synthetic modules (minimal ELF files with a `.modinfo`).
#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal little-endian ELF64 relocatable file whose `.modinfo` holds `fields`.
    fn elf_module(fields: &[&str]) -> Vec<u8> {
        let mut modinfo = Vec::new();
        for f in fields {
            modinfo.extend_from_slice(f.as_bytes());
            modinfo.push(0);
        }
        let shstrtab = b"\0.modinfo\0.shstrtab\0";
        let modinfo_off = 64u64;
        let shstr_off = modinfo_off + modinfo.len() as u64;
        let sh_off = (shstr_off + shstrtab.len() as u64).div_ceil(8) * 8;
        let mut out = Vec::new();
        out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&1u16.to_le_bytes()); // e_type: REL
        out.extend_from_slice(&183u16.to_le_bytes()); // e_machine: AArch64
        out.extend_from_slice(&1u32.to_le_bytes()); // e_version
        out.extend_from_slice(&0u64.to_le_bytes()); // e_entry
        out.extend_from_slice(&0u64.to_le_bytes()); // e_phoff
        out.extend_from_slice(&sh_off.to_le_bytes()); // e_shoff
        out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        for v in [64u16, 0, 0, 64, 3, 2] {
            // e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&modinfo);
        out.extend_from_slice(shstrtab);
        out.resize(sh_off as usize, 0);
        let mut section = |name: u32, kind: u32, flags: u64, off: u64, size: u64| {
            out.extend_from_slice(&name.to_le_bytes());
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&0u64.to_le_bytes()); // sh_addr
            out.extend_from_slice(&off.to_le_bytes());
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&[0; 8]); // sh_link, sh_info
            out.extend_from_slice(&1u64.to_le_bytes()); // sh_addralign
            out.extend_from_slice(&0u64.to_le_bytes()); // sh_entsize
        };
        section(0, 0, 0, 0, 0);
        section(1, 1, 2, modinfo_off, modinfo.len() as u64);
        section(10, 3, 0, shstr_off, shstrtab.len() as u64);
        out
    }

    /// A modules tree: `(path relative to the root, modinfo fields)`.
    fn tree(modules: &[(&str, &[&str])]) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        for (rel, fields) in modules {
            let path = tmp.path().join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            let elf = elf_module(fields);
            let bytes = if rel.ends_with(".xz") {
                crate::debian::deb::tests::compress("xz", &elf)
            } else {
                elf
            };
            fs::write(path, bytes).unwrap();
        }
        tmp
    }

    fn names(paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .map(|p| {
                let f = p.file_name().unwrap().to_string_lossy().into_owned();
                f.split(".ko").next().unwrap().to_string()
            })
            .collect()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn orders_dependencies_and_softdeps_first() {
        let t = tree(&[
            (
                "kernel/fs/ext4/ext4.ko",
                &[
                    "name=ext4",
                    "depends=mbcache,jbd2,crc16",
                    "softdep=pre: crc32c",
                ],
            ),
            ("kernel/fs/jbd2/jbd2.ko", &["depends="]),
            ("kernel/fs/mbcache.ko", &["depends="]),
            ("kernel/lib/crc16.ko", &["depends="]),
            ("kernel/crypto/crc32c_generic.ko", &["alias=crc32c"]),
            ("kernel/fs/fat/vfat.ko", &["depends=fat"]),
            ("kernel/fs/fat/fat.ko", &["depends="]),
            ("kernel/fs/nls/nls_ascii.ko", &[]),
            ("kernel/fs/nls/nls_cp437.ko", &[]),
            ("kernel/unrelated.ko", &[]),
        ]);
        let got = closure(t.path(), &strings(&["ext4", "vfat"])).unwrap();
        assert_eq!(
            names(&got),
            [
                "crc32c_generic",
                "mbcache",
                "jbd2",
                "crc16",
                "ext4",
                "nls_ascii",
                "nls_cp437",
                "fat",
                "vfat"
            ]
        );
        assert_eq!(got[4], PathBuf::from("kernel/fs/ext4/ext4.ko"));
    }

    #[test]
    fn dash_and_underscore_are_the_same_and_each_module_appears_once() {
        let t = tree(&[
            (
                "kernel/a/virtio_net.ko",
                &["depends=net_failover,virtio-ring"],
            ),
            ("kernel/a/net_failover.ko", &["depends=failover"]),
            ("kernel/a/failover.ko", &[]),
            ("kernel/a/virtio_ring.ko", &[]),
            ("kernel/a/virtio-blk.ko", &["depends=virtio_ring"]),
        ]);
        let got = closure(
            t.path(),
            &strings(&["virtio-net", "virtio_blk", "virtio_net"]),
        )
        .unwrap();
        assert_eq!(
            names(&got),
            [
                "failover",
                "net_failover",
                "virtio_ring",
                "virtio_net",
                "virtio-blk"
            ]
        );
    }

    #[test]
    fn missing_modules_name_who_needed_them() {
        let t = tree(&[
            ("kernel/bridge.ko", &["depends=stp,llc"]),
            ("kernel/stp.ko", &["depends=llc"]),
            (
                "kernel/x.ko",
                &["softdep=pre: not_there post: also_not_there"],
            ),
        ]);
        let err = closure(t.path(), &strings(&["bridge"])).unwrap_err();
        match &err {
            Error::Missing { module, chain, .. } => {
                assert_eq!(module, "llc");
                assert_eq!(chain, &["stp", "bridge"]);
            }
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains("needed by stp <- bridge"), "{err}");
        // Missing soft dependencies are fine; a missing wanted module is not.
        assert_eq!(names(&closure(t.path(), &strings(&["x"])).unwrap()), ["x"]);
        let err = closure(t.path(), &strings(&["nope"])).unwrap_err();
        assert!(
            matches!(err, Error::Missing { ref chain, .. } if chain.is_empty()),
            "{err}"
        );
    }

    #[test]
    fn builtin_modules_need_no_file_and_compressed_modules_are_read() {
        let t = tree(&[
            ("kernel/fs/overlay.ko.xz", &["depends=exportfs"]),
            ("kernel/crypto/crc32c_generic.ko.xz", &[]),
        ]);
        fs::write(
            t.path().join("modules.builtin"),
            "kernel/fs/exportfs/exportfs.ko\nkernel/fs/ext4/ext4.ko\n",
        )
        .unwrap();
        let got = closure(t.path(), &strings(&["overlay", "ext4"])).unwrap();
        assert_eq!(got, [PathBuf::from("kernel/fs/overlay.ko.xz")]);
    }

    #[test]
    fn hard_cycles_are_errors_and_soft_cycles_are_ignored() {
        let t = tree(&[("a.ko", &["depends=b"]), ("b.ko", &["depends=a"])]);
        let err = closure(t.path(), &strings(&["a"])).unwrap_err();
        assert!(matches!(err, Error::Cycle { .. }), "{err}");
        assert!(err.to_string().contains("a -> b -> a"), "{err}");
        let t = tree(&[("a.ko", &["softdep=pre: b"]), ("b.ko", &["softdep=pre: a"])]);
        assert_eq!(
            names(&closure(t.path(), &strings(&["a"])).unwrap()),
            ["b", "a"]
        );
    }

    #[test]
    fn non_modules_are_reported_by_path() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("junk.ko"), b"not elf").unwrap();
        let err = closure(t.path(), &strings(&["junk"])).unwrap_err();
        assert!(
            matches!(err, Error::BadModule { .. }) && err.to_string().contains("junk.ko"),
            "{err}"
        );
    }

    /// Every module set in board-configs/module-sets.toml against every real Debian kernel in
    /// the download cache (the `real_debian_archive` test fills it).
    #[test]
    fn module_sets_resolve_against_cached_debian_kernels() {
        use crate::debian::{cache, deb};
        let debs: Vec<PathBuf> = cache::default_dir()
            .ok()
            .and_then(|d| fs::read_dir(d.join("debs")).ok())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| fs::read_dir(e.path()).ok())
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                n.starts_with("linux-image-") && n.ends_with("_arm64.deb")
            })
            .collect();
        assert!(
            !debs.is_empty(),
            "no Debian kernel in the download cache; run \
             `cargo test -p baton --lib -- --ignored real_debian_archive` once (scripts/test does)"
        );
        let sets_text = include_str!("../../board-configs/module-sets.toml");
        let sets: crate::board::RawModuleSets = toml::from_str(sets_text).unwrap();
        for path in debs {
            let tmp = tempfile::tempdir().unwrap();
            let written = deb::extract_to_dir(
                &path,
                tmp.path(),
                |p| p.contains("/lib/modules/"),
                deb::Modules::Decompress,
            )
            .unwrap();
            let builtin = written
                .iter()
                .find(|p| p.ends_with("modules.builtin"))
                .unwrap();
            let root = tmp.path().join(builtin.parent().unwrap());
            for (set, modules) in &sets.sets {
                let got = closure(&root, modules)
                    .unwrap_or_else(|e| panic!("{}: set {set}: {e}", path.display()));
                let got_names = names(&got);
                let pos = |m: &str| got_names.iter().position(|n| n.replace('-', "_") == m);
                for m in modules {
                    if let Some(at) = pos(m) {
                        // Each module after its own dependencies.
                        let info = read_modinfo(&root.join(&got[at])).unwrap();
                        for d in info.depends {
                            let d = normalize(&d);
                            if let Some(dp) = pos(&d) {
                                assert!(dp < at, "{set}: {d} after {m}");
                            }
                        }
                    }
                }
                if set == "containers" || set == "filesystems" {
                    let crc = pos("crc32c_generic").unwrap();
                    let first_user = pos("ext4").or(pos("libcrc32c")).unwrap();
                    assert!(crc < first_user, "{set}: crc32c_generic must come first");
                }
                eprintln!("{}: set {set}: {} modules", path.display(), got.len());
            }
        }
    }
}
