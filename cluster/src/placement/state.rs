//! The working state of one placement round: the boards with what is used on them, the services
//! in placement order, and the board of every instance.

use std::collections::BTreeMap;

use super::balance::Move;
use super::reason::{self, Unplaced};
use super::{
    Assignment, Member, PlacementError, Resources, Service, ServiceAssignment, MAX_INSTANCES,
};

/// An instance: (position of its service in placement order, instance index).
pub(super) type Slot = (usize, u32);

/// Loads are in parts per million of a board's capacity.
const PPM: u128 = 1_000_000;

/// A member and what the instances assigned to it use.
pub(super) struct Board<'a> {
    pub member: &'a Member,
    pub used: Resources,
}

/// Boards sorted by name, services in placement order, and where each instance is.
pub(super) struct State<'a> {
    pub boards: Vec<Board<'a>>,
    pub services: Vec<&'a Service>,
    /// `at[service][instance]`: the index in `boards` of the instance's board.
    pub at: Vec<Vec<Option<usize>>>,
}

impl<'a> State<'a> {
    /// Sorts the inputs and rejects duplicate names and oversized services.
    pub fn new(members: &'a [Member], services: &'a [Service]) -> Result<Self, PlacementError> {
        let mut ms: Vec<&Member> = members.iter().collect();
        ms.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = ms.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(PlacementError::DuplicateMember {
                name: w[0].name.clone(),
            });
        }
        let mut names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(PlacementError::DuplicateService {
                name: w[0].to_string(),
            });
        }
        if let Some(s) = services.iter().find(|s| s.instances > MAX_INSTANCES) {
            return Err(PlacementError::TooManyInstances {
                name: s.name.clone(),
                count: s.instances,
            });
        }
        let mut ss: Vec<&Service> = services.iter().collect();
        ss.sort_by(|a, b| {
            (b.resources.memory_bytes, b.resources.cpu_millis)
                .cmp(&(a.resources.memory_bytes, a.resources.cpu_millis))
                .then_with(|| a.name.cmp(&b.name))
        });
        let at = ss
            .iter()
            .map(|s| vec![None; s.instances as usize])
            .collect();
        let boards = ms
            .into_iter()
            .map(|member| Board {
                member,
                used: Resources::default(),
            })
            .collect();
        Ok(State {
            boards,
            services: ss,
            at,
        })
    }

    /// The index of the board called `name`.
    fn board_index(&self, name: &str) -> Option<usize> {
        self.boards
            .binary_search_by(|b| b.member.name.as_str().cmp(name))
            .ok()
    }

    /// Whether `board` is alive and satisfies the constraints of `svc`.
    pub fn eligible(&self, svc: usize, board: usize) -> bool {
        let (s, m) = (self.services[svc], self.boards[board].member);
        m.alive && allowed(s, m) && labels_match(s, m)
    }

    /// Whether one more instance of `svc` fits on `board`.
    pub fn fits(&self, svc: usize, board: usize) -> bool {
        let b = &self.boards[board];
        let need = self.services[svc].resources;
        let free = free(b);
        need.cpu_millis <= free.cpu_millis && need.memory_bytes <= free.memory_bytes
    }

    /// How many instances of `svc` are on each board.
    pub fn counts(&self, svc: usize) -> Vec<u32> {
        let mut counts = vec![0; self.boards.len()];
        for b in self.at[svc].iter().flatten() {
            counts[*b] += 1;
        }
        counts
    }

    /// The load of `board` now.
    pub fn load(&self, board: usize) -> u64 {
        let b = &self.boards[board];
        load(b.used, b.member.capacity)
    }

    /// The load of `board` with one more instance of `svc`.
    pub fn load_with(&self, board: usize, svc: usize) -> u64 {
        let b = &self.boards[board];
        load(add(b.used, self.services[svc].resources), b.member.capacity)
    }

    /// The load of `board` with one instance of `svc` less.
    pub fn load_without(&self, board: usize, svc: usize) -> u64 {
        let b = &self.boards[board];
        load(sub(b.used, self.services[svc].resources), b.member.capacity)
    }

    fn assign(&mut self, (svc, i): Slot, board: usize) {
        self.at[svc][i as usize] = Some(board);
        let b = &mut self.boards[board];
        b.used = add(b.used, self.services[svc].resources);
    }

    fn unassign(&mut self, (svc, i): Slot) {
        if let Some(board) = self.at[svc][i as usize].take() {
            let b = &mut self.boards[board];
            b.used = sub(b.used, self.services[svc].resources);
        }
    }

    /// Moves an instance.
    pub fn apply(&mut self, m: Move) {
        self.unassign(m.slot);
        self.assign(m.slot, m.to);
    }

    /// Step 1: keeps every previous instance whose board is alive, allowed and has room.
    pub fn keep(&mut self, previous: &Assignment) {
        for svc in 0..self.services.len() {
            let Some(prev) = previous.services.get(&self.services[svc].name) else {
                continue;
            };
            for (&i, board) in prev.instances.range(..self.services[svc].instances) {
                if let Some(b) = self.board_index(board) {
                    if self.eligible(svc, b) && self.fits(svc, b) {
                        self.assign((svc, i), b);
                    }
                }
            }
        }
    }

    /// Step 2: places every instance without a board, in order. Returns the instances placed and
    /// why the others could not be.
    pub fn place_pending(&mut self) -> (Vec<Slot>, BTreeMap<Slot, Unplaced>) {
        let mut placed = Vec::new();
        let mut failed = BTreeMap::new();
        for svc in 0..self.services.len() {
            for i in 0..self.services[svc].instances {
                if self.at[svc][i as usize].is_some() {
                    continue;
                }
                if let Some(b) = self.preferred_board(svc, i) {
                    self.assign((svc, i), b);
                    placed.push((svc, i));
                    continue;
                }
                match self.best_board(svc) {
                    Some(b) => {
                        self.assign((svc, i), b);
                        placed.push((svc, i));
                    }
                    None => {
                        failed.insert((svc, i), reason::explain(self, svc));
                    }
                }
            }
        }
        (placed, failed)
    }

    /// The service's `prefer` board, when the service has no instance anywhere and that board is
    /// eligible and has room.
    fn preferred_board(&mut self, svc: usize, i: u32) -> Option<usize> {
        let name = self.services[svc].prefer.as_deref()?;
        if self.at[svc].iter().any(Option::is_some) {
            return None;
        }
        let b = self.boards.iter().position(|b| b.member.name == name)?;
        (self.eligible(svc, b) && self.fits(svc, b) && !self.would_move((svc, i), b)).then_some(b)
    }

    /// Whether an instance of `svc` placed on `board` would be moved away by a balance move (then
    /// the preference gives way: the instance would only stop and start again elsewhere).
    fn would_move(&mut self, slot: Slot, board: usize) -> bool {
        self.assign(slot, board);
        let moves = super::balance::find_move(self, |s, i| (s, i) == slot).is_some();
        self.unassign(slot);
        moves
    }

    /// The board a new instance of `svc` goes to.
    fn best_board(&self, svc: usize) -> Option<usize> {
        let spread = self.services[svc].constraints.spread;
        let counts = self.counts(svc);
        (0..self.boards.len())
            .filter(|&b| self.eligible(svc, b) && self.fits(svc, b))
            .min_by_key(|&b| {
                let same = if spread { counts[b] } else { 0 };
                (same, self.load_with(b, svc), b)
            })
    }

    /// The result, with `reasons` for the instances left without a board.
    pub fn into_assignment(self, reasons: BTreeMap<Slot, Unplaced>) -> Assignment {
        let mut out = Assignment::default();
        for (svc, s) in self.services.iter().enumerate() {
            let mut sa = ServiceAssignment::default();
            for (i, b) in self.at[svc].iter().enumerate() {
                if let Some(b) = b {
                    sa.instances
                        .insert(i as u32, self.boards[*b].member.name.clone());
                }
            }
            out.services.insert(s.name.clone(), sa);
        }
        for ((svc, i), why) in reasons {
            if let Some(sa) = out.services.get_mut(&self.services[svc].name) {
                sa.unplaced.insert(i, why);
            }
        }
        out
    }
}

/// Whether `placement.boards` of `s` allows `m`.
pub(super) fn allowed(s: &Service, m: &Member) -> bool {
    s.constraints.boards.is_empty() || s.constraints.boards.contains(&m.name)
}

/// Whether `m` carries every label `s` requires.
pub(super) fn labels_match(s: &Service, m: &Member) -> bool {
    s.constraints
        .labels
        .iter()
        .all(|(k, v)| m.labels.get(k) == Some(v))
}

/// What is free on a board.
pub(super) fn free(b: &Board<'_>) -> Resources {
    sub(b.member.capacity, b.used)
}

/// A board's load: its dominant share of CPU or memory, in parts per million.
pub(super) fn load(used: Resources, capacity: Resources) -> u64 {
    share(used.cpu_millis, capacity.cpu_millis).max(share(used.memory_bytes, capacity.memory_bytes))
}

fn share(used: u64, capacity: u64) -> u64 {
    if capacity == 0 {
        return if used == 0 { 0 } else { PPM as u64 };
    }
    u64::try_from(u128::from(used) * PPM / u128::from(capacity)).unwrap_or(u64::MAX)
}

fn add(a: Resources, b: Resources) -> Resources {
    Resources {
        cpu_millis: a.cpu_millis.saturating_add(b.cpu_millis),
        memory_bytes: a.memory_bytes.saturating_add(b.memory_bytes),
    }
}

fn sub(a: Resources, b: Resources) -> Resources {
    Resources {
        cpu_millis: a.cpu_millis.saturating_sub(b.cpu_millis),
        memory_bytes: a.memory_bytes.saturating_sub(b.memory_bytes),
    }
}
