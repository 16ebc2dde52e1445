//! Unpacking a layer blob into a directory for use as an overlayfs lower dir.
//!
//! The blob is decompressed (gzip, zstd or none) and its uncompressed bytes hashed against the diff id
//! while the tar is unpacked. OCI whiteouts become overlayfs whiteouts (`.wh.NAME` → a 0:0 character
//! device, `.wh..wh..opq` → `trusted.overlay.opaque=y` on the directory). Entries are refused when they
//! are absolute, contain `..`, pass through a symlink, or hard-link to something outside the layer.
//! Needs root (mknod, chown, trusted xattrs).

mod entry;
#[cfg(test)]
mod proptests;

use crate::digest::{Digest, HashingReader};
use crate::model::Compression;
use std::io::{self, BufReader, Read};
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
    /// The compressed blob does not hash to its digest (changed on disk since import).
    #[error("layer {layer}: blob content hashes to {actual}: corrupt on disk")]
    BlobDigest {
        /// The layer blob.
        layer: Digest,
        /// What it hashes to.
        actual: Digest,
    },
}

/// Unpacks the layer blob read from `blob` into the existing empty directory `dest`, verifying the
/// blob against `layer` and the uncompressed tar against `diff_id`.
pub(crate) fn unpack_layer(
    blob: impl Read,
    compression: Compression,
    layer: &Digest,
    diff_id: &Digest,
    dest: &Path,
) -> Result<(), UnpackError> {
    let read_error = |source| UnpackError::Read {
        layer: layer.clone(),
        source,
    };
    let mut compressed = HashingReader::new(BufReader::with_capacity(128 << 10, blob));
    let decoder: Box<dyn Read + '_> = match compression {
        Compression::None => Box::new(&mut compressed),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&mut compressed)),
        Compression::Zstd => Box::new(
            ruzstd::decoding::StreamingDecoder::new(&mut compressed)
                .map_err(|e| read_error(io::Error::new(io::ErrorKind::InvalidData, e)))?,
        ),
    };
    let mut tar_stream = HashingReader::new(decoder);
    entry::Unpacker::new(layer, dest).run(&mut tar_stream)?;
    let (actual, _) = tar_stream.finish().map_err(read_error)?;
    if actual != *diff_id {
        return Err(UnpackError::DiffId {
            layer: layer.clone(),
            expected: diff_id.clone(),
            actual,
        });
    }
    let (actual, _) = compressed.finish().map_err(read_error)?;
    if actual != *layer {
        return Err(UnpackError::BlobDigest {
            layer: layer.clone(),
            actual,
        });
    }
    Ok(())
}
