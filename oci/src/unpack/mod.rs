//! Unpacking a layer blob into a directory for use as an overlayfs lower dir.
//!
//! The compressed blob is first hashed against its digest, so a blob corrupt on disk is never unpacked.
//! It is then decompressed (gzip, zstd or none) and its uncompressed bytes hashed against the diff id
//! while the tar is unpacked. Every entry is charged to a [`budget::Budget`] before it is written, so a
//! small compressed bomb is stopped at the image's cap, the entry cap or the store's free-space reserve
//! instead of filling the data partition. Extension headers the tar crate would read into memory
//! (long names and links, PAX headers, sparse maps) are bounded by [`headers`] before it reads
//! them. OCI whiteouts become overlayfs whiteouts (`.wh.NAME` → a 0:0 character
//! device, `.wh..wh..opq` → `trusted.overlay.opaque=y` on the directory). Entries are refused when they
//! are absolute, contain `..`, pass through a symlink, or hard-link to something outside the layer.
//! Needs root (mknod, chown, trusted xattrs).

pub(crate) mod budget;
mod entry;
mod headers;
#[cfg(test)]
mod headers_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use crate::digest::{Digest, HashingReader};
use crate::model::Compression;
use budget::Budget;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Errors from unpacking a layer. Every message names the layer; entry errors name the entry.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The layer's tar (or its compression) is unreadable or truncated.
    #[error("layer {layer}: reading the layer: {source}")]
    Read {
        /// The layer blob.
        layer: Digest,
        /// The error.
        source: io::Error,
    },
    /// An entry tries to leave the layer directory or is otherwise unacceptable.
    #[error("layer {layer}: entry {entry:?} refused: {reason}")]
    Refused {
        /// The layer blob.
        layer: Digest,
        /// The entry's path in the tar.
        entry: String,
        /// Why.
        reason: String,
    },
    /// Creating an entry failed.
    #[error("layer {layer}: entry {entry:?}: {action} {path}: {source}")]
    Io {
        /// The layer blob.
        layer: Digest,
        /// The entry's path in the tar.
        entry: String,
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The uncompressed layer does not hash to its diff id.
    #[error("layer {layer}: uncompressed content hashes to {actual}, but the image config says {expected}")]
    DiffId {
        /// The layer blob.
        layer: Digest,
        /// The diff id from the config.
        expected: Digest,
        /// What it hashes to.
        actual: Digest,
    },
    /// The compressed blob does not hash to its digest (changed on disk since import). Checked
    /// before anything is unpacked.
    #[error("layer {layer}: blob content hashes to {actual}: corrupt on disk, not unpacked")]
    BlobDigest {
        /// The layer blob.
        layer: Digest,
        /// What it hashes to.
        actual: Digest,
    },
    /// The image's layers would take more than the store allows one image unpacked.
    #[error(
        "layer {layer}: unpacking stopped after {written} bytes of this layer: the image would take \
         more than {limit} bytes unpacked, the most the image store allows one image ({image} bytes \
         counted for its layers so far; files count in 4 KiB blocks, plus one block per entry)"
    )]
    ImageTooLarge {
        /// The layer blob.
        layer: Digest,
        /// Bytes this layer had taken when it was stopped (removed since).
        written: u64,
        /// Bytes the image's layers took, this one included.
        image: u64,
        /// The limit ([`crate::StoreLimits::max_image_bytes`]).
        limit: u64,
    },
    /// Unpacking would take the store's file system below the space it always leaves free.
    #[error(
        "layer {layer}: unpacking stopped after {written} bytes of this layer: the image store's \
         file system at {root} has {available} bytes available and the store always leaves \
         {min_available} free"
    )]
    NoSpace {
        /// The layer blob.
        layer: Digest,
        /// Bytes this layer had taken when it was stopped (removed since).
        written: u64,
        /// The store root.
        root: PathBuf,
        /// Bytes available (estimated) when it was stopped.
        available: u64,
        /// The reserve ([`crate::StoreLimits::min_available`]).
        min_available: u64,
    },
    /// The layer goes on after the end of its tar (a bomb of padding costs no disk, but time).
    #[error("layer {layer}: more than {limit} bytes after the end of its tar: refused")]
    Trailing {
        /// The layer blob.
        layer: Digest,
        /// The most allowed (1 MiB).
        limit: u64,
    },
    /// The layer has more entries than the store allows one layer.
    #[error(
        "layer {layer}: more than {limit} entries, the most the image store allows one layer; \
         unpacking stopped after {written} bytes of this layer"
    )]
    TooManyEntries {
        /// The layer blob.
        layer: Digest,
        /// The limit ([`crate::StoreLimits::max_layer_entries`]).
        limit: u64,
        /// Bytes this layer had taken when it was stopped (removed since).
        written: u64,
    },
}

/// Most bytes a layer's uncompressed stream may hold after the end of its tar (tar pads to its record
/// size, 10 KiB by default; producers that pad more are far below this).
pub(crate) const MAX_TRAILING_BYTES: u64 = 1 << 20;

/// Unpacks the layer blob read from `blob` into the existing empty directory `dest`: first checks
/// the whole blob against `layer` (so a blob corrupt on disk is never unpacked), then unpacks it,
/// charging every entry to `budget`, and checks the uncompressed tar against `diff_id`. Returns what
/// the layer cost (see [`budget`]). On an error, `dest` holds whatever was unpacked: the caller
/// removes it.
pub(crate) fn unpack_layer(
    mut blob: impl Read + Seek,
    compression: Compression,
    layer: &Digest,
    diff_id: &Digest,
    dest: &Path,
    budget: &mut Budget,
) -> Result<u64, UnpackError> {
    let read_error = |source| UnpackError::Read {
        layer: layer.clone(),
        source,
    };
    let (actual, _) = HashingReader::new(BufReader::with_capacity(128 << 10, &mut blob))
        .finish()
        .map_err(read_error)?;
    if actual != *layer {
        return Err(UnpackError::BlobDigest {
            layer: layer.clone(),
            actual,
        });
    }
    blob.seek(SeekFrom::Start(0)).map_err(read_error)?;
    let mut compressed = BufReader::with_capacity(128 << 10, blob);
    let decoder: Box<dyn Read + '_> = match compression {
        Compression::None => Box::new(&mut compressed),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&mut compressed)),
        Compression::Zstd => Box::new(
            ruzstd::decoding::StreamingDecoder::new(&mut compressed)
                .map_err(|e| read_error(io::Error::new(io::ErrorKind::InvalidData, e)))?,
        ),
    };
    let mut guarded = headers::HeaderGuard::new(HashingReader::new(decoder));
    let cost = entry::Unpacker::new(layer, dest, budget).run(&mut guarded)?;
    let mut tar_stream = guarded.into_inner();
    let trailing = io::copy(
        &mut (&mut tar_stream).take(MAX_TRAILING_BYTES + 1),
        &mut io::sink(),
    )
    .map_err(read_error)?;
    if trailing > MAX_TRAILING_BYTES {
        return Err(UnpackError::Trailing {
            layer: layer.clone(),
            limit: MAX_TRAILING_BYTES,
        });
    }
    let (actual, _) = tar_stream.finish().map_err(read_error)?;
    if actual != *diff_id {
        return Err(UnpackError::DiffId {
            layer: layer.clone(),
            expected: diff_id.clone(),
            actual,
        });
    }
    Ok(cost)
}
