//! One accept loop for every TCP listener of the board (the init's API, published ports, DNS
//! over TCP; the front door's HTTP and HTTPS), with the limits a listener facing the LAN or
//! containers needs:
//!
//! - a cap on open connections. A connection beyond it is accepted and closed at once rather
//!   than left in the kernel's backlog: a full backlog drops SYNs silently, so clients would
//!   hang in retransmits and the backlog would stay full of the flood; closing at once tells the
//!   client and keeps the queue moving, so a slot freed by a timeout goes to whoever asks next;
//! - a cap per source (an IPv4 address or an IPv6 /64) and a token-bucket rate of new
//!   connections per source, in a map of bounded size ([`sources`]);
//! - a back-off on accept errors: `EMFILE`, `ENFILE`, `ENOBUFS` make `accept` fail at once and
//!   forever, so each failure sleeps a growing delay (5 ms doubling up to 1 s); the first
//!   failure of a burst and the recovery are logged, nothing in between.
//!
//! Timeouts belong to the protocol served; [`idle`] has the idle-copy one.

pub mod idle;
pub mod sources;
pub mod stall;

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

pub use sources::Rate;
use sources::{Refusal, Sources};

/// Smallest and largest sleep after a failed `accept`.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A listener's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one source.
    pub per_source: usize,
    /// New connections per source.
    pub rate: Rate,
    /// Sources remembered (for their counts and rates); kept above `max_connections`.
    pub max_sources: usize,
}

/// Where the loop reports accept failures (the console on a board).
pub type Log = Arc<dyn Fn(fmt::Arguments<'_>) + Send + Sync>;

/// A log that writes to standard error (the console, for PID 1).
pub fn stderr_log() -> Log {
    Arc::new(|message| eprintln!("{message}"))
}

/// Something connections are accepted from: a TCP listener, or a fake in tests.
pub trait Acceptor: Send + 'static {
    /// An accepted connection.
    type Stream: Send + 'static;
    /// The next connection and its peer.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;
}

impl Acceptor for TcpListener {
    type Stream = TcpStream;
    fn accept(&mut self) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + Send {
        TcpListener::accept(self)
    }
}

/// Counters of one listener.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections open now.
    pub open: AtomicU64,
    /// Connections closed at once: the listener was full.
    pub refused_full: AtomicU64,
    /// Connections closed at once: their source held its share.
    pub refused_per_source: AtomicU64,
    /// Connections closed at once: their source opened them too fast.
    pub refused_rate: AtomicU64,
    /// Failed `accept` calls.
    pub accept_errors: AtomicU64,
}

impl Stats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A connection's place: its share of the cap and of its source's; given back on drop.
struct Slot {
    _permit: OwnedSemaphorePermit,
    sources: Arc<Mutex<Sources>>,
    source: IpAddr,
    stats: Arc<Stats>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        lock(&self.sources).release(self.source);
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Accepts connections on `listener` for ever, within `limits`, and runs `handle` on each in a
/// task of its own. `name` names the listener in log lines.
pub async fn serve<A, H, F>(
    mut listener: A,
    name: &str,
    limits: Limits,
    stats: Arc<Stats>,
    log: Log,
    handle: H,
) where
    A: Acceptor,
    H: Fn(A::Stream, SocketAddr) -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let sources = Arc::new(Mutex::new(Sources::new(
        limits.max_sources.max(limits.max_connections + 1),
        limits.per_source,
        limits.rate,
    )));
    let mut backoff = Backoff::default();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => {
                backoff.recovered(name, &log);
                accepted
            }
            Err(e) => {
                Stats::bump(&stats.accept_errors);
                let delay = backoff.failed(name, &e, &log);
                tokio::time::sleep(delay).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            Stats::bump(&stats.refused_full);
            continue; // `stream` is dropped: closed at once
        };
        let source = sources::key(peer.ip());
        match lock(&sources).admit(source, Instant::now()) {
            Ok(()) => {}
            Err(Refusal::PerSource) => {
                Stats::bump(&stats.refused_per_source);
                continue;
            }
            Err(Refusal::Rate) => {
                Stats::bump(&stats.refused_rate);
                continue;
            }
        }
        stats.open.fetch_add(1, Ordering::Relaxed);
        let slot = Slot {
            _permit: permit,
            sources: Arc::clone(&sources),
            source,
            stats: Arc::clone(&stats),
        };
        let connection = handle(stream, peer);
        tokio::spawn(async move {
            connection.await;
            drop(slot);
        });
    }
}

/// The growing sleep after failed accepts, and the once-per-burst log lines.
#[derive(Debug, Default)]
struct Backoff {
    delay: Duration,
    failures: u64,
}

impl Backoff {
    /// Notes a failed accept; returns how long to sleep.
    fn failed(&mut self, name: &str, error: &io::Error, log: &Log) -> Duration {
        if self.failures == 0 {
            log(format_args!(
                "{name}: accept failed ({error}); backing off until it works again"
            ));
        }
        self.failures += 1;
        self.delay = (self.delay * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
        self.delay
    }

    /// Notes a successful accept, ending a burst of failures.
    fn recovered(&mut self, name: &str, log: &Log) {
        if self.failures > 0 {
            log(format_args!(
                "{name}: accepting again after {} failed accepts",
                self.failures
            ));
            *self = Backoff::default();
        }
    }
}

#[cfg(test)]
mod tests;
