//! baton's init: the first and only long-lived process on a board.
//!
//! [`run`] moves `/` off the initramfs ([`rootfs_switch`]), boots the board ([`boot::boot`]),
//! then handles signals and power requests ([`lifecycle::life`]) until it shuts down
//! ([`power::shutdown`]). It never returns and never
//! panics out: a failed boot reboots the board after a delay, a panicking task is contained by
//! the runtime, and a panic of the main loop reboots the board.
//!
//! Every privileged call goes through [`sys::Sys`] and every file path through
//! [`context::Ctx::path`], so the whole sequence runs in tests against a fake kernel and a
//! temp-dir root.

pub mod api;
pub mod board;
pub mod boot;
pub mod cluster;
pub mod containers;
pub mod lifecycle;
pub mod power;
pub mod reaper;
pub mod services;
pub mod svcnet;
#[cfg(test)]
mod testns;
pub mod uplink;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use board::console::{self, Console};
use board::context::Ctx;
use board::status::State;
use board::sys::real::RealSys;
use power::Action;

/// Boots the board and runs it until it is rebooted or powered off. Never returns.
pub fn run() -> ! {
    let console = Arc::new(Console::new(console::DEFAULT_CAPACITY));
    console::install_panic_hook(Arc::clone(&console));
    let ctx = Arc::new(Ctx::new(
        Path::new("/"),
        Arc::new(RealSys),
        console,
        Arc::new(State::default()),
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

/// Runs the board's life on a current-thread runtime.
fn live(ctx: &Arc<Ctx>) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let signals = match reaper::Signals::install() {
            Ok(s) => Some(s),
            Err(e) => {
                ctx.report(format_args!("cannot install signal handlers: {e}"));
                None
            }
        };
        lifecycle::life(ctx, &services::RealServices, signals, None)
            .await
            .map_err(|e| e.to_string())
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
