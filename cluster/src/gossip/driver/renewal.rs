//! The endpoint's own identity and proof: which identities it admits, when it sends its proof
//! unasked, and how it renews its membership identity.
//!
//! foca never renews by itself (see [`super::super::identity`]): when the cluster declares this
//! node down, foca goes defunct and the endpoint renews, within [`super::super::limits::RENEWALS`]. It signs the
//! renewed identity's proof first and sends it to every alive member, then lets foca take the new
//! identity, so receivers that bound this node's name admit it as soon as foca's packets carry it.

use std::net::SocketAddr;
use std::time::Instant;

use super::super::identity::NodeId;
use super::super::proof::StateProof;
use super::super::values::BoardValues;
use super::super::vouches::Gate;
use super::super::wire::StateMessage;
use super::Driver;

impl Driver {
    pub(super) fn gate(&self) -> Gate<'_> {
        Gate {
            me: self.foca.identity(),
            bindings: &self.bindings,
            vouches: &self.vouches,
        }
    }

    /// foca says `id` is up: into the table if admissible. Returns whether the table changed.
    pub(super) fn member_up(&mut self, id: &NodeId) -> bool {
        let gate = self.gate();
        if !gate.guards(id) {
            return self.table.up(id);
        }
        gate.admits(id) && self.table.up_vouched(id)
    }

    /// Sends this node's proof to `addr` unasked (a reply or an introduction), unless one went
    /// there within the state push period or too many went out lately.
    pub(super) fn introduce(&mut self, addr: SocketAddr) {
        if self.proofs && self.introductions.allow(addr, Instant::now()) {
            self.proof_to.push(addr);
        }
    }

    /// foca went defunct (the cluster declared this node down): renew as soon as the rate
    /// allows.
    pub(super) fn defunct(&mut self) {
        if !self.leaving && self.renew_at.is_none() {
            let at = self.renewals.ready_at(Instant::now());
            self.renew_at = Some(at.into());
        }
    }

    /// Renews the membership identity: one generation up, its proof to every alive member first.
    pub(super) fn renew(&mut self) {
        self.renew_at = None;
        if self.leaving {
            return;
        }
        let now = Instant::now();
        if !self.renewals.take(now) {
            self.renew_at = Some(self.renewals.ready_at(now).into());
            return;
        }
        let highest = crate::plausible::highest_generation(crate::plausible::wall_ms());
        let Some(next) = self.foca.identity().next() else {
            return;
        };
        if next.generation > highest {
            // Receivers would not decode it; the clock catches up within a second.
            self.renew_at = Some((now + std::time::Duration::from_secs(1)).into());
            return;
        }
        if self.proofs {
            for addr in self.table.alive_addrs() {
                self.introductions.sent(addr, now);
                self.proof_to.push(addr);
            }
        }
        // Sent before foca's packets, signed for the identity foca then has (see flush).
        let _ = self.foca.change_identity(next, &mut self.runtime);
        // foca reconnects on its next update; an empty one makes that now.
        let _ = self
            .foca
            .apply_many(std::iter::empty(), true, &mut self.runtime);
        super::lock(&self.shared).member_generation = self.foca.identity().generation;
        // The owner saves it (the next start must be above it); the table may not change.
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// This node's current state and its proof (as the current membership identity), as
    /// payloads: signed once per version and member generation.
    pub(super) fn signed(&mut self) -> (Vec<u8>, Vec<u8>) {
        let (version, values) = {
            let shared = super::lock(&self.shared);
            (shared.version, shared.values.clone())
        };
        let member_generation = self.foca.identity().generation;
        match &self.signed {
            Some(s) if s.version == version && s.member_generation == member_generation => {}
            _ => {
                let sign = |values: BoardValues| {
                    let state = StateMessage {
                        generation: self.generation,
                        version,
                        values,
                    }
                    .encode();
                    let proof = StateProof::sign(
                        &self.board_key,
                        &self.name,
                        self.addr,
                        (self.generation, member_generation),
                        version,
                        &state,
                    )
                    .encode();
                    (state, proof)
                };
                let without_load = values.has_load().then(|| sign(values.without_load()));
                let (state, proof) = sign(values);
                self.signed = Some(super::Signed {
                    version,
                    member_generation,
                    state,
                    proof,
                    without_load,
                });
            }
        }
        self.signed
            .as_ref()
            .map(|s| (s.state.clone(), s.proof.clone()))
            .unwrap_or_default()
    }

    /// The state and proof for `addr`: without the load table for a board whose own state
    /// arrives unsigned (the previous release, or a board whose first proof is still on its
    /// way, which reads both), else the whole state.
    fn signed_for(&mut self, addr: SocketAddr) -> (Vec<u8>, Vec<u8>) {
        let whole = self.signed();
        let unsigned = super::lock(&self.shared)
            .members
            .iter()
            .any(|m| m.addr == addr && m.signed_by.is_none());
        match self.signed.as_ref().and_then(|s| s.without_load.as_ref()) {
            Some(without) if unsigned => without.clone(),
            _ => whole,
        }
    }

    /// Sends this board's state to `addr`, then the proof that it signed it.
    pub(super) async fn send_state(&mut self, addr: SocketAddr) {
        let (state, proof) = self.signed_for(addr);
        self.send(addr, &state).await;
        if self.proofs {
            self.introductions.sent(addr, Instant::now());
            self.send(addr, &proof).await;
        }
    }

    /// Sends the proofs queued (before foca's packets, which may carry the identity they vouch
    /// for).
    pub(super) async fn send_proofs(&mut self) {
        if self.proof_to.is_empty() {
            return;
        }
        for addr in std::mem::take(&mut self.proof_to) {
            let (_, proof) = self.signed_for(addr);
            self.send(addr, &proof).await;
        }
    }
}
