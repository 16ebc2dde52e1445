//! Reboot, halt and power-off, with a clean shutdown first.

use std::io;
use std::time::Duration;

use tokio::time::Instant;

use crate::board::context::Ctx;
use crate::board::sys::{Action, Reaped, Signal};
use crate::boot::services::Services;
use crate::boot::Running;
use crate::{boot::clock, boot::config, boot::data, boot::entropy, boot::mounts};

/// How long processes get between SIGTERM and SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(5);
/// How long to wait for processes after SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);
/// How long stopping the network may take.
pub const NETWORK_GRACE: Duration = Duration::from_secs(5);
/// How long services get to stop (each gets its own `stop_timeout` within this).
pub const SERVICES_GRACE: Duration = Duration::from_secs(30);
/// Delay before rebooting after a fatal boot error, unless `baton.fatal_delay=<s>` says otherwise.
pub const DEFAULT_FATAL_DELAY: Duration = Duration::from_secs(10);
/// How often to look for exited processes while waiting.
const POLL: Duration = Duration::from_millis(20);

/// The final system call failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} the board: {source}")]
pub struct Error {
    /// What was attempted.
    pub action: Action,
    /// Cause.
    pub source: io::Error,
}

/// The fatal-error delay from the kernel command line (`baton.fatal_delay=<seconds>`).
pub fn fatal_delay(cmdline: &str) -> Duration {
    cmdline
        .split_whitespace()
        .find_map(|arg| arg.strip_prefix("baton.fatal_delay="))
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(DEFAULT_FATAL_DELAY, Duration::from_secs)
}

/// Shuts the board down cleanly and performs `action`. Steps: save clock and entropy seed,
/// stop the network, SIGTERM every process and wait, SIGKILL the rest, sync, unmount `/data`
/// and `/config` (read-only if busy), sync, settle the watchdog, reboot(2). Returns only if
/// the last call failed (or with the fake kernel of the tests).
pub async fn shutdown<S: Services>(
    ctx: &Ctx,
    services: &S,
    up: Running<S::Network>,
    action: Action,
) -> Result<(), Error> {
    ctx.say(format_args!("shutdown: preparing to {action}"));
    if let Some(w) = &up.watchdog {
        w.keepalive();
    }
    if let Some(task) = &up.clock_saver {
        task.abort();
    }
    if up.data_mounted {
        if let Err(e) = clock::save(ctx) {
            ctx.report(e);
        }
        if let Err(e) = entropy::save(ctx) {
            ctx.report(e);
        }
    }
    ctx.say("shutdown: stopping services");
    if tokio::time::timeout(SERVICES_GRACE, services.stop_containers(ctx))
        .await
        .is_err()
    {
        ctx.say("shutdown: services did not stop in time; they are killed with everything else");
    }
    if let Some(network) = up.network {
        ctx.say("shutdown: stopping the network");
        if tokio::time::timeout(NETWORK_GRACE, services.stop_network(network))
            .await
            .is_err()
        {
            ctx.say("shutdown: the network did not stop in time");
        }
    }
    stop_processes(ctx).await;
    ctx.sys.sync();
    let mounted = [
        (up.data_mounted, data::MOUNT_POINT),
        (up.config_mounted, config::MOUNT_POINT),
    ];
    for (_, target) in mounted.iter().filter(|(m, _)| *m) {
        match mounts::unmount(ctx, target) {
            Ok(mounts::Unmounted::Unmounted) => {}
            Ok(mounts::Unmounted::ReadOnly) => {
                ctx.say(format_args!("shutdown: {target} busy, remounted read-only"))
            }
            Err(e) => ctx.report(e),
        }
    }
    ctx.sys.sync();
    if let Some(w) = up.watchdog {
        if let Err(e) = w.finish(action) {
            ctx.report(e);
        }
    }
    ctx.say(format_args!("shutdown: {action} now"));
    ctx.sys
        .reboot(action)
        .map_err(|source| Error { action, source })
}

/// SIGTERM to every process, wait; then SIGKILL to whatever is left, wait.
async fn stop_processes(ctx: &Ctx) {
    for (signal, grace) in [(Signal::Terminate, TERM_GRACE), (Signal::Kill, KILL_GRACE)] {
        if let Err(e) = ctx.sys.kill_all(signal) {
            ctx.say(format_args!(
                "shutdown: cannot send {signal:?} to all processes: {e}"
            ));
        }
        if wait_for_children(ctx, grace).await {
            return;
        }
        ctx.say(format_args!(
            "shutdown: processes still running after {}s",
            grace.as_secs()
        ));
    }
}

/// Reaps until no child is left (true) or `grace` passed (false).
async fn wait_for_children(ctx: &Ctx, grace: Duration) -> bool {
    let deadline = Instant::now() + grace;
    loop {
        match ctx.sys.reap() {
            Ok(Reaped::Exited { .. }) => continue,
            Ok(Reaped::NoChildren) | Err(_) => return true,
            Ok(Reaped::Running) if Instant::now() >= deadline => return false,
            Ok(Reaped::Running) => tokio::time::sleep(POLL).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fatal_delay_from_the_command_line() {
        assert_eq!(fatal_delay("console=ttyAMA0 quiet"), DEFAULT_FATAL_DELAY);
        assert_eq!(
            fatal_delay("console=ttyAMA0 baton.fatal_delay=3\n"),
            Duration::from_secs(3)
        );
        assert_eq!(fatal_delay("baton.fatal_delay=soon"), DEFAULT_FATAL_DELAY);
    }
}
