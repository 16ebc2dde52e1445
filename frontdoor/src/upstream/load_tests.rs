//! The balancer's bounds, the retry budget and the load counters, on a fake clock.

use std::time::{Duration, Instant};

use super::tests::{balancer, instance, SVC};
use super::*;
use crate::control::protocol::{Instance, MAX_LOAD_INSTANCES};

#[test]
fn services_are_bounded() {
    let balancer = Balancer::new();
    let many: Vec<Instance> = (0..MAX_SERVICE_INSTANCES + 5)
        .map(|n| instance(&format!("i{n}"), true))
        .collect();
    balancer.set(SVC, many).unwrap();
    assert_eq!(balancer.ready_count(SVC), MAX_SERVICE_INSTANCES);
    for n in 1..MAX_SERVICES {
        balancer.set(&format!("s{n}"), Vec::new()).unwrap();
    }
    assert_eq!(
        balancer.set("one-more", Vec::new()),
        Err(SetError::TooManyServices {
            service: "one-more".into()
        })
    );
    balancer.set(SVC, vec![instance("a", true)]).unwrap();
    balancer.retain_services(["s1"]);
    assert!(!balancer.has_ready(SVC));
    balancer.set("one-more", Vec::new()).unwrap();
}

#[test]
fn retries_stay_within_the_budget() {
    let balancer = balancer(&["a", "b"]);
    let now = Instant::now();
    // Nothing else in flight: the request asking may retry once.
    let first = balancer.retry_permit().unwrap();
    assert!(balancer.retry_permit().is_none());
    drop(first);
    assert!(
        balancer.retry_permit().is_some(),
        "a permit dropped is given back"
    );

    // Nine in flight and the one asking: two retries at once.
    let picks: Vec<Pick> = (0..9)
        .map(|_| balancer.pick(SVC, None, now).unwrap())
        .collect();
    let permits = [
        balancer.retry_permit().unwrap(),
        balancer.retry_permit().unwrap(),
    ];
    assert!(balancer.retry_permit().is_none());
    drop(picks);
    drop(permits);
    assert!(balancer.retry_permit().is_some());
}

#[test]
fn load_is_the_exact_integral() {
    let balancer = balancer(&["a"]);
    let t0 = Instant::now();
    let ms = |n: u64| Duration::from_millis(n);
    let _ = balancer.loads(t0);

    let one = balancer.pick(SVC, None, t0).unwrap();
    let two = balancer.pick(SVC, None, t0 + ms(100)).unwrap();
    two.success(t0 + ms(150)).end(t0 + ms(300));
    // 1 x 100 + 2 x 200 + 1 x 700 request-milliseconds.
    let load = &balancer.loads(t0 + ms(1000))[0];
    assert_eq!(
        (
            load.id.as_str(),
            load.inflight_now,
            load.inflight_ms,
            load.completed,
            load.failed
        ),
        ("a", 1, 1200, 1, 0)
    );
    one.local_failure(t0 + ms(1500));
    let load = &balancer.loads(t0 + ms(2000))[0];
    assert_eq!(
        (
            load.inflight_now,
            load.inflight_ms,
            load.completed,
            load.failed
        ),
        (0, 500, 0, 1)
    );

    // Under a millisecond is carried to the next report, not lost.
    let t1 = t0 + ms(3000);
    let _ = balancer.loads(t1);
    let pick = balancer.pick(SVC, None, t1).unwrap();
    let us = |n: u64| Duration::from_micros(n);
    assert_eq!(balancer.loads(t1 + us(1500))[0].inflight_ms, 1);
    assert_eq!(balancer.loads(t1 + us(3000))[0].inflight_ms, 2);
    // A clock read late by another task adds nothing and does not move time back.
    pick.success(t1).end(t1);
    assert_eq!(balancer.loads(t1 + us(4000))[0].inflight_ms, 0);
}

#[test]
fn load_reports_are_bounded() {
    let balancer = Balancer::new();
    let now = Instant::now();
    for s in 0..5 {
        let list = (0..1000)
            .map(|n| instance(&format!("{s}-{n}"), true))
            .collect();
        balancer.set(&format!("s{s}"), list).unwrap();
    }
    let busy = balancer.pick("s4", None, now).unwrap();
    let loads = balancer.loads(now);
    assert_eq!(loads.len(), MAX_LOAD_INSTANCES);
    assert!(
        loads[0].id.starts_with("4-"),
        "the busy instance comes first"
    );
    drop(busy);
}
