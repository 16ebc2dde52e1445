//! The activator: TCP calls to the virtual IP of a service that is scaled to zero (or frozen)
//! are held here until an instance is healthy, then spliced to it.
//!
//! The policy ([`crate::svcnet::policy`]) redirects a call to the VIP of a
//! [`Service::activate`](crate::svcnet::policy::Service::activate) service with no healthy
//! instance to [`ACTIVATOR_PORT`] on the bridge address. For each connection the activator:
//! 1. reads the original destination (`SO_ORIGINAL_DST`) and finds the service by its VIP and
//!    port in the policy in force;
//! 2. checks the caller against the allow lists itself (the redirect skips the forward
//!    chain's allow set); a call not allowed is reset at once and wakes nothing;
//! 3. holds it in the service's queue ([`Hold::queue`], and [`Limits::max_held`] in all) for
//!    at most [`Hold::timeout`]; a full queue or the timeout resets it (`SO_LINGER` 0: a
//!    caller fails at once, TCP has no 503);
//! 4. sends the service's name on the wake channel, at most once a second per service, for
//!    as long as it holds connections for it and no instance is healthy;
//! 5. when the policy in force (the watch [`crate::svcnet::network::Network::applied`]
//!    updates right after each apply) has a healthy instance, connects to it (this board's
//!    first, then the others) and copies both ways until both ends close or the connection
//!    idles for [`Limits::idle`]. A live connection cannot be moved into the kernel's DNAT,
//!    so it stays proxied here; new calls go straight to the instance, because the same
//!    policy replaced the redirect with the DNAT.
//!
//! [`Activator::counts`] gives the connections held and proxied per service, for the load.

mod handover;
mod listen;
mod queue;
mod route;

#[cfg(test)]
mod netns_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use baton_listen::{Limits as ListenLimits, Rate, Stats};

use crate::svcnet::policy::Policy;
pub use crate::svcnet::policy::ACTIVATOR_PORT;

/// The policy in force, as [`crate::svcnet::network::Network::applied`] sends it (`None`
/// until the first rule set is applied).
pub type Applied = watch::Receiver<Option<Arc<Policy>>>;

/// How one service's calls are held (`scale.hold_queue`, `scale.hold_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    /// Connections held at once; one more is reset.
    pub queue: u32,
    /// A connection held this long without a healthy instance is reset.
    pub timeout: Duration,
}

impl Default for Hold {
    /// 100 connections, 30 s.
    fn default() -> Self {
        Hold {
            queue: 100,
            timeout: Duration::from_secs(30),
        }
    }
}

/// The activator's own bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The accept loop's limits (connections held and proxied, per source, rate).
    pub listen: ListenLimits,
    /// Connections held at once, over all services.
    pub max_held: usize,
    /// Time for an instance to accept the handed-over connection.
    pub connect_timeout: Duration,
    /// A proxied connection with no byte moving either way for this long is closed.
    pub idle: Duration,
}

impl Default for Limits {
    /// 1,024 connections held, 2,048 open, 256 per caller, a caller opening at most 128 a
    /// second after a burst of 256; 5 s to connect; 5 minutes idle (as a published port).
    fn default() -> Self {
        Limits {
            listen: ListenLimits {
                max_connections: 2048,
                per_source: 256,
                rate: Rate {
                    burst: 256,
                    per_second: 128,
                },
                max_sources: 4096,
            },
            max_held: 1024,
            connect_timeout: Duration::from_secs(5),
            idle: Duration::from_secs(300),
        }
    }
}

/// The connections of one service at the activator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Waiting for a healthy instance.
    pub held: u32,
    /// Handed over and still open.
    pub proxied: u32,
}

/// How the original destination of an accepted connection is found (`SO_ORIGINAL_DST`; tests
/// of the core inject one).
type Origin = dyn Fn(&TcpStream) -> io::Result<SocketAddrV4> + Send + Sync;

/// What every connection's task shares.
struct Shared {
    queue: Arc<queue::Queue>,
    policy: Applied,
    wakes: mpsc::Sender<String>,
    limits: Limits,
    origin: Box<Origin>,
}

impl Shared {
    /// Sends a wake for `service` unless one went within the last second; a full or closed
    /// channel drops it (the next second sends another while connections are held).
    fn wake(&self, service: &str) {
        if self.queue.wake_due(service, Instant::now()) {
            let _ = self.wakes.try_send(service.to_string());
        }
    }
}

/// The running activator; dropping it closes its port (connections already proxied go on).
pub struct Activator {
    queue: Arc<queue::Queue>,
    stats: Arc<Stats>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Activator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Activator")
            .field("held", &self.held())
            .finish_non_exhaustive()
    }
}

impl Drop for Activator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Activator {
    /// Listens on `bridge`:[`ACTIVATOR_PORT`] and serves with the default [`Limits`]: calls are
    /// matched against `policy`, wakes go to `wakes` (service names). Must run inside a tokio
    /// runtime.
    pub fn start(
        bridge: Ipv4Addr,
        policy: Applied,
        wakes: mpsc::Sender<String>,
    ) -> io::Result<Activator> {
        let listener = std::net::TcpListener::bind((bridge, ACTIVATOR_PORT))?;
        listener.set_nonblocking(true)?;
        Activator::from_std(listener, policy, wakes, Limits::default())
    }

    /// Serves on an already bound, non-blocking listener with `limits`.
    pub fn from_std(
        listener: std::net::TcpListener,
        policy: Applied,
        wakes: mpsc::Sender<String>,
        limits: Limits,
    ) -> io::Result<Activator> {
        Activator::with_origin(
            listener,
            policy,
            wakes,
            limits,
            Box::new(listen::original_dst),
        )
    }

    fn with_origin(
        listener: std::net::TcpListener,
        policy: Applied,
        wakes: mpsc::Sender<String>,
        limits: Limits,
        origin: Box<Origin>,
    ) -> io::Result<Activator> {
        let listener = TcpListener::from_std(listener)?;
        let queue = Arc::new(queue::Queue::new(limits.max_held));
        let stats = Arc::new(Stats::default());
        let shared = Arc::new(Shared {
            queue: Arc::clone(&queue),
            policy,
            wakes,
            limits,
            origin,
        });
        let task = tokio::spawn(listen::serve(listener, shared, Arc::clone(&stats)));
        Ok(Activator { queue, stats, task })
    }

    /// Replaces the services' holding inputs (from their specs' `scale`); a service not named
    /// gets [`Hold::default`]. Connections already held keep their deadline.
    pub fn set_holds(&self, holds: BTreeMap<String, Hold>) {
        self.queue.set_holds(holds);
    }

    /// Connections held and proxied now, by service (services with none are left out).
    pub fn counts(&self) -> BTreeMap<String, Counts> {
        self.queue.counts()
    }

    /// Connections held or proxied now, by service: the activator's part of the load.
    pub fn held(&self) -> BTreeMap<String, u32> {
        self.counts()
            .into_iter()
            .map(|(s, c)| (s, c.held.saturating_add(c.proxied)))
            .collect()
    }

    /// The accept loop's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}
