//! Signals PID 1 handles: SIGCHLD (reap every orphan) and the power signals.

use std::io;

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::board::context::Ctx;
use crate::board::sys::Action;
use crate::board::sys::Reaped;

/// Something the main loop must handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A child changed state: reap.
    Child,
    /// Someone asked for a power action.
    Power(Action),
}

/// The power action a signal asks for: SIGTERM and SIGINT (Ctrl-Alt-Del) reboot, SIGUSR1
/// halts, SIGUSR2 powers off.
pub fn action_for(signo: i32) -> Option<Action> {
    use nix::libc::{SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
    match signo {
        SIGTERM | SIGINT => Some(Action::Reboot),
        SIGUSR1 => Some(Action::Halt),
        SIGUSR2 => Some(Action::Poweroff),
        _ => None,
    }
}

/// The installed handlers.
pub struct Signals {
    child: Signal,
    power: Vec<(Signal, Action)>,
}

impl Signals {
    /// Installs the handlers (inside the runtime).
    pub fn install() -> io::Result<Signals> {
        use nix::libc::{SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
        let mut power = Vec::new();
        for signo in [SIGTERM, SIGINT, SIGUSR1, SIGUSR2] {
            if let Some(action) = action_for(signo) {
                power.push((signal(SignalKind::from_raw(signo))?, action));
            }
        }
        Ok(Signals {
            child: signal(SignalKind::child())?,
            power,
        })
    }

    /// Waits for the next signal.
    pub async fn next(&mut self) -> Event {
        let power = std::future::poll_fn(|cx| {
            for (sig, action) in &mut self.power {
                if sig.poll_recv(cx).is_ready() {
                    return std::task::Poll::Ready(*action);
                }
            }
            std::task::Poll::Pending
        });
        tokio::select! {
            _ = self.child.recv() => Event::Child,
            action = power => Event::Power(action),
        }
    }
}

/// Reaps every finished child; returns how many.
pub fn reap_all(ctx: &Ctx) -> usize {
    let mut reaped = 0;
    while let Ok(Reaped::Exited { .. }) = ctx.sys.reap() {
        reaped += 1;
    }
    reaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::testbed::Testbed;

    #[test]
    fn maps_signals_to_actions() {
        use nix::libc::{SIGCHLD, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
        assert_eq!(action_for(SIGTERM), Some(Action::Reboot));
        assert_eq!(action_for(SIGINT), Some(Action::Reboot));
        assert_eq!(action_for(SIGUSR1), Some(Action::Halt));
        assert_eq!(action_for(SIGUSR2), Some(Action::Poweroff));
        assert_eq!(action_for(SIGCHLD), None);
    }

    #[test]
    fn reaps_until_nothing_is_left() {
        let tb = Testbed::new();
        let exited = |pid| Reaped::Exited {
            pid,
            status: "exit 0".to_string(),
        };
        tb.sys
            .queue_reaps([exited(7), exited(8), Reaped::Running, exited(9)]);
        assert_eq!(reap_all(&tb.ctx), 2);
        assert_eq!(reap_all(&tb.ctx), 1);
    }
}
