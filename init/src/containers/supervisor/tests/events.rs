//! What the supervisor raises on the board's event bus as specs come and go and instances start,
//! crash and stop.

use baton_api::events::What;

use super::{spec, Board};

/// The kinds raised so far, with the instance or service each names.
fn raised(board: &Board) -> Vec<String> {
    board
        .handle
        .snapshot
        .bus
        .recent(None, usize::MAX)
        .iter()
        .map(|e| {
            let who = match &e.what {
                What::InstanceStarted { instance, .. }
                | What::InstanceReady { instance, .. }
                | What::InstanceStopped { instance, .. }
                | What::InstanceCrashed { instance, .. } => instance.clone(),
                What::SpecApplied { service } | What::SpecDeleted { service } => service.clone(),
                other => other.kind().to_string(),
            };
            format!("{} {who}", e.what.kind())
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn specs_and_instances_raise_their_events_in_order() {
    let mut board = Board::new(false);
    board.handle.apply(spec("web", ""));
    // The same spec again is not a change.
    board.handle.apply(spec("web", ""));
    board
        .until("web-1 running", |b| {
            b.instances("web", "running") == ["web-1"]
        })
        .await;
    board.runtime.exit("web-1", 3);
    board
        .until("the restart", |b| {
            b.runtime.runs().len() == 2 && b.instances("web", "running") == ["web-1"]
        })
        .await;
    board.handle.remove("web");
    board
        .until("web gone", |b| b.handle.service("web").is_none())
        .await;
    assert_eq!(
        raised(&board),
        [
            "spec-applied web",
            "instance-started web-1",
            "instance-ready web-1",
            "instance-crashed web-1",
            "instance-started web-1",
            "instance-ready web-1",
            "spec-deleted web",
            "instance-stopped web-1",
        ]
    );
    let events = board.handle.snapshot.bus.recent(None, usize::MAX);
    let What::InstanceCrashed {
        exit: Some(exit),
        restarts,
        next,
        ..
    } = &events[3].what
    else {
        panic!("{:?}", events[3]);
    };
    assert_eq!(
        (exit.code, *restarts),
        (Some(3), 0),
        "restarts so far: none yet"
    );
    assert_eq!(*next, baton_api::InstancePhase::Backoff);
}
