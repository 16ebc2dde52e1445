//! The activator's socket: bound on the bridge address, accepted through the board's limited
//! loop, and the original destination of each redirected connection.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use nix::sys::socket::{getsockopt, sockopt};
use tokio::net::{TcpListener, TcpStream};

use baton_listen::{self as listen, Stats};

use super::{handover, Shared};

/// The destination `s` was sent to before the redirect rewrote it: the VIP and port of the
/// service called, which conntrack kept (`SO_ORIGINAL_DST`).
pub(super) fn original_dst(s: &TcpStream) -> io::Result<SocketAddrV4> {
    let sin = getsockopt(s, sockopt::OriginalDst).map_err(io::Error::from)?;
    Ok(SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
        u16::from_be(sin.sin_port),
    ))
}

/// Accepts on `listener` until the task is aborted.
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>, stats: Arc<Stats>) {
    let limits = shared.limits.listen;
    let handle = move |client: TcpStream, peer| handover::handle(client, peer, Arc::clone(&shared));
    listen::serve(
        listener,
        "activator",
        limits,
        stats,
        listen::stderr_log(),
        handle,
    )
    .await;
}
