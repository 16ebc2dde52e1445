//! Why an instance has no board, in words a user understands.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::state::{self, State};
use super::Resources;

/// Why an instance could not be placed. `Display` gives the sentence for the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Unplaced {
    /// The cluster has no boards at all.
    NoBoards,
    /// No board named in `placement.boards` is a member of the cluster.
    NotMembers {
        /// The names, sorted.
        boards: Vec<String>,
    },
    /// Every board the service may run on is dead.
    Dead {
        /// Those boards, sorted.
        boards: Vec<String>,
    },
    /// No alive board the service may run on carries the required labels.
    NoLabelMatch {
        /// The required labels.
        labels: BTreeMap<String, String>,
    },
    /// No eligible board has enough memory free.
    Memory {
        /// What one instance needs, in bytes.
        need_bytes: u64,
        /// The most any eligible board has free, in bytes.
        most_free_bytes: u64,
        /// The board with that much free.
        board: String,
    },
    /// No eligible board has enough CPU free.
    Cpu {
        /// What one instance needs, in millicores.
        need_millis: u64,
        /// The most any eligible board has free, in millicores.
        most_free_millis: u64,
        /// The board with that much free.
        board: String,
    },
    /// Some eligible boards have the CPU free and some the memory, but none has both.
    CpuAndMemory {
        /// What one instance needs.
        need: Resources,
    },
}

impl fmt::Display for Unplaced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unplaced::NoBoards => write!(f, "the cluster has no boards"),
            Unplaced::NotMembers { boards } if boards.len() == 1 => {
                write!(
                    f,
                    "placement.boards names {}, which is not a member",
                    boards[0]
                )
            }
            Unplaced::NotMembers { boards } => write!(
                f,
                "placement.boards names {}, which are not members",
                list(boards)
            ),
            Unplaced::Dead { boards } if boards.len() == 1 => {
                write!(
                    f,
                    "dead board: the only board it may run on, {}, is dead",
                    boards[0]
                )
            }
            Unplaced::Dead { boards } => write!(
                f,
                "dead boards: every board it may run on is dead ({})",
                list(boards)
            ),
            Unplaced::NoLabelMatch { labels } => {
                let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "no alive board matches labels {}", labels.join(", "))
            }
            Unplaced::Memory {
                need_bytes,
                most_free_bytes,
                board,
            } => write!(
                f,
                "no board has {} free: largest free is {} on {board}",
                bytes(*need_bytes),
                bytes(*most_free_bytes)
            ),
            Unplaced::Cpu {
                need_millis,
                most_free_millis,
                board,
            } => write!(
                f,
                "no board has {} free: largest free is {} on {board}",
                cpu(*need_millis),
                cpu(*most_free_millis)
            ),
            Unplaced::CpuAndMemory { need } => write!(
                f,
                "no board has both {} and {} free",
                cpu(need.cpu_millis),
                bytes(need.memory_bytes)
            ),
        }
    }
}

/// Why no board can take another instance of `svc` now (the reasons checked in order: no boards,
/// unknown boards, dead boards, labels, memory, CPU).
pub(super) fn explain(st: &State<'_>, svc: usize) -> Unplaced {
    let s = st.services[svc];
    if st.boards.is_empty() {
        return Unplaced::NoBoards;
    }
    let allowed: Vec<usize> = (0..st.boards.len())
        .filter(|&b| state::allowed(s, st.boards[b].member))
        .collect();
    if allowed.is_empty() {
        let names: BTreeSet<String> = s.constraints.boards.iter().cloned().collect();
        return Unplaced::NotMembers {
            boards: names.into_iter().collect(),
        };
    }
    let alive: Vec<usize> = allowed
        .iter()
        .copied()
        .filter(|&b| st.boards[b].member.alive)
        .collect();
    if alive.is_empty() {
        return Unplaced::Dead {
            boards: allowed
                .iter()
                .map(|&b| st.boards[b].member.name.clone())
                .collect(),
        };
    }
    let matching: Vec<usize> = alive
        .into_iter()
        .filter(|&b| state::labels_match(s, st.boards[b].member))
        .collect();
    let need = s.resources;
    // The board with the most free of one resource; the first by name on a tie.
    let most = |get: fn(Resources) -> u64| {
        matching
            .iter()
            .map(|&b| (get(state::free(&st.boards[b])), b))
            .max_by_key(|&(v, b)| (v, std::cmp::Reverse(b)))
    };
    let Some((mem, mem_board)) = most(|r| r.memory_bytes) else {
        return Unplaced::NoLabelMatch {
            labels: s.constraints.labels.clone(),
        };
    };
    if mem < need.memory_bytes {
        return Unplaced::Memory {
            need_bytes: need.memory_bytes,
            most_free_bytes: mem,
            board: st.boards[mem_board].member.name.clone(),
        };
    }
    match most(|r| r.cpu_millis) {
        Some((cpu, b)) if cpu < need.cpu_millis => Unplaced::Cpu {
            need_millis: need.cpu_millis,
            most_free_millis: cpu,
            board: st.boards[b].member.name.clone(),
        },
        _ => Unplaced::CpuAndMemory { need },
    }
}

/// `a`, `a and b`, `a, b and c`.
fn list(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Bytes in the largest binary unit they reach, with at most one decimal (rounded down).
pub(super) fn bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    for (size, unit) in UNITS {
        if n >= size {
            let tenths = u128::from(n) * 10 / u128::from(size);
            return if tenths % 10 == 0 {
                format!("{} {unit}", tenths / 10)
            } else {
                format!("{}.{} {unit}", tenths / 10, tenths % 10)
            };
        }
    }
    format!("{n} bytes")
}

/// Millicores as cores: `0.5 CPU`, `2 CPU`, `0.125 CPU`.
pub(super) fn cpu(millis: u64) -> String {
    let (whole, frac) = (millis / 1000, millis % 1000);
    if frac == 0 {
        return format!("{whole} CPU");
    }
    let frac = format!("{frac:03}");
    format!("{whole}.{} CPU", frac.trim_end_matches('0'))
}
