//! Creating one tar entry at a time inside the layer directory, never outside it.

use super::budget::{blocks, Budget, BLOCK};
use super::UnpackError;
use crate::digest::Digest;
use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps, XattrFlags, CWD};
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{symlink, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use tar::EntryType;

const OPAQUE: &str = ".wh..wh..opq";
const WHITEOUT_PREFIX: &str = ".wh.";
const META_PREFIX: &str = ".wh..wh.";

/// Ownership, mode and times of an entry.
struct Meta {
    uid: Option<u32>,
    gid: Option<u32>,
    mode: u32,
    mtime: i64,
    xattrs: Vec<(String, Vec<u8>)>,
}

pub(super) struct Unpacker<'a> {
    layer: &'a Digest,
    root: &'a Path,
    dir_times: Vec<(PathBuf, i64)>,
    budget: &'a mut Budget,
    /// Bytes charged for this layer so far.
    written: u64,
    /// Entries seen so far.
    entries: u64,
}

impl<'a> Unpacker<'a> {
    pub(super) fn new(layer: &'a Digest, root: &'a Path, budget: &'a mut Budget) -> Self {
        Unpacker {
            layer,
            root,
            dir_times: Vec::new(),
            budget,
            written: 0,
            entries: 0,
        }
    }

    /// Unpacks every entry, then sets directory times (which creating their children changed).
    /// Returns what the layer cost.
    pub(super) fn run(mut self, tar_stream: impl Read) -> Result<u64, UnpackError> {
        let read_error = |source| UnpackError::Read {
            layer: self.layer.clone(),
            source,
        };
        let mut archive = tar::Archive::new(tar_stream);
        for entry in archive.entries().map_err(read_error)? {
            let mut entry = entry.map_err(read_error)?;
            self.count(&entry)?;
            self.entry(&mut entry)?;
        }
        drop(archive);
        for (path, mtime) in self.dir_times.iter().rev() {
            set_mtime(path, *mtime).map_err(|e| self.io("set time of", "", path, e))?;
        }
        Ok(self.written)
    }

    /// Counts an entry against the entry cap and charges it, before anything of it is written.
    fn count<R: Read>(&mut self, entry: &tar::Entry<R>) -> Result<(), UnpackError> {
        self.entries += 1;
        let limit = self.budget.limits().max_layer_entries;
        if self.entries > limit {
            return Err(UnpackError::TooManyEntries {
                layer: self.layer.clone(),
                limit,
                written: self.written,
            });
        }
        // What the entry declares is charged whatever its type: only regular files' contents are
        // written, but every declared byte is decompressed, so this also bounds the time.
        self.charge(BLOCK.saturating_add(blocks(entry.size())))
    }

    fn charge(&mut self, bytes: u64) -> Result<(), UnpackError> {
        self.budget
            .charge(bytes)
            .map_err(|over| self.budget.error(over, self.layer, self.written))?;
        self.written = self.written.saturating_add(bytes);
        Ok(())
    }

    fn io(&self, action: &'static str, entry: &str, path: &Path, source: io::Error) -> UnpackError {
        UnpackError::Io {
            layer: self.layer.clone(),
            entry: entry.to_owned(),
            action,
            path: path.to_owned(),
            source,
        }
    }

    fn refused(&self, entry: &str, reason: impl Into<String>) -> UnpackError {
        UnpackError::Refused {
            layer: self.layer.clone(),
            entry: entry.to_owned(),
            reason: reason.into(),
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), UnpackError> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let read_error = |source| UnpackError::Read {
            layer: self.layer.clone(),
            source,
        };
        let raw = entry.path().map_err(read_error)?.into_owned();
        let name = raw.display().to_string();
        let relative =
            relative(&raw).ok_or_else(|| self.refused(&name, "absolute path or `..`"))?;
        let meta = self.meta(entry, &name)?;
        let Some(file_name) = relative
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
        else {
            // The layer root itself (`./`).
            if kind == EntryType::Directory {
                self.apply(self.root, &meta, &name)?;
                self.dir_times.push((self.root.to_owned(), meta.mtime));
            }
            return Ok(());
        };
        let parent = self.parent_dir(relative.parent().unwrap_or(Path::new("")), &name, true)?;
        if file_name == OPAQUE {
            return rustix::fs::lsetxattr(
                &parent,
                "trusted.overlay.opaque",
                b"y",
                XattrFlags::empty(),
            )
            .map_err(|e| self.io("mark opaque", &name, &parent, e.into()));
        }
        if file_name.starts_with(META_PREFIX) {
            return Ok(());
        }
        if let Some(hidden) = file_name.strip_prefix(WHITEOUT_PREFIX) {
            let target = parent.join(hidden);
            self.clear(&target, &name, false)?;
            return rustix::fs::mknodat(
                CWD,
                &target,
                FileType::CharacterDevice,
                Mode::empty(),
                rustix::fs::makedev(0, 0),
            )
            .map_err(|e| self.io("create whiteout", &name, &target, e.into()));
        }
        let target = parent.join(&file_name);
        self.clear(&target, &name, kind == EntryType::Directory)?;
        match kind {
            EntryType::Directory => {
                match fs::create_dir(&target) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                        return Err(self.io("create directory", &name, &target, e))
                    }
                    _ => {}
                }
                self.dir_times.push((target.clone(), meta.mtime));
            }
            EntryType::Regular | EntryType::Continuous => {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&target)
                    .map_err(|e| self.io("create file", &name, &target, e))?;
                io::copy(entry, &mut file).map_err(read_error)?;
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(read_error)?
                    .ok_or_else(|| self.refused(&name, "symlink without a target"))?;
                symlink(&link, &target)
                    .map_err(|e| self.io("create symlink", &name, &target, e))?;
            }
            EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(read_error)?
                    .ok_or_else(|| self.refused(&name, "hard link without a target"))?;
                let source = self.link_source(&link, &name)?;
                fs::hard_link(&source, &target)
                    .map_err(|e| self.io("create hard link", &name, &target, e))?;
                return Ok(());
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let file_type = match kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let header = entry.header();
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                rustix::fs::mknodat(
                    CWD,
                    &target,
                    file_type,
                    Mode::empty(),
                    rustix::fs::makedev(major, minor),
                )
                .map_err(|e| self.io("create device node", &name, &target, e.into()))?;
            }
            other => return Err(self.refused(&name, format!("unsupported entry type {other:?}"))),
        }
        self.apply(&target, &meta, &name)?;
        if kind != EntryType::Directory {
            set_mtime(&target, meta.mtime)
                .map_err(|e| self.io("set time of", &name, &target, e))?;
        }
        Ok(())
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<R>, name: &str) -> Result<Meta, UnpackError> {
        let header = entry.header();
        let bad = |what: &str| self.refused(name, format!("unreadable {what} in the tar header"));
        let mut meta = Meta {
            uid: header.uid().map_err(|_| bad("uid"))?.try_into().ok(),
            gid: header.gid().map_err(|_| bad("gid"))?.try_into().ok(),
            mode: header.mode().map_err(|_| bad("mode"))? & 0o7777,
            mtime: header.mtime().unwrap_or(0).try_into().unwrap_or(0),
            xattrs: Vec::new(),
        };
        let Ok(Some(extensions)) = entry.pax_extensions() else {
            return Ok(meta);
        };
        for extension in extensions.flatten() {
            let Ok(key) = extension.key() else { continue };
            let number = || extension.value().ok().and_then(|v| v.parse::<u32>().ok());
            match key {
                "uid" => meta.uid = number(),
                "gid" => meta.gid = number(),
                _ => {
                    if let Some(xattr) = key.strip_prefix("SCHILY.xattr.") {
                        if xattr.starts_with("user.") || xattr == "security.capability" {
                            meta.xattrs
                                .push((xattr.to_owned(), extension.value_bytes().to_vec()));
                        }
                    }
                }
            }
        }
        Ok(meta)
    }

    /// Owner, then mode (chown clears set-id bits), then xattrs.
    fn apply(&self, path: &Path, meta: &Meta, name: &str) -> Result<(), UnpackError> {
        let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        let uid = meta
            .uid
            .filter(|&id| id != u32::MAX)
            .map(rustix::fs::Uid::from_raw);
        let gid = meta
            .gid
            .filter(|&id| id != u32::MAX)
            .map(rustix::fs::Gid::from_raw);
        rustix::fs::chownat(CWD, path, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.io("change owner of", name, path, e.into()))?;
        if !is_link {
            rustix::fs::chmodat(CWD, path, Mode::from_raw_mode(meta.mode), AtFlags::empty())
                .map_err(|e| self.io("change mode of", name, path, e.into()))?;
        }
        for (key, value) in &meta.xattrs {
            rustix::fs::lsetxattr(path, key.as_str(), value, XattrFlags::empty())
                .map_err(|e| self.io("set xattr on", name, path, e.into()))?;
        }
        Ok(())
    }

    /// The directory `relative` inside the layer, checked component by component to be a real
    /// directory (never a symlink, which could point anywhere); missing ones are created when `create`.
    fn parent_dir(
        &mut self,
        relative: &Path,
        name: &str,
        create: bool,
    ) -> Result<PathBuf, UnpackError> {
        let mut current = self.root.to_owned();
        for component in relative.components() {
            current.push(component);
            match fs::symlink_metadata(&current) {
                Ok(meta) if meta.is_dir() => {}
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(self.refused(
                        name,
                        format!("its path goes through the symlink {}", current.display()),
                    ))
                }
                Ok(_) => {
                    return Err(
                        self.refused(name, format!("{} is not a directory", current.display()))
                    )
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    self.charge(BLOCK)?;
                    fs::create_dir(&current)
                        .map_err(|e| self.io("create directory", name, &current, e))?;
                }
                Err(e) => return Err(self.io("inspect", name, &current, e)),
            }
        }
        Ok(current)
    }

    /// Resolves a hard link's target inside the layer; it must already exist and not be a directory.
    fn link_source(&mut self, link: &Path, name: &str) -> Result<PathBuf, UnpackError> {
        let relative = relative(link)
            .filter(|r| r.file_name().is_some())
            .ok_or_else(|| {
                self.refused(
                    name,
                    format!("hard link to {} leaves the layer", link.display()),
                )
            })?;
        let parent = self.parent_dir(relative.parent().unwrap_or(Path::new("")), name, false)?;
        let source = parent.join(relative.file_name().unwrap_or_default());
        match fs::symlink_metadata(&source) {
            Ok(meta) if !meta.is_dir() => Ok(source),
            _ => Err(self.refused(
                name,
                format!(
                    "hard link target {} is not a file earlier in this layer",
                    link.display()
                ),
            )),
        }
    }

    /// Removes whatever is at `target`, unless it is a directory and a directory is coming.
    fn clear(&self, target: &Path, name: &str, keep_dir: bool) -> Result<(), UnpackError> {
        match fs::symlink_metadata(target) {
            Ok(meta) if meta.is_dir() && keep_dir => Ok(()),
            Ok(meta) if meta.is_dir() => {
                fs::remove_dir_all(target).map_err(|e| self.io("replace", name, target, e))
            }
            Ok(_) => fs::remove_file(target).map_err(|e| self.io("replace", name, target, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io("inspect", name, target, e)),
        }
    }
}

/// A tar path as a relative path with only normal components; `None` if absolute or with `..`.
fn relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn set_mtime(path: &Path, mtime: i64) -> io::Result<()> {
    let time = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: time,
        last_modification: time,
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(Into::into)
}
