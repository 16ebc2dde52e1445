//! Files read from an image on the host (its `/etc/passwd` and `/etc/group`), as the container
//! would see them through overlayfs, and never anything outside the image's layers.
//!
//! The path is walked one component at a time over the layers (top first): the topmost layer
//! with an entry of that name decides what it is; an overlayfs whiteout (a 0:0 character device)
//! hides it; a directory merges with the directories of the same name below it, down to the
//! first layer where it is opaque (`trusted.overlay.opaque=y`) or not a directory. Symbolic links
//! are read, never followed by the kernel: their targets are walked the same way, an absolute one
//! from the image's root, with `..` stopping at the root, at most [`MAX_LINKS`] of them. Only a
//! regular file is opened (`O_NOFOLLOW | O_NONBLOCK`, checked again with `fstat`), and at most
//! [`MAX_BYTES`] of it read. Blocking: call it from `spawn_blocking`.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};

/// Largest file read.
pub const MAX_BYTES: u64 = 1 << 20;
/// Most symbolic links followed in one path.
pub const MAX_LINKS: usize = 40;
/// Most directories held open at once (every layer's directory on the way down), so that a deep
/// path cannot take PID 1's file descriptors.
pub const MAX_OPEN: usize = 256;

/// Why a file of an image was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A system call failed.
    #[error("{0}: {1}")]
    Io(&'static str, Errno),
    /// The path has more symbolic links than [`MAX_LINKS`] (or a loop).
    #[error("more than {MAX_LINKS} symbolic links")]
    TooManyLinks,
    /// The path goes deeper than [`MAX_OPEN`] allows.
    #[error("more than {MAX_OPEN} directories deep (counting every layer)")]
    TooDeep,
    /// A component on the way is not a directory.
    #[error("{0:?} is not a directory")]
    NotADirectory(String),
    /// The file is not a regular file.
    #[error("not a regular file but {0}")]
    NotRegular(&'static str),
    /// The file is larger than [`MAX_BYTES`].
    #[error("larger than {MAX_BYTES} bytes")]
    TooBig,
}

/// One directory of the merged view: its directory in each layer that takes part, top first.
type Merged = Vec<OwnedFd>;

/// What a name in a merged directory is.
enum Entry {
    /// A directory.
    Dir(Merged),
    /// A symbolic link, with its target.
    Link(OsString),
    /// A regular file, in the layer at this index of the merged directory.
    File(usize),
    /// Anything else.
    Other(&'static str),
}

/// The contents of `path` (in the image) in the merged view of `layers` (top first); `None` when
/// the image has no such file. A layer directory that does not exist counts as empty.
pub fn read(layers: &[PathBuf], path: &str) -> Result<Option<Vec<u8>>, Refused> {
    let mut root = Merged::new();
    for layer in layers {
        match open_dir_on_host(layer) {
            Ok(fd) => root.push(fd),
            Err(Refused::Io(_, Errno::ENOENT)) => {}
            Err(e) => return Err(e),
        }
    }
    let mut todo: Vec<OsString> = Vec::new();
    push_components(&mut todo, OsStr::new(path));
    let mut stack: Vec<Merged> = vec![root];
    let mut links = 0;
    while let Some(name) = todo.pop() {
        match name.as_bytes() {
            b"" | b"." => continue,
            b".." => {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            _ => {}
        }
        let Some(dir) = stack.last() else {
            return Ok(None);
        };
        match lookup(dir, &name)? {
            None => return Ok(None),
            Some(Entry::Dir(merged)) => {
                if stack.iter().map(Vec::len).sum::<usize>() + merged.len() > MAX_OPEN {
                    return Err(Refused::TooDeep);
                }
                stack.push(merged);
            }
            Some(Entry::Link(target)) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Refused::TooManyLinks);
                }
                if target.as_bytes().starts_with(b"/") {
                    stack.truncate(1);
                }
                push_components(&mut todo, &target);
            }
            Some(Entry::File(layer)) if todo.iter().all(|n| n.is_empty()) => {
                return read_file(dir[layer].as_fd(), &name).map(Some);
            }
            Some(Entry::File(_)) => {
                return Err(Refused::NotADirectory(name.to_string_lossy().into_owned()))
            }
            Some(Entry::Other(kind)) if todo.iter().all(|n| n.is_empty()) => {
                return Err(Refused::NotRegular(kind))
            }
            Some(Entry::Other(_)) => {
                return Err(Refused::NotADirectory(name.to_string_lossy().into_owned()))
            }
        }
    }
    Err(Refused::NotRegular("a directory"))
}

/// Adds the components of `path` to `todo`, which is worked from its end.
fn push_components(todo: &mut Vec<OsString>, path: &OsStr) {
    let parts: Vec<&[u8]> = path.as_bytes().split(|&b| b == b'/').collect();
    todo.extend(
        parts
            .into_iter()
            .rev()
            .map(|p| OsStr::from_bytes(p).to_os_string()),
    );
}

/// A layer's own directory (a path of the board's image store).
fn open_dir_on_host(path: &Path) -> Result<OwnedFd, Refused> {
    nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Refused::Io("opening a layer", e))
}

/// `name` in the merged directory `dir`.
fn lookup(dir: &[OwnedFd], name: &OsStr) -> Result<Option<Entry>, Refused> {
    for (at, fd) in dir.iter().enumerate() {
        let kind = match stat_kind(fd.as_fd(), name)? {
            None => continue,
            Some(kind) => kind,
        };
        return Ok(Some(match kind {
            Kind::Whiteout => return Ok(None),
            Kind::Link => Entry::Link(
                nix::fcntl::readlinkat(fd, name).map_err(|e| Refused::Io("reading a link", e))?,
            ),
            Kind::File => Entry::File(at),
            Kind::Other(what) => Entry::Other(what),
            Kind::Dir => {
                let mut merged = Vec::new();
                for lower in &dir[at..] {
                    match stat_kind(lower.as_fd(), name)? {
                        None => continue,
                        Some(Kind::Dir) => {}
                        Some(_) => break,
                    }
                    let sub = nix::fcntl::openat(
                        lower,
                        name,
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| Refused::Io("opening a directory", e))?;
                    let opaque = is_opaque(sub.as_fd());
                    merged.push(sub);
                    if opaque {
                        break;
                    }
                }
                Entry::Dir(merged)
            }
        }));
    }
    Ok(None)
}

/// The kind of a directory entry, as `lstat` sees it.
enum Kind {
    Dir,
    File,
    Link,
    Whiteout,
    Other(&'static str),
}

fn stat_kind(dir: BorrowedFd<'_>, name: &OsStr) -> Result<Option<Kind>, Refused> {
    let st = match nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(Refused::Io("looking up a name", e)),
    };
    let format = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    Ok(Some(match format {
        SFlag::S_IFDIR => Kind::Dir,
        SFlag::S_IFREG => Kind::File,
        SFlag::S_IFLNK => Kind::Link,
        SFlag::S_IFCHR if st.st_rdev == 0 => Kind::Whiteout,
        other => Kind::Other(describe(other)),
    }))
}

fn describe(format: SFlag) -> &'static str {
    match format {
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFLNK => "a symbolic link",
        _ => "of an unknown kind",
    }
}

/// Whether overlayfs treats the directory as opaque (hiding the layers below).
fn is_opaque(dir: BorrowedFd<'_>) -> bool {
    let mut value = [0u8; 1];
    // SAFETY: the name is NUL-terminated, the buffer is valid for `value.len()` bytes and the
    // call writes at most that many; the descriptor is open for the duration of the call.
    let n = unsafe {
        libc::fgetxattr(
            dir.as_raw_fd(),
            c"trusted.overlay.opaque".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    n == 1 && value[0] == b'y'
}

/// Reads the regular file `name` of `dir`, refusing anything else and anything too big.
fn read_file(dir: BorrowedFd<'_>, name: &OsStr) -> Result<Vec<u8>, Refused> {
    let fd = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Refused::Io("opening", e))?;
    let st = nix::sys::stat::fstat(&fd).map_err(|e| Refused::Io("fstat", e))?;
    let format = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if format != SFlag::S_IFREG {
        return Err(Refused::NotRegular(describe(format)));
    }
    if u64::try_from(st.st_size).map_or(true, |s| s > MAX_BYTES) {
        return Err(Refused::TooBig);
    }
    let mut contents = Vec::new();
    File::from(fd)
        .take(MAX_BYTES + 1)
        .read_to_end(&mut contents)
        .map_err(|e| Refused::Io("reading", Errno::from_raw(e.raw_os_error().unwrap_or(0))))?;
    if contents.len() as u64 > MAX_BYTES {
        return Err(Refused::TooBig);
    }
    Ok(contents)
}
