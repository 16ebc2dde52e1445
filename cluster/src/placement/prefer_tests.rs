//! `Service::prefer`: the first instance of a service woken from zero goes to the board that
//! holds its requests, when that board may take it.

use super::tests::{input, member, service, three_boards};
use super::*;

fn preferring(name: &str, board: &str) -> Service {
    Service {
        prefer: Some(board.to_string()),
        ..service(name, 1, 100, 64)
    }
}

fn board_of_first(out: &Assignment, name: &str) -> String {
    out.services[name].instances[&0].clone()
}

#[test]
fn the_first_instance_goes_to_the_preferred_board() {
    // Without a preference the smallest name wins the tie; with one, the named board.
    let plain = place(&input(three_boards(), vec![service("web", 1, 100, 64)])).unwrap();
    assert_eq!(board_of_first(&plain, "web"), "pi-a");
    for board in ["pi-b", "pi-c"] {
        let out = place(&input(three_boards(), vec![preferring("web", board)])).unwrap();
        assert_eq!(board_of_first(&out, "web"), board);
    }
}

#[test]
fn a_running_instance_is_not_moved_to_the_preferred_board() {
    let mut inp = input(three_boards(), vec![preferring("web", "pi-c")]);
    inp.services[0].instances = 2;
    inp.previous
        .services
        .entry("web".into())
        .or_default()
        .instances
        .insert(0, "pi-a".into());
    let out = place(&inp).unwrap();
    assert_eq!(out.services["web"].instances[&0], "pi-a");
    // The second instance is placed by the usual rules (spread: another board than pi-a).
    assert_eq!(out.services["web"].instances[&1], "pi-b");
}

#[test]
fn a_preferred_board_without_room_or_not_allowed_gives_way() {
    let boards = vec![member("pi-a", 4000, 1024), member("pi-b", 4000, 32)];
    let out = place(&input(boards, vec![preferring("web", "pi-b")])).unwrap();
    assert_eq!(board_of_first(&out, "web"), "pi-a", "pi-b has 32 MiB");

    let mut svc = preferring("web", "pi-b");
    svc.constraints.boards = vec!["pi-a".into()];
    let out = place(&input(three_boards(), vec![svc])).unwrap();
    assert_eq!(
        board_of_first(&out, "web"),
        "pi-a",
        "placement.boards names pi-a only"
    );

    let out = place(&input(three_boards(), vec![preferring("web", "pi-x")])).unwrap();
    assert_eq!(board_of_first(&out, "web"), "pi-a", "no board pi-x");
}

#[test]
fn a_preferred_board_that_a_balance_move_would_leave_gives_way() {
    // pi-b is nearly full: one more instance there would be moved off by the next round's
    // rebalance, so the instance starts where it stays.
    let mut busy = service("big", 1, 3500, 900);
    busy.constraints.boards = vec!["pi-b".into()];
    let boards = vec![member("pi-a", 4000, 1024), member("pi-b", 4000, 1024)];
    let out = place(&input(boards, vec![busy, preferring("web", "pi-b")])).unwrap();
    assert_eq!(board_of_first(&out, "web"), "pi-a");
}

#[test]
fn placing_again_keeps_a_preferred_instance() {
    let first = place(&input(three_boards(), vec![preferring("web", "pi-c")])).unwrap();
    let mut again = input(three_boards(), vec![service("web", 1, 100, 64)]);
    again.previous = first.clone();
    assert_eq!(place(&again).unwrap(), first);
}
