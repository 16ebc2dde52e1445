//! When an instance's health checks run: the first at once, then fast until one passes (an
//! instance is ready milliseconds after it listens, not an interval later), then every
//! `interval`. If none has passed when the grace (`start_period` + one `interval`) ends, the
//! checks slow to the interval too: from then on failures count (see
//! [`super::instance`]), and a slow starter must not be restarted sooner than at the interval's
//! pace.

use std::time::Duration;

/// The first pause between fast checks; it doubles after each failure.
pub(super) const FAST_FIRST: Duration = Duration::from_millis(10);
/// The longest pause between fast checks.
pub(super) const FAST_MAX: Duration = Duration::from_millis(200);

/// The pace of one run of checks (from a start or a thaw).
#[derive(Debug, Clone)]
pub(super) struct Pacing {
    interval: Duration,
    grace: Duration,
    next_fast: Duration,
    settled: bool,
}

impl Pacing {
    /// Checks every `interval` once one passed, fast before that for at most `grace`.
    pub(super) fn new(interval: Duration, grace: Duration) -> Pacing {
        Pacing {
            interval,
            grace,
            next_fast: FAST_FIRST,
            settled: false,
        }
    }

    /// The pause before the next check, after one that passed if `ok`, `elapsed` after the run
    /// of checks began.
    pub(super) fn after(&mut self, ok: bool, elapsed: Duration) -> Duration {
        if ok || elapsed >= self.grace {
            self.settled = true;
        }
        if self.settled {
            return self.interval;
        }
        let pause = self.next_fast.min(FAST_MAX).min(self.interval);
        self.next_fast = self.next_fast.saturating_mul(2);
        pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn fast_until_the_first_pass_then_the_interval() {
        let mut p = Pacing::new(ms(5000), ms(5000));
        let pauses: Vec<u64> = (0..7)
            .map(|_| p.after(false, ms(100)).as_millis() as u64)
            .collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 200, 200]);
        assert_eq!(p.after(true, ms(900)), ms(5000));
        // Once settled, a failure does not bring the fast pace back.
        assert_eq!(p.after(false, ms(6000)), ms(5000));
    }

    #[test]
    fn the_end_of_the_grace_slows_a_slow_starter_to_the_interval() {
        let mut p = Pacing::new(ms(5000), ms(7000));
        assert_eq!(p.after(false, ms(6999)), ms(10));
        assert_eq!(p.after(false, ms(7000)), ms(5000));
        assert_eq!(p.after(false, ms(7100)), ms(5000));
    }

    #[test]
    fn fast_pauses_never_exceed_a_short_interval() {
        let mut p = Pacing::new(ms(50), ms(1000));
        let pauses: Vec<u64> = (0..5)
            .map(|_| p.after(false, ms(0)).as_millis() as u64)
            .collect();
        assert_eq!(pauses, [10, 20, 40, 50, 50]);
    }
}
