//! States and proofs that arrived without their other half yet.
//!
//! A board sends a state and then its proof; datagrams can be reordered or lost, and a key
//! holder can send unsigned states in a bound name to crowd out the real one. So each sender
//! keeps its last few states and proofs, and a pair is applied once both halves match by
//! generation, version and payload digest.

use std::collections::{BTreeMap, VecDeque};

use super::proof::StateProof;
use super::wire::StateMessage;

/// States (and proofs) kept per sender while they wait for their other half.
const PER_SENDER: usize = 4;
/// Senders with anything waiting; beyond that, a new sender's halves are dropped.
const MAX_SENDERS: usize = 1024;

#[derive(Debug, Default)]
struct Waiting {
    states: VecDeque<(StateMessage, [u8; 32])>,
    proofs: VecDeque<StateProof>,
    /// When anything last arrived for this sender, in [`Pending`] ticks.
    touched: u64,
}

/// The halves waiting, by sender.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    by_sender: BTreeMap<String, Waiting>,
    tick: u64,
}

impl Pending {
    /// The sender's halves; at the cap, the sender heard from least recently makes room (junk
    /// names cannot fill the map for good).
    fn waiting(&mut self, sender: &str) -> Option<&mut Waiting> {
        self.tick += 1;
        if !self.by_sender.contains_key(sender) && self.by_sender.len() >= MAX_SENDERS {
            let stalest = self
                .by_sender
                .iter()
                .min_by_key(|(_, w)| w.touched)
                .map(|(name, _)| name.clone());
            if let Some(stalest) = stalest {
                self.by_sender.remove(&stalest);
            }
        }
        let waiting = self.by_sender.entry(sender.to_owned()).or_default();
        waiting.touched = self.tick;
        Some(waiting)
    }

    /// A state with payload digest `digest` arrived: returns it with the proof that covers it, if
    /// one waits; otherwise keeps it.
    pub(crate) fn state(
        &mut self,
        sender: &str,
        state: StateMessage,
        digest: [u8; 32],
    ) -> Option<(StateMessage, StateProof)> {
        let waiting = self.waiting(sender)?;
        let covering = waiting
            .proofs
            .iter()
            .position(|p| p.covers(state.generation, state.version, &digest));
        if let Some(at) = covering {
            let proof = waiting.proofs.remove(at)?;
            return Some((state, proof));
        }
        push_capped(&mut waiting.states, (state, digest));
        None
    }

    /// A verified proof arrived: returns the state it covers, if it waits; otherwise keeps it.
    pub(crate) fn proof(&mut self, sender: &str, proof: StateProof) -> Option<StateMessage> {
        let waiting = self.waiting(sender)?;
        let covered = waiting
            .states
            .iter()
            .position(|(s, digest)| proof.covers(s.generation, s.version, digest));
        if let Some(at) = covered {
            return waiting.states.remove(at).map(|(state, _)| state);
        }
        push_capped(&mut waiting.proofs, proof);
        None
    }

    /// Drops what waits for `sender` (its binding was forgotten).
    pub(crate) fn forget(&mut self, sender: &str) {
        self.by_sender.remove(sender);
    }
}

fn push_capped<T>(queue: &mut VecDeque<T>, item: T) {
    if queue.len() >= PER_SENDER {
        queue.pop_front();
    }
    queue.push_back(item);
}

#[cfg(test)]
mod tests {
    use super::super::proof::payload_digest;
    use super::*;
    use crate::board_key::BoardKey;

    fn state(version: u64) -> (StateMessage, [u8; 32]) {
        let s = StateMessage {
            generation: 1,
            version,
            values: Default::default(),
        };
        let digest = payload_digest(&s.encode());
        (s, digest)
    }

    fn proof_of(s: &StateMessage) -> StateProof {
        StateProof::sign(
            &BoardKey::from_seed([1; 32], 0),
            "a",
            ([127, 0, 0, 1], 1).into(),
            (1, 1),
            s.version,
            &s.encode(),
        )
    }

    #[test]
    fn halves_meet_in_either_order_and_others_do_not_match() {
        let mut p = Pending::default();
        let (s1, d1) = state(1);
        assert!(p.state("a", s1.clone(), d1).is_none());
        assert_eq!(p.proof("a", proof_of(&s1)), Some(s1.clone()));
        let (s2, d2) = state(2);
        assert!(p.proof("a", proof_of(&s2)).is_none());
        assert!(
            p.state("b", s2.clone(), d2).is_none(),
            "another sender's proof"
        );
        assert!(p.state("a", s2.clone(), d2).is_some());
        let (s3, _) = state(3);
        assert!(
            p.state("a", s3.clone(), [0; 32]).is_none() && p.proof("a", proof_of(&s3)).is_none(),
            "a state whose bytes differ from what was signed never matches"
        );
    }

    #[test]
    fn forged_states_cannot_crowd_out_the_real_one_for_long_and_senders_are_capped() {
        let mut p = Pending::default();
        let (real, digest) = state(10);
        p.state("a", real.clone(), digest);
        for v in 0..PER_SENDER as u64 - 1 {
            let (forged, d) = state(100 + v);
            p.state("a", forged, d);
        }
        assert_eq!(p.proof("a", proof_of(&real)), Some(real));
        for i in 0..MAX_SENDERS {
            let (s, d) = state(1);
            p.state(&format!("n{i}"), s, d);
        }
        let (s, d) = state(1);
        p.state("late", s.clone(), d);
        assert_eq!(
            p.proof("late", proof_of(&s)),
            Some(s),
            "the stalest sender made room"
        );
        assert!(p.by_sender.len() <= MAX_SENDERS);
    }
}
