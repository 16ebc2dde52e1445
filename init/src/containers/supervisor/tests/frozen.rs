//! Frozen instances: out of the rules while frozen, not checked, ready again at once when
//! thawed; thawed before a stop; failures reported and survived.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::Ordering;

use super::{spec, Board};

const HEALTH: &str = "health = { tcp = 8080, interval = \"5s\", retries = 2 }";

fn slots(s: &[u32]) -> BTreeSet<u32> {
    s.iter().copied().collect()
}

/// A board running `web` with `extra` spec lines, every instance ready.
async fn ready_board(extra: &str, count: usize) -> Board {
    let mut board = Board::new(false);
    board.probes.healthy.store(true, Ordering::SeqCst);
    board.handle.apply(spec("web", extra));
    board
        .until("every instance ready", |b| {
            b.handle
                .service("web")
                .is_some_and(|v| v.instances.len() == count && v.instances.iter().all(|i| i.ready))
        })
        .await;
    board
}

/// Whether each instance of `web` is a healthy backend in the rules in force.
fn backends(b: &Board) -> Option<Vec<bool>> {
    b.rules
        .last()
        .and_then(|p| p.services.into_iter().find(|s| s.name == "web"))
        .map(|s| s.instances.iter().map(|i| i.healthy).collect())
}

#[tokio::test(start_paused = true)]
async fn a_frozen_instance_is_out_of_the_rules_unchecked_and_ready_at_once_when_thawed() {
    let mut board = ready_board(&format!("{HEALTH}\nscale = {{ min = 2 }}"), 2).await;
    board.handle.set_frozen("web", slots(&[2]));
    board
        .until("web-2 frozen", |b| {
            b.instances("web", "frozen") == ["web-2"]
        })
        .await;
    let view = board.view("web");
    assert_eq!(board.instances("web", "running"), ["web-1"]);
    assert_eq!((view.instances[1].ready, view.running), (false, 1));
    assert_eq!(backends(&board), Some(vec![true, false]));

    // Only web-1 is checked while web-2 is frozen.
    let ip = |b: &Board, n: usize| -> IpAddr {
        let address = b.view("web").instances[n].address.clone();
        address.expect("an address").parse().expect("an IP")
    };
    let (web1, web2) = (ip(&board, 0), ip(&board, 1));
    let (one, two) = (board.probes.of(web1), board.probes.of(web2));
    board
        .until("five more checks of web-1", |b| {
            b.probes.of(web1) >= one + 5
        })
        .await;
    assert_eq!(
        board.probes.of(web2),
        two,
        "the frozen web-2 is not checked"
    );
    assert_eq!(board.calls.of(&["freeze", "thaw"]), ["freeze web-2"]);

    // An empty set thaws it; ready before any time passes, and checked again at once.
    let thawing = tokio::time::Instant::now();
    board.handle.set_frozen("web", BTreeSet::new());
    board
        .until("web-2 ready", |b| b.view("web").instances[1].ready)
        .await;
    assert_eq!(thawing.elapsed(), std::time::Duration::ZERO);
    assert_eq!(backends(&board), Some(vec![true, true]));
    assert_eq!(
        board.calls.of(&["freeze", "thaw"]),
        ["freeze web-2", "thaw web-2"]
    );
    board
        .until("a check of the thawed instance", |b| {
            b.probes.of(web2) > two
        })
        .await;
    assert_eq!(
        thawing.elapsed(),
        std::time::Duration::ZERO,
        "checked at once"
    );
    assert_eq!(board.view("web").instances[1].restarts, 0);
}

#[tokio::test(start_paused = true)]
async fn only_ready_instances_freeze_and_a_frozen_one_alone_is_an_idle_service() {
    let mut board = Board::new(false);
    board.handle.apply(spec("web", HEALTH));
    board
        .until("web-1 running", |b| {
            b.instances("web", "running") == ["web-1"]
        })
        .await;
    // Not ready yet (no check passed): not frozen. Commands are taken in order, so once the
    // next one shows, the freeze has been dealt with.
    board.handle.set_frozen("web", slots(&[1]));
    board.handle.apply(spec("marker", ""));
    board
        .until("the next command", |b| b.handle.service("marker").is_some())
        .await;
    assert!(board.instances("web", "frozen").is_empty());
    assert!(board.calls.of(&["freeze"]).is_empty());

    board.probes.healthy.store(true, Ordering::SeqCst);
    board
        .until("web-1 ready", |b| b.view("web").instances[0].ready)
        .await;
    board.handle.set_frozen("web", slots(&[1, 7]));
    board
        .until("web-1 frozen", |b| {
            b.instances("web", "frozen") == ["web-1"]
        })
        .await;
    let view = board.view("web");
    assert_eq!((view.running, view.state.as_str()), (0, "stopped"));
    assert_eq!(super::phase(view.instances[0].state), "frozen");
}

#[tokio::test(start_paused = true)]
async fn stopping_a_frozen_instance_thaws_it_before_the_sigterm() {
    let mut board = ready_board("", 1).await;
    board.handle.set_frozen("web", slots(&[1]));
    board
        .until("web-1 frozen", |b| {
            b.instances("web", "frozen") == ["web-1"]
        })
        .await;
    board.handle.remove("web");
    board
        .until("web gone", |b| b.handle.service("web").is_none())
        .await;
    assert_eq!(
        board.calls.of(&["freeze", "thaw", "signal"]),
        ["freeze web-1", "thaw web-1", "signal web-1 15"],
        "a frozen process would not handle the SIGTERM: no SIGKILL was needed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_freeze_keeps_it_running_and_a_failed_thaw_restarts_it() {
    let mut board = ready_board(HEALTH, 1).await;
    board.runtime.refuse_freeze.store(true, Ordering::SeqCst);
    board.handle.set_frozen("web", slots(&[1]));
    board
        .until("the refused freeze", |b| {
            !b.calls.of(&["freeze"]).is_empty()
        })
        .await;
    board
        .until("web-1 ready again", |b| {
            b.view("web").instances[0].ready && b.instances("web", "running") == ["web-1"]
        })
        .await;
    let checks = board.probes.checks.load(Ordering::SeqCst);
    board
        .until("web-1 checked again", |b| {
            b.probes.checks.load(Ordering::SeqCst) > checks + 2
        })
        .await;
    assert_eq!(board.view("web").instances[0].restarts, 0);
    assert!(board.calls.of(&["signal"]).is_empty());

    board.runtime.refuse_freeze.store(false, Ordering::SeqCst);
    board.handle.set_frozen("web", slots(&[1]));
    board
        .until("web-1 frozen", |b| {
            b.instances("web", "frozen") == ["web-1"]
        })
        .await;
    board.runtime.refuse_thaw.store(true, Ordering::SeqCst);
    board.handle.set_frozen("web", BTreeSet::new());
    board
        .until("web-1 restarted", |b| {
            b.runtime.runs().len() == 2 && b.view("web").instances[0].ready
        })
        .await;
    // Neither thaw worked, so the stop killed it: SIGKILL reaches a frozen process.
    assert_eq!(
        board.calls.of(&["thaw", "signal"]),
        ["thaw web-1", "thaw web-1", "signal web-1 9"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_wake_thaws_at_once_and_a_freeze_under_way_thaws_when_it_ends() {
    let mut board = ready_board(HEALTH, 1).await;
    board.handle.set_frozen("web", slots(&[1]));
    board
        .until("web-1 frozen", |b| {
            b.instances("web", "frozen") == ["web-1"]
        })
        .await;
    let thawing = tokio::time::Instant::now();
    board.handle.thaw("web");
    board
        .until("web-1 ready", |b| b.view("web").instances[0].ready)
        .await;
    assert_eq!(thawing.elapsed(), std::time::Duration::ZERO);
    assert_eq!(
        board.calls.of(&["freeze", "thaw"]),
        ["freeze web-1", "thaw web-1"]
    );

    // Asked to thaw while its freeze is under way, it freezes, then thaws.
    board.handle.set_frozen("web", slots(&[1]));
    board.handle.thaw("web");
    board
        .until("frozen and thawed again", |b| {
            b.calls.of(&["freeze", "thaw"]).len() == 4 && b.view("web").instances[0].ready
        })
        .await;
    // A wake of a service with nothing frozen changes nothing.
    board.handle.thaw("web");
    board.handle.thaw("nothing");
    board.handle.apply(spec("marker", ""));
    board
        .until("the next command", |b| b.handle.service("marker").is_some())
        .await;
    assert_eq!(board.calls.of(&["freeze", "thaw"]).len(), 4);
}
