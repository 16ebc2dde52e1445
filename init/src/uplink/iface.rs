//! One DHCP interface: runs the DHCP client, falls back to IPv4 link-local while no lease is
//! held, and applies what both state machines decide (sockets, netlink, board state).
//!
//! Nothing here is fatal: a failed send or netlink request is logged and the machines carry
//! on (retransmissions and renewals retry). The task ends only when told to stop, after
//! releasing its lease.

use std::future::pending;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::arp_socket::ArpSocket;
use super::dhcp::socket::DhcpSocket;
use super::dhcp::{self, Client, Identity, Lease};
use super::leases::Leases;
use super::linklocal::{self, LinkLocal};
use super::netlink::{Link, Netlink, Origin};
use super::rng::Rng;
use crate::board::console::Console;
use crate::board::status::{Address, AddressSource, BoardStatus};

/// What every interface task shares.
#[derive(Debug)]
pub struct Context {
    /// Board state for the API.
    pub state: Arc<BoardStatus>,
    /// Where messages go.
    pub console: Arc<Console>,
    /// Leases of all interfaces (resolv.conf, NTP).
    pub leases: Leases,
    /// Host name sent to DHCP servers.
    pub hostname: String,
    /// Whether to fall back to link-local addressing.
    pub link_local: bool,
    /// How long DHCP may go unanswered before link-local starts.
    pub link_local_after: Duration,
    /// Set to true once any interface has an address.
    pub addressed: watch::Sender<bool>,
}

/// Logs on the console.
fn log(ctx: &Context, interface: &str, message: std::fmt::Arguments<'_>) {
    ctx.console
        .line(format_args!("net: {interface}: {message}"));
}

/// What woke the task.
enum Wake {
    Stop,
    Dhcp(std::io::Result<dhcproto::v4::Message>),
    Arp(std::io::Result<super::arp::ArpPacket>),
    Timer,
}

struct Iface {
    ctx: Arc<Context>,
    nl: Netlink,
    link: Link,
    socket: DhcpSocket,
    client: Client,
    bound: Option<Lease>,
    /// When to start link-local, while DHCP has no lease.
    link_local_at: Option<Instant>,
    link_local: Option<(LinkLocal, ArpSocket)>,
}

/// Waits until `stop` says true; never returns if its sender is gone (nobody can stop us).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            pending::<()>().await;
        }
    }
}

async fn arp_recv(ll: Option<&(LinkLocal, ArpSocket)>) -> std::io::Result<super::arp::ArpPacket> {
    match ll {
        Some((_, socket)) => socket.recv().await,
        None => pending().await,
    }
}

/// Runs DHCP (and the link-local fallback) on `link` until `stop` turns true.
pub async fn run(ctx: Arc<Context>, nl: Netlink, link: Link, mut stop: watch::Receiver<bool>) {
    let socket = match DhcpSocket::open(&link.name) {
        Ok(s) => s,
        Err(e) => {
            log(
                &ctx,
                &link.name,
                format_args!("opening the DHCP socket: {e}"),
            );
            ctx.state
                .add_error(format!("net: {}: opening the DHCP socket: {e}", link.name));
            return;
        }
    };
    let now = Instant::now();
    let id = Identity {
        mac: link.mac,
        hostname: ctx.hostname.clone(),
    };
    let (client, first) = Client::start(id, now, Rng::from_entropy(&link.mac));
    let mut me = Iface {
        link_local_at: ctx.link_local.then(|| now + ctx.link_local_after),
        ctx,
        nl,
        link,
        socket,
        client,
        bound: None,
        link_local: None,
    };
    me.dhcp(first).await;
    loop {
        let next = [
            me.client.deadline(),
            me.link_local_at,
            me.link_local.as_ref().and_then(|(l, _)| l.deadline()),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let wake = tokio::select! {
            _ = stopped(&mut stop) => Wake::Stop,
            r = me.socket.recv() => Wake::Dhcp(r),
            r = arp_recv(me.link_local.as_ref()) => Wake::Arp(r),
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(next)) => Wake::Timer,
        };
        let now = Instant::now();
        match wake {
            Wake::Stop => break,
            Wake::Dhcp(Ok(m)) => {
                let actions = me.client.step(dhcp::Event::Received(m), now);
                me.dhcp(actions).await;
            }
            Wake::Arp(Ok(p)) => me.arp(linklocal::Event::Arp(p), now).await,
            Wake::Dhcp(Err(e)) | Wake::Arp(Err(e)) => {
                log(&me.ctx, &me.link.name, format_args!("receiving: {e}"));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Wake::Timer => me.timers(now).await,
        }
    }
    let actions = me.client.step(dhcp::Event::Stop, Instant::now());
    me.dhcp(actions).await;
    me.arp(linklocal::Event::Stop, Instant::now()).await;
}

impl Iface {
    async fn timers(&mut self, now: Instant) {
        if self.client.deadline().is_some_and(|d| d <= now) {
            let actions = self.client.step(dhcp::Event::Timer, now);
            self.dhcp(actions).await;
        }
        if self.link_local_at.is_some_and(|d| d <= now) {
            self.link_local_at = None;
            if self.bound.is_none() && self.link_local.is_none() {
                self.start_link_local(now);
            }
        }
        if self
            .link_local
            .as_ref()
            .and_then(|(l, _)| l.deadline())
            .is_some_and(|d| d <= now)
        {
            self.arp(linklocal::Event::Timer, now).await;
        }
    }

    fn start_link_local(&mut self, now: Instant) {
        match ArpSocket::open(self.link.index) {
            Ok(socket) => {
                log(
                    &self.ctx,
                    &self.link.name,
                    format_args!("no DHCP answer yet, choosing a link-local address"),
                );
                let salt = [&self.link.mac[..], b"link-local"].concat();
                self.link_local = Some((
                    LinkLocal::new(self.link.mac, now, Rng::from_entropy(&salt)),
                    socket,
                ));
            }
            Err(e) => log(
                &self.ctx,
                &self.link.name,
                format_args!("opening the ARP socket: {e}"),
            ),
        }
    }

    async fn dhcp(&mut self, actions: Vec<dhcp::Action>) {
        for action in actions {
            match action {
                dhcp::Action::Send(m, to) => {
                    if let Err(e) = self.socket.send(&m, to).await {
                        log(
                            &self.ctx,
                            &self.link.name,
                            format_args!("sending DHCP {:?} to {to:?}: {e}", m.opts().msg_type()),
                        );
                    }
                }
                dhcp::Action::Bind(lease) => self.bind(lease).await,
                dhcp::Action::Unbind(lease) => {
                    log(
                        &self.ctx,
                        &self.link.name,
                        format_args!("lost lease on {}", lease.address),
                    );
                    self.unconfigure(&lease).await;
                    self.bound = None;
                    self.set_lease(None);
                    self.ctx.state.set_addresses(&self.link.name, Vec::new());
                    self.link_local_at = self
                        .ctx
                        .link_local
                        .then(|| Instant::now() + self.ctx.link_local_after);
                }
            }
        }
    }

    async fn bind(&mut self, lease: Lease) {
        self.link_local_at = None;
        if self.link_local.is_some() {
            self.arp(linklocal::Event::Stop, Instant::now()).await;
            self.link_local = None;
        }
        let changed = self.bound.as_ref().is_none_or(|old| {
            old.address != lease.address
                || old.prefix != lease.prefix
                || old.routers != lease.routers
        });
        if let Some(old) = self.bound.take().filter(|_| changed) {
            self.unconfigure(&old).await;
        }
        if changed {
            log(
                &self.ctx,
                &self.link.name,
                format_args!(
                    "leased {}/{} from {} (router {:?}, dns {:?})",
                    lease.address, lease.prefix, lease.server, lease.routers, lease.dns
                ),
            );
        }
        if let Err(e) = self
            .nl
            .add_address(&self.link, lease.address, lease.prefix)
            .await
        {
            log(&self.ctx, &self.link.name, format_args!("{e}"));
            self.ctx.state.add_error(format!("net: {e}"));
        }
        if let Some(gw) = lease.routers.first() {
            if let Err(e) = self
                .nl
                .add_default_route(&self.link, *gw, Origin::Dhcp)
                .await
            {
                log(&self.ctx, &self.link.name, format_args!("{e}"));
            }
        }
        self.ctx.state.set_addresses(
            &self.link.name,
            vec![address(
                &self.link.name,
                lease.address,
                lease.prefix,
                AddressSource::Dhcp,
            )],
        );
        self.set_lease(Some(lease.clone()));
        self.bound = Some(lease);
        self.ctx.addressed.send_replace(true);
    }

    async fn unconfigure(&self, lease: &Lease) {
        if let Some(gw) = lease.routers.first() {
            if let Err(e) = self
                .nl
                .del_default_route(&self.link, *gw, Origin::Dhcp)
                .await
            {
                log(&self.ctx, &self.link.name, format_args!("{e}"));
            }
        }
        if let Err(e) = self
            .nl
            .del_address(&self.link, lease.address, lease.prefix)
            .await
        {
            log(&self.ctx, &self.link.name, format_args!("{e}"));
        }
    }

    fn set_lease(&self, lease: Option<Lease>) {
        if let Err(e) = self.ctx.leases.set(&self.link.name, lease) {
            log(&self.ctx, &self.link.name, format_args!("{e}"));
        }
    }

    async fn arp(&mut self, event: linklocal::Event, now: Instant) {
        let Some((ll, socket)) = self.link_local.as_mut() else {
            return;
        };
        for action in ll.step(event, now) {
            match action {
                linklocal::Action::Send(p) => {
                    if let Err(e) = socket.send(&p).await {
                        log(&self.ctx, &self.link.name, format_args!("sending ARP: {e}"));
                    }
                }
                linklocal::Action::Configure(a) => {
                    log(
                        &self.ctx,
                        &self.link.name,
                        format_args!("using link-local address {a}/16"),
                    );
                    if let Err(e) = self.nl.add_address(&self.link, a, 16).await {
                        log(&self.ctx, &self.link.name, format_args!("{e}"));
                    }
                    let addrs = vec![address(&self.link.name, a, 16, AddressSource::LinkLocal)];
                    self.ctx.state.set_addresses(&self.link.name, addrs);
                    self.ctx.addressed.send_replace(true);
                }
                linklocal::Action::Deconfigure(a) => {
                    if let Err(e) = self.nl.del_address(&self.link, a, 16).await {
                        log(&self.ctx, &self.link.name, format_args!("{e}"));
                    }
                    if self.bound.is_none() {
                        self.ctx.state.set_addresses(&self.link.name, Vec::new());
                    }
                }
            }
        }
    }
}

/// The board-state record of one address.
pub fn address(interface: &str, address: Ipv4Addr, prefix: u8, source: AddressSource) -> Address {
    Address {
        interface: interface.to_string(),
        address: format!("{address}/{prefix}"),
        source,
    }
}
