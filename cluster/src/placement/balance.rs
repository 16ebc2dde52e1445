//! Balance moves: spread moves and load moves (see the module docs of `placement`).

use std::cmp::Reverse;
use std::collections::BTreeSet;

use super::state::{Slot, State};
use super::BALANCE_MARGIN_PPM;

/// Moving one instance to another board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Move {
    /// The instance.
    pub slot: Slot,
    /// The index of its new board.
    pub to: usize,
}

/// A bound on moves in one settle step. Moves cannot cycle (each lowers a finite potential), so
/// this is only a guard against a mistake turning into a hang.
const MAX_SETTLE_MOVES: usize = 100_000;

/// Step 3: applies balance moves to the instances in `movable` until none applies.
pub(super) fn settle(st: &mut State<'_>, movable: &BTreeSet<Slot>) {
    for _ in 0..MAX_SETTLE_MOVES {
        match find_move(st, |svc, i| movable.contains(&(svc, i))) {
            Some(m) => st.apply(m),
            None => return,
        }
    }
}

/// The balance move to make next among the instances `movable` accepts, if any: a spread move
/// if there is one, else a load move.
pub(super) fn find_move(st: &State<'_>, movable: impl Fn(usize, u32) -> bool) -> Option<Move> {
    spread_move(st, &movable).or_else(|| load_move(st, &movable))
}

/// An instance of a spread service on a board that has at least two more of them than another
/// eligible board with room.
fn spread_move(st: &State<'_>, movable: &impl Fn(usize, u32) -> bool) -> Option<Move> {
    for svc in 0..st.services.len() {
        if !st.services[svc].constraints.spread {
            continue;
        }
        let counts = st.counts(svc);
        for (i, at) in st.at[svc].iter().enumerate().rev() {
            let (Some(from), i) = (*at, i as u32) else {
                continue;
            };
            if !movable(svc, i) {
                continue;
            }
            let to = (0..st.boards.len())
                .filter(|&d| counts[d] + 2 <= counts[from])
                .filter(|&d| st.eligible(svc, d) && st.fits(svc, d))
                .min_by_key(|&d| (counts[d], st.load_with(d, svc), d));
            if let Some(to) = to {
                return Some(Move { slot: (svc, i), to });
            }
        }
    }
    None
}

/// An instance whose move lowers a loaded board by more than the margin.
fn load_move(st: &State<'_>, movable: &impl Fn(usize, u32) -> bool) -> Option<Move> {
    let mut order: Vec<usize> = (0..st.boards.len()).collect();
    order.sort_by_key(|&b| (Reverse(st.load(b)), b));
    let counts: Vec<Vec<u32>> = (0..st.services.len()).map(|s| st.counts(s)).collect();
    for from in order {
        let before = st.load(from);
        let mut best: Option<((u64, usize, u32, usize), Move)> = None;
        for (svc, at) in st.at.iter().enumerate() {
            let spread = st.services[svc].constraints.spread;
            for (i, _) in at.iter().enumerate().filter(|(_, b)| **b == Some(from)) {
                let i = i as u32;
                if !movable(svc, i) {
                    continue;
                }
                let after_from = st.load_without(from, svc);
                if after_from >= before {
                    continue;
                }
                for to in 0..st.boards.len() {
                    if to == from
                        || (spread && counts[svc][to] >= counts[svc][from])
                        || !st.eligible(svc, to)
                        || !st.fits(svc, to)
                    {
                        continue;
                    }
                    let after_to = st.load_with(to, svc);
                    if after_to.saturating_add(BALANCE_MARGIN_PPM) > before {
                        continue;
                    }
                    let key = (after_from.max(after_to), svc, i, to);
                    if best.as_ref().is_none_or(|(k, _)| key < *k) {
                        best = Some((key, Move { slot: (svc, i), to }));
                    }
                }
            }
        }
        if let Some((_, m)) = best {
            return Some(m);
        }
    }
    None
}
