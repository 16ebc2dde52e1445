//! Bodies passed through, frame by frame: nothing is buffered, so chunked transfers, large
//! uploads and server-sent events flow as they come. Each direction has an idle timeout (no
//! frame for that long ends the body with an error), and the end of a response body runs what
//! the request held until then (the in-flight count, the connection's return to the pool).

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::http::BoxError;

/// What runs when a body ends: with `true` when it ended cleanly, `false` when it failed, was
/// cut by its idle timeout or dropped unfinished.
pub type OnEnd = Box<dyn FnOnce(bool) + Send>;

/// A body that went idle for too long.
#[derive(Debug, thiserror::Error)]
#[error("no data for {0:?}; the body was cut")]
pub struct IdleTimeout(pub Duration);

pin_project! {
    /// `inner` with an idle timeout and an end hook.
    pub struct Watched<B> {
        #[pin]
        inner: B,
        idle: Pin<Box<Sleep>>,
        idle_for: Duration,
        on_end: Option<OnEnd>,
        // Nothing to read from the start (a 204, an answer to HEAD).
        empty: bool,
    }

    impl<B> PinnedDrop for Watched<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(on_end) = this.on_end.take() {
                // A body nobody polled to its end (an empty one, say) still ended cleanly
                // when there was nothing left to read.
                on_end(*this.empty);
            }
        }
    }
}

impl<B: Body> Watched<B> {
    /// `inner`, cut after `idle_for` without a frame; `on_end` runs once when it ends.
    pub fn new(inner: B, idle_for: Duration, on_end: Option<OnEnd>) -> Watched<B> {
        Watched {
            empty: inner.is_end_stream(),
            inner,
            idle: Box::pin(tokio::time::sleep(idle_for)),
            idle_for,
            on_end,
        }
    }
}

impl<B> Body for Watched<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                // The last frame ends the body: hyper's server stops polling once
                // `is_end_stream` says so (a Content-Length answer does after its last byte),
                // and a body dropped then would count as failed, its upstream connection
                // closed instead of pooled (one new connection per request).
                if this.inner.is_end_stream() {
                    if let Some(on_end) = this.on_end.take() {
                        on_end(true);
                    }
                }
                let next = Instant::now() + *this.idle_for;
                this.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                if let Some(on_end) = this.on_end.take() {
                    on_end(false);
                }
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                if let Some(on_end) = this.on_end.take() {
                    on_end(true);
                }
                Poll::Ready(None)
            }
            Poll::Pending => match this.idle.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    if let Some(on_end) = this.on_end.take() {
                        on_end(false);
                    }
                    Poll::Ready(Some(Err(Box::new(IdleTimeout(*this.idle_for)))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
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
    use http_body_util::BodyExt as _;
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::Arc;

    fn hook() -> (Arc<AtomicU8>, OnEnd) {
        let seen = Arc::new(AtomicU8::new(0));
        let s = Arc::clone(&seen);
        let on_end: OnEnd = Box::new(move |clean| {
            s.fetch_add(if clean { 1 } else { 10 }, Ordering::SeqCst);
        });
        (seen, on_end)
    }

    #[tokio::test]
    async fn a_body_read_to_its_end_runs_the_hook_once_as_clean() {
        let (seen, on_end) = hook();
        let body = Watched::new(
            http_body_util::Full::new(Bytes::from_static(b"hello")),
            Duration::from_secs(5),
            Some(on_end),
        );
        let bytes = body.collect().await.expect("body").to_bytes();
        assert_eq!(&bytes[..], b"hello");
        assert_eq!(seen.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_body_dropped_after_its_last_frame_runs_the_hook_as_clean() {
        let (seen, on_end) = hook();
        let mut body = Watched::new(
            http_body_util::Full::new(Bytes::from_static(b"hello")),
            Duration::from_secs(5),
            Some(on_end),
        );
        let frame = body.frame().await.expect("a frame").expect("data");
        assert_eq!(frame.into_data().expect("data"), "hello");
        assert!(body.is_end_stream());
        drop(body);
        assert_eq!(seen.load(Ordering::SeqCst), 1);
    }

    /// A body that never sends anything.
    struct Silent;

    impl Body for Silent {
        type Data = Bytes;
        type Error = BoxError;
        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_with_no_frame_for_its_idle_time_is_cut() {
        let (seen, on_end) = hook();
        let body = Watched::new(Silent, Duration::from_secs(3), Some(on_end));
        let Err(err) = body.collect().await else {
            panic!("not cut")
        };
        assert!(err.to_string().contains("no data for 3s"), "{err}");
        assert_eq!(seen.load(Ordering::SeqCst), 10);
    }

    #[test]
    fn a_body_dropped_unfinished_runs_the_hook_as_failed() {
        let (seen, on_end) = hook();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(async {
            drop(Watched::new(Silent, Duration::from_secs(5), Some(on_end)));
        });
        assert_eq!(seen.load(Ordering::SeqCst), 10);
    }
}
