//! Property tests: order independence, capacity, constraints, liveness and stability.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

const MIB: u64 = 1 << 20;
const LABELS: [(&str, &str); 4] = [
    ("disk", "ssd"),
    ("disk", "hdd"),
    ("zone", "a"),
    ("zone", "b"),
];
/// Names services may constrain to: members are a prefix of these, so some are not members.
const NAMES: [&str; 7] = ["b0", "b1", "b2", "b3", "b4", "b5", "b6"];

fn labels(picks: &[usize]) -> BTreeMap<String, String> {
    picks
        .iter()
        .map(|&i| (LABELS[i].0.to_string(), LABELS[i].1.to_string()))
        .collect()
}

fn arb_member(i: usize) -> impl Strategy<Value = Member> {
    (
        prop::bool::weighted(0.85),
        prop_oneof![1 => Just(0u64), 6 => 1u64..=4],
        prop_oneof![1 => Just(0u64), 6 => 1u64..=16],
        prop::collection::vec(0..LABELS.len(), 0..4),
    )
        .prop_map(move |(alive, cores, quarter_gib, picks)| Member {
            name: NAMES[i].to_string(),
            alive,
            capacity: Resources {
                cpu_millis: cores * 1000,
                memory_bytes: quarter_gib * 256 * MIB,
            },
            labels: labels(&picks),
        })
}

fn arb_service(i: usize) -> impl Strategy<Value = Service> {
    (
        0u32..6,
        prop_oneof![1 => Just(0u64), 4 => 1u64..=600],
        prop_oneof![1 => Just(0u64), 4 => 1u64..=24],
        prop_oneof![3 => Just(vec![]), 1 => prop::collection::vec(0..NAMES.len(), 1..4)],
        prop_oneof![3 => Just(vec![]), 1 => prop::collection::vec(0..LABELS.len(), 1..2)],
        any::<bool>(),
        prop::option::of(0..NAMES.len()),
    )
        .prop_map(
            move |(instances, cpu, mem, boards, picks, spread, prefer)| Service {
                name: format!("s{i}"),
                instances,
                resources: Resources {
                    cpu_millis: cpu,
                    memory_bytes: mem * 32 * MIB,
                },
                constraints: Constraints {
                    boards: boards.iter().map(|&b| NAMES[b].to_string()).collect(),
                    labels: labels(&picks),
                    spread,
                },
                prefer: prefer.map(|b| NAMES[b].to_string()),
            },
        )
}

fn arb_input() -> impl Strategy<Value = Input> {
    (1usize..=6, 0usize..=6).prop_flat_map(|(m, s)| {
        let members: Vec<_> = (0..m).map(arb_member).collect();
        let services: Vec<_> = (0..s).map(arb_service).collect();
        (members, services).prop_map(|(members, services)| Input {
            members,
            services,
            previous: Assignment::default(),
        })
    })
}

/// Asserts capacity, constraints, liveness and that every instance is either placed or explained.
fn check_invariants(inp: &Input, out: &Assignment) {
    let members: BTreeMap<&str, &Member> =
        inp.members.iter().map(|m| (m.name.as_str(), m)).collect();
    let mut used: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    assert_eq!(out.services.len(), inp.services.len());
    for s in &inp.services {
        let sa = &out.services[&s.name];
        let placed: BTreeSet<u32> = sa.instances.keys().copied().collect();
        let unplaced: BTreeSet<u32> = sa.unplaced.keys().copied().collect();
        assert!(placed.is_disjoint(&unplaced));
        let all: BTreeSet<u32> = placed.union(&unplaced).copied().collect();
        assert_eq!(all, (0..s.instances).collect::<BTreeSet<u32>>());
        for b in sa.instances.values() {
            let m = members[b.as_str()];
            assert!(m.alive, "{} placed on dead {b}", s.name);
            assert!(
                state::allowed(s, m),
                "{} on {b}, not in placement.boards",
                s.name
            );
            assert!(
                state::labels_match(s, m),
                "{} on {b} without its labels",
                s.name
            );
            let u = used.entry(b).or_default();
            u.0 += s.resources.cpu_millis;
            u.1 += s.resources.memory_bytes;
        }
    }
    for (b, (cpu, mem)) in used {
        let cap = members[b].capacity;
        assert!(
            cpu <= cap.cpu_millis && mem <= cap.memory_bytes,
            "{b} over capacity"
        );
    }
}

/// Instances placed in both, on different boards.
fn moved(before: &Assignment, after: &Assignment) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for (svc, sa) in &before.services {
        for (i, b) in &sa.instances {
            if after.board_of(svc, *i).is_some_and(|now| now != b) {
                out.push((svc.clone(), *i));
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn output_does_not_depend_on_input_order(
        (inp, members, services) in arb_input().prop_flat_map(|inp| {
            let members = Just(inp.members.clone()).prop_shuffle();
            let services = Just(inp.services.clone()).prop_shuffle();
            (Just(inp), members, services)
        }),
    ) {
        let out = place(&inp).unwrap();
        let mut shuffled = Input { members, services, previous: Assignment::default() };
        for s in &mut shuffled.services {
            s.constraints.boards.reverse();
        }
        prop_assert_eq!(place(&shuffled).unwrap(), out);
    }

    #[test]
    fn placements_respect_capacity_constraints_and_liveness(inp in arb_input()) {
        let out = place(&inp).unwrap();
        check_invariants(&inp, &out);
    }

    #[test]
    fn a_fresh_placement_is_stable(inp in arb_input()) {
        let out = place(&inp).unwrap();
        let mut again = inp.clone();
        again.previous = out.clone();
        prop_assert_eq!(place(&again).unwrap(), out);
    }

    #[test]
    fn killing_a_board_moves_only_its_instances(inp in arb_input(), pick in any::<prop::sample::Index>()) {
        let before = place(&inp).unwrap();
        let mut next = inp.clone();
        let victim = pick.index(next.members.len());
        next.members[victim].alive = false;
        let dead = next.members[victim].name.clone();
        next.previous = before.clone();
        let after = place(&next).unwrap();
        check_invariants(&next, &after);
        for (svc, i) in moved(&before, &after) {
            prop_assert_eq!(before.board_of(&svc, i), Some(dead.as_str()));
        }
        for (svc, sa) in &before.services {
            for (i, b) in &sa.instances {
                if *b != dead {
                    prop_assert_eq!(after.board_of(svc, *i), Some(b.as_str()));
                }
            }
        }
    }

    #[test]
    fn adding_an_empty_board_moves_at_most_one_instance(
        inp in arb_input(),
        joiner in arb_member(6),
    ) {
        let before = place(&inp).unwrap();
        let mut next = inp.clone();
        next.members.push(Member { alive: true, ..joiner });
        next.previous = before.clone();
        let after = place(&next).unwrap();
        check_invariants(&next, &after);
        prop_assert!(moved(&before, &after).len() <= 1);
        for (svc, sa) in &before.services {
            for i in sa.instances.keys() {
                prop_assert!(after.board_of(svc, *i).is_some(), "{}/{} lost its board", svc, i);
            }
        }
    }

    #[test]
    fn repeated_rounds_converge(inp in arb_input(), pick in any::<prop::sample::Index>()) {
        // Start from a placement made for other members, then let rounds run.
        let mut cur = inp.clone();
        cur.previous = place(&inp).unwrap();
        let victim = pick.index(cur.members.len());
        cur.members[victim].alive = !cur.members[victim].alive;
        let mut rounds = 0;
        loop {
            let out = place(&cur).unwrap();
            check_invariants(&cur, &out);
            if out == cur.previous {
                break;
            }
            cur.previous = out;
            rounds += 1;
            prop_assert!(rounds < 200, "no fixed point after 200 rounds");
        }
    }
}
