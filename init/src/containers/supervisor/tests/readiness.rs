//! Fast readiness: the first health check runs at once, fast ones follow until one passes, and
//! their failures do not count before the grace (`start_period` + one `interval`) ends.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::{spec, Board};

#[tokio::test(start_paused = true)]
async fn the_first_check_runs_at_once_and_the_instance_is_ready_before_an_interval() {
    let mut board = Board::new(false);
    board.probes.healthy.store(true, Ordering::SeqCst);
    let applied = Instant::now();
    board.handle.apply(spec(
        "web",
        "health = { tcp = 8080, interval = \"5s\", retries = 2 }",
    ));
    board
        .until("web-1 ready", |b| {
            b.handle
                .service("web")
                .is_some_and(|v| v.instances.iter().any(|i| i.ready))
        })
        .await;
    // The old loop slept a whole interval before its first check.
    assert!(
        applied.elapsed() < Duration::from_secs(5),
        "ready {:?} after the apply",
        applied.elapsed()
    );
    assert_eq!(board.probes.checks.load(Ordering::SeqCst), 1);
    assert_eq!(board.view("web").state.as_str(), "running");
}

#[tokio::test(start_paused = true)]
async fn fast_early_failures_neither_count_nor_restart_a_slow_starter() {
    let mut board = Board::new(false);
    let started = Instant::now();
    board.handle.apply(spec(
        "web",
        "health = { tcp = 8080, interval = \"1s\", start_period = \"3s\", retries = 2 }",
    ));
    // Many more failed checks than `retries`, all fast, all inside the grace (3 s + 1 s).
    board
        .until("ten failed checks", |b| {
            b.probes.checks.load(Ordering::SeqCst) >= 10
        })
        .await;
    assert!(started.elapsed() < Duration::from_secs(4));
    let view = board.view("web");
    assert_eq!(board.instances("web", "running"), ["web-1"]);
    assert_eq!(
        (view.instances[0].healthy, view.instances[0].ready),
        (None, false)
    );
    assert!(board.calls.of(&["signal"]).is_empty());

    // It starts listening late: ready without a restart.
    board.probes.healthy.store(true, Ordering::SeqCst);
    board
        .until("web-1 ready", |b| b.view("web").instances[0].ready)
        .await;
    assert_eq!(board.view("web").instances[0].restarts, 0);
    assert!(board.calls.of(&["signal"]).is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_instance_that_never_passes_is_restarted_no_sooner_than_the_grace_allows() {
    let mut board = Board::new(false);
    let started = Instant::now();
    board.handle.apply(spec(
        "web",
        "health = { tcp = 8080, interval = \"1s\", start_period = \"3s\", retries = 2 }",
    ));
    board
        .until("web-1 stopped for being unhealthy", |b| {
            !b.calls.of(&["signal"]).is_empty()
        })
        .await;
    // Two counted failures, the first at the end of the grace, the second an interval later.
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "stopped {:?} after the start",
        started.elapsed()
    );
    assert_eq!(board.calls.of(&["signal"]), ["signal web-1 15"]);
    assert_eq!(board.view("web").instances[0].healthy, Some(false));
}
