//! The configuration snapshot: larger than a frame, so the init writes it into a memfd, seals
//! it and sends the descriptor with a `Snapshot` message.
//!
//! The seals (`F_SEAL_WRITE`, `F_SEAL_SHRINK`, `F_SEAL_GROW`) make the contents fixed for every
//! holder of the descriptor, so the reader sees what was checked and nothing can change under
//! it; the reader refuses a memfd without them, and anything larger than [`MAX_SNAPSHOT`].
//! It reads from offset 0 with `pread`: the file offset is shared with the writer.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The largest snapshot, in bytes.
pub const MAX_SNAPSHOT: usize = 8 * 1024 * 1024;

/// The seals a snapshot must carry.
pub fn required_seals() -> SealFlag {
    SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW
}

/// Errors writing or reading a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call on the memfd failed.
    #[error("cannot {op} the snapshot memfd: {source}")]
    Sys {
        /// What was done.
        op: &'static str,
        /// The error.
        source: nix::Error,
    },
    /// The snapshot is larger than allowed.
    #[error("snapshot of {size} bytes exceeds the limit of {MAX_SNAPSHOT}")]
    TooLarge {
        /// Its size.
        size: u64,
    },
    /// The descriptor is not a memfd sealed against changes.
    #[error("the snapshot memfd lacks the seals {missing:?}")]
    Unsealed {
        /// The seals it lacks.
        missing: SealFlag,
    },
    /// The file ended before its size.
    #[error("the snapshot memfd ended after {got} of {size} bytes")]
    Short {
        /// Bytes read.
        got: usize,
        /// Its size.
        size: usize,
    },
    /// The contents are not the JSON expected.
    #[error("malformed snapshot: {0}")]
    Json(#[from] serde_json::Error),
}

fn sys(op: &'static str) -> impl FnOnce(nix::Error) -> Error {
    move |source| Error::Sys { op, source }
}

/// Writes `bytes` into a new memfd and seals it; returns the descriptor to send.
pub fn write(bytes: &[u8]) -> Result<OwnedFd, Error> {
    if bytes.len() > MAX_SNAPSHOT {
        return Err(Error::TooLarge {
            size: bytes.len() as u64,
        });
    }
    let fd = memfd_create(
        "baton-front-door-snapshot",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(sys("create"))?;
    let mut written = 0;
    while written < bytes.len() {
        let offset = i64::try_from(written).unwrap_or(i64::MAX);
        match nix::sys::uio::pwrite(&fd, &bytes[written..], offset) {
            Ok(0) => return Err(sys("write")(nix::Error::EIO)),
            Ok(n) => written += n,
            Err(nix::Error::EINTR) => {}
            Err(source) => return Err(sys("write")(source)),
        }
    }
    // F_SEAL_SEAL too: nothing can be added (or fail to be added) afterwards.
    fcntl(
        &fd,
        FcntlArg::F_ADD_SEALS(required_seals() | SealFlag::F_SEAL_SEAL),
    )
    .map_err(sys("seal"))?;
    Ok(fd)
}

/// Writes `value` as JSON into a sealed memfd.
pub fn write_json<T: Serialize>(value: &T) -> Result<OwnedFd, Error> {
    write(&serde_json::to_vec(value)?)
}

/// Reads a snapshot: checks the seals and the size, then reads it all from offset 0.
pub fn read(fd: BorrowedFd<'_>) -> Result<Vec<u8>, Error> {
    // A descriptor that is no memfd (a pipe, a file) has no seals: F_GET_SEALS fails with
    // EINVAL, which is a refusal too.
    let seals = fcntl(fd, FcntlArg::F_GET_SEALS).map_err(sys("read the seals of"))?;
    let seals = SealFlag::from_bits_truncate(seals);
    let missing = required_seals() - seals;
    if !missing.is_empty() {
        return Err(Error::Unsealed { missing });
    }
    let stat = nix::sys::stat::fstat(fd).map_err(sys("stat"))?;
    let size = u64::try_from(stat.st_size).unwrap_or(u64::MAX);
    if size > MAX_SNAPSHOT as u64 {
        return Err(Error::TooLarge { size });
    }
    // Within MAX_SNAPSHOT, so it fits a usize.
    let size = usize::try_from(size).unwrap_or(MAX_SNAPSHOT);
    let mut buf = vec![0u8; size];
    let mut got = 0;
    while got < size {
        let offset = i64::try_from(got).unwrap_or(i64::MAX);
        match nix::sys::uio::pread(fd, &mut buf[got..], offset) {
            Ok(0) => return Err(Error::Short { got, size }),
            Ok(n) => got += n,
            Err(nix::Error::EINTR) => {}
            Err(source) => return Err(sys("read")(source)),
        }
    }
    Ok(buf)
}

/// Reads a snapshot and parses it as JSON.
pub fn read_json<T: DeserializeOwned>(fd: impl AsFd) -> Result<T, Error> {
    Ok(serde_json::from_slice(&read(fd.as_fd())?)?)
}
