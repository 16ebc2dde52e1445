//! Protocol switches (WebSockets over HTTP/1.1): once the instance answers `101`, the client's
//! connection and the instance's are joined byte for byte until both close or neither side
//! sends anything for the idle timeout. The request's hold on the instance (its in-flight
//! count) lasts as long as the joined streams.

use std::time::Duration;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// Joins the two sides in a task of their own; `hold` is dropped when they are done.
pub fn join<H: Send + 'static>(client: OnUpgrade, upstream: OnUpgrade, idle: Duration, hold: H) {
    tokio::spawn(async move {
        let (client, upstream) = tokio::join!(client, upstream);
        if let (Ok(client), Ok(upstream)) = (client, upstream) {
            baton_listen::idle::copy_until_idle(TokioIo::new(client), TokioIo::new(upstream), idle)
                .await;
        }
        drop(hold);
    });
}
