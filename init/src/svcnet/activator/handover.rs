//! One redirected connection: which service, whether its caller may call it, holding it until
//! an instance is healthy (waking the service meanwhile), then splicing it to that instance.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use baton_listen::idle;

use super::{route, Shared};

/// The first pause between connection attempts to instances that refused (one that is
/// healthy in the policy but not listening yet); it doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(5);
/// The longest pause between connection attempts.
const RETRY_MAX: Duration = Duration::from_millis(100);
/// With no healthy instance, how often the wake is sent again (a lost wake must not strand
/// the held connections until their timeout).
const REWAKE: Duration = Duration::from_secs(1);

/// Closes `client` with a reset (`SO_LINGER` 0): a caller fails at once rather than hangs.
fn reset(client: TcpStream) {
    let _ = client.set_zero_linger();
    drop(client);
}

/// Serves one connection accepted from `peer`.
pub(super) async fn handle(client: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let Ok(dst) = (shared.origin)(&client) else {
        return reset(client);
    };
    let Some(policy) = shared.policy.borrow().clone() else {
        return reset(client);
    };
    let Some((service, port)) = route::service_at(&policy, dst) else {
        return reset(client);
    };
    let IpAddr::V4(caller) = peer.ip() else {
        return reset(client);
    };
    if !route::allowed(&policy, caller, &service.name) {
        // Not allowed: nothing is started for it.
        return reset(client);
    }
    let (name, vip_port) = (service.name.clone(), port.port);
    drop(policy);
    let hold = shared.queue.hold_of(&name);
    let Ok(mut ticket) = shared.queue.hold(&name) else {
        return reset(client);
    };
    let deadline = Instant::now() + hold.timeout;
    let mut policy = shared.policy.clone();
    let mut retry = RETRY_FIRST;
    let upstream = loop {
        let backends = policy
            .borrow_and_update()
            .as_ref()
            .map(|p| route::backends(p, &name, vip_port))
            .unwrap_or_default();
        let pause = if backends.is_empty() {
            shared.wake(&name);
            REWAKE
        } else if let Some(s) = connect_first(&backends, shared.limits.connect_timeout).await {
            break s;
        } else {
            retry = (retry * 2).min(RETRY_MAX);
            retry
        };
        let until = (Instant::now() + pause).min(deadline);
        if let Ok(Err(_)) = tokio::time::timeout_at(until, policy.changed()).await {
            // The network is gone: nothing will become healthy.
            return reset(client);
        }
        if Instant::now() >= deadline {
            return reset(client);
        }
    };
    ticket.proxying();
    idle::copy_until_idle(client, upstream, shared.limits.idle).await;
}

/// A connection to the first of `backends` that accepts, in order.
async fn connect_first(backends: &[SocketAddr], limit: Duration) -> Option<TcpStream> {
    for b in backends {
        if let Ok(Ok(s)) = tokio::time::timeout(limit, TcpStream::connect(b)).await {
            return Some(s);
        }
    }
    None
}
