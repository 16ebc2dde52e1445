//! The hardware watchdog: if `/dev/watchdog` exists, arm it and keep it alive from a task, so
//! a hung init gets the board rebooted. Halt and power-off disarm it (magic close); a reboot
//! leaves it armed, so a reboot that hangs still happens.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::board::context::Ctx;
use crate::board::sys::Action;
use crate::board::sys::WatchdogDevice;

/// Device node.
pub const DEVICE: &str = "/dev/watchdog";
/// Requested timeout; the Pi's watchdog cannot go beyond about 15 s.
pub const TIMEOUT_SECS: u32 = 15;

/// Errors with the watchdog.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opening failed.
    #[error("cannot open watchdog {DEVICE}: {0}")]
    Open(#[source] io::Error),
    /// Setting the timeout failed (the driver's default stays in effect).
    #[error("cannot set the timeout of watchdog {DEVICE} to {TIMEOUT_SECS}s: {0}")]
    Timeout(#[source] io::Error),
    /// Stopping failed.
    #[error("cannot disarm watchdog {DEVICE}: {0}")]
    Disarm(#[source] io::Error),
}

type Device = Arc<Mutex<Option<Box<dyn WatchdogDevice>>>>;

fn lock(device: &Device) -> MutexGuard<'_, Option<Box<dyn WatchdogDevice>>> {
    device.lock().unwrap_or_else(|p| p.into_inner())
}

/// The armed watchdog and its keep-alive task.
pub struct Watchdog {
    device: Device,
    task: tokio::task::JoinHandle<()>,
}

/// Opens and arms the watchdog if the board has one (`Ok(None)` if not). Must run inside the
/// runtime: it spawns the keep-alive task. A timeout the driver refuses is reported, and the
/// driver's own timeout is kept.
pub fn open(ctx: &Arc<Ctx>) -> Result<Option<Watchdog>, Error> {
    let path = ctx.path(DEVICE);
    if !path.exists() {
        return Ok(None);
    }
    let cmdline = std::fs::read_to_string(ctx.path("/proc/cmdline")).unwrap_or_default();
    if disabled_on(&cmdline) {
        ctx.say("watchdog: disabled by baton.watchdog=off on the kernel command line");
        return Ok(None);
    }
    let mut device = ctx.sys.open_watchdog(&path).map_err(Error::Open)?;
    let timeout = match device.set_timeout(TIMEOUT_SECS) {
        Ok(secs) => secs.max(1),
        Err(e) => {
            ctx.report(Error::Timeout(e));
            TIMEOUT_SECS
        }
    };
    let _ = device.keepalive();
    let device: Device = Arc::new(Mutex::new(Some(device)));
    let every = Duration::from_secs(u64::from(timeout)) / 3;
    let task = tokio::spawn(keep_alive(Arc::clone(&device), every));
    ctx.say(format_args!("watchdog: armed, {timeout}s timeout"));
    Ok(Some(Watchdog { device, task }))
}

/// Whether the kernel command line says `baton.watchdog=off`.
pub fn disabled_on(cmdline: &str) -> bool {
    cmdline
        .split_whitespace()
        .any(|arg| arg == "baton.watchdog=off")
}

async fn keep_alive(device: Device, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if let Some(d) = lock(&device).as_mut() {
            let _ = d.keepalive();
        }
    }
}

impl Watchdog {
    /// Restarts the countdown now.
    pub fn keepalive(&self) {
        if let Some(d) = lock(&self.device).as_mut() {
            let _ = d.keepalive();
        }
    }

    /// Stops the keep-alive task before `action`: disarms the watchdog for halt and power-off,
    /// gives a reboot one last full timeout and leaves it armed.
    pub fn finish(self, action: Action) -> Result<(), Error> {
        self.task.abort();
        let device = lock(&self.device).take();
        let Some(mut device) = device else {
            return Ok(());
        };
        match action {
            Action::Halt | Action::Poweroff => device.disarm().map_err(Error::Disarm),
            Action::Reboot => {
                let _ = device.keepalive();
                // Closing without the magic character keeps it running.
                drop(device);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::testbed::Testbed;

    #[tokio::test]
    async fn stays_unarmed_when_the_command_line_says_so() {
        let tb = Testbed::new();
        let ctx = Arc::new(tb_ctx(&tb));
        tb.file(DEVICE, "");
        tb.file(
            "/proc/cmdline",
            "console=ttyAMA0 baton.watchdog=off quiet\n",
        );
        assert!(open(&ctx).expect("no error").is_none());
        assert!(
            tb.sys.calls_starting("watchdog").is_empty(),
            "{:?}",
            tb.sys.calls()
        );
        assert!(!disabled_on("baton.watchdog=offline"));
    }

    #[tokio::test(start_paused = true)]
    async fn keeps_alive_and_disarms_on_halt() {
        let tb = Testbed::new();
        let ctx = Arc::new(tb_ctx(&tb));
        assert!(open(&ctx).expect("no device").is_none());
        tb.file(DEVICE, "");
        let dog = open(&ctx).expect("opens").expect("present");
        tokio::time::sleep(Duration::from_secs(11)).await;
        let pings = tb.sys.calls_starting("watchdog keepalive").len();
        // One at open, one at once from the task, then every 5 s.
        assert!(pings >= 3, "{:?}", tb.sys.calls());
        dog.finish(Action::Halt).expect("disarmed");
        assert_eq!(
            tb.sys.calls().last().map(String::as_str),
            Some("watchdog disarm")
        );
        assert_eq!(
            tb.sys.calls()[..2],
            ["watchdog open /dev/watchdog", "watchdog timeout 15"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stays_armed_across_reboot() {
        let tb = Testbed::new();
        tb.file(DEVICE, "");
        let dog = open(&Arc::new(tb_ctx(&tb)))
            .expect("opens")
            .expect("present");
        dog.finish(Action::Reboot).expect("left armed");
        assert!(tb.sys.calls_starting("watchdog disarm").is_empty());
    }

    fn tb_ctx(tb: &Testbed) -> Ctx {
        Ctx::new(
            &tb.ctx.root,
            tb.sys.clone(),
            tb.ctx.console.clone(),
            tb.ctx.state.clone(),
        )
    }
}
