//! A container's output as PID 1 reads it: raw bytes from a pipe, cut into lines of at most
//! [`MAX_LINE`] bytes (a longer line arrives in pieces, each but the last marked as continued),
//! any bytes kept (those that are not UTF-8 read as U+FFFD), and nothing that ends the reader
//! but the end of the pipe. The memory it holds is bounded by [`MAX_LINE`] and [`READ_BYTES`]
//! whatever the container writes.
//!
//! The reader keeps draining the pipe while the service's rate limit ([`TokenBucket`], applied
//! by the log) drops lines: a container that floods its output loses lines (they are counted)
//! rather than blocking in `write`, which would stall it in the middle of its work and fail its
//! health checks for a reason nobody sees. The cost to PID 1 is bounded by the container's CPU
//! limit, and the reader yields to the runtime's other tasks after every [`READ_BYTES`].

use std::io;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::logs::MAX_LINE;

/// Bytes read from the pipe at once.
pub const READ_BYTES: usize = 16 * 1024;

/// One line of a container's output, or one piece of a longer one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The text, without the line ending.
    pub text: String,
    /// The line goes on in the next piece.
    pub continued: bool,
}

/// Cuts a stream of bytes into [`Piece`]s, holding at most [`MAX_LINE`] bytes.
#[derive(Debug)]
pub struct Splitter {
    pending: Vec<u8>,
}

impl Default for Splitter {
    fn default() -> Self {
        Splitter {
            pending: Vec::with_capacity(MAX_LINE),
        }
    }
}

impl Splitter {
    /// The bytes the splitter holds room for (never grows past [`MAX_LINE`]).
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.pending.capacity()
    }

    /// Takes `bytes` in, handing every piece it completes to `out`.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut impl FnMut(Piece)) {
        while let Some(&first) = bytes.first() {
            let room = MAX_LINE - self.pending.len();
            if room == 0 {
                // Full: a newline right after makes it a whole line, anything else a piece.
                if first == b'\n' {
                    bytes = &bytes[1..];
                    self.emit(self.pending.len(), false, out);
                } else {
                    let cut = self.pending.len() - incomplete_tail(&self.pending);
                    self.emit(cut, true, out);
                }
                continue;
            }
            let window = &bytes[..bytes.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(at) => {
                    self.pending.extend_from_slice(&window[..at]);
                    bytes = &bytes[at + 1..];
                    self.emit(self.pending.len(), false, out);
                }
                None => {
                    self.pending.extend_from_slice(window);
                    bytes = &bytes[window.len()..];
                }
            }
        }
    }

    /// The end of the stream: what is left is a last line.
    pub fn finish(&mut self, out: &mut impl FnMut(Piece)) {
        if !self.pending.is_empty() {
            self.emit(self.pending.len(), false, out);
        }
    }

    /// Hands out the first `cut` bytes as a piece and keeps the rest.
    fn emit(&mut self, cut: usize, continued: bool, out: &mut impl FnMut(Piece)) {
        let mut bytes = &self.pending[..cut];
        if !continued {
            bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        }
        let mut text = String::from_utf8_lossy(bytes).into_owned();
        self.pending.drain(..cut);
        // Replacement characters take three bytes for one: such a text goes out in pieces too,
        // so that no piece is longer than MAX_LINE.
        while text.len() > MAX_LINE {
            let mut at = MAX_LINE;
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let rest = text.split_off(at);
            out(Piece {
                text: std::mem::replace(&mut text, rest),
                continued: true,
            });
        }
        out(Piece { text, continued });
    }
}

/// How many bytes at the end of `b` start a UTF-8 character that is not complete yet (so a
/// cut keeps them for the next piece rather than splitting the character).
fn incomplete_tail(b: &[u8]) -> usize {
    for k in 1..=b.len().min(3) {
        let c = b[b.len() - k];
        if c & 0xC0 == 0x80 {
            continue;
        }
        let needs = match c {
            0xF0..=0xF7 => 4,
            0xE0..=0xEF => 3,
            0xC0..=0xDF => 2,
            _ => 1,
        };
        return if needs > k { k } else { 0 };
    }
    0
}

/// Reads `pipe` to its end (or its first error other than an interruption), handing every
/// piece to `sink`.
pub async fn pump(mut pipe: impl AsyncRead + Unpin, mut sink: impl FnMut(Piece)) {
    let mut chunk = vec![0u8; READ_BYTES];
    let mut splitter = Splitter::default();
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => {
                splitter.feed(&chunk[..n], &mut sink);
                // A pipe that is always full would keep this task busy for the whole of tokio's
                // budget; one chunk at a time leaves the thread to the others in between.
                tokio::task::yield_now().await;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    splitter.finish(&mut sink);
}

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(rate: u32, burst: u32, now: Instant) -> TokenBucket {
        TokenBucket {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: now,
        }
    }

    /// Takes one token at `now`, if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
