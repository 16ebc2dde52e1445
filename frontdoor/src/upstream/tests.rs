//! The balancer on a fake clock: least outstanding requests, ejection and its trial, list
//! updates, the retry budget and the load counters.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::health::{backoff, EJECTION_MAX, FORGET_AFTER};
use super::*;
use crate::control::protocol::Instance;

pub(super) const SVC: &str = "web";

pub(super) fn instance(id: &str, ready: bool) -> Instance {
    let n = id.bytes().last().unwrap_or(0);
    Instance {
        id: id.into(),
        addr: Ipv4Addr::new(10, 42, 0, n),
        port: 8080,
        board: "pi-1".into(),
        ready,
    }
}

pub(super) fn balancer(ids: &[&str]) -> Balancer {
    let balancer = Balancer::new();
    balancer
        .set(SVC, ids.iter().map(|id| instance(id, true)).collect())
        .unwrap();
    balancer
}

pub(super) fn pick_id(balancer: &Balancer, avoid: Option<&str>, now: Instant) -> Option<String> {
    balancer.pick(SVC, avoid, now).map(|p| p.id().to_owned())
}

/// Fails `id` until it is ejected (three local failures), steering with `avoid`.
fn fail_three(balancer: &Balancer, id: &str, other: &str, now: Instant) {
    for _ in 0..3 {
        let pick = balancer.pick(SVC, Some(other), now).unwrap();
        assert_eq!(pick.id(), id);
        pick.local_failure(now);
    }
}

#[test]
fn shared_across_tasks() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Balancer>();
    send_sync::<Pick>();
    send_sync::<InFlight>();
}

#[test]
fn least_outstanding_wins() {
    let balancer = balancer(&["a", "b", "c"]);
    let now = Instant::now();
    let mut held: Vec<Pick> = (0..3)
        .map(|_| balancer.pick(SVC, None, now).unwrap())
        .collect();
    let mut ids: Vec<&str> = held.iter().map(Pick::id).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        ["a", "b", "c"],
        "each instance gets one before any gets two"
    );
    let b = held.remove(held.iter().position(|p| p.id() == "b").unwrap());
    assert_eq!(b.addr(), "10.42.0.98:8080".parse().unwrap());
    assert_eq!(b.board(), "pi-1");
    b.success(now).end(now);
    // a and c still carry one request each, b none.
    for _ in 0..20 {
        assert_eq!(pick_id(&balancer, None, now).as_deref(), Some("b"));
    }
    drop(held);
}

#[test]
fn ties_spread_over_every_instance() {
    let balancer = balancer(&["a", "b", "c", "d"]);
    let now = Instant::now();
    let mut hits: HashMap<String, u32> = HashMap::new();
    for _ in 0..400 {
        *hits
            .entry(pick_id(&balancer, None, now).unwrap())
            .or_default() += 1;
    }
    // Each has a quarter's chance a pick: below 40 of 400 is more than 9 deviations off.
    assert_eq!(hits.len(), 4, "{hits:?}");
    assert!(hits.values().all(|&n| n >= 40), "{hits:?}");
}

#[test]
fn avoid_and_readiness() {
    let balancer = Balancer::new();
    let now = Instant::now();
    balancer
        .set(
            SVC,
            vec![
                instance("a", true),
                instance("b", true),
                instance("c", false),
            ],
        )
        .unwrap();
    for _ in 0..20 {
        assert_eq!(pick_id(&balancer, Some("a"), now).as_deref(), Some("b"));
        assert_ne!(pick_id(&balancer, None, now).as_deref(), Some("c"));
    }
    balancer
        .set(SVC, vec![instance("a", true), instance("c", false)])
        .unwrap();
    assert_eq!(pick_id(&balancer, Some("a"), now), None);
    assert!(balancer.pick("other", None, now).is_none());
    assert_eq!(balancer.ready_count(SVC), 1);
    assert!(balancer.has_ready(SVC));
    balancer.set(SVC, vec![instance("c", false)]).unwrap();
    assert!(!balancer.has_ready(SVC));
    assert!(balancer.pick(SVC, None, now).is_none());
}

#[test]
fn in_flight_ends_exactly_once() {
    let balancer = balancer(&["a"]);
    let now = Instant::now();
    let loads = |b: &Balancer| b.loads(now)[0].inflight_now;

    let pick = balancer.pick(SVC, None, now).unwrap();
    assert_eq!((balancer.inflight(), loads(&balancer)), (1, 1));
    let guard = pick.success(now);
    assert_eq!(balancer.inflight(), 1, "the body still streams");
    guard.end(now);
    assert_eq!((balancer.inflight(), loads(&balancer)), (0, 0));

    balancer.pick(SVC, None, now).unwrap().local_failure(now);
    assert_eq!((balancer.inflight(), loads(&balancer)), (0, 0));

    let both = [
        balancer.pick(SVC, None, now).unwrap(),
        balancer.pick(SVC, None, now).unwrap(),
    ];
    assert_eq!(balancer.inflight(), 2);
    drop(both);
    assert_eq!((balancer.inflight(), loads(&balancer)), (0, 0));

    // The instance leaves while a request is in flight: its guard still ends cleanly, and the
    // same id coming back starts clean.
    let pick = balancer.pick(SVC, None, now).unwrap();
    balancer.set(SVC, Vec::new()).unwrap();
    drop(pick);
    assert_eq!(balancer.inflight(), 0);
    balancer.set(SVC, vec![instance("a", true)]).unwrap();
    assert_eq!(loads(&balancer), 0);
}

#[test]
fn three_failures_eject() {
    let balancer = balancer(&["a", "b"]);
    let t0 = Instant::now();
    for _ in 0..2 {
        balancer.pick(SVC, Some("b"), t0).unwrap().local_failure(t0);
    }
    // A success in between starts the count again.
    let _ = balancer.pick(SVC, Some("b"), t0).unwrap().success(t0);
    for _ in 0..2 {
        balancer.pick(SVC, Some("b"), t0).unwrap().local_failure(t0);
    }
    assert_eq!(
        pick_id(&balancer, Some("b"), t0).as_deref(),
        Some("a"),
        "two in a row: still in"
    );
    balancer.pick(SVC, Some("b"), t0).unwrap().local_failure(t0);
    assert_eq!(
        pick_id(&balancer, Some("b"), t0),
        None,
        "three in a row: out"
    );
    for _ in 0..20 {
        assert_eq!(pick_id(&balancer, None, t0).as_deref(), Some("b"));
    }
    assert_eq!(balancer.ready_count(SVC), 2, "ejected is still ready");
    let loads = balancer.loads(t0);
    let a = loads.iter().find(|l| l.id == "a").unwrap();
    assert_eq!((a.completed, a.failed), (1, 5));
}

#[test]
fn the_last_eligible_instance_stays() {
    let balancer = balancer(&["a"]);
    let now = Instant::now();
    for _ in 0..10 {
        balancer.pick(SVC, None, now).unwrap().local_failure(now);
    }
    assert_eq!(pick_id(&balancer, None, now).as_deref(), Some("a"));
    // Never ejected, so never on trial either.
    let later = now + backoff(1);
    assert!(!balancer.pick(SVC, None, later).unwrap().is_trial());

    let balancer = self::balancer(&["a", "b"]);
    fail_three(&balancer, "a", "b", now);
    fail_three(&balancer, "b", "a", now);
    assert_eq!(
        pick_id(&balancer, Some("a"), now).as_deref(),
        Some("b"),
        "b is all that is left"
    );
    let b = balancer.pick(SVC, Some("a"), later).unwrap();
    assert_eq!((b.id(), b.is_trial()), ("b", false));
    drop(b);

    // Readiness moved after the ejection: a, ejected, is all that is ready; it still serves.
    balancer
        .set(SVC, vec![instance("a", true), instance("b", false)])
        .unwrap();
    assert_eq!(pick_id(&balancer, None, now).as_deref(), Some("a"));
}

#[test]
fn one_trial_after_the_ejection() {
    let balancer = balancer(&["a", "b"]);
    let t0 = Instant::now();
    fail_three(&balancer, "a", "b", t0);
    let over = t0 + backoff(1);
    assert_eq!(
        pick_id(&balancer, Some("b"), over - Duration::from_millis(1)),
        None
    );

    let trial = balancer.pick(SVC, Some("b"), over).unwrap();
    assert_eq!((trial.id(), trial.is_trial()), ("a", true));
    assert_eq!(
        pick_id(&balancer, Some("b"), over),
        None,
        "one trial at a time"
    );
    for _ in 0..10 {
        assert_eq!(pick_id(&balancer, None, over).as_deref(), Some("b"));
    }
    // Given up without an outcome: the trial is free again.
    drop(trial);
    let trial = balancer.pick(SVC, Some("b"), over).unwrap();
    assert!(trial.is_trial());
    trial.success(over).end(over);

    let pick = balancer.pick(SVC, Some("b"), over).unwrap();
    assert_eq!((pick.id(), pick.is_trial()), ("a", false), "back in");
}

#[test]
fn ejections_grow_up_to_the_cap() {
    let balancer = balancer(&["a", "b"]);
    let mut now = Instant::now();
    fail_three(&balancer, "a", "b", now);
    for n in 1..=32u32 {
        let length = backoff(n);
        assert_eq!(length, (Duration::from_secs(10) * n).min(EJECTION_MAX));
        let over = now + length;
        assert_eq!(
            pick_id(&balancer, Some("b"), over - Duration::from_millis(1)),
            None,
            "n={n}"
        );
        let trial = balancer.pick(SVC, Some("b"), over).unwrap();
        assert!(trial.is_trial(), "n={n}");
        trial.local_failure(over);
        now = over;
    }
    assert_eq!(backoff(31), EJECTION_MAX);
}

#[test]
fn a_long_healthy_spell_forgives() {
    let balancer = balancer(&["a", "b"]);
    let t0 = Instant::now();
    fail_three(&balancer, "a", "b", t0);
    // Twice more out: the third ejection would last 30 s.
    let t1 = t0 + backoff(1);
    balancer.pick(SVC, Some("b"), t1).unwrap().local_failure(t1);
    let t2 = t1 + backoff(2);
    balancer
        .pick(SVC, Some("b"), t2)
        .unwrap()
        .success(t2)
        .end(t2);
    // Back in for less than FORGET_AFTER: the count holds.
    let t3 = t2 + FORGET_AFTER - Duration::from_secs(1);
    fail_three(&balancer, "a", "b", t3);
    assert_eq!(
        pick_id(
            &balancer,
            Some("b"),
            t3 + backoff(3) - Duration::from_millis(1)
        ),
        None
    );
    let t4 = t3 + backoff(3);
    balancer
        .pick(SVC, Some("b"), t4)
        .unwrap()
        .success(t4)
        .end(t4);
    // Back in for FORGET_AFTER: the next ejection is the first again.
    let t5 = t4 + FORGET_AFTER;
    fail_three(&balancer, "a", "b", t5);
    let t6 = t5 + backoff(1);
    assert!(balancer.pick(SVC, Some("b"), t6).unwrap().is_trial());
}

#[test]
fn a_new_list_keeps_what_stays() {
    let balancer = balancer(&["a", "b"]);
    let t0 = Instant::now();
    let busy = balancer.pick(SVC, Some("b"), t0).unwrap();
    fail_three(&balancer, "b", "a", t0);

    balancer
        .set(
            SVC,
            vec![
                instance("a", true),
                instance("b", true),
                instance("c", true),
            ],
        )
        .unwrap();
    // a keeps its request in flight, b its ejection; c is new and clean.
    for _ in 0..10 {
        assert_eq!(pick_id(&balancer, None, t0).as_deref(), Some("c"));
    }
    assert_eq!(pick_id(&balancer, Some("c"), t0).as_deref(), Some("a"));
    drop(busy);

    // A list with a repeated id keeps its first entry.
    let mut twice = instance("a", false);
    twice.port = 9;
    balancer.set(SVC, vec![instance("a", true), twice]).unwrap();
    assert_eq!(balancer.ready_count(SVC), 1);
    assert_eq!(balancer.pick(SVC, None, t0).unwrap().addr().port(), 8080);
}
