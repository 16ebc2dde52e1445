//! Deterministic placement of service instances on boards.
//!
//! Every board runs [`place`] on the same gossiped inputs and gets the same [`Assignment`]: which
//! board runs which instance of which service, and why an instance that could not be placed is
//! not running. Nothing here does I/O; the caller gathers the inputs and acts on the output.
//!
//! # Inputs
//!
//! * **Members** ([`Member`]): every board the cluster knows, alive or dead, with the CPU and
//!   memory it offers to services in total (its [`capacity`](Member::capacity), not what is free
//!   right now: placement accounts for the instances it assigns itself) and its labels
//!   (`[board] labels` in `cluster.toml`).
//! * **Services** ([`Service`]): how many instances to run (`scale.min`, zero allowed), what each
//!   instance needs, and its [`Constraints`]: allowed boards (`placement.boards`, empty = any),
//!   required labels (`placement.labels`, every one must match) and whether instances spread.
//! * **The previous assignment**, so that running instances stay where they are.
//!
//! # Determinism
//!
//! Members are sorted by name and services by size (memory, then CPU, largest first), then by
//! name, so the order of the inputs never matters. All arithmetic is on integers, all maps are
//! ordered, and every tie is broken by board name, service order or instance index. Member or
//! service names that occur twice are an error ([`PlacementError`]) rather than a silent choice.
//!
//! # The algorithm
//!
//! A board's *load* is its dominant share: the larger of CPU used / CPU capacity and memory
//! used / memory capacity, in parts per million. One round of [`place`] does this:
//!
//! 1. **Keep.** Services in order, instances by index: an instance of the previous assignment
//!    stays on its board if the board is an alive member, satisfies the service's constraints and
//!    still has room. Instances whose index is at or above the new count are dropped (scaling
//!    down removes the highest indexes).
//! 2. **Place.** Every instance still without a board goes, in the same order, to the eligible
//!    board (alive, allowed, labels match, enough CPU and memory free) with, in this order of
//!    preference: the fewest instances of the same service (for spread services), the lowest load
//!    after placing it, the smallest name.
//!    A service with no instance at all and a [`Service::prefer`] board that is eligible and has
//!    room places its first instance there, unless a balance move would take it away again (the
//!    board holding requests for a service woken from zero starts it without waiting for
//!    another board). Step 3 treats it like any new instance.
//! 3. **Settle.** The instances placed in step 2 are not running yet, so moving them costs
//!    nothing: balance moves (below) are applied to them until none applies. If step 3 made room,
//!    step 2 runs again for what is still unplaced, and so on until step 2 places nothing more.
//! 4. **Rebalance.** Only in a round where step 2 placed nothing (the cluster is otherwise
//!    settled), at most **one** running instance moves by a balance move. So a dead board moves
//!    only its own instances, and a new board takes over work one instance per round.
//!
//! A *balance move* takes one instance from board S to board D (D eligible, with room for it):
//!
//! * a **spread move** when the service spreads and S has at least two more of its instances than
//!   D (first service in order, highest index first; D with the fewest instances, then lowest
//!   load, then name);
//! * otherwise a **load move** when D's load after the move is at least [`BALANCE_MARGIN_PPM`]
//!   below S's load before it, S's load falls, and (for spread services) D has fewer instances of
//!   the service than S. Boards are tried from the most loaded down (ties by name); on the first
//!   board that has one, the move whose larger resulting load (of S and D) is smallest wins, ties
//!   by service order, instance index and board name.
//!
//! Every move lowers the pair (sum over services and boards of the squared instance counts of
//! spread services, the load vector sorted from the highest) in lexicographic order, so moves
//! cannot cycle. Between rounds with unchanged inputs, kept instances stay kept and the number
//! of placed instances never falls, so repeated rounds reach a state where no move applies and
//! nothing more can be placed, and rerunning from that state returns it unchanged. A fresh placement (no previous assignment) is already such a state.
//!
//! # Spread and stacking
//!
//! Spread is best effort: instances of a spread service go to distinct boards while there are
//! eligible boards with room. When a service asks for more instances than that, instances stack
//! (two on the board with the fewest, and so on) rather than stay unplaced; a later spread move
//! separates them when a board joins.
//!
//! # Using it
//!
//! Run a round whenever an input changes, and at a steady pace while the output still changes
//! (for example once the instance moved by the last round serves again, or every few seconds),
//! feeding each output back as the next `previous`: the pace is what bounds how fast work
//! moves to a new board. A round that changes nothing is cheap. Every board must use the same
//! `previous` for the boards to agree, so it belongs to the gossiped state (or is the last output
//! every board computed from the same gossiped inputs). Instances are numbered from 0; an
//! instance keeps its index when it moves.
//!
//! # What placement does not do
//!
//! It never evicts a running instance to make room for another one, and it never places an
//! instance on a board that lacks the room: an instance that fits nowhere is reported in
//! [`ServiceAssignment::unplaced`] with an [`Unplaced`] reason that says why, in words a user
//! understands.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

mod balance;
mod reason;
mod state;

#[cfg(test)]
mod prefer_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use reason::Unplaced;

/// How far (in parts per million of a board's capacity) a load move must bring the destination's
/// load below the source's: 10 percentage points. Smaller gains are not worth moving a running
/// instance.
pub const BALANCE_MARGIN_PPM: u64 = 100_000;

/// The most instances one service may ask for.
pub const MAX_INSTANCES: u32 = 4096;

/// An amount of CPU and memory: what a board offers to services, or what one instance needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resources {
    /// CPU in millicores (1000 = one core).
    pub cpu_millis: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
}

/// A board of the cluster, as membership sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The board's name (its host name); unique in the cluster.
    pub name: String,
    /// Whether membership considers the board alive. Dead boards get no instances.
    pub alive: bool,
    /// What the board offers to services in total.
    pub capacity: Resources,
    /// The board's labels, from `[board] labels` in `cluster.toml`.
    pub labels: BTreeMap<String, String>,
}

/// Where the instances of a service may run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraints {
    /// Names of the boards instances may run on; any board when empty.
    pub boards: Vec<String>,
    /// Labels a board must carry, every one with this value.
    pub labels: BTreeMap<String, String>,
    /// Put instances on distinct boards while possible (see the module docs on stacking).
    pub spread: bool,
}

/// A service to place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// The service's name; unique in the cluster.
    pub name: String,
    /// How many instances to run (`scale.min`); zero is allowed.
    pub instances: u32,
    /// What each instance needs.
    pub resources: Resources,
    /// Where instances may run.
    pub constraints: Constraints,
    /// The board the first instance goes to when the service has none (the board that holds
    /// requests for it, waking it from zero), if that board is eligible, has room, and no
    /// balance move would take the instance away again.
    #[serde(default)]
    pub prefer: Option<String>,
}

/// Everything placement depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// Every board the cluster knows, alive or dead, in any order.
    pub members: Vec<Member>,
    /// Every service, in any order.
    pub services: Vec<Service>,
    /// The assignment of the previous round (empty at first); only its instances are read.
    pub previous: Assignment,
}

/// The result of placement: for each service, where its instances run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// By service name; every input service has an entry.
    pub services: BTreeMap<String, ServiceAssignment>,
}

/// Where the instances of one service run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAssignment {
    /// Instance index → board name, for the instances that have a board.
    pub instances: BTreeMap<u32, String>,
    /// Instance index → why it has no board.
    pub unplaced: BTreeMap<u32, Unplaced>,
}

impl Assignment {
    /// The board that runs instance `instance` of `service`, if any.
    pub fn board_of(&self, service: &str, instance: u32) -> Option<&str> {
        self.services
            .get(service)
            .and_then(|s| s.instances.get(&instance))
            .map(String::as_str)
    }

    /// The instances (service name, index) that `board` runs, in order.
    pub fn on_board(&self, board: &str) -> Vec<(&str, u32)> {
        self.services
            .iter()
            .flat_map(|(name, s)| {
                s.instances
                    .iter()
                    .filter(move |(_, b)| b.as_str() == board)
                    .map(move |(i, _)| (name.as_str(), *i))
            })
            .collect()
    }
}

/// Why placement could not run at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// Two members carry the same name.
    #[error("cannot place services: board name {name:?} occurs twice in the member list")]
    DuplicateMember {
        /// The name.
        name: String,
    },
    /// Two services carry the same name.
    #[error("cannot place services: service name {name:?} occurs twice")]
    DuplicateService {
        /// The name.
        name: String,
    },
    /// A service asks for more instances than placement handles.
    #[error(
        "cannot place service {name:?}: {count} instances asked, at most {MAX_INSTANCES} supported"
    )]
    TooManyInstances {
        /// The service.
        name: String,
        /// How many it asked for.
        count: u32,
    },
}

/// Computes one round of placement (see the module docs for the rules).
pub fn place(input: &Input) -> Result<Assignment, PlacementError> {
    let mut st = state::State::new(&input.members, &input.services)?;
    st.keep(&input.previous);
    let mut placed = BTreeSet::new();
    let reasons = loop {
        let (now, failed) = st.place_pending();
        if now.is_empty() {
            break failed;
        }
        placed.extend(now);
        balance::settle(&mut st, &placed);
        if failed.is_empty() {
            break failed;
        }
    };
    if placed.is_empty() {
        if let Some(m) = balance::find_move(&st, |_, _| true) {
            st.apply(m);
        }
    }
    Ok(st.into_assignment(reasons))
}
