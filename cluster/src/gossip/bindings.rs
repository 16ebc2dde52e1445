//! Which key speaks for which board name: bound on first sight, kept on the data partition.
//!
//! The first verified state proof ([`super::proof`]) a board sees for a name binds the name to
//! the proof's key. From then on, state in that name is applied only under that key; a proof
//! signed by another key is refused and kept as a [`NameConflict`] for the operator, who can
//! make the cluster forget a binding (`baton boards forget <name>`) so that a board whose key
//! was lost (a new card) can join again.
//!
//! Races: two keys can reach different boards "first" for one name (two boards given the same
//! name, or a key holder racing a new board). While a binding is younger than [`SETTLE_MS`],
//! the claim with the earlier `since` (ties: the smaller key) replaces it, so every board ends
//! with the same binding; once settled, a binding no longer moves. Without that, a key holder
//! could take any board's name by backdating its claim, since nothing checks a claimed time.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::board_key::{fingerprint, hex, unhex32};

/// How long a new binding can still be replaced by an earlier claim.
pub const SETTLE_MS: u64 = 10 * 60 * 1000;
/// Names bound at most; a proof for another name beyond this is refused (counted, see
/// [`Bindings::refused_full`]).
pub const MAX_BINDINGS: usize = 1024;
/// Conflicts remembered (the newest); older ones are dropped.
pub const MAX_CONFLICTS: usize = 64;

/// A name's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The board's public key, 64 hex digits.
    #[serde(with = "key_hex")]
    pub key: [u8; 32],
    /// When the board says it claimed its name with this key.
    pub since_ms: u64,
    /// When this board bound the name.
    pub bound_at_ms: u64,
    /// The highest generation the board signed its state in, as this board saw: the replay pin
    /// ([`crate::sealed`]), kept so that after a restart this board still refuses the name's
    /// datagrams from older generations. Absent in the files of the release that did not save
    /// it; that release reads the files of this one and ignores it (serde skips unknown fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_generation: Option<u64>,
}

/// A proof in a bound name signed by another key, refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameConflict {
    /// The name.
    pub name: String,
    /// Fingerprint of the key the name is bound to.
    pub bound: String,
    /// Fingerprint of the key that claimed it too.
    pub claimed: String,
    /// When the refused proof arrived (unix ms).
    pub at_ms: u64,
}

/// What a proof's key did to the bindings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The name was unbound and is now bound to the key.
    Bound,
    /// The name was already bound to this key.
    Same,
    /// An unsettled binding lost to this earlier claim.
    Replaced(Binding),
    /// Bound to another key: refused.
    Conflict(NameConflict),
    /// No room for another name: refused.
    Full,
}

impl Verdict {
    /// Whether the key now speaks for the name.
    pub fn accepted(&self) -> bool {
        matches!(self, Verdict::Bound | Verdict::Same | Verdict::Replaced(_))
    }

    /// Whether the bindings changed (and should be saved).
    pub fn changed(&self) -> bool {
        matches!(self, Verdict::Bound | Verdict::Replaced(_))
    }
}

/// The bindings this board holds, and the conflicts it refused.
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    map: BTreeMap<String, Binding>,
    conflicts: VecDeque<NameConflict>,
    full: Full,
}

/// The proofs refused because the bindings were full.
#[derive(Debug, Clone, Default)]
struct Full {
    /// Proofs refused.
    proofs: u64,
    /// Names refused, each counted once while it is among `recent`.
    names: u64,
    /// The names refused last, newest at the back (at most [`MAX_CONFLICTS`]).
    recent: VecDeque<String>,
}

impl Bindings {
    /// Bindings loaded from the data partition (at most [`MAX_BINDINGS`] are kept).
    pub fn new(map: BTreeMap<String, Binding>) -> Bindings {
        Bindings {
            map: map.into_iter().take(MAX_BINDINGS).collect(),
            conflicts: VecDeque::new(),
            full: Full::default(),
        }
    }

    /// The binding of `name`.
    pub fn get(&self, name: &str) -> Option<&Binding> {
        self.map.get(name)
    }

    /// Every binding, by name.
    pub fn all(&self) -> &BTreeMap<String, Binding> {
        &self.map
    }

    /// Names refused because [`MAX_BINDINGS`] were bound: how many (a name that keeps sending
    /// proofs counts once, while it is among the last [`MAX_CONFLICTS`] refused), and the latest.
    pub fn refused_full(&self) -> (u64, Option<&str>) {
        (self.full.names, self.full.recent.back().map(String::as_str))
    }

    /// Proofs refused because [`MAX_BINDINGS`] were bound.
    pub fn proofs_refused_full(&self) -> u64 {
        self.full.proofs
    }

    /// Conflicts refused, oldest first.
    pub fn conflicts(&self) -> impl Iterator<Item = &NameConflict> {
        self.conflicts.iter()
    }

    /// Forgets `name`'s binding (and its conflicts); the next proof in that name binds again.
    pub fn forget(&mut self, name: &str) -> Option<Binding> {
        self.conflicts.retain(|c| c.name != name);
        self.map.remove(name)
    }

    /// The key bound to `name` signed state in `generation`: its pin rises to it. Returns whether
    /// it rose (and the bindings should be saved).
    pub fn pin(&mut self, name: &str, generation: u64) -> bool {
        match self.map.get_mut(name) {
            Some(bound) if bound.pinned_generation.is_none_or(|p| p < generation) => {
                bound.pinned_generation = Some(generation);
                true
            }
            _ => false,
        }
    }

    /// A verified proof says `key` speaks for `name`, which it claimed at `since_ms`.
    pub fn check(&mut self, name: &str, key: [u8; 32], since_ms: u64, now_ms: u64) -> Verdict {
        let full = self.map.len() >= MAX_BINDINGS;
        let claim = Binding {
            key,
            since_ms,
            bound_at_ms: now_ms,
            pinned_generation: None,
        };
        let Some(bound) = self.map.get_mut(name) else {
            if full {
                self.full.refused(name);
                return Verdict::Full;
            }
            self.map.insert(name.to_owned(), claim);
            return Verdict::Bound;
        };
        if bound.key == key {
            return Verdict::Same;
        }
        let settled = now_ms.saturating_sub(bound.bound_at_ms) >= SETTLE_MS;
        if !settled && (since_ms, key) < (bound.since_ms, bound.key) {
            return Verdict::Replaced(std::mem::replace(bound, claim));
        }
        let conflict = NameConflict {
            name: name.to_owned(),
            bound: fingerprint(&bound.key),
            claimed: fingerprint(&key),
            at_ms: now_ms,
        };
        self.conflicts
            .retain(|c| (&c.name, &c.claimed) != (&conflict.name, &conflict.claimed));
        if self.conflicts.len() >= MAX_CONFLICTS {
            self.conflicts.pop_front();
        }
        self.conflicts.push_back(conflict.clone());
        Verdict::Conflict(conflict)
    }
}

impl Full {
    fn refused(&mut self, name: &str) {
        self.proofs = self.proofs.saturating_add(1);
        if let Some(at) = self.recent.iter().position(|n| n == name) {
            // Known: it moves to the back, so that it stays counted once.
            if let Some(known) = self.recent.remove(at) {
                self.recent.push_back(known);
            }
            return;
        }
        self.names = self.names.saturating_add(1);
        if self.recent.len() >= MAX_CONFLICTS {
            self.recent.pop_front();
        }
        self.recent.push_back(name.to_owned());
    }
}

/// Serde of a key as 64 hex digits.
mod key_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(key: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::hex(key))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        super::unhex32(&text)
            .ok_or_else(|| serde::de::Error::custom("a board key is 64 hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_key_binds_and_another_is_refused_once_settled() {
        let mut b = Bindings::default();
        assert_eq!(b.check("pi-1", [1; 32], 100, 1_000), Verdict::Bound);
        assert_eq!(b.check("pi-1", [1; 32], 100, 2_000), Verdict::Same);
        let later = 1_000 + SETTLE_MS;
        let v = b.check("pi-1", [2; 32], 0, later);
        assert!(
            matches!(&v, Verdict::Conflict(c) if c.claimed == fingerprint(&[2; 32])),
            "a backdated claim cannot take a settled name: {v:?}"
        );
        assert!(!v.accepted());
        assert_eq!(b.get("pi-1").map(|x| x.key), Some([1; 32]));
        assert_eq!(b.conflicts().count(), 1);
        b.check("pi-1", [2; 32], 0, later + 1);
        assert_eq!(b.conflicts().count(), 1, "the same conflict is kept once");
    }

    #[test]
    fn an_earlier_claim_wins_a_race_while_the_binding_is_young() {
        let mut b = Bindings::default();
        b.check("pi-1", [5; 32], 200, 1_000);
        let v = b.check("pi-1", [9; 32], 100, 2_000);
        assert!(
            matches!(v, Verdict::Replaced(ref old) if old.key == [5; 32]),
            "{v:?}"
        );
        assert!(v.changed());
        assert!(
            matches!(b.check("pi-1", [5; 32], 200, 3_000), Verdict::Conflict(_)),
            "the later claim loses everywhere"
        );
        // Equal times: the smaller key wins, whichever arrives first.
        let mut b = Bindings::default();
        b.check("pi-2", [9; 32], 100, 0);
        assert!(matches!(
            b.check("pi-2", [3; 32], 100, 1),
            Verdict::Replaced(_)
        ));
        assert!(matches!(
            b.check("pi-2", [9; 32], 100, 2),
            Verdict::Conflict(_)
        ));
    }

    #[test]
    fn forgetting_lets_a_new_key_bind_and_the_table_is_capped() {
        let mut b = Bindings::default();
        b.check("pi-1", [1; 32], 0, 0);
        b.check("pi-1", [2; 32], 0, SETTLE_MS);
        assert!(b.forget("pi-1").is_some());
        assert_eq!(b.conflicts().count(), 0);
        assert_eq!(b.check("pi-1", [2; 32], 0, SETTLE_MS), Verdict::Bound);
        for i in 0..MAX_BINDINGS {
            b.check(&format!("n{i}"), [3; 32], 0, 0);
        }
        assert_eq!(b.all().len(), MAX_BINDINGS);
        assert_eq!(b.check("one-more", [4; 32], 0, 0), Verdict::Full);
        for _ in 0..MAX_CONFLICTS + 5 {
            b.check("pi-1", [7; 32], 0, 10 * SETTLE_MS);
        }
        for i in 0..MAX_CONFLICTS + 5 {
            b.check(&format!("n{i}"), [8; 32], 0, 10 * SETTLE_MS);
        }
        assert_eq!(b.conflicts().count(), MAX_CONFLICTS);
    }

    #[test]
    fn names_refused_for_want_of_room_are_counted_once_each() {
        let mut b = Bindings::new(
            (0..MAX_BINDINGS)
                .map(|i| {
                    let binding = Binding {
                        key: [1; 32],
                        since_ms: 0,
                        bound_at_ms: 0,
                        pinned_generation: None,
                    };
                    (format!("n{i}"), binding)
                })
                .collect(),
        );
        assert_eq!(b.refused_full(), (0, None));
        for _ in 0..3 {
            assert_eq!(b.check("late", [2; 32], 0, 0), Verdict::Full);
        }
        assert_eq!(b.refused_full(), (1, Some("late")));
        assert_eq!(b.proofs_refused_full(), 3);
        b.check("later", [3; 32], 0, 0);
        b.check("late", [2; 32], 0, 0);
        assert_eq!(b.refused_full(), (2, Some("late")));
        // Many names: the memory of them stays bounded.
        for i in 0..3 * MAX_CONFLICTS {
            b.check(&format!("junk{i}"), [4; 32], 0, 0);
        }
        assert_eq!(b.refused_full().0, 2 + 3 * MAX_CONFLICTS as u64);
        assert!(b.full.recent.len() <= MAX_CONFLICTS);
        // Room again: the next one binds.
        b.forget("n0");
        assert_eq!(b.check("late", [2; 32], 0, 0), Verdict::Bound);
    }

    #[test]
    fn bindings_save_as_json_with_hex_keys() {
        let mut b = Bindings::default();
        b.check("pi-1", [0xab; 32], 7, 9);
        let json = serde_json::to_string(b.all()).expect("json");
        assert!(json.contains(&"ab".repeat(32)), "{json}");
        let back: BTreeMap<String, Binding> = serde_json::from_str(&json).expect("reads");
        assert_eq!(&back, b.all());
        let bad = json.replace(&"ab".repeat(32), "zz");
        assert!(serde_json::from_str::<BTreeMap<String, Binding>>(&bad).is_err());
    }

    #[test]
    fn the_pin_only_rises_is_saved_and_files_of_either_release_read() {
        let mut b = Bindings::default();
        assert!(!b.pin("pi-1", 3), "no pin without a binding");
        b.check("pi-1", [1; 32], 0, 0);
        assert!(b.pin("pi-1", 5));
        assert!(!b.pin("pi-1", 5));
        assert!(!b.pin("pi-1", 4), "an older proof does not lower it");
        assert_eq!(b.get("pi-1").and_then(|x| x.pinned_generation), Some(5));
        let json = serde_json::to_string(b.all()).expect("json");
        let back: BTreeMap<String, Binding> = serde_json::from_str(&json).expect("reads");
        assert_eq!(&back, b.all(), "the pin is saved");
        // The previous release's file has no pin.
        let previous = format!(
            r#"{{"pi-1":{{"key":"{}","since_ms":0,"bound_at_ms":0}}}}"#,
            "01".repeat(32)
        );
        let read: BTreeMap<String, Binding> = serde_json::from_str(&previous).expect("reads");
        assert_eq!(read.get("pi-1").map(|x| x.pinned_generation), Some(None));
        // The previous release reads this one's file: its binding had these fields only, and
        // serde's derive skips the others.
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct PreviousBinding {
            #[serde(with = "key_hex")]
            key: [u8; 32],
            since_ms: u64,
            bound_at_ms: u64,
        }
        let old: BTreeMap<String, PreviousBinding> =
            serde_json::from_str(&json).expect("the previous release reads it");
        assert_eq!(old.get("pi-1").map(|x| x.key), Some([1; 32]));
        // A claim that replaces an unsettled binding starts without a pin.
        b.check("pi-1", [0; 32], 0, 1);
        assert_eq!(b.get("pi-1").and_then(|x| x.pinned_generation), None);
    }
}
