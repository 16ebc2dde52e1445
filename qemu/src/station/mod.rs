//! A LAN station on the boards' shared segment: the host as a laptop plugged into the boards'
//! switch, so that tests reach boards by their own addresses and mDNS names, not through port
//! forwards.
//!
//! The station is a network namespace of its own holding one TAP device, [`INTERFACE`], with
//! the address [`ADDRESS`]/[`PREFIX_LEN`] (the link-local range the boards pick from on a segment
//! without DHCP; boards never pick 169.254.0.x) and a route for multicast (mDNS). The hub carries
//! the TAP device's frames like a board's (see [`crate::hub`]). The namespace has no name and no
//! other interface: it lives while the [`Station`] and whatever runs inside it do, nothing of the
//! host's own network changes, and nothing from the station leaves the machine.
//!
//! Making it needs root (a network namespace and `/dev/net/tun`); the unprivileged lab has no
//! station and reaches boards through port forwards.
//!
//! Code runs on the station with [`Station::run`]: a thread enters the namespace and runs a
//! closure there, so the sockets it opens, the threads it starts and the processes it spawns
//! (for example `curl` or `baton boards`) are on the station.

mod tap;

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Command;

use nix::sched::CloneFlags;

/// The station's interface on the segment.
pub const INTERFACE: &str = "lan0";
/// The station's address on the segment.
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(169, 254, 0, 1);
/// The prefix length of [`ADDRESS`]: the whole link-local range, where the boards are.
pub const PREFIX_LEN: u8 = 16;
/// The station's MAC address (QEMU's local prefix, like the boards', with NIC byte `ff`).
pub const MAC: &str = "52:54:00:ba:ff:01";

/// What went wrong making or entering the station.
#[derive(Debug, thiserror::Error)]
pub enum StationError {
    /// The network namespace could not be made (not root?).
    #[error("cannot make the LAN station's network namespace (it needs root): {0}")]
    Namespace(nix::Error),
    /// The new namespace could not be opened to keep it.
    #[error("cannot open the LAN station's network namespace: {0}")]
    OpenNamespace(io::Error),
    /// The TAP device could not be made.
    #[error("cannot create the LAN station's TAP device {INTERFACE} (it needs root and /dev/net/tun): {0}")]
    Tap(io::Error),
    /// `ip` failed to configure the station.
    #[error("cannot configure the LAN station: `ip {args}`: {detail}")]
    Configure {
        /// The arguments of `ip`.
        args: String,
        /// Its stderr or exit status, or why it did not run (Debian package iproute2).
        detail: String,
    },
    /// A thread could not enter the namespace.
    #[error("cannot enter the LAN station's network namespace: {0}")]
    Enter(nix::Error),
    /// A thread could not be started.
    #[error("cannot start a thread for the LAN station: {0}")]
    Thread(io::Error),
}

/// The host's station on the segment. Dropping it lets its namespace go once nothing runs in it.
#[derive(Debug)]
pub struct Station {
    netns: OwnedFd,
}

/// Whether this process may make a station (it runs as root).
pub fn privileged() -> bool {
    nix::unistd::geteuid().is_root()
}

impl Station {
    /// Makes the namespace and its TAP device, configured; returns the station and the TAP
    /// device, whose frames the hub carries.
    pub(crate) fn create() -> Result<(Station, File), StationError> {
        // The thread that makes the namespace ends right after: no other code runs in it.
        in_thread(|| {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(StationError::Namespace)?;
            let netns =
                File::open("/proc/thread-self/ns/net").map_err(StationError::OpenNamespace)?;
            let tap = tap::open(INTERFACE).map_err(StationError::Tap)?;
            let address = format!("{ADDRESS}/{PREFIX_LEN}");
            ip(&["link", "set", "dev", "lo", "up"])?;
            ip(&["link", "set", "dev", INTERFACE, "address", MAC])?;
            ip(&["address", "add", &address, "dev", INTERFACE])?;
            ip(&["link", "set", "dev", INTERFACE, "up"])?;
            ip(&["route", "add", "224.0.0.0/4", "dev", INTERFACE])?;
            Ok((
                Station {
                    netns: netns.into(),
                },
                tap,
            ))
        })?
    }

    /// The station's address on the segment.
    pub fn address(&self) -> Ipv4Addr {
        ADDRESS
    }

    /// The station's interface, as code on the station sees it.
    pub fn interface(&self) -> &'static str {
        INTERFACE
    }

    /// A path to the namespace while this process runs, for `nsenter --net=PATH COMMAND`.
    pub fn netns_path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.netns.as_raw_fd()
        ))
    }

    /// Runs `f` on the station: in a thread of its own that entered the station's namespace,
    /// so every socket `f` opens, thread it starts and process it spawns is on the segment. A
    /// panic in `f` goes on in the caller.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, StationError> {
        in_thread(|| {
            nix::sched::setns(&self.netns, CloneFlags::CLONE_NEWNET)
                .map_err(StationError::Enter)?;
            Ok(f())
        })?
    }
}

/// Runs `f` in a new thread and waits for it; a panic in `f` goes on here.
fn in_thread<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, StationError> {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("lan-station".into())
            .spawn_scoped(scope, f)
            .map_err(StationError::Thread)?;
        Ok(thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    })
}

/// Runs `ip ARGS` (in the calling thread's network namespace).
fn ip(args: &[&str]) -> Result<(), StationError> {
    let fail = |detail: String| StationError::Configure {
        args: args.join(" "),
        detail,
    };
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| fail(format!("{e} (Debian package iproute2)")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(fail(if stderr.is_empty() {
            out.status.to_string()
        } else {
            stderr
        }));
    }
    Ok(())
}
