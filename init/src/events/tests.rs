use super::*;

fn applied(name: &str) -> What {
    What::SpecApplied {
        service: name.into(),
    }
}

fn seqs(events: &[Arc<Event>]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

#[test]
fn events_are_numbered_from_one_named_by_board_and_the_ring_keeps_the_newest() {
    let bus = Bus::new(5);
    bus.set_board("pi-a");
    bus.set_board("pi-b");
    for i in 0..RING + 10 {
        bus.raise(applied(&format!("s{i}")));
    }
    let all = bus.recent(None, usize::MAX);
    assert_eq!(all.len(), RING);
    assert_eq!(all[0].seq, 11);
    assert_eq!(all[RING - 1].seq, (RING + 10) as u64);
    assert!(all.iter().all(|e| e.board == "pi-a"));
    assert_eq!(seqs(&bus.recent(None, 3)), vec![1008, 1009, 1010]);
    assert_eq!(seqs(&bus.recent(Some(1008), 100)), vec![1009, 1010]);
}

#[test]
fn hostile_texts_are_cut_before_they_are_kept() {
    let bus = Bus::new(5);
    bus.raise(applied(&"x".repeat(100_000)));
    let kept = bus.recent(None, 1);
    let What::SpecApplied { service } = &kept[0].what else {
        panic!("kind changed");
    };
    assert_eq!(service.len(), baton_api::events::MAX_TEXT);
}

#[tokio::test]
async fn a_follower_gets_the_past_then_every_new_event_without_gap_or_repeat() {
    let bus = Bus::new(5);
    bus.raise(applied("a"));
    bus.raise(applied("b"));
    let (past, missed, mut rx) = bus.follow(None, 10);
    assert_eq!((seqs(&past), missed), (vec![1, 2], 0));
    bus.raise(applied("c"));
    assert_eq!(rx.recv().await.expect("c").seq, 3);
}

#[tokio::test]
async fn a_reader_too_far_behind_learns_how_many_it_missed() {
    let bus = Bus::new(5);
    let (_, _, mut rx) = bus.follow(None, 0);
    for i in 0..CHANNEL + 5 {
        bus.raise(applied(&format!("s{i}")));
    }
    match rx.recv().await {
        Err(broadcast::error::RecvError::Lagged(n)) => assert_eq!(n, 5),
        other => panic!("expected a lag, got {other:?}"),
    }
    // A reader that comes back with an id older than the ring is told so too.
    for i in 0..RING {
        bus.raise(applied(&format!("t{i}")));
    }
    let (past, missed, _) = bus.follow(Some(3), 10);
    assert_eq!(past.len(), 10);
    let oldest = bus.recent(None, RING)[0].seq;
    assert_eq!(missed, oldest - 4);
}

#[test]
fn ids_carry_board_and_boot_and_only_this_board_s_are_taken() {
    let bus = Bus::new(1_764_921_147_000);
    assert_eq!(bus.after("pi-a:1764921147000.3"), None, "no board name yet");
    bus.set_board("pi-a");
    assert_eq!(bus.id(42), "pi-a:1764921147000.42");
    assert_eq!(bus.after("pi-a:1764921147000.42"), Some(42));
    assert_eq!(
        bus.after("pi-b:1.9, pi-a:1764921147000.7"),
        Some(7),
        "this board's entry of a list"
    );
    for other in [
        "pi-a:1764921146000.42",
        "pi-b:1764921147000.42",
        "pi-a:1764921147000.x",
        "",
        "garbage",
    ] {
        assert_eq!(bus.after(other), None, "{other:?}");
    }
}

#[test]
fn at_most_max_streams_follow_at_once_and_a_place_is_given_back_on_drop() {
    let bus = Arc::new(Bus::new(5));
    let slots: Vec<StreamSlot> = (0..MAX_STREAMS)
        .map(|_| bus.stream().expect("a place"))
        .collect();
    assert!(bus.stream().is_none());
    drop(slots);
    assert!(bus.stream().is_some());
}
