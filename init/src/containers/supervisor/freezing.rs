//! Frozen instances (`scale.idle = "freeze"`): the handle names the instances to keep frozen,
//! and the driver freezes those that run and are ready and thaws the others.
//!
//! A frozen instance stays `Running` in its machine (it keeps its memory, its address and its
//! slot) but is not ready, so the rules, the front door and the published port stop sending to
//! it as soon as the freeze begins; its health task is stopped, since a frozen process cannot
//! answer. Thawed, it is ready at once (it was healthy when it froze) and its checks start over
//! fast, with a fresh grace ([`Event::Thawed`]). One freeze or thaw per instance is under way
//! at a time; its number (`op`) tells a late result from the current one. A failed freeze
//! leaves the instance running; a failed thaw leaves it frozen, so it is restarted (the stop
//! kills it if it cannot be thawed). Stopping a frozen instance thaws it first
//! ([`Driver::thaw_for_signal`]).

use baton_api::events::What;
use std::collections::BTreeSet;
use std::sync::Arc;

use super::effects::WorkDone;
use super::instance::{Event, Phase};
use super::state::{Driver, Key};
use super::views::ready;

/// Whether an instance is frozen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Freeze {
    /// Not frozen.
    #[default]
    Thawed,
    /// Freeze number `op` is under way.
    Freezing(u64),
    /// Frozen.
    Frozen,
    /// Thaw number `op` is under way.
    Thawing(u64),
}

impl Driver {
    /// Keeps instances `slots` of `name` frozen: see [`super::Supervisor::set_frozen`].
    pub(super) fn set_frozen(&mut self, name: &str, slots: BTreeSet<u32>) {
        let Some(svc) = self.services.get_mut(name) else {
            return;
        };
        svc.frozen = slots;
        self.converge_frozen(name);
    }

    /// Thaws `name`'s instances now: see [`super::Supervisor::thaw`]. One still freezing is
    /// thawed when its freeze ends.
    pub(super) fn thaw_now(&mut self, name: &str) {
        let Some(svc) = self.services.get_mut(name) else {
            return;
        };
        if svc.frozen.is_empty() {
            return;
        }
        svc.frozen.clear();
        self.converge_frozen(name);
    }

    /// Starts the freezes and thaws that bring `name`'s instances in line with its frozen set.
    fn converge_frozen(&mut self, name: &str) {
        let Some(svc) = self.services.get(name) else {
            return;
        };
        let mut freeze = Vec::new();
        let mut thaw = Vec::new();
        for (slot, s) in &svc.slots {
            let wanted = svc.frozen.contains(slot) && !svc.removing;
            match s.freeze {
                Freeze::Thawed if wanted && ready(&svc.spec, s) => freeze.push(*slot),
                Freeze::Frozen if !wanted => thaw.push(*slot),
                _ => {}
            }
        }
        let changed = !freeze.is_empty() || !thaw.is_empty();
        for slot in freeze {
            self.start_freeze(name, slot, true);
        }
        for slot in thaw {
            self.start_freeze(name, slot, false);
        }
        if changed {
            self.refresh(name);
        }
    }

    /// Freezes (`frozen`) or thaws instance `slot` in the background.
    fn start_freeze(&mut self, name: &str, slot: u32, frozen: bool) {
        let (Some(key), Ok(runtime)) = (self.key(name, slot), self.kit.runtime.clone()) else {
            return;
        };
        let op = self.next_uid;
        self.next_uid += 1;
        let Some(s) = self.slot_mut(name, slot) else {
            return;
        };
        if frozen {
            s.freeze = Freeze::Freezing(op);
            if let Some(h) = s.health.take() {
                h.abort();
            }
        } else {
            s.freeze = Freeze::Thawing(op);
        }
        let id = Self::id(name, slot);
        let results = self.work.clone();
        tokio::spawn(async move {
            let result = runtime.freeze(&id, frozen).await.map_err(|e| e.to_string());
            let _ = results.send(WorkDone::Froze {
                key,
                op,
                frozen,
                result,
            });
        });
    }

    /// A freeze or thaw finished.
    pub(super) fn froze(&mut self, key: &Key, op: u64, frozen: bool, result: Result<(), String>) {
        let (name, slot) = (key.service.as_str(), key.slot);
        let state = self
            .current(key)
            .then(|| self.slot_mut(name, slot).map(|s| s.freeze))
            .flatten();
        let expected = if frozen {
            Freeze::Freezing(op)
        } else {
            Freeze::Thawing(op)
        };
        if state != Some(expected) {
            // A late result: the instance was stopped, or ended, meanwhile. A freeze that
            // landed after that must not keep a stopping instance from its signal.
            if frozen && result.is_ok() && state == Some(Freeze::Thawed) {
                self.undo_late_freeze(name, slot);
            }
            return;
        }
        let id = Self::id(name, slot);
        match (frozen, result) {
            (true, Ok(())) => {
                self.set_state(name, slot, Freeze::Frozen);
                self.snapshot.bus.raise(What::InstanceFrozen {
                    service: name.to_string(),
                    instance: id,
                });
            }
            (false, Ok(())) => {
                self.resume(key);
                self.snapshot.bus.raise(What::InstanceThawed {
                    service: name.to_string(),
                    instance: id,
                });
            }
            (true, Err(e)) => {
                self.console
                    .line(format_args!("{id}: not frozen, it keeps running: {e}"));
                // Not tried again until the next call asks again (no retry loop).
                if let Some(svc) = self.services.get_mut(name) {
                    svc.frozen.remove(&slot);
                }
                self.resume(key);
            }
            (false, Err(e)) => {
                self.console
                    .line(format_args!("{id}: cannot thaw it, restarting it: {e}"));
                self.set_state(name, slot, Freeze::Frozen);
                if let Some(s) = self.slot_mut(name, slot) {
                    s.replace = true;
                }
                self.feed(name, slot, Event::Stop);
                self.settle(name);
                return;
            }
        }
        self.converge_frozen(name);
        self.refresh(name);
    }

    fn set_state(&mut self, name: &str, slot: u32, freeze: Freeze) {
        if let Some(s) = self.slot_mut(name, slot) {
            s.freeze = freeze;
        }
    }

    /// Back to running after a thaw or a failed freeze: ready if it was, and checked again
    /// from now, fast, with a fresh grace.
    fn resume(&mut self, key: &Key) {
        let (name, slot) = (key.service.as_str(), key.slot);
        self.set_state(name, slot, Freeze::Thawed);
        let health = self.health_task(key);
        if let Some(s) = self.slot_mut(name, slot) {
            if let Some(old) = std::mem::replace(&mut s.health, health) {
                old.abort();
            }
        }
        self.feed(name, slot, Event::Thawed);
    }

    /// Thaws an instance whose freeze landed after it was stopped.
    fn undo_late_freeze(&mut self, name: &str, slot: u32) {
        let Ok(runtime) = self.kit.runtime.clone() else {
            return;
        };
        let id = Self::id(name, slot);
        let console = Arc::clone(&self.console);
        tokio::spawn(async move {
            if let Err(e) = runtime.freeze(&id, false).await {
                console.line(format_args!("supervisor: {e}"));
            }
        });
    }

    /// Whether instance `key` is frozen or being frozen or thawed (its health results are
    /// stale then).
    pub(super) fn is_frozen(&self, key: &Key) -> bool {
        self.services
            .get(&key.service)
            .and_then(|svc| svc.slots.get(&key.slot))
            .is_some_and(|s| s.freeze != Freeze::Thawed)
    }

    /// Before a signal: whether instance `slot` must be thawed first (it is frozen, or a freeze
    /// or thaw is under way). It counts as thawed from here on; the signal's task thaws it.
    pub(super) fn thaw_for_signal(&mut self, name: &str, slot: u32) -> bool {
        let Some(s) = self.slot_mut(name, slot) else {
            return false;
        };
        let frozen = s.freeze != Freeze::Thawed;
        s.freeze = Freeze::Thawed;
        frozen && s.machine.phase != Phase::Stopped
    }
}
