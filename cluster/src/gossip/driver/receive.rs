//! What the endpoint does with an opened datagram: foca packets pass the sanitizer, states wait
//! for their proofs, proofs bind names and raise vouches.

use foca::Member;

use super::super::bindings::Verdict;
use super::super::proof::{payload_digest, StateProof};
use super::super::sanitize::{sanitize, Sanitized};
use super::super::table::Signer;
use super::super::values::ValuesError;
use super::super::wire::{self, StateMessage};
use super::Driver;
use crate::plausible::{highest_generation, latest_time, wall_ms};

/// Opened datagrams this endpoint dropped, by reason (published in [`crate::sealed::DropCounts`]).
#[derive(Debug, Default)]
pub(super) struct Refused {
    pub(super) proofs: u64,
    pub(super) states: u64,
    pub(super) kinds: u64,
    pub(super) membership: u64,
}

fn add(count: &mut u64) {
    *count = count.saturating_add(1);
}

impl Driver {
    pub(super) fn on_datagram(&mut self, datagram: &[u8]) {
        let opened = self.opener.open(datagram);
        self.publish_drops();
        let Ok(opened) = opened else { return };
        if opened.sender == self.name {
            return;
        }
        self.table.heard(&opened.sender, std::time::Instant::now());
        match opened.payload.split_first() {
            Some((&wire::KIND_FOCA, packet)) => self.on_foca(packet),
            Some((&wire::KIND_STATE, body)) => {
                let digest = payload_digest(&opened.payload);
                self.on_state(&opened.sender, opened.generation, body, digest);
            }
            Some((&wire::KIND_PROOF, body)) => {
                self.on_proof(&opened.sender, opened.generation, body);
            }
            _ => {
                add(&mut self.refused.kinds);
                self.publish_drops();
            }
        }
    }

    /// A foca packet: sanitized, then handed to foca. A bound name's identity that was dropped or
    /// stripped gets this node's proof (an introduction: the board may have restarted, or
    /// renewed while its proof was lost, and answers with its own).
    fn on_foca(&mut self, packet: &[u8]) {
        let me = self.foca.identity().clone();
        let gate = self.gate();
        let sanitized = sanitize(packet, &me, |id| gate.admits(id));
        self.sanitized.count(&sanitized);
        self.publish_drops();
        let refused = match sanitized {
            Sanitized::Keep {
                packet, stripped, ..
            } => {
                // Malformed or misdirected packets are foca's to reject; they are only counted.
                if self.foca.handle_data(&packet, &mut self.runtime).is_err() {
                    add(&mut self.refused.membership);
                    self.publish_drops();
                }
                stripped
            }
            Sanitized::Sender(id) => vec![id],
            Sanitized::Malformed => Vec::new(),
        };
        for id in refused {
            if id.name != self.name {
                self.introduce(id.addr);
            }
        }
    }

    /// A state message from `sender`. A name bound to a key shows only states its key signed,
    /// so the state waits for its proof; an unbound name (a board of the previous release, or one
    /// whose proof has not come yet) shows it at once, unsigned.
    fn on_state(&mut self, sender: &str, generation: u64, body: &[u8], digest: [u8; 32]) {
        let bound = self.bindings.get(sender).map(|b| b.key);
        let decoded = StateMessage::decode(body).and_then(|state| {
            // A board's state carries the generation its datagrams do; another one is made up
            // (and would outrank the board's real state).
            if state.generation != generation {
                return Err(ValuesError::Generation {
                    state: state.generation,
                    datagram: generation,
                });
            }
            // A test's stand-in for the previous release reads values as that release did: it
            // refuses the layout with the load table.
            #[cfg(test)]
            if !self.proofs && state.values.has_load() {
                return Err(ValuesError::Newer {
                    found: super::super::values::VALUES_VERSION,
                    known: super::super::values::VALUES_VERSION_NO_LOAD,
                });
            }
            Ok(state)
        });
        if decoded.is_err() {
            add(&mut self.refused.states);
            self.publish_drops();
        }
        let state = match decoded {
            Ok(state) => state,
            // Nobody signs what does not decode, so for a bound name it may be anyone's: a key
            // holder's refused state must not blank the board's values.
            Err(_) if bound.is_some() => return,
            Err(why) => {
                self.table.refused(sender, why);
                return;
            }
        };
        match self.pending.state(sender, state.clone(), digest) {
            Some((state, proof)) if bound == Some(proof.key) => {
                let signer = Signer {
                    key: proof.key,
                    addr: proof.addr,
                };
                self.table.state(sender, state, Some(signer));
            }
            _ if bound.is_none() => {
                self.table.state(sender, state, None);
            }
            _ => {}
        }
    }

    /// A proof from `sender`: checked, its key bound or refused, its vouch raised (foca and the
    /// table follow), and the state it covers shown.
    fn on_proof(&mut self, sender: &str, generation: u64, body: &[u8]) {
        let now_ms = wall_ms();
        let Some(proof) = StateProof::decode(body).filter(|proof| {
            proof.generation == generation
                && proof.member_generation >= proof.generation
                && proof.member_generation <= highest_generation(now_ms)
                && proof.since_ms <= latest_time(now_ms)
                && proof.verify(sender)
        }) else {
            add(&mut self.refused.proofs);
            self.publish_drops();
            return;
        };
        // A conflict already shown is not news (a key holder may repeat it every datagram).
        let claimed = crate::board_key::fingerprint(&proof.key);
        let known_conflict = self
            .bindings
            .conflicts()
            .any(|c| c.name == sender && c.claimed == claimed);
        let names_refused = self.bindings.refused_full().0;
        let verdict = self
            .bindings
            .check(sender, proof.key, proof.since_ms, now_ms);
        if verdict == Verdict::Full {
            self.publish_drops();
        }
        // The replay pin below is saved with the binding, to outlast this board's restart.
        let pinned = verdict.accepted() && self.bindings.pin(sender, generation);
        // A name already refused for want of room is not news either.
        if verdict.changed()
            || pinned
            || (matches!(verdict, Verdict::Conflict(_)) && !known_conflict)
            || self.bindings.refused_full().0 != names_refused
        {
            self.publish_bindings();
        }
        if !verdict.accepted() {
            return;
        }
        if matches!(verdict, Verdict::Replaced(_)) {
            // The old key's proofs vouched for what may have been an impostor.
            self.vouches.clear(sender);
        }
        self.opener.expect_signed(sender);
        self.opener.confirm(sender, generation);
        let vouched = self
            .vouches
            .raise(sender, proof.addr, (generation, proof.member_generation));
        if let Some(vouched) = vouched {
            self.follow_vouch(vouched);
        }
        let signer = Signer {
            key: proof.key,
            addr: proof.addr,
        };
        if let Some(state) = self.pending.proof(sender, proof) {
            // Shown before its name was bound, or new: either way now signed.
            self.table.signed(sender, &state, signer);
            self.table.state(sender, state, Some(signer));
        } else {
            // A proof sent on its own (before an announce or a renewal, or in answer to a
            // packet of this node's that it dropped): the sender may lack this node's proof.
            self.introduce(signer.addr);
        }
    }

    /// `vouched` is now the only identity admitted for its name: foca and the table follow.
    /// foca has no call to remove a member, so an identity of the name with a higher generation
    /// (a key holder's, taken before the name was bound; or the board's own from before a
    /// restart) is declared down without telling anyone and removed as its linger timer would;
    /// then the vouched identity is applied as alive (replacing a lower one, or inserted and
    /// probed; one that foca holds as down stays down, and the board renews).
    pub(super) fn follow_vouch(&mut self, vouched: super::NodeId) {
        let above: Vec<Member<super::NodeId>> = self
            .foca
            .iter_membership_state()
            .filter(|m| m.id().name == vouched.name && m.id().generation > vouched.generation)
            .map(|m| Member::new(m.id().clone(), m.incarnation(), foca::State::Down))
            .collect();
        for down in above {
            let id = down.id().clone();
            let _ = self
                .foca
                .apply_many(std::iter::once(down), false, &mut self.runtime);
            let _ = self
                .foca
                .handle_timer(foca::Timer::RemoveDown(id), &mut self.runtime);
        }
        let alive = Member::alive(vouched.clone());
        let _ = self
            .foca
            .apply_many(std::iter::once(alive), true, &mut self.runtime);
        // foca reports no change when it held the identity already; the table may not have.
        if self.foca.iter_members().any(|m| m.id() == &vouched) && self.member_up(&vouched) {
            self.greet.push(vouched.addr);
        }
    }

    pub(super) fn publish_bindings(&mut self) {
        {
            let mut shared = super::lock(&self.shared);
            shared.bindings = self.bindings.all().clone();
            shared.conflicts = self.bindings.conflicts().cloned().collect();
            let (names, last) = self.bindings.refused_full();
            shared.refused_full = (names, last.map(str::to_owned));
        }
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}
