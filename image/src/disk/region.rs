//! A window onto part of a larger stream, so a format writer or reader can treat one partition of an
//! image as if it were a whole file.

use std::io::{self, Read, Seek, SeekFrom, Write};

/// `len` bytes of `inner` starting at byte `start`; positions are relative to `start`.
///
/// Reads stop at the end of the window; writes past its end fail with `WriteZero` instead of
/// spilling into the next partition.
#[derive(Debug)]
pub struct Region<T> {
    inner: T,
    start: u64,
    len: u64,
    pos: u64,
}

impl<T: Seek> Region<T> {
    /// A window of `len` bytes of `inner` starting at `start`, positioned at its beginning.
    pub fn new(mut inner: T, start: u64, len: u64) -> io::Result<Self> {
        inner.seek(SeekFrom::Start(start))?;
        Ok(Self {
            inner,
            start,
            len,
            pos: 0,
        })
    }

    /// Length of the window in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Gives back the underlying stream.
    pub fn into_inner(self) -> T {
        self.inner
    }

    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }
}

impl<T: Read + Seek> Read for Region<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = clamp(buf.len(), self.remaining());
        if n == 0 {
            return Ok(0);
        }
        let got = self.inner.read(&mut buf[..n])?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl<T: Write + Seek> Write for Region<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = clamp(buf.len(), self.remaining());
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!(
                    "write past the end of a {}-byte region at offset {}",
                    self.len, self.start
                ),
            ));
        }
        let put = self.inner.write(&buf[..n])?;
        self.pos += put as u64;
        Ok(put)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<T: Seek> Seek for Region<T> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of a region",
            )
        })?;
        self.inner.seek(SeekFrom::Start(self.start + target))?;
        self.pos = target;
        Ok(target)
    }
}

fn clamp(want: usize, remaining: u64) -> usize {
    usize::try_from(remaining).map_or(want, |r| want.min(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn reads_and_writes_stay_inside_the_window() {
        let mut backing = Cursor::new(vec![0u8; 16]);
        let mut r = Region::new(&mut backing, 4, 8).expect("region");
        r.write_all(b"abcdefgh").expect("fits");
        assert_eq!(
            r.write(b"x").expect_err("past end").kind(),
            io::ErrorKind::WriteZero
        );
        r.seek(SeekFrom::End(-3)).expect("seek");
        let mut tail = Vec::new();
        r.read_to_end(&mut tail).expect("read");
        assert_eq!(tail, b"fgh");
        assert_eq!(&backing.get_ref()[..], b"\0\0\0\0abcdefgh\0\0\0\0");
    }
}
