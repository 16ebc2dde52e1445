//! Write stalls: a stream wrapper that notes since when the peer has stopped taking bytes (a
//! write that would block), and a future that ends once that has lasted a given time. A reply
//! that streams (logs followed for hours) may be quiet as long as it likes; a client that stops
//! reading it must not hold the connection, its buffers and its slot for ever.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Since when writes on a [`StallWatched`] stream have been blocked, if they are.
#[derive(Debug, Clone)]
pub struct Stall {
    start: Instant,
    /// Milliseconds from `start` (plus one) to when writes blocked; 0 while they do not.
    blocked_ms: Arc<AtomicU64>,
}

impl Default for Stall {
    fn default() -> Self {
        Stall::new()
    }
}

impl Stall {
    /// Nothing blocked yet.
    pub fn new() -> Stall {
        Stall {
            start: Instant::now(),
            blocked_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn blocked(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        // Only the first blocked write of a stall counts.
        let _ = self.blocked_ms.compare_exchange(
            0,
            ms.saturating_add(1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    fn moved(&self) {
        self.blocked_ms.store(0, Ordering::Relaxed);
    }

    /// Ends once writes have been blocked for `limit` without a byte going out.
    pub async fn stalled_for(&self, limit: Duration) {
        loop {
            let since = self.blocked_ms.load(Ordering::Relaxed);
            let deadline = if since == 0 {
                Instant::now() + limit
            } else {
                self.start + Duration::from_millis(since - 1) + limit
            };
            if since != 0 && Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }

    /// `stream`, noting here when its writes block and when they move again.
    pub fn watch<S>(&self, stream: S) -> StallWatched<S> {
        StallWatched {
            inner: stream,
            stall: self.clone(),
        }
    }
}

/// A stream whose blocked writes are noted in a [`Stall`].
#[derive(Debug)]
pub struct StallWatched<S> {
    inner: S,
    stall: Stall,
}

impl<S: AsyncRead + Unpin> AsyncRead for StallWatched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallWatched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        match polled {
            Poll::Pending => self.stall.blocked(),
            Poll::Ready(_) => self.stall.moved(),
        }
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S> StallWatched<S> {
    fn note(&self, polled: &Poll<io::Result<usize>>) {
        match polled {
            Poll::Pending => self.stall.blocked(),
            Poll::Ready(_) => self.stall.moved(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_reading_is_found_and_a_quiet_one_is_not() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let stall = Stall::new();
        let mut ours = stall.watch(ours);
        // Quiet for an hour: no stall.
        let quiet = tokio::time::timeout(
            Duration::from_secs(3600),
            stall.stalled_for(Duration::from_secs(30)),
        )
        .await;
        assert!(quiet.is_err(), "a quiet stream counted as stalled");
        // Writes that the peer reads: no stall either.
        ours.write_all(&[1; 512]).await.expect("write");
        let mut buf = [0; 512];
        theirs.read_exact(&mut buf).await.expect("read");
        // Now the peer stops reading: the buffer fills, the write blocks, and 30 s later the
        // stall is reported.
        let writer = tokio::spawn(async move {
            let _ = ours.write_all(&[2; 4096]).await;
            ours
        });
        tokio::time::timeout(
            Duration::from_secs(31),
            stall.stalled_for(Duration::from_secs(30)),
        )
        .await
        .expect("the stall is found");
        // Reading again unblocks it.
        let mut rest = vec![0; 4096];
        theirs.read_exact(&mut rest).await.expect("read the rest");
        let _ours = writer.await.expect("writer");
        let again = tokio::time::timeout(
            Duration::from_secs(60),
            stall.stalled_for(Duration::from_secs(30)),
        )
        .await;
        assert!(again.is_err(), "a stall that ended still counts");
    }
}
