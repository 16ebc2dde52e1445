//! The refetch gate of unknown `kid`s (docs/design/front-door.md section 5.2): a token signed by
//! a key the set lacks may mean the provider rotated its keys, so the set is fetched again, but
//! at most once in [`REFETCH_GAP`], as one fetch that the requests arriving meanwhile wait on.
//! Tokens with unknown `kid`s in the rest of that minute are refused at once, so random `kid`s
//! cannot make the front door flood the provider. Pure: the time comes from the caller.

use std::time::{Duration, Instant};

/// Refetches for unknown keys start at most this often.
pub const REFETCH_GAP: Duration = Duration::from_secs(60);
/// A fetch marked in flight for longer than this is taken as ended (its task is gone), so a
/// lost completion cannot close the gate for good.
const STALE: Duration = Duration::from_secs(30);

/// What a request with an unknown `kid` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start the refetch, then wait for it.
    Start,
    /// A refetch is in flight: wait for it.
    Join,
    /// A refetch ran less than [`REFETCH_GAP`] ago: answer at once.
    Refuse,
}

/// The gate's state.
#[derive(Debug, Default)]
pub struct Gate {
    started: Option<Instant>,
    in_flight: bool,
}

impl Gate {
    /// The decision for a request at `now`.
    pub fn ask(&mut self, now: Instant) -> Decision {
        if let Some(started) = self.started {
            let since = now.saturating_duration_since(started);
            if self.in_flight && since < STALE {
                return Decision::Join;
            }
            if since < REFETCH_GAP {
                return Decision::Refuse;
            }
        }
        self.started = Some(now);
        self.in_flight = true;
        Decision::Start
    }

    /// The refetch ended (well or not).
    pub fn done(&mut self) {
        self.in_flight = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_refetch_a_minute_and_requests_meanwhile_join_it() {
        let t0 = Instant::now();
        let mut gate = Gate::default();
        assert_eq!(gate.ask(t0), Decision::Start);
        assert_eq!(gate.ask(t0 + Duration::from_millis(500)), Decision::Join);
        gate.done();
        for s in [1, 10, 59] {
            assert_eq!(
                gate.ask(t0 + Duration::from_secs(s)),
                Decision::Refuse,
                "{s} s"
            );
        }
        assert_eq!(gate.ask(t0 + REFETCH_GAP), Decision::Start);
        gate.done();
        assert_eq!(
            gate.ask(t0 + REFETCH_GAP + Duration::from_secs(1)),
            Decision::Refuse
        );
    }

    #[test]
    fn a_lost_completion_does_not_close_the_gate_for_good() {
        let t0 = Instant::now();
        let mut gate = Gate::default();
        assert_eq!(gate.ask(t0), Decision::Start);
        // Never marked done.
        assert_eq!(gate.ask(t0 + STALE), Decision::Refuse);
        assert_eq!(gate.ask(t0 + REFETCH_GAP), Decision::Start);
    }
}
