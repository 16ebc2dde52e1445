//! The decision and the limits of the day.

use super::*;

fn date(text: &str) -> Date {
    Date::parse(text).unwrap()
}

/// min 1, max 10, target 10, window 60 s, panic at 200 %, idle after 5 min.
fn policy() -> Policy {
    Policy {
        min: 1,
        max: 10,
        target: 10,
        window_ms: 60_000,
        panic_percent: 200,
        idle_after_ms: 300_000,
        freeze: false,
        surges: Vec::new(),
    }
}

fn with(min: u32, max: u32) -> Policy {
    Policy {
        min,
        max,
        ..policy()
    }
}

fn settled(current: u32) -> Counts {
    Counts {
        current,
        ready: current,
        frozen: 0,
        settled: true,
    }
}

/// Eighths of the target.
fn demand(stable: u32, panic: u32, peak: u32, held: u32) -> Demand {
    Demand {
        stable,
        panic,
        peak,
        held,
        unknown: false,
    }
}

fn run(policy: &Policy, now: Counts, demand: Demand) -> (u32, u32, String) {
    let limits = limits(policy, date("2026-06-01"));
    let d = decide(policy, &limits, now, &demand);
    (d.count, d.frozen, d.reason)
}

fn said(count: u32, reason: &str) -> (u32, u32, String) {
    (count, 0, reason.to_string())
}

#[test]
fn scales_up_at_once_to_what_the_stable_mean_asks() {
    // 31 in flight, target 10: 24.8 eighths, 25 quantised, four instances.
    let d = demand(25, 25, 25, 0);
    assert_eq!(
        run(&policy(), settled(2), d),
        said(4, "2 -> 4: 31 in flight, target 10")
    );
    assert_eq!(
        run(&policy(), settled(1), demand(72, 72, 72, 0)),
        said(9, "1 -> 9: 90 in flight, target 10")
    );
}

#[test]
fn panics_at_200_percent_of_what_is_ready_and_not_at_190() {
    let p = with(1, 64);
    // Ten ready: the panic window asks for 20 instances, 200 %.
    assert_eq!(
        run(&p, settled(10), demand(80, 160, 160, 0)),
        said(
            20,
            "10 -> 20: 200 in flight over the panic window, target 10"
        )
    );
    // 19 instances, 190 %: the stable mean (10) decides, and the peak keeps them.
    assert_eq!(
        run(&p, settled(10), demand(80, 152, 160, 0)),
        said(10, "at 10: peak 200 over 5m, target 10")
    );
    // Nothing ready counts as one: two instances' worth is a panic.
    let starting = Counts {
        current: 1,
        ready: 0,
        frozen: 0,
        settled: false,
    };
    assert_eq!(run(&p, starting, demand(1, 16, 16, 0)).0, 2);
}

#[test]
fn steps_down_by_one_only_when_the_peak_allows_and_the_service_is_settled() {
    // A peak of 13 in flight: two instances.
    let d = demand(0, 0, 10, 0);
    assert_eq!(
        run(&policy(), settled(3), d),
        said(2, "3 -> 2: peak 13 over 5m, target 10")
    );
    let busy = Counts {
        settled: false,
        ..settled(3)
    };
    assert_eq!(
        run(&policy(), busy, d),
        said(3, "at 3: waiting for a start or stop")
    );
    let unknown = Demand { unknown: true, ..d };
    assert_eq!(
        run(&policy(), settled(3), unknown),
        said(3, "at 3: the load of some board is unknown")
    );
    // Within idle_after of the load that justified three, the peak keeps them.
    assert_eq!(run(&policy(), settled(3), demand(0, 0, 17, 0)).0, 3);
    // By one, however far the peak fell.
    assert_eq!(run(&policy(), settled(7), demand(0, 0, 0, 0)).0, 6);
}

#[test]
fn clamps_to_the_limits() {
    assert_eq!(
        run(&with(1, 3), settled(2), demand(160, 160, 160, 0)),
        said(3, "capped at 3 (scale.max)")
    );
    assert_eq!(
        run(&with(2, 3), settled(2), demand(0, 0, 0, 0)),
        said(2, "held at 2: scale.min")
    );
    assert_eq!(
        run(&with(1, 3), settled(0), demand(0, 0, 0, 0)),
        said(1, "held at 1: scale.min")
    );
    let mut surge = with(1, 3);
    surge.surges.push(SurgeDays {
        dates: vec![date("2026-11-27")],
        max: 4,
        min: None,
    });
    let today = limits(&surge, date("2026-11-27"));
    let d = decide(&surge, &today, settled(3), &demand(160, 160, 160, 0));
    assert_eq!(
        (d.count, d.reason.as_str()),
        (4, "capped at 4 (surge 2026-11-27)")
    );
    // A surge that ended: back under scale.max at once.
    let d = decide(
        &surge,
        &limits(&surge, date("2026-11-28")),
        settled(4),
        &demand(0, 0, 40, 0),
    );
    assert_eq!((d.count, d.reason.as_str()), (3, "capped at 3 (scale.max)"));
}

#[test]
fn min_zero_reaches_zero_only_with_no_peak_at_all() {
    let p = with(0, 3);
    assert_eq!(run(&p, settled(1), demand(0, 0, 1, 0)).0, 1);
    assert_eq!(
        run(&p, settled(1), demand(0, 0, 0, 0)),
        said(0, "1 -> 0: peak 0 over 5m, target 10")
    );
    assert_eq!(
        run(&p, settled(0), demand(0, 0, 0, 0)),
        said(0, "at 0: peak 0 over 5m, target 10")
    );
}

#[test]
fn a_wait_wakes_a_service_from_zero() {
    let p = with(0, 3);
    assert_eq!(
        run(&p, settled(0), demand(0, 0, 0, 4)),
        said(1, "0 -> 1: 4 requests held")
    );
    assert_eq!(
        run(&p, settled(0), demand(0, 0, 0, 1)),
        said(1, "0 -> 1: 1 request held")
    );
    // More load than one instance carries: the load decides.
    assert_eq!(run(&p, settled(0), demand(20, 20, 20, 9)).0, 3);
    // Running already: a wait changes nothing.
    assert_eq!(run(&p, settled(1), demand(0, 0, 1, 2)).0, 1);
    // Many held requests start one instance, not many.
    assert_eq!(
        run(&p, settled(0), demand(0, 0, 0, 25)),
        said(1, "0 -> 1: 25 requests held")
    );
}

#[test]
fn an_instance_requests_wait_for_does_not_step_down() {
    // Started for a held request, running but not ready yet: no load has gone through it, but
    // the request still waits, so it stays.
    let p = with(0, 3);
    let starting = Counts {
        current: 1,
        ready: 0,
        frozen: 0,
        settled: true,
    };
    assert_eq!(
        run(&p, starting, demand(0, 0, 0, 1)),
        said(1, "at 1: peak 0 over 5m, target 10")
    );
    assert_eq!(
        run(&p, starting, demand(0, 0, 0, 0)),
        said(0, "1 -> 0: peak 0 over 5m, target 10")
    );
}

#[test]
fn freeze_keeps_the_last_instance_frozen_instead_of_stopping_it() {
    let p = Policy {
        freeze: true,
        ..with(0, 3)
    };
    assert_eq!(
        run(&p, settled(1), demand(0, 0, 0, 0)),
        (
            1,
            1,
            "1 -> 0 (frozen): peak 0 over 5m, target 10".to_string()
        )
    );
    let frozen = Counts {
        current: 0,
        ready: 0,
        frozen: 1,
        settled: true,
    };
    assert_eq!(run(&p, frozen, demand(0, 0, 0, 0)).1, 1);
    // A wait thaws it.
    assert_eq!(
        run(&p, frozen, demand(0, 0, 0, 2)),
        said(1, "0 -> 1: 2 requests held")
    );
    // Steps above one still stop; a service that never ran stays at zero.
    assert_eq!(
        run(&p, settled(2), demand(0, 0, 0, 0)),
        said(1, "2 -> 1: peak 0 over 5m, target 10")
    );
    assert_eq!(run(&p, settled(0), demand(0, 0, 0, 0)).0, 0);
    // Without freeze the last one stops.
    assert_eq!(run(&with(0, 3), settled(1), demand(0, 0, 0, 0)).0, 0);
}

#[test]
fn limits_follow_the_surge_calendar() {
    let mut p = with(1, 3);
    p.surges = vec![
        SurgeDays {
            dates: vec![date("2026-11-27"), date("2026-11-28")],
            max: 6,
            min: Some(4),
        },
        SurgeDays {
            dates: vec![date("2026-12-24")],
            max: 5,
            min: None,
        },
        SurgeDays {
            dates: vec![date("2026-12-31")],
            max: 2,
            min: Some(9),
        },
    ];
    let at = |day| {
        let l = limits(&p, date(day));
        (l.min, l.max, l.min_why, l.why)
    };
    let s = |t: &str| t.to_string();
    assert_eq!(at("2026-11-26"), (1, 3, s("scale.min"), s("scale.max")));
    assert_eq!(
        at("2026-11-27"),
        (4, 6, s("surge 2026-11-27"), s("surge 2026-11-27"))
    );
    assert_eq!(
        at("2026-11-28"),
        (4, 6, s("surge 2026-11-28"), s("surge 2026-11-28"))
    );
    assert_eq!(
        at("2026-12-24"),
        (1, 5, s("scale.min"), s("surge 2026-12-24"))
    );
    // A surge min above its max is clamped to the max.
    assert_eq!(at("2026-12-31").0, 2);
    // As is a scale.min above the day's max.
    let l = limits(&with(5, 3), date("2026-01-01"));
    assert_eq!((l.min, l.max), (3, 3));
}

#[test]
fn helpers() {
    assert_eq!(want(0), 0);
    assert_eq!(want(1), 1);
    assert_eq!(want(8), 1);
    assert_eq!(want(9), 2);
    assert_eq!(quantise(0, 2000, 10), 0);
    assert_eq!(quantise(1, 2000, 10), 1);
    assert_eq!(quantise(u64::MAX, 1, 1), MAX_LOAD_VALUE);
    assert_eq!(duration_text(300_000), "5m");
    assert_eq!(duration_text(90_000), "90s");
    assert_eq!(duration_text(7 * 86_400_000), "7d");
    assert_eq!(duration_text(1500), "1500ms");
    assert_eq!(decision_bucket(10 * BUCKET_MS + 1), 9);
    assert_eq!(decision_bucket(0), 0);
}
