//! Connections with no request: an HTTP/2 connection has no head timeout between requests as
//! HTTP/1.1's keep-alive has, so a client could hold one open with nothing in it for ever (and
//! a few clients every connection the front door allows). Each connection counts its requests
//! until their answers' bodies end; one without any for [`QUIET_LIMIT`] is closed.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::Instant;

/// How long a connection may carry no request.
pub const QUIET_LIMIT: Duration = Duration::from_secs(75);

/// The requests of one connection.
#[derive(Debug)]
pub struct Requests {
    open: AtomicUsize,
    last_end: Mutex<Instant>,
}

impl Requests {
    /// A connection that has carried nothing yet.
    pub fn new() -> Arc<Requests> {
        Arc::new(Requests {
            open: AtomicUsize::new(0),
            last_end: Mutex::new(Instant::now()),
        })
    }

    /// A request begins; it ends when the guard goes.
    pub fn begin(self: &Arc<Self>) -> Guard {
        self.open.fetch_add(1, Ordering::SeqCst);
        Guard(Arc::clone(self))
    }

    /// Ends once the connection has had no request for `limit`.
    pub async fn quiet_for(&self, limit: Duration) {
        loop {
            let since = *self.last_end.lock().unwrap_or_else(|p| p.into_inner());
            let wait = if self.open.load(Ordering::SeqCst) == 0 {
                let deadline = since + limit;
                if Instant::now() >= deadline {
                    return;
                }
                deadline
            } else {
                Instant::now() + limit
            };
            tokio::time::sleep_until(wait).await;
        }
    }
}

/// One request of a connection, until its answer's body ends.
#[derive(Debug)]
pub struct Guard(Arc<Requests>);

impl Drop for Guard {
    fn drop(&mut self) {
        *self.0.last_end.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

pin_project! {
    /// An answer body that holds its request's [`Guard`].
    pub struct Counted<B> {
        #[pin]
        inner: B,
        guard: Guard,
    }
}

impl<B> Counted<B> {
    /// `inner`, counted until it is dropped.
    pub fn new(inner: B, guard: Guard) -> Counted<B> {
        Counted { inner, guard }
    }
}

impl<B: Body<Data = Bytes>> Body for Counted<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_quiet_only_with_no_request_open_for_the_limit() {
        let requests = Requests::new();
        let guard = requests.begin();
        let quiet = requests.quiet_for(Duration::from_secs(10));
        tokio::pin!(quiet);
        // A request open for longer than the limit keeps the connection.
        assert!(tokio::time::timeout(Duration::from_secs(30), &mut quiet)
            .await
            .is_err());
        drop(guard);
        let ended = Instant::now();
        quiet.await;
        assert!(Instant::now() >= ended + Duration::from_secs(10));
    }
}
