//! One test per scenario of the supervisor's decisions.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::super::instance::{BACKOFF_START, STABLE_AFTER};
use super::{spec, Board};
use crate::svcnet::policy::Egress;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[tokio::test(start_paused = true)]
async fn restart_backoff_doubles_into_a_crash_loop_and_a_stable_run_starts_over() {
    let mut board = Board::new(false);
    board.handle.apply(spec("web", ""));
    board
        .until("web-1 running", |b| {
            b.instances("web", "running") == ["web-1"]
        })
        .await;

    let mut waits = Vec::new();
    let mut states = Vec::new();
    for n in 1..=6 {
        let exited = Instant::now();
        board.runtime.exit("web-1", 1);
        board
            .until("a wait before the restart", |b| {
                !b.instances("web", "backoff").is_empty()
                    || !b.instances("web", "crash-loop").is_empty()
            })
            .await;
        states.push((
            board.view("web").instances[0].state,
            board.view("web").state,
        ));
        board
            .until("the restart", |b| {
                b.runtime.runs().len() == n + 1 && b.instances("web", "running") == ["web-1"]
            })
            .await;
        let runs = board.runtime.runs();
        waits.push(runs[n].at - exited);
    }
    assert_eq!(
        waits,
        [secs(1), secs(2), secs(4), secs(8), secs(16), secs(32)]
    );
    let shown: Vec<(String, &str)> = states
        .iter()
        .map(|(phase, service)| (super::phase(*phase), service.as_str()))
        .collect();
    let backoff = ("backoff".to_string(), "degraded");
    let crash_loop = ("crash-loop".to_string(), "crash-loop");
    assert_eq!(
        shown,
        [
            backoff.clone(),
            backoff.clone(),
            backoff.clone(),
            backoff,
            crash_loop.clone(),
            crash_loop
        ]
    );
    assert_eq!(board.view("web").instances[0].restarts, 6);
    assert!(board.runtime.runs().iter().all(|r| r.id == "web-1"));
    assert_eq!(
        board.calls.of(&["remove"]).len(),
        6,
        "each ended container is removed"
    );

    // A run that lasted starts the backoff over.
    tokio::time::advance(STABLE_AFTER).await;
    let exited = Instant::now();
    board.runtime.exit("web-1", 1);
    board
        .until("the restart after a stable run", |b| {
            b.runtime.runs().len() == 8 && b.instances("web", "running") == ["web-1"]
        })
        .await;
    assert_eq!(board.runtime.runs()[7].at - exited, BACKOFF_START);
}

#[tokio::test(start_paused = true)]
async fn a_failed_start_shows_its_error_and_is_retried_after_the_backoff() {
    let mut board = Board::new(false);
    board.runtime.failing_runs.store(1, Ordering::SeqCst);
    let applied = Instant::now();
    board.handle.apply(spec("web", ""));
    board
        .until("the start failure", |b| {
            !b.instances("web", "backoff").is_empty()
        })
        .await;
    let view = board.view("web");
    assert_eq!(
        view.instances[0].last_error.as_deref(),
        Some("cannot run container web-1: injected failure")
    );
    assert_eq!(view.state.as_str(), "degraded");
    assert!(
        board
            .calls
            .all()
            .iter()
            .any(|c| c.starts_with("disconnect") && c.ends_with("true")),
        "the failed instance's namespace is removed: {:?}",
        board.calls.all()
    );
    board
        .until("web-1 running", |b| {
            b.instances("web", "running") == ["web-1"]
        })
        .await;
    assert_eq!(board.runtime.runs()[0].at - applied, BACKOFF_START);
    assert_eq!(board.view("web").instances[0].restarts, 1);
    assert_eq!(board.view("web").state.as_str(), "running");
}

#[tokio::test(start_paused = true)]
async fn health_gates_readiness_and_an_unhealthy_instance_is_restarted() {
    let mut board = Board::new(false);
    board.probes.healthy.store(true, Ordering::SeqCst);
    board.handle.apply(spec(
        "web",
        "health = { tcp = 8080, interval = \"1s\", retries = 2 }",
    ));
    board
        .until("web-1 running", |b| {
            b.instances("web", "running") == ["web-1"]
        })
        .await;
    // Running, but not taking connections before a check passed.
    let view = board.view("web");
    assert_eq!(
        (view.instances[0].ready, view.running, view.state.as_str()),
        (false, 0, "starting")
    );
    let backends = |b: &Board| {
        b.rules
            .last()
            .and_then(|p| p.services.into_iter().find(|s| s.name == "web"))
            .map(|s| s.instances.iter().map(|i| i.healthy).collect::<Vec<_>>())
    };
    assert_eq!(backends(&board), Some(vec![false]));

    board
        .until("web-1 ready", |b| b.view("web").instances[0].ready)
        .await;
    let view = board.view("web");
    assert_eq!((view.running, view.state.as_str()), (1, "running"));
    assert_eq!(backends(&board), Some(vec![true]));

    // Two failed checks in a row: not ready, stopped, and started again.
    board.probes.healthy.store(false, Ordering::SeqCst);
    board
        .until("web-1 unhealthy", |b| {
            b.view("web").instances[0].healthy == Some(false)
        })
        .await;
    let view = board.view("web");
    assert_eq!((view.instances[0].ready, view.running), (false, 0));
    board
        .until("web-1 restarted", |b| {
            b.view("web").instances[0].restarts == 1 && b.instances("web", "running") == ["web-1"]
        })
        .await;
    assert_eq!(board.calls.of(&["signal"]), ["signal web-1 15"]);
}

#[tokio::test(start_paused = true)]
async fn a_spec_change_replaces_the_instances_one_by_one() {
    let mut board = Board::new(false);
    board
        .handle
        .apply(spec("web", "env = { V = \"1\" }\nscale = { min = 2 }"));
    board
        .until("two instances running", |b| {
            b.instances("web", "running") == ["web-1", "web-2"]
        })
        .await;
    let before = board.calls.of(&["run", "signal"]).len();

    board
        .handle
        .apply(spec("web", "env = { V = \"2\" }\nscale = { min = 2 }"));
    let new_runs = |b: &Board| {
        b.runtime
            .runs()
            .iter()
            .filter(|r| r.env.contains(&"V=2".to_string()))
            .count()
    };
    // At every step, at most one instance is not running.
    let most_down = std::cell::Cell::new(0);
    board
        .until("both instances replaced", |b| {
            let down = b.view("web").instances.len() - b.instances("web", "running").len();
            most_down.set(most_down.get().max(down));
            new_runs(b) == 2 && b.instances("web", "running") == ["web-1", "web-2"]
        })
        .await;
    assert_eq!(most_down.get(), 1);
    let rollout = board.calls.of(&["run", "signal"]).split_off(before);
    assert_eq!(
        rollout,
        [
            "signal web-1 15",
            "run web-1",
            "signal web-2 15",
            "run web-2"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn allow_and_egress_changes_rebuild_the_rules_and_restart_nothing() {
    let mut board = Board::new(false);
    board.handle.apply(spec("api", ""));
    board.handle.apply(spec("db", ""));
    board
        .until("both running", |b| {
            b.instances("api", "running") == ["api-1"] && b.instances("db", "running") == ["db-1"]
        })
        .await;
    board.quiet().await;
    let before = board.calls.all().len();
    let generation = board.handle.network().generation;

    board
        .handle
        .apply(spec("api", "allow = [\"db\"]\negress = \"none\""));
    board.quiet().await;

    let rules = board.rules.last().expect("a rule set in force");
    let api = rules
        .services
        .iter()
        .find(|s| s.name == "api")
        .expect("api");
    assert_eq!(
        (api.allow.clone(), api.egress),
        (vec!["db".to_string()], Egress::None)
    );
    assert!(board.handle.network().generation > generation);
    assert_eq!(
        board.calls.all().split_off(before),
        Vec::<String>::new(),
        "no container was touched"
    );
    let view = board.view("api");
    assert_eq!(
        (view.instances[0].restarts, view.state.as_str()),
        (0, "running")
    );
}

#[tokio::test(start_paused = true)]
async fn assignments_from_placement_arrive_and_leave() {
    let mut board = Board::new(false);
    let slots = |s: &[u32]| Some(s.iter().copied().collect::<BTreeSet<u32>>());
    // Placement's word may come before the spec: it is kept for it.
    board.handle.assign("web", slots(&[2, 3]));
    board.handle.apply(spec("web", ""));
    board
        .until("instances 2 and 3 running", |b| {
            b.instances("web", "running") == ["web-2", "web-3"]
        })
        .await;
    assert!(!board.calls.all().contains(&"run web-1".to_string()));

    // One leaves for another board.
    board.handle.assign("web", slots(&[3]));
    board
        .until("only web-3 left", |b| {
            b.view("web").instances.len() == 1 && b.instances("web", "running") == ["web-3"]
        })
        .await;
    assert_eq!(board.calls.of(&["signal"]), ["signal web-2 15"]);

    // Back on its own: instances 1 to `scale.min`.
    board.handle.assign("web", None);
    board
        .until("only web-1 left", |b| {
            b.view("web").instances.len() == 1 && b.instances("web", "running") == ["web-1"]
        })
        .await;

    // None here at all.
    board.handle.assign("web", slots(&[]));
    board
        .until("no instance left", |b| b.view("web").instances.is_empty())
        .await;
    assert_eq!(board.view("web").state.as_str(), "stopped");
}

#[tokio::test(start_paused = true)]
async fn a_refused_rule_set_blocks_starts_until_one_is_accepted() {
    let mut board = Board::new(true);
    board.handle.apply(spec("web", ""));
    board
        .until("two refused starts", |b| {
            !b.instances("web", "backoff").is_empty() && b.view("web").instances[0].restarts >= 1
        })
        .await;
    let view = board.view("web");
    let error = view.instances[0].last_error.clone().unwrap_or_default();
    assert!(
        error.starts_with("not started: this board cannot enforce the services' network isolation"),
        "{error}"
    );
    assert!(
        board.calls.of(&["run"]).is_empty(),
        "nothing ran unconfined"
    );
    assert!(board.handle.network().error.is_some());

    board.rules.refuse.store(false, Ordering::SeqCst);
    board
        .until("web-1 running", |b| {
            b.instances("web", "running") == ["web-1"]
        })
        .await;
    assert_eq!(board.handle.network().error, None);
    let rules = board.rules.last().expect("a rule set in force");
    assert!(rules
        .services
        .iter()
        .any(|s| s.name == "web" && !s.instances.is_empty()));
}

#[tokio::test(start_paused = true)]
async fn a_seccomp_refusal_shows_in_the_instance_s_log() {
    let mut board = Board::new(false);
    board.handle.apply(spec("web", ""));
    board
        .until("web-1 running", |b| {
            b.instances("web", "running") == ["web-1"]
        })
        .await;
    let line = "seccomp refused mount (syscall 40) to pid 7 (sh): EPERM";
    for instance in ["web-1", "gone-3"] {
        board
            .denied
            .try_send((instance.to_string(), line.to_string()))
            .expect("queued");
    }
    let said = |b: &Board| {
        b.handle
            .log("web")
            .map(|l| l.tail(10))
            .unwrap_or_default()
            .iter()
            .any(|l| l.instance == "web-1" && l.text == format!("baton: {line}"))
    };
    board.until("the refusal in web's log", said).await;
    board.quiet().await;
    assert!(
        board.handle.log("gone").is_none(),
        "no service of an unknown instance"
    );
}
