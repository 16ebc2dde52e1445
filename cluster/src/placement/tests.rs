//! Unit tests: one per rule and per reason.

use std::collections::BTreeMap;

use super::reason::{bytes, cpu};
use super::*;

const MIB: u64 = 1 << 20;

pub(super) fn member(name: &str, cpu_millis: u64, mem_mib: u64) -> Member {
    Member {
        name: name.to_string(),
        alive: true,
        capacity: Resources {
            cpu_millis,
            memory_bytes: mem_mib * MIB,
        },
        labels: BTreeMap::new(),
    }
}

pub(super) fn service(name: &str, instances: u32, cpu_millis: u64, mem_mib: u64) -> Service {
    Service {
        name: name.to_string(),
        instances,
        resources: Resources {
            cpu_millis,
            memory_bytes: mem_mib * MIB,
        },
        constraints: Constraints {
            spread: true,
            ..Constraints::default()
        },
        prefer: None,
    }
}

pub(super) fn input(members: Vec<Member>, services: Vec<Service>) -> Input {
    Input {
        members,
        services,
        previous: Assignment::default(),
    }
}

pub(super) fn three_boards() -> Vec<Member> {
    vec![
        member("pi-a", 4000, 1024),
        member("pi-b", 4000, 1024),
        member("pi-c", 4000, 1024),
    ]
}

/// Runs rounds, feeding each output back, until one returns its input; returns it and the
/// number of rounds that changed something.
fn converge(mut inp: Input) -> (Assignment, usize) {
    for rounds in 0..100 {
        let out = place(&inp).unwrap();
        if out == inp.previous {
            return (out, rounds);
        }
        inp.previous = out;
    }
    panic!("placement did not converge in 100 rounds");
}

fn reason(out: &Assignment, svc: &str, i: u32) -> String {
    out.services[svc].unplaced[&i].to_string()
}

#[test]
fn spread_service_gets_one_instance_per_board() {
    let out = place(&input(three_boards(), vec![service("web", 3, 500, 128)])).unwrap();
    let boards: Vec<&str> = out.services["web"]
        .instances
        .values()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(boards, ["pi-a", "pi-b", "pi-c"]);
}

#[test]
fn more_instances_than_boards_stack_evenly() {
    let out = place(&input(three_boards(), vec![service("web", 5, 100, 64)])).unwrap();
    let mut per_board = BTreeMap::new();
    for b in out.services["web"].instances.values() {
        *per_board.entry(b.as_str()).or_insert(0) += 1;
    }
    assert_eq!(out.services["web"].instances.len(), 5);
    assert_eq!(per_board.values().copied().max(), Some(2));
    assert_eq!(per_board.len(), 3);
}

#[test]
fn zero_instances_give_an_empty_entry() {
    let out = place(&input(three_boards(), vec![service("idle", 0, 100, 64)])).unwrap();
    assert_eq!(out.services["idle"], ServiceAssignment::default());
}

#[test]
fn allowed_boards_are_respected() {
    let mut s = service("db", 2, 100, 64);
    s.constraints.boards = vec!["pi-c".into()];
    let out = place(&input(three_boards(), vec![s])).unwrap();
    assert_eq!(out.board_of("db", 0), Some("pi-c"));
    assert_eq!(
        out.board_of("db", 1),
        Some("pi-c"),
        "stacks on the only allowed board"
    );
}

#[test]
fn board_that_is_not_a_member_is_named() {
    let mut s = service("db", 1, 100, 64);
    s.constraints.boards = vec!["pi-x".into()];
    let out = place(&input(three_boards(), vec![s])).unwrap();
    assert_eq!(
        reason(&out, "db", 0),
        "placement.boards names pi-x, which is not a member"
    );
    let mut s = service("db", 1, 100, 64);
    s.constraints.boards = vec!["pi-y".into(), "pi-x".into(), "pi-z".into()];
    let out = place(&input(three_boards(), vec![s])).unwrap();
    assert_eq!(
        reason(&out, "db", 0),
        "placement.boards names pi-x, pi-y and pi-z, which are not members"
    );
}

#[test]
fn required_labels_are_respected_and_explained() {
    let mut boards = three_boards();
    boards[1].labels.insert("disk".into(), "ssd".into());
    let mut s = service("db", 2, 100, 64);
    s.constraints.labels.insert("disk".into(), "ssd".into());
    let out = place(&input(boards.clone(), vec![s.clone()])).unwrap();
    assert_eq!(out.board_of("db", 0), Some("pi-b"));
    assert_eq!(out.board_of("db", 1), Some("pi-b"));

    boards[1].alive = false;
    let out = place(&input(boards, vec![s])).unwrap();
    assert_eq!(
        reason(&out, "db", 0),
        "no alive board matches labels disk=ssd"
    );
}

#[test]
fn dead_boards_get_nothing_and_are_explained() {
    let mut boards = three_boards();
    boards[0].alive = false;
    let mut s = service("db", 1, 100, 64);
    s.constraints.boards = vec!["pi-a".into()];
    let out = place(&input(boards.clone(), vec![s, service("web", 3, 100, 64)])).unwrap();
    assert_eq!(
        reason(&out, "db", 0),
        "dead board: the only board it may run on, pi-a, is dead"
    );
    assert!(out.on_board("pi-a").is_empty());
    for b in &mut boards {
        b.alive = false;
    }
    let out = place(&input(boards, vec![service("web", 1, 100, 64)])).unwrap();
    assert_eq!(
        reason(&out, "web", 0),
        "dead boards: every board it may run on is dead (pi-a, pi-b and pi-c)"
    );
}

#[test]
fn no_boards_at_all_is_explained() {
    let out = place(&input(vec![], vec![service("web", 1, 100, 64)])).unwrap();
    assert_eq!(reason(&out, "web", 0), "the cluster has no boards");
}

#[test]
fn not_enough_memory_names_the_largest_free() {
    let boards = vec![member("pi-a", 4000, 300), member("pi-b", 4000, 200)];
    let out = place(&input(boards, vec![service("big", 1, 100, 512)])).unwrap();
    assert_eq!(
        reason(&out, "big", 0),
        "no board has 512 MiB free: largest free is 300 MiB on pi-a"
    );
}

#[test]
fn not_enough_cpu_names_the_largest_free() {
    let boards = vec![member("pi-a", 250, 1024), member("pi-b", 1000, 1024)];
    let out = place(&input(boards, vec![service("busy", 2, 1500, 64)])).unwrap();
    assert_eq!(
        reason(&out, "busy", 0),
        "no board has 1.5 CPU free: largest free is 1 CPU on pi-b"
    );
}

#[test]
fn cpu_here_and_memory_there_is_explained() {
    let boards = vec![member("pi-a", 4000, 64), member("pi-b", 100, 1024)];
    let out = place(&input(boards, vec![service("odd", 1, 1000, 512)])).unwrap();
    assert_eq!(
        reason(&out, "odd", 0),
        "no board has both 1 CPU and 512 MiB free"
    );
}

#[test]
fn a_board_never_gets_more_than_its_capacity() {
    let boards = vec![member("pi-a", 4000, 1024)];
    let out = place(&input(boards, vec![service("web", 2, 100, 600)])).unwrap();
    assert_eq!(out.services["web"].instances.len(), 1);
    assert_eq!(
        reason(&out, "web", 1),
        "no board has 600 MiB free: largest free is 424 MiB on pi-a"
    );
}

#[test]
fn larger_services_are_placed_first_whatever_their_names() {
    // Only one of them fits; the larger one wins even though "a" sorts first.
    let boards = vec![member("pi-a", 4000, 1024)];
    let services = vec![
        service("a-small", 1, 100, 600),
        service("z-large", 1, 100, 700),
    ];
    let out = place(&input(boards, services)).unwrap();
    assert_eq!(out.board_of("z-large", 0), Some("pi-a"));
    assert_eq!(out.board_of("a-small", 0), None);
}

#[test]
fn input_order_does_not_matter() {
    let services = vec![
        service("web", 3, 300, 128),
        service("db", 1, 500, 256),
        service("cache", 2, 100, 64),
    ];
    let a = place(&input(three_boards(), services.clone())).unwrap();
    let mut boards = three_boards();
    boards.reverse();
    let mut rev = services;
    rev.reverse();
    assert_eq!(a, place(&input(boards, rev)).unwrap());
}

#[test]
fn running_instances_stay_put() {
    let mut inp = input(three_boards(), vec![service("web", 1, 100, 64)]);
    inp.previous = place(&input(
        vec![member("pi-c", 4000, 1024)],
        inp.services.clone(),
    ))
    .unwrap();
    assert_eq!(inp.previous.board_of("web", 0), Some("pi-c"));
    let out = place(&inp).unwrap();
    assert_eq!(
        out.board_of("web", 0),
        Some("pi-c"),
        "pi-a sorts first, but web stays"
    );
}

#[test]
fn a_dead_board_moves_only_its_instances() {
    let services = vec![service("web", 3, 500, 128), service("db", 1, 500, 256)];
    let before = place(&input(three_boards(), services.clone())).unwrap();
    let victim = before.board_of("db", 0).unwrap().to_string();
    let mut boards = three_boards();
    boards.iter_mut().find(|b| b.name == victim).unwrap().alive = false;
    let mut inp = input(boards, services);
    inp.previous = before.clone();
    let after = place(&inp).unwrap();
    for (svc, sa) in &before.services {
        for (i, b) in &sa.instances {
            let now = after.board_of(svc, *i).unwrap();
            if *b == victim {
                assert_ne!(now, victim);
            } else {
                assert_eq!(now, b, "{svc}/{i} moved although {b} is alive");
            }
        }
    }
}

#[test]
fn a_new_board_takes_work_one_instance_per_round() {
    let services = vec![
        service("a", 1, 0, 200),
        service("b", 1, 0, 200),
        service("c", 1, 0, 200),
    ];
    let one = input(vec![member("pi-a", 4000, 1024)], services.clone());
    let before = place(&one).unwrap();
    assert_eq!(before.on_board("pi-a").len(), 3);

    let mut inp = input(
        vec![member("pi-a", 4000, 1024), member("pi-b", 4000, 1024)],
        services,
    );
    inp.previous = before;
    let first = place(&inp).unwrap();
    assert_eq!(first.on_board("pi-b").len(), 1, "one move per round");
    let (settled, rounds) = converge(inp);
    assert_eq!(
        rounds, 1,
        "loads 400/200 MiB are within the margin of each other"
    );
    assert_eq!(settled, first);
}

#[test]
fn stacked_instances_spread_out_when_a_board_joins() {
    let before = place(&input(
        vec![member("pi-a", 4000, 1024)],
        vec![service("web", 2, 10, 8)],
    ))
    .unwrap();
    assert_eq!(before.on_board("pi-a").len(), 2);
    let mut inp = input(
        vec![member("pi-a", 4000, 1024), member("pi-b", 4000, 1024)],
        vec![service("web", 2, 10, 8)],
    );
    inp.previous = before;
    let out = place(&inp).unwrap();
    assert_eq!(out.board_of("web", 0), Some("pi-a"));
    assert_eq!(
        out.board_of("web", 1),
        Some("pi-b"),
        "the highest index moves"
    );
}

#[test]
fn small_imbalance_is_left_alone() {
    // One 100 MiB instance on pi-a (9.8% load): on an empty pi-b it would be at 9.8% too, not
    // 10 points below, so it stays.
    let before = place(&input(
        vec![member("pi-a", 4000, 1024)],
        vec![service("web", 1, 0, 100)],
    ))
    .unwrap();
    let mut inp = input(
        vec![member("pi-a", 4000, 1024), member("pi-b", 4000, 1024)],
        vec![service("web", 1, 0, 100)],
    );
    inp.previous = before.clone();
    assert_eq!(place(&inp).unwrap(), before);
}

#[test]
fn a_board_that_shrank_sheds_what_no_longer_fits() {
    let services = vec![service("web", 2, 0, 400)];
    let mut inp = input(vec![member("pi-a", 4000, 1024)], services.clone());
    inp.previous = place(&inp).unwrap();
    assert_eq!(inp.previous.on_board("pi-a").len(), 2);
    inp.members = vec![member("pi-a", 4000, 500), member("pi-b", 4000, 1024)];
    let out = place(&inp).unwrap();
    assert_eq!(out.board_of("web", 0), Some("pi-a"));
    assert_eq!(out.board_of("web", 1), Some("pi-b"));
}

#[test]
fn scaling_down_drops_the_highest_indexes() {
    let mut inp = input(three_boards(), vec![service("web", 3, 100, 64)]);
    inp.previous = place(&inp).unwrap();
    inp.services[0].instances = 1;
    let out = place(&inp).unwrap();
    assert_eq!(out.services["web"].instances.len(), 1);
    assert_eq!(out.board_of("web", 0), inp.previous.board_of("web", 0));
}

#[test]
fn previous_entries_for_unknown_services_and_boards_are_ignored() {
    let mut inp = input(three_boards(), vec![service("web", 1, 100, 64)]);
    let mut old = ServiceAssignment::default();
    old.instances.insert(0, "pi-gone".into());
    inp.previous.services.insert("web".into(), old.clone());
    inp.previous.services.insert("removed".into(), old);
    let out = place(&inp).unwrap();
    assert_eq!(out.board_of("web", 0), Some("pi-a"));
    assert!(!out.services.contains_key("removed"));
}

#[test]
fn duplicate_names_and_huge_counts_are_errors() {
    let err = place(&input(
        vec![member("pi-a", 1, 1), member("pi-a", 1, 1)],
        vec![],
    ))
    .unwrap_err();
    assert_eq!(
        err,
        PlacementError::DuplicateMember {
            name: "pi-a".into()
        }
    );
    let err = place(&input(
        vec![],
        vec![service("w", 1, 1, 1), service("w", 2, 1, 1)],
    ))
    .unwrap_err();
    assert_eq!(err, PlacementError::DuplicateService { name: "w".into() });
    let err = place(&input(vec![], vec![service("w", MAX_INSTANCES + 1, 1, 1)])).unwrap_err();
    assert!(err.to_string().contains("\"w\""), "{err}");
}

#[test]
fn quantities_are_written_for_people() {
    assert_eq!(bytes(512 * MIB), "512 MiB");
    assert_eq!(bytes(1536 * MIB), "1.5 GiB");
    assert_eq!(bytes(1000), "1000 bytes");
    assert_eq!(cpu(500), "0.5 CPU");
    assert_eq!(cpu(2000), "2 CPU");
    assert_eq!(cpu(125), "0.125 CPU");
}

#[test]
fn reasons_serialize_with_a_tag() {
    let json = serde_json::to_value(Unplaced::NotMembers {
        boards: vec!["pi-x".into()],
    })
    .unwrap();
    assert_eq!(json["reason"], "not_members");
    assert_eq!(json["boards"][0], "pi-x");
}

#[test]
fn assignments_survive_a_json_round_trip() {
    let boards = vec![member("pi-a", 4000, 300)];
    let out = place(&input(boards, vec![service("big", 2, 100, 200)])).unwrap();
    let json = serde_json::to_string(&out).unwrap();
    let back: Assignment = serde_json::from_str(&json).unwrap();
    assert_eq!(back, out);
    assert_eq!(back.services["big"].unplaced.len(), 1);
}
