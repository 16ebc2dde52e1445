//! A bound on what the tar crate keeps in memory, enforced on the stream it reads.
//!
//! The tar crate reads the contents of a GNU long name (`L`) or long link (`K`) entry and of a PAX
//! header (`x`, and `g` when asked) whole into memory, and keeps a list item per region of a GNU
//! sparse file's map, however long the map goes on in extension blocks. A small compressed layer
//! could declare gigabytes of any of these. [`HeaderGuard`] sits between the decompressor (after
//! the diff-id hashing) and the tar crate and follows the archive's 512-byte header blocks as they
//! pass, deciding where each header is exactly as the tar crate does (same parsers: the crate's
//! own [`tar::Header`]; a PAX `size` record overrides the next entry's size; sparse extension
//! blocks come before the data). A header declaring more than its bound is refused with an
//! [`io::ErrorKind::InvalidData`] error before its last byte reaches the tar crate, so the crate
//! never starts buffering it. Regular entries of any size pass untouched: their contents are
//! streamed, and charged to the budget by the unpacker.

use std::io::{self, Read};
use tar::{EntryType, GnuExtSparseHeader, Header, PaxExtensions};

/// Most bytes a GNU long name or long link entry may declare.
pub(crate) const MAX_LONG_NAME: u64 = 64 << 10;
/// Most bytes a PAX header (local or global) may declare.
pub(crate) const MAX_PAX: u64 = 1 << 20;
/// Most extension blocks a GNU sparse file's map may take (1 MiB, 43008 regions).
pub(crate) const MAX_SPARSE_BLOCKS: u64 = 2048;

const BLOCK: usize = 512;

/// Where the stream is in the archive.
enum State {
    /// Collecting a header block; `filled` bytes of it so far.
    Header { filled: usize },
    /// Passing `remaining` bytes of an entry's contents and padding.
    Skip { remaining: u64 },
    /// Collecting a PAX header's contents (at most [`MAX_PAX`]), then passing `padding`.
    Pax { remaining: u64, padding: u64 },
    /// Collecting the `count`th extension block of the sparse file whose header is `at`, then
    /// passing its `padded` contents.
    Sparse {
        filled: usize,
        count: u64,
        padded: u64,
        at: u64,
    },
    /// After the end-of-archive block: the tar crate reads no more headers.
    End,
    /// After a header the tar crate refuses (unreadable size, overflow, a misplaced header): it
    /// reads nothing more, and neither does anything through the guard.
    Refused,
}

/// The tar stream, read through a check of every header's declared size (see the module docs).
pub(crate) struct HeaderGuard<R> {
    inner: R,
    /// Bytes passed so far.
    offset: u64,
    state: State,
    block: Box<Header>,
    sparse: Box<GnuExtSparseHeader>,
    /// Contents of the PAX header being collected.
    pax: Vec<u8>,
    /// Whether a PAX header describes the next entry (the tar crate refuses a second one).
    pax_pending: bool,
    /// The size a PAX `size` record gives the next entry.
    pax_size: Option<u64>,
}

impl<R: Read> HeaderGuard<R> {
    /// Guards the tar stream `inner`, positioned at the archive's first header.
    pub(crate) fn new(inner: R) -> Self {
        HeaderGuard {
            inner,
            offset: 0,
            state: State::Header { filled: 0 },
            block: Box::new(Header::new_old()),
            sparse: Box::new(GnuExtSparseHeader::new()),
            pax: Vec::new(),
            pax_pending: false,
            pax_size: None,
        }
    }

    /// The stream, for reading what follows the archive.
    pub(crate) fn into_inner(self) -> R {
        self.inner
    }

    /// Follows `bytes`, the next ones passed to the tar crate.
    fn follow(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let taken = match &mut self.state {
                State::End => return Ok(()),
                State::Refused => return Err(refused_stream()),
                State::Skip { remaining } => {
                    let n = take(*remaining, bytes);
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.state = State::Header { filled: 0 };
                    }
                    n
                }
                State::Header { filled } => {
                    let start = *filled;
                    let n = (BLOCK - start).min(bytes.len());
                    self.block.as_mut_bytes()[start..start + n].copy_from_slice(&bytes[..n]);
                    *filled += n;
                    if *filled == BLOCK {
                        self.offset += n as u64;
                        self.header()?;
                        bytes = &bytes[n..];
                        continue;
                    }
                    n
                }
                State::Pax { remaining, padding } => {
                    let n = take(*remaining, bytes);
                    self.pax.extend_from_slice(&bytes[..n]);
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.pax_size = pax_size(&self.pax);
                        self.pax = Vec::new();
                        self.state = skip(*padding);
                    }
                    n
                }
                State::Sparse {
                    filled,
                    count,
                    padded,
                    at,
                } => {
                    let start = *filled;
                    let n = (BLOCK - start).min(bytes.len());
                    self.sparse.as_mut_bytes()[start..start + n].copy_from_slice(&bytes[..n]);
                    *filled += n;
                    if *filled == BLOCK {
                        if !self.sparse.is_extended() {
                            self.state = skip(*padded);
                        } else if *count >= MAX_SPARSE_BLOCKS {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!(
                                    "the GNU sparse file (type 'S') at byte {at} of the tar \
                                     goes on past {MAX_SPARSE_BLOCKS} extension blocks of its \
                                     map, the most allowed: refused"
                                ),
                            ));
                        } else {
                            *filled = 0;
                            *count += 1;
                        }
                    }
                    n
                }
            };
            self.offset += taken as u64;
            bytes = &bytes[taken..];
        }
        Ok(())
    }

    /// Takes in the header block just collected, which started `BLOCK` bytes before `offset`.
    fn header(&mut self) -> io::Result<()> {
        let at = self.offset - BLOCK as u64;
        let header = &*self.block;
        if header.as_bytes().iter().all(|b| *b == 0) {
            self.state = State::End;
            return Ok(());
        }
        let kind = header.entry_type();
        let Ok(declared) = header.entry_size() else {
            // The tar crate refuses this header itself.
            self.state = State::Refused;
            return Ok(());
        };
        let limit = match kind {
            EntryType::GNULongName | EntryType::GNULongLink => Some(MAX_LONG_NAME),
            EntryType::XHeader | EntryType::XGlobalHeader => Some(MAX_PAX),
            _ => None,
        };
        if let Some(limit) = limit.filter(|limit| declared > *limit) {
            return Err(too_large(at, kind, declared, limit));
        }
        // As the tar crate reads it: a GNU or ustar `L`, `K` or `x` header describes the next
        // entry, which its PAX `size` record (if any) resizes; anything else is an entry.
        let recognised = header.as_gnu().is_some() || header.as_ustar().is_some();
        let size = if limit.is_some() {
            declared
        } else {
            self.pax_size.unwrap_or(declared)
        };
        let Some(padded) = size
            .checked_add(BLOCK as u64 - 1)
            .map(|s| s & !(BLOCK as u64 - 1))
        else {
            self.state = State::Refused;
            return Ok(());
        };
        if recognised && matches!(kind, EntryType::GNULongName | EntryType::GNULongLink) {
            self.state = skip(padded);
            return Ok(());
        }
        if recognised && kind == EntryType::XHeader {
            if self.pax_pending {
                // Two PAX headers for one entry: the tar crate refuses the second.
                self.state = State::Refused;
                return Ok(());
            }
            self.pax_pending = true;
            self.pax = Vec::with_capacity(size as usize);
            self.state = match size {
                0 => {
                    self.pax_size = None;
                    State::Header { filled: 0 }
                }
                _ => State::Pax {
                    remaining: size,
                    padding: padded - size,
                },
            };
            return Ok(());
        }
        self.pax_pending = false;
        self.pax_size = None;
        self.state = if kind == EntryType::GNUSparse {
            match header.as_gnu() {
                Some(gnu) if gnu.is_extended() => State::Sparse {
                    filled: 0,
                    count: 1,
                    padded,
                    at,
                },
                Some(_) => skip(padded),
                // The tar crate refuses a sparse entry without a GNU header.
                None => State::Refused,
            }
        } else {
            skip(padded)
        };
        Ok(())
    }
}

impl<R: Read> Read for HeaderGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let State::Refused = self.state {
            return Err(refused_stream());
        }
        let n = self.inner.read(buf)?;
        self.follow(&buf[..n])?;
        Ok(n)
    }
}

/// How many of `bytes` belong to the `remaining` ones.
fn take(remaining: u64, bytes: &[u8]) -> usize {
    usize::try_from(remaining).map_or(bytes.len(), |r| r.min(bytes.len()))
}

/// The state passing `bytes` of contents before the next header.
fn skip(bytes: u64) -> State {
    match bytes {
        0 => State::Header { filled: 0 },
        remaining => State::Skip { remaining },
    }
}

/// The size a PAX header's `size` record gives, read as the tar crate reads it: the first `size`
/// record counts, and a malformed record before it (or an unreadable value) means none.
fn pax_size(contents: &[u8]) -> Option<u64> {
    for extension in PaxExtensions::new(contents) {
        let extension = extension.ok()?;
        if extension.key() == Ok("size") {
            return extension.value().ok()?.parse().ok();
        }
    }
    None
}

/// The refusal of the extension header at byte `at` declaring `declared` bytes, over `limit`.
fn too_large(at: u64, kind: EntryType, declared: u64, limit: u64) -> io::Error {
    let what = match kind {
        EntryType::GNULongName => "GNU long name entry",
        EntryType::GNULongLink => "GNU long link entry",
        EntryType::XHeader => "PAX header",
        _ => "PAX global header",
    };
    let flag = char::from(kind.as_byte());
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "the {what} (type '{flag}') at byte {at} of the tar declares {declared} bytes, more \
             than the {limit} allowed: refused before reading it"
        ),
    )
}

fn refused_stream() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "tar stream read on past a header the tar reader refuses",
    )
}
