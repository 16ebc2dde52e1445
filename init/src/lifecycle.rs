//! The life of the board: boot, serve signals and power requests, shut down.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::board::context::Ctx;
use crate::board::sys::Action;
use crate::boot::services::Services;
use crate::boot::{self, Running};
use crate::power;
use crate::reaper::{self, Event, Signals};

/// Boots, then handles signals and power requests until one asks to stop, then shuts down.
/// A fatal boot error is printed as `baton: fatal: ...` and followed by a reboot after the
/// fatal delay. Returns only if the final reboot(2) failed (or under the test fake).
pub async fn life<S: Services>(
    ctx: &Arc<Ctx>,
    services: &S,
    mut signals: Option<Signals>,
    power_requests: Option<(mpsc::Sender<Action>, mpsc::Receiver<Action>)>,
) -> Result<(), power::Error> {
    let (tx, mut rx) = power_requests.unwrap_or_else(|| mpsc::channel(4));
    let mut up = Running::default();
    let action = match boot::boot(ctx, services, &tx, &mut up).await {
        Ok(()) => serve(ctx, &mut signals, &mut rx).await,
        Err(e) => {
            ctx.say(format_args!("fatal: {e}"));
            ctx.state.add_error(format!("fatal: {e}"));
            let cmdline = std::fs::read_to_string(ctx.path("/proc/cmdline")).unwrap_or_default();
            let delay = power::fatal_delay(&cmdline);
            ctx.say(format_args!("rebooting in {}s", delay.as_secs()));
            tokio::time::sleep(delay).await;
            Action::Reboot
        }
    };
    power::shutdown(ctx, services, up, action).await
}

/// Reaps children and waits for a power action from a signal or the API.
async fn serve(
    ctx: &Ctx,
    signals: &mut Option<Signals>,
    requests: &mut mpsc::Receiver<Action>,
) -> Action {
    reaper::reap_all(ctx);
    loop {
        let event = tokio::select! {
            event = next_signal(signals) => event,
            Some(action) = requests.recv() => Event::Power(action),
        };
        match event {
            Event::Child => {
                reaper::reap_all(ctx);
            }
            Event::Power(action) => return action,
        }
    }
}

async fn next_signal(signals: &mut Option<Signals>) -> Event {
    match signals {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}
