//! Reading files out of a `.deb`: the `ar` archive, its `data.tar.{xz,zst,gz}` member, and the
//! tar entries in it.
//!
//! Paths are handed out absolute and normalised (`/boot/vmlinuz-6.1.0-47-arm64`). Entries with
//! `..` components are ignored. Hard links and symlinks are resolved inside the package and
//! returned as regular files with their target's content, since a FAT boot partition or an
//! initramfs built from these files wants content, not links; a link whose target is outside the
//! package is left out.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Errors from reading a .deb.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read, or an output could not be written.
    #[error("{deb}: cannot {action} {path}: {source}")]
    Io {
        /// The .deb being read.
        deb: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The file or member concerned.
        path: String,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// The package has no data member.
    #[error("{deb} has no data.tar member; is it a .deb?")]
    NoData {
        /// The .deb.
        deb: PathBuf,
    },
    /// The data member uses a compression the builder does not read.
    #[error("{deb}: unsupported compression of member {member}")]
    Compression {
        /// The .deb.
        deb: PathBuf,
        /// The member name.
        member: String,
    },
}

/// A file read from a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedFile {
    /// Absolute path inside the package (`/usr/lib/raspi-firmware/start4.elf`).
    pub path: String,
    /// Permission bits from the archive (for a resolved link: its target's).
    pub mode: u32,
    /// The content.
    pub data: Vec<u8>,
}

/// What to do with compressed kernel modules (`*.ko.xz`, `*.ko.zst`, `*.ko.gz`) when extracting
/// to a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modules {
    /// Write them as they are in the package.
    AsIs,
    /// Write them decompressed, as `*.ko`.
    Decompress,
}

enum Kind {
    File,
    Link(String),
}

/// Reads the files of the package at `deb` whose absolute path `want` accepts.
pub fn extract(
    deb: &Path,
    mut want: impl FnMut(&str) -> bool,
) -> Result<Vec<ExtractedFile>, Error> {
    let mut files: Vec<ExtractedFile> = Vec::new();
    let mut links: Vec<(String, String)> = Vec::new();
    walk(deb, &mut |path, kind, mode, reader| {
        if !want(path) {
            return Ok(());
        }
        match kind {
            Kind::File => files.push(ExtractedFile {
                path: path.to_string(),
                mode,
                data: read_all(deb, path, reader)?,
            }),
            Kind::Link(target) => links.push((path.to_string(), target)),
        }
        Ok(())
    })?;
    if links.is_empty() {
        return Ok(files);
    }
    let targets = resolve_links(deb, &files, &links)?;
    for (link, target) in links {
        if let Some((mode, data)) = targets.get(&target) {
            files.push(ExtractedFile {
                path: link,
                mode: *mode,
                data: data.clone(),
            });
        }
    }
    Ok(files)
}

/// Writes the files `want` accepts under `dest` (keeping their paths, so `/lib/modules/x/a.ko`
/// lands in `dest/lib/modules/x/a.ko`) and returns the written paths relative to `dest`.
/// Links are written as copies of their targets.
pub fn extract_to_dir(
    deb: &Path,
    dest: &Path,
    mut want: impl FnMut(&str) -> bool,
    modules: Modules,
) -> Result<Vec<PathBuf>, Error> {
    let mut written = Vec::new();
    let mut links = Vec::new();
    walk(deb, &mut |path, kind, mode, reader| {
        if !want(path) {
            return Ok(());
        }
        match kind {
            Kind::File => written.push(write_out(deb, dest, path, mode, reader, modules)?),
            Kind::Link(target) => links.push((path.to_string(), target)),
        }
        Ok(())
    })?;
    if !links.is_empty() {
        let targets = resolve_links(deb, &[], &links)?;
        for (link, target) in links {
            if let Some((mode, data)) = targets.get(&target) {
                written.push(write_out(deb, dest, &link, *mode, &mut &data[..], modules)?);
            }
        }
    }
    Ok(written)
}

/// Decompresses a kernel module named `path` if it ends in `.ko.xz`, `.ko.zst` or `.ko.gz`,
/// returning the `.ko` name and content; other files come back unchanged.
pub fn decompress_module(path: &str, data: &[u8]) -> io::Result<(String, Vec<u8>)> {
    let Some((name, codec)) = module_codec(path) else {
        return Ok((path.to_string(), data.to_vec()));
    };
    let mut out = Vec::new();
    decoder(codec, data)?.read_to_end(&mut out)?;
    Ok((name.to_string(), out))
}

fn module_codec(path: &str) -> Option<(&str, &str)> {
    ["xz", "zst", "gz"].into_iter().find_map(|ext| {
        let stem = path.strip_suffix(ext)?.strip_suffix('.')?;
        stem.ends_with(".ko").then_some((stem, ext))
    })
}

fn decoder<'a>(codec: &str, r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match codec {
        "xz" => Box::new(liblzma::read::XzDecoder::new_multi_decoder(r)),
        "zst" => Box::new(
            ruzstd::decoding::StreamingDecoder::new(r)
                .map_err(|e| io::Error::other(e.to_string()))?,
        ),
        "gz" => Box::new(flate2::read::MultiGzDecoder::new(r)),
        "" => Box::new(r),
        other => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("compression {other}"),
            ))
        }
    })
}

/// Content of every link target (following chains), keyed by target path: from `known` files
/// if already read, otherwise by reading the package again.
fn resolve_links(
    deb: &Path,
    known: &[ExtractedFile],
    links: &[(String, String)],
) -> Result<BTreeMap<String, (u32, Vec<u8>)>, Error> {
    let mut files: BTreeMap<String, (u32, Vec<u8>)> = known
        .iter()
        .map(|f| (f.path.clone(), (f.mode, f.data.clone())))
        .collect();
    let mut redirect: BTreeMap<String, String> = BTreeMap::new();
    let mut pending: HashSet<String> = links.iter().map(|(_, t)| t.clone()).collect();
    for _round in 0..8 {
        pending.retain(|t| !files.contains_key(t) && !redirect.contains_key(t));
        if pending.is_empty() {
            break;
        }
        let mut next = HashSet::new();
        walk(deb, &mut |path, kind, mode, reader| {
            if !pending.contains(path) {
                return Ok(());
            }
            match kind {
                Kind::File => {
                    files.insert(path.to_string(), (mode, read_all(deb, path, reader)?));
                }
                Kind::Link(target) => {
                    redirect.insert(path.to_string(), target.clone());
                    next.insert(target);
                }
            }
            Ok(())
        })?;
        pending = next;
    }
    let mut out = BTreeMap::new();
    for (_, target) in links {
        let mut t = target.clone();
        for _ in 0..8 {
            match redirect.get(&t) {
                Some(n) => t = n.clone(),
                None => break,
            }
        }
        if let Some(content) = files.get(&t) {
            out.insert(target.clone(), content.clone());
        }
    }
    Ok(out)
}

type Visitor<'v> = dyn FnMut(&str, Kind, u32, &mut dyn Read) -> Result<(), Error> + 'v;

/// Calls `visit` for every regular file and link in the package's data member, in archive
/// order, with its normalised absolute path and permission bits.
fn walk(deb: &Path, visit: &mut Visitor<'_>) -> Result<(), Error> {
    let io_err = |action, path: &str, source| Error::Io {
        deb: deb.to_path_buf(),
        action,
        path: path.to_string(),
        source,
    };
    let file = fs::File::open(deb).map_err(|e| io_err("open", "the package", e))?;
    let mut ar = ar::Archive::new(io::BufReader::new(file));
    while let Some(member) = ar.next_entry() {
        let member = member.map_err(|e| io_err("read the ar archive", "", e))?;
        let name = String::from_utf8_lossy(member.header().identifier())
            .trim_end_matches('/')
            .to_string();
        let Some(ext) = name.strip_prefix("data.tar") else {
            continue;
        };
        let codec = ext.strip_prefix('.').unwrap_or(ext).to_string();
        let reader = decoder(&codec, member).map_err(|_| Error::Compression {
            deb: deb.to_path_buf(),
            member: name.clone(),
        })?;
        let mut tar = tar::Archive::new(reader);
        let entries = tar.entries().map_err(|e| io_err("read", &name, e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| io_err("read", &name, e))?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(path) = normalize("/", &raw) else {
                continue;
            };
            let header = entry.header();
            let mode = header.mode().unwrap_or(0o644) & 0o7777;
            let kind = match header.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
                tar::EntryType::Link | tar::EntryType::Symlink => {
                    let hard = header.entry_type() == tar::EntryType::Link;
                    let target = entry
                        .link_name_bytes()
                        .map(|t| String::from_utf8_lossy(&t).into_owned())
                        .unwrap_or_default();
                    let base = if hard || target.starts_with('/') {
                        "/".to_string()
                    } else {
                        parent(&path)
                    };
                    match normalize(&base, &target) {
                        Some(t) if t != path => Kind::Link(t),
                        _ => continue,
                    }
                }
                _ => continue,
            };
            visit(&path, kind, mode, &mut entry)?;
        }
        return Ok(());
    }
    Err(Error::NoData {
        deb: deb.to_path_buf(),
    })
}

/// `rel` joined to the absolute directory `base` and normalised. `None` for paths that climb
/// above the root (hostile entries) or name nothing.
fn normalize(base: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    let joined = if rel.starts_with('/') {
        rel.to_string()
    } else {
        format!("{base}/{rel}")
    };
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| format!("/{}", parts.join("/")))
}

fn parent(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, _)) if !dir.is_empty() => dir.to_string(),
        _ => "/".to_string(),
    }
}

fn read_all(deb: &Path, path: &str, reader: &mut dyn Read) -> Result<Vec<u8>, Error> {
    let mut data = Vec::new();
    reader.read_to_end(&mut data).map_err(|source| Error::Io {
        deb: deb.to_path_buf(),
        action: "read",
        path: path.to_string(),
        source,
    })?;
    Ok(data)
}

fn write_out(
    deb: &Path,
    dest: &Path,
    path: &str,
    mode: u32,
    reader: &mut dyn Read,
    modules: Modules,
) -> Result<PathBuf, Error> {
    let err = |action, p: &Path, source| Error::Io {
        deb: deb.to_path_buf(),
        action,
        path: p.display().to_string(),
        source,
    };
    let (name, mut reader): (&str, Box<dyn Read + '_>) = match (modules, module_codec(path)) {
        (Modules::Decompress, Some((name, codec))) => (
            name,
            decoder(codec, reader).map_err(|e| err("decompress", Path::new(path), e))?,
        ),
        _ => (path, Box::new(reader)),
    };
    let rel = PathBuf::from(name.trim_start_matches('/'));
    let out = dest.join(&rel);
    if let Some(dir) = out.parent() {
        fs::create_dir_all(dir).map_err(|e| err("create directory", dir, e))?;
    }
    let mut file = fs::File::create(&out).map_err(|e| err("create", &out, e))?;
    io::copy(&mut reader, &mut file).map_err(|e| err("write", &out, e))?;
    file.flush().map_err(|e| err("write", &out, e))?;
    {
        use std::os::unix::fs::PermissionsExt;
        let perms = fs::Permissions::from_mode(mode & 0o777);
        fs::set_permissions(&out, perms).map_err(|e| err("set permissions of", &out, e))?;
    }
    Ok(rel)
}

#[cfg(test)]
#[path = "deb_tests.rs"]
pub(crate) mod tests;
