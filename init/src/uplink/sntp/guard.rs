//! Which clock steps SNTP may make.
//!
//! SNTP is unauthenticated and DHCP may name the servers, so any host on the LAN can answer. A
//! wrong clock breaks TLS (certificates look expired or not yet valid) and expires tombstones
//! early, so the answers are judged before the clock moves:
//! - the clock never goes back past `floor`, the time saved on `/data` by the last run (or the
//!   image's build time);
//! - one server's word is enough for a step of up to [`Limits::max_step`], and for the first
//!   forward step of a boot (a board that was off for a month is a month behind); steps on one
//!   server's word add up to at most [`Limits::max_step`] over [`Limits::alone_rounds`] rounds
//!   (a day), so a lone liar cannot walk the clock away 1000 s at a time;
//! - anything larger needs two servers (distinct addresses) whose offsets agree within
//!   [`Limits::agree_within`] plus half their round trips; the caller asks the next server while
//!   the verdict is [`Verdict::Confirm`], and refuses the step when none is left.
//!
//! The judgement is pure: it sees the samples of one round, the time, and whether this boot has
//! synced already.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

/// One server's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Who answered.
    pub server: IpAddr,
    /// How far the server's clock is ahead of ours, in nanoseconds.
    pub offset_ns: i128,
    /// The round-trip delay of the exchange, in nanoseconds.
    pub delay_ns: i128,
}

/// The bounds; [`Limits::default`] is the board's.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Offsets up to this are left alone.
    pub step_threshold: Duration,
    /// The largest step one server may cause once the clock is synced (ntpd's panic
    /// threshold is the same 1000 s).
    pub max_step: Duration,
    /// How close two servers' offsets must be to agree (half their round trips are added).
    pub agree_within: Duration,
    /// How many rounds one server's steps are added up over: within them they may move the
    /// clock by [`Limits::max_step`] in all. Rounds, not time, so that the steps themselves
    /// cannot age the account.
    pub alone_rounds: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            step_threshold: Duration::from_secs(1),
            max_step: Duration::from_secs(1000),
            agree_within: Duration::from_secs(2),
            // A day at the board's 15-minute interval.
            alone_rounds: 96,
        }
    }
}

/// What to do with the clock after the samples so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The clock is within the threshold: leave it.
    InStep {
        /// The offset that was judged.
        offset_ns: i128,
    },
    /// Step the clock by `offset_ns`, on the word of `servers` (one or more).
    Step {
        /// The step.
        offset_ns: i128,
        /// The servers that vouch for it.
        servers: Vec<IpAddr>,
    },
    /// The step is too large for one server: ask another.
    Confirm {
        /// The step the first answer asks for.
        offset_ns: i128,
    },
    /// The answer would put the clock before the saved time: refused whoever agrees.
    BeforeFloor {
        /// The step it asked for.
        offset_ns: i128,
    },
}

/// The step rules for one board.
#[derive(Debug, Clone)]
pub struct Guard {
    limits: Limits,
    floor: Duration,
    synced: bool,
    /// The size of each of the last [`Limits::alone_rounds`] rounds' lone-server step (0 for a
    /// round without one), newest last.
    alone: VecDeque<u128>,
}

impl Guard {
    /// Rules that never move the clock before `floor` (time since the Unix epoch).
    pub fn new(limits: Limits, floor: Duration) -> Guard {
        Guard {
            limits,
            floor,
            synced: false,
            alone: VecDeque::new(),
        }
    }

    /// How far steps on one server's word have moved the clock over the last rounds.
    pub fn alone_spent(&self) -> Duration {
        Duration::from_nanos(u64::try_from(self.alone.iter().sum::<u128>()).unwrap_or(u64::MAX))
    }

    /// Ends a round whose verdict was carried out: a step on one server's word is added to the
    /// account (except the first forward step of a boot), and the oldest round leaves it.
    /// Call it before [`Guard::mark_synced`].
    pub fn close_round(&mut self, verdict: &Verdict) {
        let spent = match verdict {
            Verdict::Step { offset_ns, servers } if servers.len() == 1 => {
                if !self.synced && *offset_ns > 0 {
                    0
                } else {
                    offset_ns.unsigned_abs()
                }
            }
            _ => 0,
        };
        self.alone.push_back(spent);
        while self.alone.len() > self.limits.alone_rounds {
            self.alone.pop_front();
        }
    }

    /// Whether a step or an in-step answer has been taken this boot.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// Records that the clock now follows the servers (after a step or an in-step answer).
    pub fn mark_synced(&mut self) {
        self.synced = true;
    }

    /// Judges the samples of one round, in the order the servers answered, at time `now`.
    pub fn judge(&self, now: Duration, samples: &[Sample]) -> Verdict {
        let Some(first) = samples.first() else {
            return Verdict::Confirm { offset_ns: 0 };
        };
        let (offset_ns, servers) = match self.agreeing(samples) {
            Some(group) => group,
            None => match samples.iter().find(|s| self.alone_is_enough(s.offset_ns)) {
                Some(s) => (s.offset_ns, vec![s.server]),
                None => {
                    return Verdict::Confirm {
                        offset_ns: first.offset_ns,
                    }
                }
            },
        };
        let target = now.as_nanos() as i128 + offset_ns;
        if offset_ns < 0 && target < self.floor.as_nanos() as i128 {
            return Verdict::BeforeFloor { offset_ns };
        }
        if offset_ns.unsigned_abs() <= self.limits.step_threshold.as_nanos() {
            Verdict::InStep { offset_ns }
        } else {
            Verdict::Step { offset_ns, servers }
        }
    }

    fn alone_is_enough(&self, offset_ns: i128) -> bool {
        let spent: u128 = self.alone.iter().sum();
        offset_ns.unsigned_abs().saturating_add(spent) <= self.limits.max_step.as_nanos()
            || (!self.synced && offset_ns > 0)
    }

    /// The largest group of two or more distinct servers that agree, as its median offset and
    /// its members (the earliest such group on a tie).
    fn agreeing(&self, samples: &[Sample]) -> Option<(i128, Vec<IpAddr>)> {
        let mut best: Option<Vec<&Sample>> = None;
        for anchor in samples {
            let mut group: Vec<&Sample> = Vec::new();
            for s in samples {
                let fresh = group.iter().all(|g| g.server != s.server);
                if fresh && self.agree(anchor, s) {
                    group.push(s);
                }
            }
            if group.len() >= 2 && best.as_ref().is_none_or(|b| group.len() > b.len()) {
                best = Some(group);
            }
        }
        let mut group = best?;
        group.sort_by_key(|s| s.offset_ns);
        // The lower middle: of two that agree, the smaller step.
        let median = group[(group.len() - 1) / 2].offset_ns;
        Some((median, group.iter().map(|s| s.server).collect()))
    }

    fn agree(&self, a: &Sample, b: &Sample) -> bool {
        // Half the round trips widen the margin, never by more than the margin itself: a
        // server states its own timestamps, so a liar could claim any delay.
        let margin = self.limits.agree_within.as_nanos() as i128;
        let slack = ((a.delay_ns.max(0) + b.delay_ns.max(0)) / 2).min(margin);
        let within = margin + slack;
        (a.offset_ns - b.offset_ns).abs() <= within
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i128 = 1_000_000_000;
    const NOW: Duration = Duration::from_secs(1_800_000_000);

    fn sample(last: u8, offset_secs: i128) -> Sample {
        Sample {
            server: IpAddr::from([192, 0, 2, last]),
            offset_ns: offset_secs * SEC,
            delay_ns: SEC / 50,
        }
    }

    fn guard(synced: bool) -> Guard {
        let mut g = Guard::new(Limits::default(), NOW - Duration::from_secs(3600));
        if synced {
            g.mark_synced();
        }
        g
    }

    #[test]
    fn the_first_sync_of_a_boot_may_step_forward_by_any_amount() {
        let year = 365 * 86_400;
        assert_eq!(
            guard(false).judge(NOW, &[sample(1, year)]),
            Verdict::Step {
                offset_ns: year * SEC,
                servers: vec![IpAddr::from([192, 0, 2, 1])]
            }
        );
    }

    #[test]
    fn once_synced_one_server_cannot_make_a_large_step() {
        let g = guard(true);
        assert_eq!(
            g.judge(NOW, &[sample(1, 3600)]),
            Verdict::Confirm {
                offset_ns: 3600 * SEC
            }
        );
        // Small steps stay one server's word.
        assert!(matches!(
            g.judge(NOW, &[sample(1, 30)]),
            Verdict::Step { offset_ns, .. } if offset_ns == 30 * SEC
        ));
        assert_eq!(
            g.judge(NOW, &[sample(1, 0)]),
            Verdict::InStep { offset_ns: 0 }
        );
    }

    #[test]
    fn two_servers_that_agree_confirm_a_large_step() {
        let verdict = guard(true).judge(NOW, &[sample(1, 3600), sample(2, 3601)]);
        let Verdict::Step { offset_ns, servers } = verdict else {
            panic!("not a step: {verdict:?}");
        };
        assert!((3600 * SEC..=3601 * SEC).contains(&offset_ns));
        assert_eq!(servers.len(), 2);
    }

    #[test]
    fn a_liar_claiming_a_long_round_trip_does_not_agree_with_an_honest_server() {
        let liar = Sample {
            delay_ns: 365 * 86_400 * SEC,
            ..sample(1, 86_400)
        };
        assert!(matches!(
            guard(true).judge(NOW, &[liar, sample(2, 0)]),
            Verdict::InStep { .. }
        ));
        assert!(matches!(
            guard(true).judge(NOW, &[liar, sample(2, 3)]),
            Verdict::Step { offset_ns, .. } if offset_ns == 3 * SEC
        ));
    }

    #[test]
    fn one_server_s_steps_add_up_to_the_bound_over_a_day_of_rounds() {
        let mut g = guard(true);
        let alone = |g: &Guard, secs| g.judge(NOW, &[sample(1, secs)]);
        let first = alone(&g, 600);
        assert!(matches!(first, Verdict::Step { .. }), "{first:?}");
        g.close_round(&first);
        // 600 s spent: another 600 s needs a second server, 400 s does not.
        assert!(matches!(alone(&g, 600), Verdict::Confirm { .. }));
        assert!(matches!(alone(&g, -600), Verdict::Confirm { .. }));
        assert!(matches!(alone(&g, 400), Verdict::Step { .. }));
        let agreed = g.judge(NOW, &[sample(1, 600), sample(2, 600)]);
        assert!(matches!(&agreed, Verdict::Step { servers, .. } if servers.len() == 2));
        // Agreeing servers spend nothing; rounds without a step age the account.
        g.close_round(&agreed);
        for _ in 0..Limits::default().alone_rounds - 2 {
            g.close_round(&Verdict::InStep { offset_ns: 0 });
        }
        assert_eq!(g.alone_spent(), Duration::from_secs(600));
        g.close_round(&Verdict::InStep { offset_ns: 0 });
        assert_eq!(g.alone_spent(), Duration::ZERO);
        assert!(matches!(alone(&g, 1000), Verdict::Step { .. }));
    }

    #[test]
    fn the_first_forward_step_of_a_boot_is_not_counted() {
        let mut g = guard(false);
        let first = g.judge(NOW, &[sample(1, 30 * 86_400)]);
        g.close_round(&first);
        g.mark_synced();
        assert_eq!(g.alone_spent(), Duration::ZERO);
        assert!(matches!(
            g.judge(NOW, &[sample(1, 900)]),
            Verdict::Step { .. }
        ));
    }

    #[test]
    fn the_same_server_twice_is_not_a_second_opinion() {
        assert!(matches!(
            guard(true).judge(NOW, &[sample(1, 3600), sample(1, 3600)]),
            Verdict::Confirm { .. }
        ));
    }

    #[test]
    fn a_liar_is_outvoted_by_a_server_that_is_in_step() {
        assert_eq!(
            guard(true).judge(NOW, &[sample(1, 86_400), sample(2, 0)]),
            Verdict::InStep { offset_ns: 0 }
        );
        assert!(matches!(
            guard(true).judge(NOW, &[sample(1, 86_400), sample(2, 5_000)]),
            Verdict::Confirm { .. }
        ));
    }

    #[test]
    fn the_clock_never_goes_back_past_the_saved_time() {
        // One server, unsynced, two hours back: past the floor (one hour back).
        assert_eq!(
            guard(false).judge(NOW, &[sample(1, -7200)]),
            Verdict::Confirm {
                offset_ns: -7200 * SEC
            }
        );
        // Even two servers agreeing cannot do it.
        assert_eq!(
            guard(true).judge(NOW, &[sample(1, -7200), sample(2, -7200)]),
            Verdict::BeforeFloor {
                offset_ns: -7200 * SEC
            }
        );
        // A backward step within the bound and after the floor is fine.
        assert!(matches!(
            guard(true).judge(NOW, &[sample(1, -600)]),
            Verdict::Step { offset_ns, .. } if offset_ns == -600 * SEC
        ));
    }

    #[test]
    fn no_answer_asks_for_more() {
        assert!(matches!(
            guard(false).judge(NOW, &[]),
            Verdict::Confirm { .. }
        ));
    }
}
