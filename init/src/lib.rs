//! baton's init: the first and only long-lived process on a board.
//!
//! [`run`] moves `/` off the initramfs, boots the board ([`boot::boot`]), then handles signals
//! and power requests ([`lifecycle::life`]) until it shuts down ([`power::shutdown`]). It never
//! returns and never panics out: a failed boot reboots the board after a delay, a panicking task
//! is contained by the runtime, and a panic of the main loop reboots the board.
//!
//! # Map
//! Each folder is one path a reader follows, listed from the bottom up: a folder uses only
//! folders above it in this list (`tests/layers.rs` checks it).
//!
//! | folder | what lives there |
//! |---|---|
//! | [`events`] | the board's event bus: what happened (instances, specs, scaling), kept in a ring and broadcast to readers |
//! | [`board`] | the board as everything else sees it: the root directory and paths ([`board::context::Ctx`]), every privileged call ([`board::sys::Sys`]), the console, the state the API reports, power-safe writes |
//! | [`boot`] | the boot steps in order: off the initramfs, mounts, modules, disk, config, data, hostname, entropy, clock, watchdog; then what it starts last, as a trait ([`boot::services::Services`]) |
//! | [`uplink`] | the board's own network: DHCP, link-local, static addresses, resolv.conf, SNTP |
//! | [`svcnet`] | the services' network: bridge and subnet, netns, names (DNS), nftables rules and policy, the WireGuard mesh, published ports |
//! | [`containers`] | the supervisor (reconcile, launch, health, logs) and the single-threaded runtime helper |
//! | [`cluster`] | this board as a cluster member: rounds, card mirroring, what the gossip says about other boards |
//! | [`frontdoor`] | the front door's manager: listeners, its process (started, fed, restarted), certificates |
//! | [`api`] | the HTTP API on port 7070 |
//!
//! At the top: [`services`] wires the subsystems together and passes each the handles it uses,
//! [`lifecycle`] runs the board's life, [`reaper`] reaps orphans and maps signals, [`power`] shuts
//! down. Every privileged call goes through [`board::sys::Sys`] and every file path through
//! [`board::context::Ctx::path`], so the whole sequence runs in tests against a fake kernel and
//! a temp-dir root.

pub mod api;
pub mod board;
pub mod boot;
pub mod cluster;
pub mod containers;
pub mod events;
pub mod frontdoor;
pub mod lifecycle;
pub mod metrics;
pub mod power;
pub mod reaper;
pub mod scaling;
pub mod services;
pub mod svcnet;
pub mod uplink;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use board::console::{self, Console};
use board::context::Ctx;
use board::status::BoardStatus;
use board::sys::real::RealSys;
use board::sys::Action;

/// Boots the board and runs it until it is rebooted or powered off. Never returns.
pub fn run() -> ! {
    let console = Arc::new(Console::new(console::DEFAULT_CAPACITY));
    console::install_panic_hook(Arc::clone(&console));
    let ctx = Arc::new(Ctx::new(
        Path::new("/"),
        Arc::new(RealSys),
        console,
        Arc::new(BoardStatus::default()),
    ));
    // First of all, off the initramfs (so containers can pivot_root); on failure, boot on it.
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Err(e) = boot::rootfs_switch::switch_root(&ctx, &args) {
        ctx.report(e);
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| live(&ctx)));
    match outcome {
        Ok(Err(message)) => ctx.say(format_args!("fatal: {message}")),
        Ok(Ok(())) => ctx.say("fatal: the board did not go down"),
        Err(_) => ctx.say("fatal: internal error in the main loop (see above)"),
    }
    last_resort(&ctx)
}

/// Why the board's life ended (it only ends when the board could not go down).
#[derive(Debug, thiserror::Error)]
enum LifeError {
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The final reboot, halt or power-off failed.
    #[error(transparent)]
    Power(#[from] power::Error),
}

/// Runs the board's life on a current-thread runtime.
fn live(ctx: &Arc<Ctx>) -> Result<(), LifeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LifeError::Runtime)?;
    runtime.block_on(async {
        let signals = match reaper::Signals::install() {
            Ok(s) => Some(s),
            Err(e) => {
                ctx.report(format_args!("cannot install signal handlers: {e}"));
                None
            }
        };
        Ok(lifecycle::life(ctx, &services::RealServices::new(), signals, None).await?)
    })
}

/// Reboots without the orderly shutdown, after the fatal delay; parks forever if even that fails.
fn last_resort(ctx: &Ctx) -> ! {
    let cmdline = std::fs::read_to_string(ctx.path("/proc/cmdline")).unwrap_or_default();
    let delay = power::fatal_delay(&cmdline);
    ctx.say(format_args!("rebooting in {}s", delay.as_secs()));
    std::thread::sleep(delay);
    ctx.sys.sync();
    if let Err(e) = ctx.sys.reboot(Action::Reboot) {
        ctx.say(format_args!("fatal: cannot reboot: {e}; halting here"));
    }
    loop {
        std::thread::park();
    }
}
