//! Board networking: loopback, the wired uplinks (DHCP with link-local fallback, or static), DNS.
//!
//! [`start`] brings `lo` up, then every physical Ethernet interface: in DHCP mode each gets a
//! task running the DHCP client ([`dhcp`]) that falls back to an IPv4 link-local address
//! ([`linklocal`]) while no server answers; in static mode the first interface gets the
//! configured address and gateway and the others run DHCP. Addresses go to the board state as
//! they change, and resolv.conf is rewritten from the configured and leased DNS servers.
//! Interfaces that appear later (USB adapters) are picked up by a background rescan.
//!
//! The protocol logic is pure state machines, unit-tested without sockets; `netns_tests`
//! runs the real thing against dnsmasq in network namespaces.

pub mod arp;
pub mod arp_socket;
pub mod dhcp;
pub mod discover;
mod iface;
mod leases;
pub mod linklocal;
pub mod netlink;
pub mod resolv;
pub mod rng;
pub mod sntp;
mod static_addr;

#[cfg(test)]
mod netns_tests;
#[cfg(test)]
mod proptests;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_spec::{NetworkConfig, NetworkMode, StaticAddress};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::board::console::Console;
use crate::board::status::BoardStatus;
use iface::Context;
use leases::Leases;
use netlink::Netlink;

/// Errors while bringing up the network.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Netlink or socket failure on an interface.
    #[error("network interface {interface}: {message}")]
    Interface {
        /// The interface.
        interface: String,
        /// What failed.
        message: String,
    },
    /// A netlink request failed (the message names the interface).
    #[error("network: {0}")]
    Netlink(#[from] netlink::Error),
    /// resolv.conf could not be written.
    #[error("network: {0}")]
    Resolv(#[from] resolv::Error),
}

/// Where to look and how long to wait; [`Options::under`] gives the board's.
#[derive(Debug, Clone)]
pub struct Options {
    /// The sysfs directory listing interfaces, `/sys/class/net`.
    pub sys_class_net: PathBuf,
    /// Configure exactly these interfaces instead of scanning sysfs (they need not be physical;
    /// tests use veths). No rescan happens then.
    pub interfaces: Option<Vec<String>>,
    /// The resolv.conf to write.
    pub resolv_conf: PathBuf,
    /// How long [`start`] waits for a first address.
    pub wait: Duration,
    /// How long DHCP may go unanswered before link-local addressing starts.
    pub link_local_after: Duration,
    /// How often sysfs is rescanned for new interfaces.
    pub rescan_every: Duration,
}

impl Options {
    /// The board's: sysfs and resolv.conf under `root` (`/` on the board).
    pub fn under(root: &Path) -> Self {
        Options {
            sys_class_net: root.join("sys/class/net"),
            interfaces: None,
            resolv_conf: root.join("etc/resolv.conf"),
            wait: Duration::from_secs(10),
            link_local_after: Duration::from_secs(4),
            rescan_every: Duration::from_secs(3),
        }
    }
}

/// The running network configuration; dropped or stopped at shutdown.
///
/// Dropping it leaves the interface tasks running; [`Network::stop`] ends them.
#[derive(Debug)]
pub struct Network {
    ctx: Arc<Context>,
    stop: watch::Sender<bool>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Network {
    /// NTP servers learned from DHCP.
    pub fn ntp_servers(&self) -> Vec<Ipv4Addr> {
        self.ctx.leases.ntp_servers()
    }

    /// Releases DHCP leases and stops background tasks (waiting at most 5 s for them).
    pub async fn stop(self) {
        self.stop.send_replace(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        for task in tasks {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                self.ctx
                    .console
                    .line("net: interface tasks did not stop within 5 s");
                break;
            }
        }
    }
}

/// Brings up loopback and every wired interface as `config` says, with the paths and timings
/// of `options`; returns when the first interface has an address or `options.wait` passed.
/// Addresses go to `state`, messages to `console`.
pub async fn start(
    config: &NetworkConfig,
    hostname: &str,
    state: Arc<BoardStatus>,
    console: Arc<Console>,
    options: Options,
) -> Result<Network, Error> {
    let nl = Netlink::connect()?;
    let lo = nl.link("lo").await?;
    nl.set_up(&lo).await?;
    nl.add_address(&lo, Ipv4Addr::LOCALHOST, 8).await?;

    let (addressed, mut addressed_rx) = watch::channel(false);
    let ctx = Arc::new(Context {
        state,
        console,
        leases: Leases::new(config.dns.clone(), options.resolv_conf.clone()),
        hostname: hostname.to_string(),
        link_local: config.link_local,
        link_local_after: options.link_local_after,
        addressed,
    });
    ctx.leases.write_resolv_conf()?;

    let (stop, stop_rx) = watch::channel(false);
    let tasks = Arc::new(Mutex::new(Vec::new()));
    let mut uplinks = Uplinks {
        ctx: ctx.clone(),
        nl,
        stop: stop_rx,
        tasks: tasks.clone(),
        known: Vec::new(),
        pending_static: match &config.mode {
            NetworkMode::Static(s) => Some(s.clone()),
            NetworkMode::Dhcp => None,
        },
    };
    let wait = options.wait;
    match options.interfaces.clone() {
        Some(names) => {
            for name in names {
                uplinks.add_logged(&name).await;
            }
        }
        None => {
            uplinks.scan(&options).await;
            let handle = tokio::spawn(async move { uplinks.rescan_forever(options).await });
            lock(&tasks).push(handle);
        }
    }

    // Returning early is fine: the tasks keep working in the background.
    let _ = tokio::time::timeout(wait, addressed_rx.wait_for(|a| *a)).await;
    Ok(Network { ctx, stop, tasks })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The set of uplinks being configured, growing as interfaces appear.
struct Uplinks {
    ctx: Arc<Context>,
    nl: Netlink,
    stop: watch::Receiver<bool>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    known: Vec<String>,
    pending_static: Option<StaticAddress>,
}

impl Uplinks {
    /// Brings `name` up and configures it: the static address if one is still to be placed,
    /// else a DHCP task.
    async fn add(&mut self, name: &str) -> Result<(), Error> {
        // Remembered even if it fails, so a broken interface is reported once, not every rescan.
        self.known.push(name.to_string());
        let link = self.nl.link(name).await?;
        self.nl.set_up(&link).await?;
        if let Some(s) = self.pending_static.take() {
            static_addr::apply(&self.nl, &link, &s, &self.ctx).await?;
            self.ctx.addressed.send_replace(true);
            return Ok(());
        }
        let task = iface::run(self.ctx.clone(), self.nl.clone(), link, self.stop.clone());
        lock(&self.tasks).push(tokio::spawn(task));
        Ok(())
    }

    /// [`Uplinks::add`], logging a failure (on the console and in the board state) instead of
    /// returning it: one bad interface must not keep the others down.
    async fn add_logged(&mut self, name: &str) {
        if let Err(e) = self.add(name).await {
            self.ctx.console.line(&e);
            self.ctx.state.add_error(e.to_string());
        }
    }

    /// Adds interfaces found in sysfs that are not configured yet.
    async fn scan(&mut self, options: &Options) {
        let names = match discover::ethernet_interfaces(&options.sys_class_net) {
            Ok(names) => names,
            Err(e) => {
                self.ctx.console.line(format_args!(
                    "net: listing interfaces in {}: {e}",
                    options.sys_class_net.display()
                ));
                return;
            }
        };
        for name in names {
            if !self.known.contains(&name) {
                self.add_logged(&name).await;
            }
        }
    }

    async fn rescan_forever(mut self, options: Options) {
        loop {
            tokio::select! {
                _ = iface::stopped(&mut self.stop) => return,
                _ = tokio::time::sleep(options.rescan_every) => {}
            }
            self.scan(&options).await;
        }
    }
}
