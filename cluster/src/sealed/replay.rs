//! Replay windows: per sender, the counters seen in each of its recent generations.
//!
//! A sender's generation grows with every start of the board, and its counter with every
//! datagram. A datagram whose (generation, counter) was seen, or fell behind its generation's
//! 64-datagram window, is a replay.
//!
//! # Why several generations per sender, and pinning
//! Any holder of the cluster key can seal datagrams in any name. If one generation per name were
//! kept and a higher one replaced it, a key holder could send one datagram in a board's name with
//! a higher generation and so make every receiver drop the real board's datagrams as stale. So a
//! sender keeps up to [`GENERATIONS`] windows, the least recently used dropped first, and the
//! gossip layer *pins* the generation whose state a board signed with its own key
//! ([`Windows::confirm`]): a pinned window is never evicted, and generations below it are stale.
//! A sender without a pinned generation (a board of the previous release, which signs nothing)
//! keeps the old rule: generations below the highest seen are stale. The gossip layer saves each
//! pin with the name's key binding and confirms it again at start, so a receiver that restarts
//! keeps refusing the older generations.

use std::collections::HashMap;

/// Width of a replay window, in datagrams.
pub(crate) const WINDOW: u64 = 64;
/// Generations kept per sender.
pub(crate) const GENERATIONS: usize = 4;
/// Senders remembered; beyond that the least recently heard is forgotten.
pub(crate) const MAX_TRACKED_SENDERS: usize = 1024;

/// Why a (generation, counter) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Seen, or behind its generation's window.
    Replayed,
    /// Below the sender's pinned generation (or, unpinned, its highest).
    Stale,
}

#[derive(Debug)]
struct Window {
    generation: u64,
    /// Highest counter accepted.
    top: u64,
    /// Bit i set: counter `top - i` was accepted.
    seen: u64,
    last_tick: u64,
}

impl Window {
    fn new(generation: u64, counter: u64, tick: u64) -> Window {
        Window {
            generation,
            top: counter,
            seen: 1,
            last_tick: tick,
        }
    }

    fn accept(&mut self, counter: u64, tick: u64) -> Result<(), Refused> {
        if counter > self.top {
            let shift = counter - self.top;
            self.seen = if shift >= WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.top = counter;
        } else {
            let age = self.top - counter;
            if age >= WINDOW || self.seen & (1 << age) != 0 {
                return Err(Refused::Replayed);
            }
            self.seen |= 1 << age;
        }
        self.last_tick = tick;
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Sender {
    windows: Vec<Window>,
    pinned: Option<u64>,
    /// The name is bound to a board key: no "highest generation wins" floor before a pin (a
    /// receiver that restarted has none yet, and a key holder's high generation must not make
    /// the board's own datagrams, proofs included, stale).
    signed: bool,
    last_tick: u64,
}

/// The replay state of every sender.
#[derive(Debug, Default)]
pub(crate) struct Windows {
    senders: HashMap<String, Sender>,
    tick: u64,
}

impl Windows {
    /// Accepts `(generation, counter)` from `name` once.
    pub(crate) fn check(
        &mut self,
        name: &str,
        generation: u64,
        counter: u64,
    ) -> Result<(), Refused> {
        self.tick += 1;
        let tick = self.tick;
        if !self.senders.contains_key(name) && self.senders.len() >= MAX_TRACKED_SENDERS {
            // Signing senders go last: junk names must not push a board's pin out.
            let oldest = self
                .senders
                .iter()
                .min_by_key(|(_, s)| (s.signed, s.last_tick))
                .map(|(n, _)| n.clone());
            if let Some(oldest) = oldest {
                self.senders.remove(&oldest);
            }
        }
        let sender = self.senders.entry(name.to_owned()).or_default();
        let floor = match (sender.pinned, sender.signed) {
            (Some(pinned), _) => pinned,
            (None, true) => 0,
            (None, false) => sender
                .windows
                .iter()
                .map(|w| w.generation)
                .max()
                .unwrap_or(0),
        };
        if let Some(window) = sender
            .windows
            .iter_mut()
            .find(|w| w.generation == generation)
        {
            window.accept(counter, tick)?;
            sender.last_tick = tick;
            return Ok(());
        }
        if generation < floor {
            return Err(Refused::Stale);
        }
        if sender.windows.len() >= GENERATIONS {
            let evict = sender
                .windows
                .iter()
                .enumerate()
                .filter(|(_, w)| Some(w.generation) != sender.pinned)
                .min_by_key(|(_, w)| w.last_tick)
                .map(|(i, _)| i);
            if let Some(i) = evict {
                sender.windows.swap_remove(i);
            }
        }
        if sender.pinned.is_none() && !sender.signed {
            // The old rule for unsigned senders: the new, highest generation replaces the rest.
            sender.windows.clear();
        }
        sender.windows.push(Window::new(generation, counter, tick));
        sender.last_tick = tick;
        Ok(())
    }

    /// `name` signed state in `generation` with its own key: that generation's window is kept,
    /// and lower ones are stale from now on.
    pub(crate) fn confirm(&mut self, name: &str, generation: u64) {
        let Some(sender) = self.senders.get_mut(name) else {
            return;
        };
        if sender.pinned.is_some_and(|p| p >= generation) {
            return;
        }
        sender.pinned = Some(generation);
        sender.windows.retain(|w| w.generation >= generation);
    }

    /// `name` is bound to a board key (from the saved bindings at start, or a new binding).
    pub(crate) fn expect_signed(&mut self, name: &str) {
        self.senders.entry(name.to_owned()).or_default().signed = true;
    }

    /// Forgets everything about `name` (its key binding was forgotten: a board with a new card
    /// starts its generations again from one).
    pub(crate) fn forget(&mut self, name: &str) {
        self.senders.remove(name);
    }

    /// Senders tracked.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.senders.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_and_stale_generations_are_refused_as_before_for_unsigned_senders() {
        let mut w = Windows::default();
        assert_eq!(w.check("a", 1, 1), Ok(()));
        assert_eq!(w.check("a", 1, 1), Err(Refused::Replayed));
        assert_eq!(w.check("a", 2, 1), Ok(()), "a restart");
        assert_eq!(w.check("a", 1, 2), Err(Refused::Stale));
        for c in 2..=WINDOW + 2 {
            assert_eq!(w.check("a", 2, c), Ok(()));
        }
        assert_eq!(
            w.check("a", 2, 1),
            Err(Refused::Replayed),
            "behind the window"
        );
    }

    #[test]
    fn a_forged_higher_generation_does_not_lock_a_signed_sender_out() {
        let mut w = Windows::default();
        w.check("b", 5, 1).expect("real");
        w.confirm("b", 5);
        // A key holder floods generations above b's.
        for forged in 6..6 + 3 * GENERATIONS as u64 {
            assert_eq!(w.check("b", forged, 1), Ok(()));
            assert_eq!(w.check("b", forged, 2), Ok(()));
        }
        for c in 2..10 {
            assert_eq!(w.check("b", 5, c), Ok(()), "the real board is still heard");
        }
        assert_eq!(w.check("b", 5, 3), Err(Refused::Replayed));
        assert_eq!(
            w.check("b", 4, 1),
            Err(Refused::Stale),
            "below the pinned one"
        );
        // b really restarts and signs again: the old generation is stale now.
        w.check("b", 30, 1).expect("restart");
        w.confirm("b", 30);
        assert_eq!(w.check("b", 5, 20), Err(Refused::Stale));
        w.confirm("b", 7);
        assert_eq!(
            w.check("b", 30, 2),
            Ok(()),
            "confirming an older one changes nothing"
        );
        w.forget("b");
        assert_eq!(w.check("b", 1, 1), Ok(()), "a new card starts again at one");
    }

    #[test]
    fn a_bound_name_is_not_locked_out_before_its_pin_and_outlives_junk() {
        let mut w = Windows::default();
        // A receiver that restarted knows the binding, not the pin; a key holder comes first.
        w.expect_signed("b");
        assert_eq!(w.check("b", 1_700_000_000, 1), Ok(()));
        assert_eq!(
            w.check("b", 7, 1),
            Ok(()),
            "the board's own generation is heard"
        );
        w.confirm("b", 7);
        for i in 0..MAX_TRACKED_SENDERS + 10 {
            w.check(&format!("junk{i}"), 1, 1).expect("junk");
        }
        assert_eq!(w.check("b", 7, 2), Ok(()), "its window survived the junk");
        assert_eq!(w.check("b", 7, 2), Err(Refused::Replayed));
    }

    #[test]
    fn senders_are_bounded() {
        let mut w = Windows::default();
        for i in 0..MAX_TRACKED_SENDERS + 10 {
            w.check(&format!("n{i}"), 1, 1).expect("first");
        }
        assert_eq!(w.len(), MAX_TRACKED_SENDERS);
    }
}
