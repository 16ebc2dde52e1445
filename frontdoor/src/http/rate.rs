//! The per-client request rate: a token bucket per client address (an IPv6 /64 counts as one),
//! in a map of bounded size shared by every connection (the accept loop's [`Sources`]).

use std::net::IpAddr;
use std::sync::Mutex;

use baton_listen::sources::{self, Refusal, Sources};
use baton_listen::Rate;
use tokio::time::Instant;

/// The request rate of every client.
#[derive(Debug)]
pub struct RequestRate {
    sources: Mutex<Sources>,
}

impl RequestRate {
    /// `per_second` requests a second on average and `burst` at once, for at most `clients`
    /// addresses remembered (the least recently seen is forgotten first).
    pub fn new(per_second: u32, burst: u32, clients: usize) -> RequestRate {
        let rate = Rate {
            burst: burst.max(1),
            per_second: per_second.max(1),
        };
        RequestRate {
            sources: Mutex::new(Sources::new(clients, usize::MAX, rate)),
        }
    }

    /// Whether `client` may make a request now.
    pub fn admit(&self, client: IpAddr) -> bool {
        let key = sources::key(client);
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        match sources.admit(key, Instant::now()) {
            Ok(()) => {
                // A request holds no place: only the bucket counts.
                sources.release(key);
                true
            }
            Err(Refusal::Rate | Refusal::PerSource) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_client_past_its_burst_waits_for_the_rate() {
        let rate = RequestRate::new(2, 3, 16);
        let a: IpAddr = "192.168.1.5".parse().unwrap();
        let b: IpAddr = "192.168.1.6".parse().unwrap();
        assert!((0..3).all(|_| rate.admit(a)));
        assert!(!rate.admit(a));
        assert!(rate.admit(b), "another client has its own bucket");
        tokio::time::advance(std::time::Duration::from_millis(500)).await;
        assert!(rate.admit(a));
        assert!(!rate.admit(a));
    }
}
