//! The ext4 data partition, made by e2fsprogs' `mke2fs` on the build host (the builder needs the
//! Debian package e2fsprogs: `mke2fs`, and `debugfs` when the file system is populated).
//!
//! Reproducible bytes come from pinning everything mke2fs would otherwise pick: our own
//! mke2fs.conf instead of the host's, the UUID and directory hash seed passed in,
//! `E2FSPROGS_FAKE_TIME` for every timestamp, root as owner of the root directory, and a cleared
//! environment. `mke2fs -d` copies owners, permissions and timestamps from the source tree, so
//! after populating we set every copied inode to root:root, the fixed time and permissions that
//! do not depend on the builder's umask (0755 for directories and executables, 0644 for other
//! files) with `debugfs`. This works for a builder that is not root, unlike chown on the source
//! tree; `-E root_owner` only covers the root directory. Extended attributes of the source files
//! are copied as they are: keep them off the source tree.
//!
//! The feature set is the one Debian 12's mke2fs uses for ext4, which the 6.1 kernel mounts; it
//! keeps `resize_inode` with GDT blocks reserved for growth to 1 TiB, so the board can grow the
//! file system online (resize2fs or the kernel's ioctl) to fill the card. To it we add project
//! quotas (`quota,project` with only the project type tracked), which `resources.disk` needs
//! and which cannot be added to a mounted file system; mounting then needs the kernel's
//! `quota_v2` format (a module on Debian's kernels, in the board's module set). 2 % of the
//! blocks are reserved: the board lets no container use them (see `init/src/boot/data.rs`).

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Block size: 4 KiB.
pub const BLOCK_SIZE: u64 = 4096;
/// Smallest file system we make (the journal alone takes 4 MiB at this size).
pub const MIN_SIZE: u64 = 16 << 20;
/// Size the resize inode reserves descriptor blocks for.
const MAX_ONLINE_SIZE: u64 = 1 << 40;

/// The whole mke2fs configuration: the host's /etc/mke2fs.conf is never read.
const MKE2FS_CONF: &str = "\
[defaults]
\tbase_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
\tdefault_mntopts = acl,user_xattr
\tenable_periodic_fsck = 0
\tblocksize = 4096
\tinode_size = 256
\tinode_ratio = 16384
\treserved_ratio = 2.0
\tlazy_itable_init = false
\tlazy_journal_init = false

[fs_types]
\text4 = {
\t\tfeatures = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize,quota,project
\t}
";

/// Failures making an ext4 file system.
#[derive(Debug, thiserror::Error)]
pub enum Ext4Error {
    /// An option cannot be used.
    #[error("invalid ext4 option {what}: {reason}")]
    InvalidOption {
        /// Which option.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A tool could not be started (not installed?).
    #[error("cannot run {program} (install the Debian package e2fsprogs): {source}")]
    Spawn {
        /// The program.
        program: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A tool ran and failed.
    #[error("{program} failed on {target}: {status}: {stderr}")]
    Tool {
        /// The program.
        program: &'static str,
        /// The file it worked on.
        target: PathBuf,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed to stderr.
        stderr: String,
    },
    /// A temporary file or the source tree could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Parameters of the ext4 file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ext4Options {
    /// Size in bytes (a multiple of 4096, at least [`MIN_SIZE`]).
    pub size: u64,
    /// Volume label, at most 16 bytes (`baton-data`).
    pub label: String,
    /// File system UUID.
    pub uuid: [u8; 16],
    /// Seed of the directory index hash.
    pub hash_seed: [u8; 16],
    /// Every timestamp in the file system, seconds since the epoch.
    pub mtime: i64,
    /// Copy this directory's contents into the root directory (`mke2fs -d`).
    pub populate_from: Option<PathBuf>,
}

/// Makes the file system in `target` at byte `offset` (0 for a file of its own; the partition
/// offset to write straight into an image). The target is created if missing and never truncated.
pub fn make_ext4(target: &Path, offset: u64, opts: &Ext4Options) -> Result<(), Ext4Error> {
    let invalid = |what, reason: String| Err(Ext4Error::InvalidOption { what, reason });
    if opts.size % BLOCK_SIZE != 0 || opts.size < MIN_SIZE {
        return invalid(
            "size",
            format!(
                "{} bytes is not a multiple of 4096 of at least {MIN_SIZE}",
                opts.size
            ),
        );
    }
    if opts.label.len() > 16 || opts.label.contains(['"', ',', '\n']) {
        return invalid(
            "label",
            format!("{:?} is longer than 16 bytes or has quotes", opts.label),
        );
    }
    if offset % BLOCK_SIZE != 0 {
        return invalid("offset", format!("{offset} is not a multiple of 4096"));
    }
    let temp = tempfile::tempdir().map_err(|source| Ext4Error::Io {
        action: "creating a temporary directory for",
        path: "mke2fs.conf".into(),
        source,
    })?;
    let conf = temp.path().join("mke2fs.conf");
    fs::write(&conf, MKE2FS_CONF).map_err(|source| Ext4Error::Io {
        action: "writing",
        path: conf.clone(),
        source,
    })?;

    let blocks = opts.size / BLOCK_SIZE;
    let mut extended = format!(
        "hash_seed={},root_owner=0:0,nodiscard,quotatype=prjquota",
        uuid_text(&opts.hash_seed)
    );
    if opts.size < MAX_ONLINE_SIZE {
        let _ = write!(extended, ",resize={}", MAX_ONLINE_SIZE / BLOCK_SIZE);
    }
    if offset != 0 {
        let _ = write!(extended, ",offset={offset}");
    }
    let mut cmd = tool("mke2fs", opts.mtime);
    cmd.env("MKE2FS_CONFIG", &conf)
        .args(["-t", "ext4", "-T", "default", "-F", "-q", "-b", "4096"])
        .args([
            "-L",
            &opts.label,
            "-U",
            &uuid_text(&opts.uuid),
            "-E",
            &extended,
        ]);
    if let Some(src) = &opts.populate_from {
        cmd.arg("-d").arg(src);
    }
    cmd.arg(target).arg(blocks.to_string());
    run("mke2fs", cmd, target)?;

    if let Some(src) = &opts.populate_from {
        normalize_inodes(target, offset, src, opts.mtime, temp.path())?;
    }
    Ok(())
}

/// Sets owner root:root, time `mtime` and normalized permissions on every inode `mke2fs -d`
/// copied from `src`.
fn normalize_inodes(
    target: &Path,
    offset: u64,
    src: &Path,
    mtime: i64,
    temp: &Path,
) -> Result<(), Ext4Error> {
    let mut paths = Vec::new();
    collect_paths(src, "", &mut paths)?;
    let mut script = String::new();
    for (p, mode) in &paths {
        if let Some(mode) = mode {
            let _ = writeln!(script, "sif \"{p}\" mode 0{mode:o}");
        }
        for (field, value) in [
            ("uid", 0),
            ("gid", 0),
            ("atime", mtime),
            ("ctime", mtime),
            ("mtime", mtime),
            ("crtime", mtime),
            ("atime_extra", 0),
            ("ctime_extra", 0),
            ("mtime_extra", 0),
            ("crtime_extra", 0),
        ] {
            // debugfs reads a bare number for a time field as a date (YYYYMMDD...) when it
            // can; `@` makes it seconds since the epoch.
            let at = if field.ends_with("time") { "@" } else { "" };
            let _ = writeln!(script, "sif \"{p}\" {field} {at}{value}");
        }
    }
    let commands = temp.join("debugfs.cmds");
    fs::write(&commands, script).map_err(|source| Ext4Error::Io {
        action: "writing",
        path: commands.clone(),
        source,
    })?;
    let mut device = target.as_os_str().to_owned();
    if offset != 0 {
        device.push(format!("?offset={offset}"));
    }
    let mut cmd = tool("debugfs", mtime);
    cmd.arg("-w").arg("-f").arg(&commands).arg(&device);
    let out = run("debugfs", cmd, target)?;
    // mke2fs 1.47 counts the quota before it copies the source tree in: recount it, or the
    // kernel's accounting (and e2fsck) starts from wrong figures. tune2fs recounts only when
    // it turns quotas on, so off and on again.
    for args in [&["-O", "^quota"][..], &["-O", "quota", "-Q", "prjquota"]] {
        let mut recount = tool("tune2fs", mtime);
        recount.args(args).arg(&device);
        run("tune2fs", recount, target)?;
    }
    // debugfs reports failed commands on stderr but still exits 0.
    let errors: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with("debugfs ") && !l.trim().is_empty())
        .collect();
    if !errors.is_empty() {
        return Err(Ext4Error::InvalidOption {
            what: "populate_from",
            reason: format!(
                "debugfs could not normalize {}: {}",
                src.display(),
                errors.join("; ")
            ),
        });
    }
    Ok(())
}

/// Absolute in-file-system paths of everything under `dir`, with the mode (type and
/// permissions) to give directories and regular files.
fn collect_paths(
    dir: &Path,
    prefix: &str,
    out: &mut Vec<(String, Option<u32>)>,
) -> Result<(), Ext4Error> {
    let io = |source| Ext4Error::Io {
        action: "reading directory",
        path: dir.to_owned(),
        source,
    };
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| !n.contains(['"', '\n'])) else {
            return Err(Ext4Error::InvalidOption {
                what: "populate_from",
                reason: format!("{} has a name debugfs cannot take", entry.path().display()),
            });
        };
        let path = format!("{prefix}/{name}");
        let meta = entry.metadata().map_err(io)?;
        if meta.is_dir() {
            out.push((path.clone(), Some(0o040_755)));
            collect_paths(&entry.path(), &path, out)?;
        } else if meta.is_file() {
            let executable = meta.permissions().mode() & 0o111 != 0;
            out.push((path, Some(if executable { 0o100_755 } else { 0o100_644 })));
        } else {
            out.push((path, None));
        }
    }
    Ok(())
}

/// An e2fsprogs command with a cleared environment, the sbin directories on its PATH and the
/// clock pinned to `time`.
fn tool(program: &str, time: i64) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/sbin:/usr/bin:/bin")
        .env("LC_ALL", "C")
        .env("E2FSPROGS_FAKE_TIME", time.to_string());
    cmd
}

/// Runs `cmd`; returns its stderr when it succeeds.
fn run(program: &'static str, mut cmd: Command, target: &Path) -> Result<String, Ext4Error> {
    let out = cmd
        .output()
        .map_err(|source| Ext4Error::Spawn { program, source })?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(Ext4Error::Tool {
            program,
            target: target.to_owned(),
            status: out.status,
            stderr,
        });
    }
    Ok(stderr)
}

/// The usual 8-4-4-4-12 text form of a UUID.
pub fn uuid_text(u: &[u8; 16]) -> String {
    let hex: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests;
